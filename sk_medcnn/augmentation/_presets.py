"""The augmentation ``MedicalCNNClassifier(augmentation="auto")`` trains with."""

from __future__ import annotations

from sklearn.pipeline import Pipeline, make_pipeline

from ._geometric import RandomAffine
from ._intensity import RandomIntensity, RandomNoise

__all__ = ["default_augmentation"]


def default_augmentation(spatial_dims: int = 2) -> Pipeline:
    """Build the default training augmentation: small affine maps, intensity, noise.

    ``MedicalCNNClassifier(augmentation="auto")``, the default, trains with a
    new instance of this pipeline. It was chosen for models that hold up under
    acquisition shifts (contrast, gamma, brightness, blur, noise, resolution,
    prevalence) on PneumoniaMNIST and RetinaMNIST, trained on all, 10% or 300
    images of their training splits (user guide, "Defaults and a recipe",
    from ``benchmarks/eval_generalisation.py``).

    Parameters
    ----------
    spatial_dims : {2, 3}, default=2
        2 for images, 3 for volumes. The two pipelines differ only in the
        shift: volumes are shifted along their depth too,
        ``RandomAffine(translate=(0.05, 0.05, 0.05), ...)``; the 2-D pipeline
        also runs on volumes, shifting them within their slices.

    Returns
    -------
    augmentation : sklearn.pipeline.Pipeline
        A new, unfitted pipeline of three steps, applied in order to every
        training batch:

        1. ``RandomAffine(translate=(0.05, 0.05), degrees=10.0,
           scale=(0.95, 1.05), p=0.5)``: half the images shifted by up to 5%,
           rotated by up to 10 degrees and zoomed by up to 5%, in one
           resampling (the other half keep their pixels: every resampling
           blurs a little);
        2. ``RandomIntensity(brightness=0.2, contrast=0.4, gamma=0.4)``: every
           image's brightness, contrast and gamma changed, relative to its own
           range;
        3. ``RandomNoise(std=0.04, p=0.5)``: Gaussian noise of 4% of the
           range on half the images.

    See Also
    --------
    RandomAffine, RandomIntensity, RandomNoise : The steps.

    Notes
    -----
    There are no flips: a mirrored chest radiograph has its heart on the
    wrong side, and the laterality of many images is part of what they show.
    Add :class:`RandomFlip` for images without one (fundus photographs,
    histology). All three steps work on gray or colour images and volumes of
    any size and intensity unit. The 3-D pipeline was not tuned: it is the
    2-D one with the same strengths along the depth.

    Examples
    --------
    >>> from sk_medcnn.augmentation import default_augmentation
    >>> [name for name, _ in default_augmentation().steps]
    ['randomaffine', 'randomintensity', 'randomnoise']
    >>> default_augmentation(spatial_dims=3)[0].translate
    (0.05, 0.05, 0.05)
    """
    if isinstance(spatial_dims, bool) or spatial_dims not in (2, 3):
        raise ValueError(
            f"spatial_dims must be 2 (images) or 3 (volumes); got {spatial_dims!r}."
        )
    translate = (0.05, 0.05) if spatial_dims == 2 else (0.05, 0.05, 0.05)
    return make_pipeline(
        RandomAffine(translate=translate, degrees=10.0, scale=(0.95, 1.05), p=0.5),
        RandomIntensity(brightness=0.2, contrast=0.4, gamma=0.4),
        RandomNoise(std=0.04, p=0.5),
    )
