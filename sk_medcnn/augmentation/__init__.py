"""Random data augmentation for training: batched torch transforms.

Each augmenter is a scikit-learn estimator. Inside
``MedicalCNNClassifier(augmentation=...)`` it runs on every training batch,
fresh every epoch, through ``augment_batch`` on images ``(n, C, H, W)`` or
volumes ``(n, C, D, H, W)``; in a ``Pipeline``,
``fit_transform`` returns one augmented copy and ``transform`` returns the
input unchanged, so inference is never augmented. :func:`default_augmentation`
builds the pipeline ``MedicalCNNClassifier(augmentation="auto")``, the default,
trains with.
"""

from ._geometric import RandomAffine, RandomFlip, RandomRotation
from ._intensity import RandomErasing, RandomIntensity, RandomNoise
from ._mixup import MixUp
from ._presets import default_augmentation

__all__ = [
    "MixUp",
    "RandomAffine",
    "RandomErasing",
    "RandomFlip",
    "RandomIntensity",
    "RandomNoise",
    "RandomRotation",
    "default_augmentation",
]
