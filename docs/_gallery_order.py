"""The order of the examples in the gallery (imported by ``docs/conf.py``)."""

from __future__ import annotations

#: Gallery order: the Keras comparison first, the main job last; others by name.
EXAMPLES = (
    "plot_keras_to_sk_medcnn.py",
    "plot_augmentation_gallery.py",
    "plot_grid_search.py",
    "plot_dicom_pipeline.py",
    "plot_volume_pipeline.py",
    "plot_explanations.py",
    "plot_calibration.py",
    "train_pneumoniamnist.py",
)


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``.

    Parameters
    ----------
    src_dir : str
        The gallery folder being sorted (unused).
    """

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        """Return the sort key of an example file name."""
        if filename in EXAMPLES:
            return EXAMPLES.index(filename), filename
        return len(EXAMPLES), filename
