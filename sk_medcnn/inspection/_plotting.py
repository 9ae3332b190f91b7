"""Matplotlib figures: explanation maps over images and volumes.

The figures of a classifier's scores (reliability diagram, ROC curve) are in
``_plotting_metrics``.

matplotlib is an optional dependency (``pip install "sk-medcnn[plot]"``),
imported only when a function here draws.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..utils._validation import closed_fraction, one_of, optional_dict, positive_int
from ._base import LayerLike, display_images, resolve_model
from ._grad_cam import grad_cam
from ._saliency import saliency_map

if TYPE_CHECKING:  # matplotlib is optional: imported for the annotations only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_explanations",
    "plot_overlay",
    "plot_volume_overlay",
]

#: the label drawn instead of an all-zero map
NO_EVIDENCE = "no positive evidence"

_EXPLANATION_METHODS = (
    "grad_cam",
    "hires_cam",
    "gradient",
    "smoothgrad",
    "integrated_gradients",
)


def _pyplot() -> Any:
    """Import ``matplotlib.pyplot``, or say which extra to install."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "plotting needs matplotlib, which is not installed; install it with "
            "pip install 'sk-medcnn[plot]'."
        ) from error
    return plt


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots()
    return ax


def _displayable(image: NDArray[Any]) -> tuple[NDArray[Any], str | None]:
    """Return the image ready for ``imshow`` and the colormap (None for RGB)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return image, "gray"
    if image.ndim == 3 and image.shape[2] in (3, 4):
        if image.dtype == np.uint8:
            return image, None
        values = image.astype(np.float64)
        low, high = values.min(), values.max()
        return (values - low) / (high - low if high > low else 1.0), None
    raise ValueError(
        "image must be (height, width), (height, width, 1), (height, width, 3) or "
        f"(height, width, 4); got shape {image.shape}."
    )


def plot_overlay(
    image: ArrayLike,
    heatmap: ArrayLike,
    *,
    ax: Axes | None = None,
    alpha: float = 0.4,
    cmap: str = "jet",
) -> Axes:
    """Draw a heat map over an image.

    Parameters
    ----------
    image : array-like of shape (height, width) or (height, width, channels)
        A grayscale image (drawn with its own min-max contrast) or an RGB(A)
        image (uint8, or any real type scaled to [0, 1] by its range).
    heatmap : array-like of shape (height, width)
        Values in [0, 1], as :func:`grad_cam` and :func:`saliency_map` give;
        0 maps to the bottom of ``cmap`` and 1 to its top. A map that is all
        0 (Grad-CAM found no positive evidence for the class) is not drawn:
        the image is shown with the label "no positive evidence".
    ax : matplotlib.axes.Axes, default=None
        Where to draw; a new figure when None.
    alpha : float, default=0.4
        Opacity of the heat map, in [0, 1].
    cmap : str, default="jet"
        Colormap of the heat map.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on (``ax.figure`` is the figure, to save).

    Raises
    ------
    ValueError
        If the shapes do not match or ``alpha`` is outside [0, 1].
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.inspection import plot_overlay
    >>> ax = plot_overlay(np.zeros((8, 8)), np.eye(8))  # doctest: +SKIP
    """
    closed_fraction(alpha, "alpha")
    image_array = np.asarray(image)
    heat = np.asarray(heatmap, dtype=np.float64)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be (height, width); got shape {heat.shape}.")
    if image_array.shape[:2] != heat.shape:
        raise ValueError(
            f"image of shape {image_array.shape} and heatmap of shape {heat.shape} "
            "differ in height and width."
        )
    if not np.all(np.isfinite(heat)):
        raise ValueError("heatmap contains NaN or infinity.")
    shown, image_cmap = _displayable(image_array)
    ax = _axes(ax)
    ax.imshow(shown, cmap=image_cmap, interpolation="nearest")
    if heat.max() > 0:
        ax.imshow(
            heat, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0, interpolation="bilinear"
        )
    else:  # drawn, an all-zero map would tint the image as if it explained it
        ax.text(
            0.5,
            0.04,
            NO_EVIDENCE,
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            fontsize=8,
            color="black",
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85},
        )
    ax.set_axis_off()
    return ax


_VOLUME_VIEWS = ("axial", "coronal", "sagittal")


def plot_volume_overlay(
    volume: ArrayLike,
    heatmap: ArrayLike | None,
    *,
    position: tuple[int, int, int] | None = None,
    axes: Sequence[Axes] | None = None,
    alpha: float = 0.4,
    cmap: str = "jet",
    origin: str = "lower",
) -> list[Axes]:
    """Draw a 3-D heat map over a volume as three orthogonal slices.

    The slices cross at ``position``: by default the voxel where the heat
    map peaks (the centre of the volume if the map is all zero or None), so
    the slices show what the explanation points at.

    Parameters
    ----------
    volume : array-like of shape (depth, height, width) or \
            (depth, height, width, channels)
        The volume, depth first as the estimators take it.
    heatmap : array-like of shape (depth, height, width) or None
        Values in [0, 1], as :func:`grad_cam` and :func:`saliency_map` give
        for volumes. None draws the volume's slices alone.
    position : tuple of int, default=None
        ``(depth, row, column)`` index of the voxel where the slices cross.
    axes : sequence of 3 matplotlib.axes.Axes, default=None
        Where to draw the axial (a depth slice), coronal (a row slice) and
        sagittal (a column slice) views; a new figure when None.
    alpha : float, default=0.4
        Opacity of the heat map, in [0, 1].
    cmap : str, default="jet"
        Colormap of the heat map.
    origin : {"lower", "upper"}, default="lower"
        Where the first row of each drawn slice goes. ``"lower"`` (the
        bottom) shows volumes read by :func:`~sk_medcnn.io.read_volume`
        (NIfTI files and DICOM series, in their canonical orientation) the
        right way up: anterior at the top of the axial view, superior at the
        top of the coronal and sagittal views, the patient's left on the
        left. ``"upper"`` draws each slice as ``imshow`` draws an array.

    Raises
    ------
    ValueError
        If the shapes do not match, ``position`` lies outside the volume, or
        ``axes`` does not hold three axes.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.inspection import plot_volume_overlay
    >>> heat = np.zeros((8, 8, 8)); heat[2, 3, 4] = 1.0
    >>> axes = plot_volume_overlay(np.zeros((8, 8, 8)), heat)  # doctest: +SKIP
    """
    closed_fraction(alpha, "alpha")
    one_of(("lower", "upper"))(origin, "origin")
    data = np.asarray(volume)
    if heatmap is None and data.ndim in (3, 4):
        heatmap = np.zeros(data.shape[:3])
        bare = True
    else:
        bare = False
    heat = np.asarray(heatmap, dtype=np.float64)
    if heat.ndim != 3:
        raise ValueError(
            f"heatmap must be (depth, height, width); got shape {heat.shape}."
        )
    if data.ndim not in (3, 4) or data.shape[:3] != heat.shape:
        raise ValueError(
            f"volume of shape {data.shape} and heatmap of shape {heat.shape} "
            "differ in depth, height and width."
        )
    if position is None:
        if heat.max() > 0:
            centre = tuple(int(i) for i in np.unravel_index(heat.argmax(), heat.shape))
        else:
            centre = tuple(side // 2 for side in heat.shape)
        position = cast("tuple[int, int, int]", centre)  # heat.ndim == 3
    if len(position) != 3 or not all(
        0 <= int(index) < side for index, side in zip(position, heat.shape, strict=True)
    ):
        raise ValueError(
            f"position must be a (depth, row, column) index inside the volume of "
            f"shape {heat.shape}; got {position!r}."
        )
    if axes is None:
        _, created = _pyplot().subplots(1, 3, figsize=(7.5, 2.8), layout="constrained")
        axes = list(created)
    axes = list(axes)
    if len(axes) != 3:
        raise ValueError(f"axes must hold 3 axes; got {len(axes)}.")
    d, r, c = (int(index) for index in position)
    cuts: tuple[tuple[int | slice, int | slice, int | slice], ...] = (
        (d, slice(None), slice(None)),
        (slice(None), r, slice(None)),
        (slice(None), slice(None), c),
    )
    labels = (f"axial, depth {d}", f"coronal, row {r}", f"sagittal, column {c}")
    for ax, cut, label in zip(axes, cuts, labels, strict=True):
        image, heat_slice = data[cut], heat[cut]
        if origin == "lower":  # the first row at the bottom
            image, heat_slice = image[::-1], heat_slice[::-1]
        if bare:
            shown, image_cmap = _displayable(image)
            ax.imshow(shown, cmap=image_cmap, interpolation="nearest")
            ax.set_axis_off()
        else:
            plot_overlay(image, heat_slice, ax=ax, alpha=alpha, cmap=cmap)
        ax.set_title(label, fontsize=8)
    return axes


def plot_explanations(
    estimator: Any,
    X: ArrayLike,
    *,
    method: str = "hires_cam",
    target: Any = None,
    layer: LayerLike = None,
    y_true: ArrayLike | None = None,
    n_columns: int = 4,
    alpha: float = 0.4,
    cmap: str = "jet",
    method_params: dict[str, Any] | None = None,
    class_names: Mapping[Any, str] | Sequence[str] | None = None,
) -> Figure:
    """Draw explanation maps over a few images, with the model's predictions.

    Parameters
    ----------
    estimator : MedicalCNNClassifier or Pipeline
        A fitted classifier, or a fitted Pipeline ending in one.
    X : array-like of images
        The images to explain (a handful: one panel each).
    method : {"hires_cam", "grad_cam", "gradient", "smoothgrad", \
            "integrated_gradients"}, default="hires_cam"
        :func:`grad_cam` (with its ``variant``; HiResCAM, its default, equals
        Grad-CAM for the ResNets and follows ``simple_cnn``'s flattening head),
        or a method of :func:`saliency_map`.
    target : label or array-like of shape (n_samples,), default=None
        The class to explain; None explains each image's predicted class.
    layer : str, torch.nn.Module or callable, default=None
        Grad-CAM's layer (see :func:`grad_cam`).
    y_true : array-like of shape (n_samples,), default=None
        True labels, shown in the panel titles when given.
    n_columns : int, default=4
        Panels per row.
    alpha : float, default=0.4
        Opacity of the maps.
    cmap : str, default="jet"
        Colormap of the maps.
    method_params : dict, default=None
        Further keyword arguments of :func:`saliency_map` (``n_samples``,
        ``noise``, ``n_steps``, ``random_state``).
    class_names : dict or sequence of str, default=None
        Names to show in the titles instead of the labels: a dict from label
        to name (``{0: "normal", 1: "pneumonia"}``), or one name per class in
        the order of ``classes_``. None shows the labels.

    Returns
    -------
    figure : matplotlib.figure.Figure
        One panel per image, titled with the predicted label and its
        probability (and the true label when given); save it with
        ``figure.savefig(path)``.

    Raises
    ------
    ValueError
        If ``method`` is unknown, or as :func:`grad_cam` and
        :func:`saliency_map` raise.
    ImportError
        If matplotlib is not installed.

    See Also
    --------
    plot_overlay : One map over one image.

    Notes
    -----
    The maps are drawn over the images of ``X`` as given; where those have no
    size of their own (flat rows or file paths before a Pipeline's
    preprocessing), over the images the classifier sees. Volumes get one row
    each: three orthogonal slices through the peak of their map
    (:func:`plot_volume_overlay`), the prediction in the first slice's title.
    """
    one_of(_EXPLANATION_METHODS)(method, "method")
    positive_int(n_columns, "n_columns")
    optional_dict(method_params, "method_params")
    plt = _pyplot()
    maps = _explanation_maps(estimator, X, method, target, layer, method_params)
    with warnings.catch_warnings():  # grad_cam and saliency_map warned already
        warnings.simplefilter("ignore")
        model = resolve_model(estimator)
    images = display_images(model, X)
    classes = model.classifier.classes_
    name_of = _class_namer(classes, class_names)
    probabilities = estimator.predict_proba(X)
    truth = None if y_true is None else np.asarray(y_true).reshape(-1)
    if truth is not None and len(truth) != len(maps):
        raise ValueError(
            f"y_true has {len(truth)} labels but X holds {len(maps)} images."
        )
    titles = _panel_titles(probabilities, classes, name_of, truth)
    if maps.ndim == 4:  # volumes: a row of three slices each
        figure = _draw_volume_rows(plt, images, maps, titles, alpha=alpha, cmap=cmap)
    else:
        figure = _draw_image_grid(
            plt, images, maps, titles, n_columns=n_columns, alpha=alpha, cmap=cmap
        )
    figure.suptitle(_explanation_title(method, target), fontsize=10)
    return figure


def _explanation_maps(
    estimator: Any,
    X: ArrayLike,
    method: str,
    target: Any,
    layer: LayerLike,
    method_params: dict[str, Any] | None,
) -> NDArray[np.floating[Any]]:
    """Compute the maps of ``plot_explanations``: Grad-CAM's or a saliency map."""
    params = dict(method_params or {})
    if method in ("grad_cam", "hires_cam"):
        if params:
            raise ValueError(
                f"method_params {sorted(params)!r} are for saliency_map; "
                f"method={method!r} takes none."
            )
        return grad_cam(estimator, X, target=target, layer=layer, variant=method)
    return saliency_map(estimator, X, target=target, method=method, **params)


def _panel_titles(
    probabilities: NDArray[Any],
    classes: NDArray[Any],
    name_of: Callable[[Any], str],
    truth: NDArray[Any] | None,
) -> list[str]:
    """Title each panel with the predicted class and its probability (and the truth)."""
    titles = []
    for index, row in enumerate(probabilities):
        best = int(np.argmax(row))
        title = f"pred. {name_of(classes[best])} ({row[best]:.2f})"
        if truth is not None:
            title = f"true {name_of(truth[index])}, " + title
        titles.append(title)
    return titles


def _draw_volume_rows(
    plt: Any,
    images: Any,
    maps: NDArray[Any],
    titles: list[str],
    *,
    alpha: float,
    cmap: str,
) -> Figure:
    """Draw each volume's map as a row of three slices, its title on the first."""
    n_images = len(maps)
    figure, rows = plt.subplots(
        n_images,
        3,
        figsize=(7.5, 2.8 * n_images),
        squeeze=False,
        layout="constrained",
    )
    for index, row in enumerate(rows):
        volume_axes = plot_volume_overlay(
            images[index], maps[index], axes=row, alpha=alpha, cmap=cmap
        )
        volume_axes[0].set_title(
            f"{titles[index]}\n{volume_axes[0].get_title()}", fontsize=8
        )
    return figure


def _draw_image_grid(
    plt: Any,
    images: Any,
    maps: NDArray[Any],
    titles: list[str],
    *,
    n_columns: int,
    alpha: float,
    cmap: str,
) -> Figure:
    """Draw each image's map in a grid of ``n_columns``, the spare panels blank."""
    n_images = len(maps)
    n_rows = math.ceil(n_images / n_columns)
    columns = min(n_columns, n_images)
    figure, axes = plt.subplots(
        n_rows,
        columns,
        figsize=(2.6 * columns, 2.9 * n_rows),
        squeeze=False,
        layout="constrained",  # titles never run into the row above
    )
    for index, ax in enumerate(axes.ravel()):
        if index >= n_images:
            ax.set_axis_off()
            continue
        plot_overlay(images[index], maps[index], ax=ax, alpha=alpha, cmap=cmap)
        ax.set_title(titles[index], fontsize=8)
    return figure


def _explanation_title(method: str, target: Any) -> str:
    name = {"grad_cam": "Grad-CAM", "hires_cam": "HiResCAM"}.get(
        method, method.replace("_", " ")
    )
    explained = "predicted class" if target is None else f"class {target!r}"
    if target is not None and np.ndim(target) > 0:
        explained = "given classes"
    return f"{name} maps of the {explained}"


def _class_namer(
    classes: NDArray[Any], class_names: Mapping[Any, str] | Sequence[str] | None
) -> Callable[[Any], str]:
    """Return a function giving a label's display name; check ``class_names``."""
    if class_names is None:
        return str
    if isinstance(class_names, Mapping):
        names = {_plain(label): str(name) for label, name in class_names.items()}
        missing = [label for label in classes.tolist() if label not in names]
        if missing:
            raise ValueError(
                f"class_names has no name for the classes {missing}; the "
                f"classes are {classes.tolist()}."
            )
    elif isinstance(class_names, Sequence) and not isinstance(class_names, str):
        if len(class_names) != len(classes):
            raise ValueError(
                f"class_names has {len(class_names)} names but the classifier "
                f"has {len(classes)} classes {classes.tolist()}."
            )
        names = {
            label: str(name)
            for label, name in zip(classes.tolist(), class_names, strict=True)
        }
    else:
        raise TypeError(
            "class_names must be a dict from label to name or a sequence of "
            f"names; got {type(class_names).__name__}."
        )
    return lambda label: names.get(_plain(label), str(label))


def _plain(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label
