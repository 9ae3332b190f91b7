"""Robustness: acquisition corruptions with a severity, and a report of their effect.

The corruptions are scikit-learn transformers (noise, blur, contrast,
brightness, gamma, JPEG, pixelation, resolution, MRI bias field, ring and stripe
artefacts), each with a ``severity`` from 1 to 5; :func:`robustness_report`
scores a fitted classifier on images corrupted by each of them.
"""

from ._corruptions import (
    BiasField,
    Brightness,
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    JPEGCompression,
    Pixelate,
    ResolutionChange,
    RingArtifact,
    StripeArtifact,
)
from ._report import RobustnessReport, default_corruptions, robustness_report

__all__ = [
    "BiasField",
    "Brightness",
    "Contrast",
    "Gamma",
    "GaussianBlur",
    "GaussianNoise",
    "JPEGCompression",
    "Pixelate",
    "ResolutionChange",
    "RingArtifact",
    "RobustnessReport",
    "StripeArtifact",
    "default_corruptions",
    "robustness_report",
]
