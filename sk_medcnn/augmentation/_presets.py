"""The augmentation ``MedicalCNNClassifier(augmentation="auto")`` trains with."""

from __future__ import annotations

from sklearn.pipeline import Pipeline, make_pipeline

from ._geometric import RandomAffine
from ._intensity import RandomIntensity, RandomNoise

__all__ = ["default_augmentation"]


def default_augmentation() -> Pipeline:
    """Build the default training augmentation: small affine maps, intensity, noise.

    ``MedicalCNNClassifier(augmentation="auto")``, the default, trains with a
    new instance of this pipeline. It was chosen for models that hold up under
    acquisition shifts (contrast, gamma, brightness, blur, noise, resolution,
    prevalence) on PneumoniaMNIST and RetinaMNIST, trained on all, 10% or 300
    images of their training splits (user guide, "Defaults and a recipe",
    from ``benchmarks/eval_generalisation.py``).

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
    histology). All three steps work on gray or colour images of any size
    and intensity unit.

    Examples
    --------
    >>> from sk_medcnn.augmentation import default_augmentation
    >>> [name for name, _ in default_augmentation().steps]
    ['randomaffine', 'randomintensity', 'randomnoise']
    """
    return make_pipeline(
        RandomAffine(translate=(0.05, 0.05), degrees=10.0, scale=(0.95, 1.05), p=0.5),
        RandomIntensity(brightness=0.2, contrast=0.4, gamma=0.4),
        RandomNoise(std=0.04, p=0.5),
    )
