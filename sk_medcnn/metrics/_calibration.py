"""Calibration of predicted probabilities: the expected calibration error."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..utils._validation import one_of, positive_int
from ._checks import _as_1d, _check_lengths


def _calibration_bins(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    n_bins: int,
    strategy: str,
    pos_label: Any,
    labels: ArrayLike | None,
) -> tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]
]:
    """Bin the predictions; return per-bin confidence, accuracy, count and the edges.

    Empty bins have count 0 and NaN confidence and accuracy.
    """
    positive_int(n_bins, "n_bins")
    one_of(("uniform", "quantile"))(strategy, "strategy")
    truth = _as_1d(y_true, "y_true")
    probabilities = np.asarray(y_prob)
    if probabilities.dtype.kind not in "biuf":
        raise ValueError(f"y_prob must hold numbers; got dtype {probabilities.dtype}.")
    probabilities = probabilities.astype(np.float64)
    if probabilities.ndim not in (1, 2):
        raise ValueError(
            "y_prob must be (n_samples,) probabilities of the positive class or "
            f"(n_samples, n_classes) probabilities; got shape {probabilities.shape}."
        )
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("y_prob contains NaN or infinity.")
    if probabilities.min() < 0.0 or probabilities.max() > 1.0:
        raise ValueError(
            "y_prob must hold probabilities in [0, 1]; got values in "
            f"[{probabilities.min():g}, {probabilities.max():g}]. Pass "
            "predict_proba output, not decision_function scores."
        )
    _check_lengths(truth, probabilities, "y_true and y_prob")
    if probabilities.ndim == 1:
        present = np.unique(truth).tolist()
        if len(present) == 2 and pos_label not in present:
            raise ValueError(
                f"pos_label={pos_label!r} is not a label of y_true; the labels are "
                f"{present!r}. Pass pos_label= the class whose probabilities y_prob "
                "holds."
            )
        confidence = probabilities
        correct = (truth == pos_label).astype(np.float64)
    else:
        columns = np.unique(truth) if labels is None else _as_1d(labels, "labels")
        if len(columns) != probabilities.shape[1]:
            raise ValueError(
                f"y_prob has {probabilities.shape[1]} columns but there are "
                f"{len(columns)} labels {columns.tolist()!r}; pass labels= (the "
                "classifier's classes_) when y_true lacks a class."
            )
        unknown = np.setdiff1d(truth, columns)
        if len(unknown):
            raise ValueError(
                f"y_true holds labels {unknown.tolist()!r} that are not in labels "
                f"{columns.tolist()!r}."
            )
        confidence = probabilities.max(axis=1)
        correct = (columns[probabilities.argmax(axis=1)] == truth).astype(np.float64)
    if strategy == "quantile":
        edges = np.quantile(confidence, np.linspace(0.0, 1.0, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bins (edge[i], edge[i + 1]], the first one closed: as calibration_curve
    index = np.searchsorted(edges[1:-1], confidence)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, minlength=n_bins) / counts
        mean_correct = np.bincount(index, correct, minlength=n_bins) / counts
    return mean_confidence, mean_correct, counts, edges


def expected_calibration_error(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    n_bins: int = 10,
    strategy: str = "uniform",
    pos_label: Any = 1,
    labels: ArrayLike | None = None,
) -> float:
    """Compute the expected calibration error (binned confidence-accuracy gap).

    The predictions are grouped into ``n_bins`` bins of confidence; the error
    is the mean over bins of ``|observed frequency - mean confidence|``,
    weighted by the share of samples in each bin (Naeini et al., 2015; Guo et
    al., 2017). 0 is perfect calibration.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_prob : array-like of shape (n_samples,) or (n_samples, n_classes)
        Either the predicted probability of ``pos_label`` (then the bins are
        over that probability and the observed frequency is the share of
        positives, as in :func:`sklearn.calibration.calibration_curve`), or
        ``predict_proba`` output (then the bins are over the top-class
        probability and the observed frequency is the accuracy: Guo et al.'s
        top-label ECE).
    n_bins : int, default=10
        Number of bins, >= 1.
    strategy : {"uniform", "quantile"}, default="uniform"
        ``"uniform"``: bins of equal width over [0, 1]; ``"quantile"``: bins
        holding about equal numbers of samples (fewer bins when predictions
        repeat).
    pos_label : int, str or bool, default=1
        The positive label, for 1-D ``y_prob``.
    labels : array-like of shape (n_classes,), default=None
        The labels of ``y_prob``'s columns (a classifier's ``classes_``), for
        2-D ``y_prob``; the sorted labels of ``y_true`` by default.

    Returns
    -------
    ece : float
        In [0, 1].

    Raises
    ------
    ValueError
        If the lengths differ, ``y_prob`` is outside [0, 1] or has the wrong
        shape, or a parameter is out of range.

    See Also
    --------
    sk_medcnn.inspection.plot_reliability_diagram : The bins, drawn.
    sklearn.calibration.calibration_curve : The same bins, as arrays.

    Notes
    -----
    A bin ``i`` holds the confidences in ``(edge[i], edge[i + 1]]`` (the first
    bin also holds 0), as :func:`sklearn.calibration.calibration_curve` bins
    them. The ECE is biased upward on small samples (each bin's gap is at
    least its sampling noise); compare models on the same data and binning.

    References
    ----------
    .. [1] M. P. Naeini, G. F. Cooper and M. Hauskrecht, "Obtaining Well
       Calibrated Probabilities Using Bayesian Binning", AAAI 2015.
    .. [2] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On Calibration of
       Modern Neural Networks", ICML 2017.

    Examples
    --------
    >>> from sk_medcnn.metrics import expected_calibration_error
    >>> y_true = [0, 0, 1, 1]
    >>> round(expected_calibration_error(y_true, [0.1, 0.3, 0.7, 0.9], n_bins=2), 3)
    0.2
    """
    confidence, correct, counts, _ = _calibration_bins(
        y_true,
        y_prob,
        n_bins=n_bins,
        strategy=strategy,
        pos_label=pos_label,
        labels=labels,
    )
    return _ece_of_bins(confidence, correct, counts)


def _ece_of_bins(
    confidence: NDArray[np.float64],
    correct: NDArray[np.float64],
    counts: NDArray[np.int64],
) -> float:
    """Return the expected calibration error of bins from :func:`_calibration_bins`."""
    filled = counts > 0
    weights = counts[filled] / counts.sum()
    return float(np.sum(weights * np.abs(correct[filled] - confidence[filled])))
