"""Matplotlib figures of a classifier's scores: reliability diagrams, ROC curves.

matplotlib is an optional dependency (``pip install "sk-medcnn[plot]"``),
imported only when a function here draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..metrics import (
    _binary_scores,
    _calibration_bins,
    _ece_of_bins,
    _finite_number,
)
from ._plotting import _axes

if TYPE_CHECKING:  # matplotlib is optional: imported for the annotations only
    from matplotlib.axes import Axes

__all__ = [
    "plot_reliability_diagram",
    "plot_roc",
]


def plot_reliability_diagram(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: str = "uniform",
    pos_label: Any = 1,
    labels: ArrayLike | None = None,
    ax: Axes | None = None,
    name: str | None = None,
) -> Axes:
    """Draw a reliability diagram: observed frequency against predicted probability.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_prob : array-like of shape (n_samples,) or (n_samples, n_classes)
        Probabilities of ``pos_label``, or ``predict_proba`` output (then the
        top-class confidence against accuracy), as in
        :func:`~sk_medcnn.metrics.expected_calibration_error`.
    n_bins : int, default=10
        Number of bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        Bins of equal width, or of about equal numbers of samples.
    pos_label : int, str or bool, default=1
        The positive label, for 1-D ``y_prob``.
    labels : array-like of shape (n_classes,), default=None
        The labels of ``y_prob``'s columns, for 2-D ``y_prob``.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; a new figure when None.
    name : str, default=None
        The model's name in the legend.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on; the legend gives the expected calibration error.

    Raises
    ------
    ValueError
        As :func:`~sk_medcnn.metrics.expected_calibration_error` raises.
    ImportError
        If matplotlib is not installed.

    See Also
    --------
    sk_medcnn.metrics.expected_calibration_error : The summary of this diagram.
    sklearn.calibration.CalibrationDisplay : scikit-learn's diagram, for
        estimators.

    Notes
    -----
    Each point is one non-empty bin at (mean predicted probability, observed
    frequency of the positive class), its area proportional to the bin's
    number of samples; points on the diagonal are perfectly calibrated,
    points below it over-confident.
    """
    confidence, correct, counts, _ = _calibration_bins(
        y_true,
        y_prob,
        n_bins=n_bins,
        strategy=strategy,
        pos_label=pos_label,
        labels=labels,
    )
    ece = _ece_of_bins(confidence, correct, counts)
    top_label = np.ndim(y_prob) == 2
    ax = _axes(ax)
    filled = counts > 0
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    label = f"{name + ' ' if name else ''}(ECE = {ece:.3f})"
    (line,) = ax.plot(confidence[filled], correct[filled], marker="", label=label)
    sizes = 300 * counts[filled] / counts.max()
    ax.scatter(confidence[filled], correct[filled], s=sizes, color=line.get_color())
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    if top_label:
        ax.set_xlabel("confidence (top-class probability)")
        ax.set_ylabel("accuracy")
    else:
        ax.set_xlabel(f"predicted probability of {pos_label!r}")
        ax.set_ylabel(f"observed frequency of {pos_label!r}")
    ax.legend(loc="upper left")
    return ax


def plot_roc(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    threshold: float | None = None,
    pos_label: Any = 1,
    ax: Axes | None = None,
    name: str | None = None,
) -> Axes:
    """Draw the ROC curve and, given a threshold, the operating point it picks.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels, both classes present.
    y_score : array-like of shape (n_samples,) or (n_samples, 2)
        Scores of the positive class, or ``predict_proba`` output.
    threshold : float, default=None
        A decision threshold on ``y_score`` (positive when score >=
        threshold); its sensitivity and specificity are marked on the curve.
    pos_label : int, str or bool, default=1
        The label of the positive class.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; a new figure when None.
    name : str, default=None
        The model's name in the legend.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on; the legend gives the AUC and the operating point.

    Raises
    ------
    ValueError
        If ``y_true`` lacks a class or ``y_score`` has the wrong shape.
    ImportError
        If matplotlib is not installed.

    See Also
    --------
    sk_medcnn.metrics.clinical_report : The figures at the threshold, with
        confidence intervals.
    sklearn.metrics.RocCurveDisplay : scikit-learn's ROC curve, for estimators.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    truth, scores, _ = _binary_scores(y_true, y_score, pos_label, "plot_roc")
    if threshold is not None:
        _finite_number(threshold, "threshold")
    fpr, tpr, _ = roc_curve(truth, scores)
    auc = roc_auc_score(truth, scores)
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.plot(fpr, tpr, label=f"{name + ' ' if name else ''}(AUC = {auc:.3f})")
    if threshold is not None:
        predicted = scores >= threshold
        sensitivity = np.count_nonzero(predicted & truth) / np.count_nonzero(truth)
        specificity = np.count_nonzero(~predicted & ~truth) / np.count_nonzero(~truth)
        ax.plot(
            1 - specificity,
            sensitivity,
            marker="o",
            markersize=8,
            linestyle="",
            color="black",
            label=(
                f"threshold {threshold:g}: sensitivity {sensitivity:.2f}, "
                f"specificity {specificity:.2f}"
            ),
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.legend(loc="lower right")
    return ax
