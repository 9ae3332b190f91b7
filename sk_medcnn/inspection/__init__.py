"""Opening the model: explanation maps and diagnostic figures.

:func:`grad_cam` and :func:`saliency_map` show where a fitted
:class:`~sk_medcnn.MedicalCNNClassifier` (or a Pipeline ending in one) looks;
:func:`plot_overlay`, :func:`plot_volume_overlay` (three orthogonal slices of
a volume) and :func:`plot_explanations` draw the maps over the images;
:func:`plot_reliability_diagram` and :func:`plot_roc` draw a classifier's
calibration and its ROC curve with the chosen operating point;
:func:`check_intensities` and :func:`check_distribution` flag images unlike
the training images.
Plotting needs matplotlib (``pip install "sk-medcnn[plot]"``), imported only
when a figure is drawn.
"""

from ._distribution import (
    DistributionCheck,
    IntensityCheck,
    check_distribution,
    check_intensities,
)
from ._grad_cam import grad_cam
from ._plotting import plot_explanations, plot_overlay, plot_volume_overlay
from ._plotting_metrics import plot_reliability_diagram, plot_roc
from ._saliency import saliency_map

__all__ = [
    "DistributionCheck",
    "IntensityCheck",
    "check_distribution",
    "check_intensities",
    "grad_cam",
    "plot_explanations",
    "plot_overlay",
    "plot_reliability_diagram",
    "plot_roc",
    "plot_volume_overlay",
    "saliency_map",
]
