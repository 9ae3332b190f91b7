"""Deterministic transformers on image arrays, for pipelines before a CNN.

Every transformer takes images ``(n_samples, height, width)``,
``(n_samples, height, width, channels)``, volumes ``(n_samples, depth,
height, width[, channels])`` or flat rows of square images, and returns a
numpy array in the same layout. Geometric and channel transforms
keep the dtype; intensity transforms return float32.
"""

from ._channels import ToGrayscale, ToRGB
from ._geometry import CenterCrop, Pad, Resize
from ._intensity import CLAHE, IntensityNormalizer, IntensityWindow
from ._resample import Resample

__all__ = [
    "CLAHE",
    "CenterCrop",
    "IntensityNormalizer",
    "IntensityWindow",
    "Pad",
    "Resample",
    "Resize",
    "ToGrayscale",
    "ToRGB",
]
