"""Sensitivity, specificity, PPV and NPV of binary classifiers.

The four figures of predicted labels, and the operating points of continuous
scores: the best sensitivity at a minimum specificity and the reverse.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import roc_curve
from sklearn.utils.multiclass import type_of_target, unique_labels

from ._checks import _as_1d, _binary_scores, _check_lengths, _rate_level


# --- input checks -------------------------------------------------------------
def _check_sample_weight(
    sample_weight: ArrayLike | None, n_samples: int
) -> NDArray[np.float64]:
    if sample_weight is None:
        return np.ones(n_samples)
    weight = _as_1d(sample_weight, "sample_weight").astype(np.float64)
    if len(weight) != n_samples:
        raise ValueError(
            f"sample_weight has {len(weight)} values but y_true has {n_samples}."
        )
    if np.any(weight < 0):
        raise ValueError("sample_weight must be >= 0.")
    return weight


def _binary_labels(
    y_true: ArrayLike, y_pred: ArrayLike, pos_label: Any, function: str
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], list[Any]]:
    """Validate binary labels and return ``(y_true == pos, y_pred == pos, labels)``."""
    truth = _as_1d(y_true, "y_true")
    predicted = _as_1d(y_pred, "y_pred")
    _check_lengths(truth, predicted, "y_true and y_pred")
    if type_of_target(predicted) == "continuous":
        raise ValueError(
            f"y_pred holds continuous values, not labels; {function} needs predicted "
            "labels. Threshold the scores first, or use clinical_report or "
            "sensitivity_at_specificity, which take scores."
        )
    labels = unique_labels(truth, predicted).tolist()
    if len(labels) > 2:
        raise ValueError(
            f"{function} is a binary metric, but y_true and y_pred hold "
            f"{len(labels)} labels {labels!r}; for one class against the rest, "
            "pass y_true == label and y_pred == label with pos_label=True."
        )
    if len(labels) == 2 and pos_label not in labels:
        raise ValueError(
            f"pos_label={pos_label!r} is not a label of y_true or y_pred; the labels "
            f"are {labels!r}."
        )
    return truth == pos_label, predicted == pos_label, labels


def _confusion(
    truth: NDArray[np.bool_],
    predicted: NDArray[np.bool_],
    weight: NDArray[np.float64],
) -> tuple[float, float, float, float]:
    """Return the weighted ``(tn, fp, fn, tp)`` counts."""
    tp = float(weight[truth & predicted].sum())
    fn = float(weight[truth & ~predicted].sum())
    fp = float(weight[~truth & predicted].sum())
    tn = float(weight[~truth & ~predicted].sum())
    return tn, fp, fn, tp


def _zero_division_like(value: Any, name: str) -> None:
    if isinstance(value, str) and value == "raise":
        return
    if isinstance(value, Real) and not isinstance(value, bool):
        if math.isnan(value) or 0.0 <= float(value) <= 1.0:
            return
    raise ValueError(
        f"{name} must be 'raise', np.nan or a number in [0, 1]; got {value!r}."
    )


def _predictive_value(
    hits: float, total: float, zero_division: str | float, undefined: str
) -> float:
    """Return ``hits / total``, or ``zero_division`` (or raise ``undefined``) at 0."""
    if total == 0:
        if zero_division == "raise":
            raise ValueError(
                f"{undefined}; pass zero_division=np.nan or a number to return "
                "that value instead."
            )
        return float(zero_division)
    return hits / total


# --- scores of predicted labels -------------------------------------------------
def sensitivity_score(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    pos_label: Any = 1,
    sample_weight: ArrayLike | None = None,
) -> float:
    """Sensitivity (recall, true positive rate): TP / (TP + FN).

    The share of the truly positive samples that are predicted positive.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    pos_label : int, str or bool, default=1
        The label of the positive class (the condition being detected).
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples.

    Returns
    -------
    sensitivity : float
        In [0, 1].

    Raises
    ------
    ValueError
        If the arrays differ in length, hold more than two labels, or
        ``y_true`` holds no positive sample (sensitivity is then undefined).

    See Also
    --------
    specificity_score : The true negative rate.
    sklearn.metrics.recall_score : The same figure, named recall.

    Examples
    --------
    >>> from sk_medcnn.metrics import sensitivity_score
    >>> sensitivity_score([0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0])
    0.75
    """
    truth, predicted, labels = _binary_labels(
        y_true, y_pred, pos_label, "sensitivity_score"
    )
    _, _, fn, tp = _confusion(
        truth, predicted, _check_sample_weight(sample_weight, len(truth))
    )
    if tp + fn == 0:
        raise ValueError(
            f"sensitivity is undefined: y_true holds no positive sample "
            f"(pos_label={pos_label!r}; labels present: {labels!r})."
        )
    return tp / (tp + fn)


def specificity_score(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    pos_label: Any = 1,
    sample_weight: ArrayLike | None = None,
) -> float:
    """Specificity (true negative rate): TN / (TN + FP).

    The share of the truly negative samples that are predicted negative.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    pos_label : int, str or bool, default=1
        The label of the positive class; every other label is negative.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples.

    Returns
    -------
    specificity : float
        In [0, 1].

    Raises
    ------
    ValueError
        If the arrays differ in length, hold more than two labels, or
        ``y_true`` holds no negative sample (specificity is then undefined).

    See Also
    --------
    sensitivity_score : The true positive rate.

    Examples
    --------
    >>> from sk_medcnn.metrics import specificity_score
    >>> specificity_score([0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0])
    0.5
    """
    truth, predicted, _ = _binary_labels(y_true, y_pred, pos_label, "specificity_score")
    tn, fp, _, _ = _confusion(
        truth, predicted, _check_sample_weight(sample_weight, len(truth))
    )
    if tn + fp == 0:
        raise ValueError(
            f"specificity is undefined: y_true holds no negative sample "
            f"(every label is pos_label={pos_label!r})."
        )
    return tn / (tn + fp)


def ppv_score(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    pos_label: Any = 1,
    sample_weight: ArrayLike | None = None,
    zero_division: str | float = "raise",
) -> float:
    """Positive predictive value (precision): TP / (TP + FP).

    The share of the samples predicted positive that are truly positive. It
    depends on the prevalence of the condition in the data.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    pos_label : int, str or bool, default=1
        The label of the positive class.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples.
    zero_division : "raise", np.nan or float in [0, 1], default="raise"
        What to do when no sample is predicted positive and the PPV is
        undefined: raise a ``ValueError``, or return this value.

    Returns
    -------
    ppv : float
        In [0, 1] (or ``zero_division``).

    Raises
    ------
    ValueError
        If the arrays differ in length or hold more than two labels, or if
        no sample is predicted positive and ``zero_division="raise"``.

    See Also
    --------
    npv_score : The negative predictive value.
    sklearn.metrics.precision_score : The same figure, named precision.

    Examples
    --------
    >>> from sk_medcnn.metrics import ppv_score
    >>> ppv_score([0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0])
    0.75
    """
    _zero_division_like(zero_division, "zero_division")
    truth, predicted, _ = _binary_labels(y_true, y_pred, pos_label, "ppv_score")
    _, fp, _, tp = _confusion(
        truth, predicted, _check_sample_weight(sample_weight, len(truth))
    )
    return _predictive_value(
        tp,
        tp + fp,
        zero_division,
        f"PPV is undefined: no sample is predicted positive (pos_label={pos_label!r})",
    )


def npv_score(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    pos_label: Any = 1,
    sample_weight: ArrayLike | None = None,
    zero_division: str | float = "raise",
) -> float:
    """Negative predictive value: TN / (TN + FN).

    The share of the samples predicted negative that are truly negative. It
    depends on the prevalence of the condition in the data.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels.
    y_pred : array-like of shape (n_samples,)
        Predicted labels.
    pos_label : int, str or bool, default=1
        The label of the positive class; every other label is negative.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples.
    zero_division : "raise", np.nan or float in [0, 1], default="raise"
        What to do when no sample is predicted negative and the NPV is
        undefined: raise a ``ValueError``, or return this value.

    Returns
    -------
    npv : float
        In [0, 1] (or ``zero_division``).

    Raises
    ------
    ValueError
        If the arrays differ in length or hold more than two labels, or if
        no sample is predicted negative and ``zero_division="raise"``.

    See Also
    --------
    ppv_score : The positive predictive value.

    Examples
    --------
    >>> from sk_medcnn.metrics import npv_score
    >>> npv_score([0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0])
    0.5
    """
    _zero_division_like(zero_division, "zero_division")
    truth, predicted, _ = _binary_labels(y_true, y_pred, pos_label, "npv_score")
    tn, _, fn, _ = _confusion(
        truth, predicted, _check_sample_weight(sample_weight, len(truth))
    )
    return _predictive_value(
        tn,
        tn + fn,
        zero_division,
        f"NPV is undefined: no sample is predicted negative (pos_label={pos_label!r})",
    )


# --- scores of continuous outputs -----------------------------------------------
def sensitivity_at_specificity(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    specificity: float = 0.9,
    pos_label: Any = 1,
) -> float:
    """Return the best sensitivity at a threshold reaching a given specificity.

    Scans every threshold of the ROC curve (a sample is positive when its
    score is >= the threshold) and returns the best sensitivity among those
    whose specificity reaches ``specificity``: the operating point a screening
    test is often chosen by.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels, both classes present.
    y_score : array-like of shape (n_samples,) or (n_samples, 2)
        Scores of the positive class (probabilities or decision values), or
        ``predict_proba`` output whose columns follow the sorted labels.
    specificity : float, default=0.9
        The minimum specificity, in [0, 1].
    pos_label : int, str or bool, default=1
        The label of the positive class.

    Returns
    -------
    sensitivity : float
        In [0, 1].

    Raises
    ------
    ValueError
        If ``y_true`` lacks a class, the lengths differ or ``y_score`` has the
        wrong shape.

    See Also
    --------
    make_sensitivity_at_specificity_scorer : This figure as a scorer.
    specificity_at_sensitivity : The mirror figure.

    Examples
    --------
    >>> from sk_medcnn.metrics import sensitivity_at_specificity
    >>> y_true = [0, 0, 0, 0, 1, 1, 1, 1]
    >>> y_score = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    >>> sensitivity_at_specificity(y_true, y_score, specificity=0.75)
    1.0
    >>> sensitivity_at_specificity(y_true, y_score, specificity=1.0)
    0.75
    """
    _rate_level(specificity, "specificity")
    truth, scores, _ = _binary_scores(
        y_true, y_score, pos_label, "sensitivity_at_specificity"
    )
    fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    # a small tolerance, so that a specificity of exactly 0.9 (1 - 0.1 in
    # floating point) counts as reaching 0.9
    feasible = 1.0 - fpr >= specificity - 1e-12
    return float(tpr[feasible].max())


def specificity_at_sensitivity(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    sensitivity: float = 0.9,
    pos_label: Any = 1,
) -> float:
    """Return the best specificity at a threshold reaching a given sensitivity.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True binary labels, both classes present.
    y_score : array-like of shape (n_samples,) or (n_samples, 2)
        Scores of the positive class, or ``predict_proba`` output.
    sensitivity : float, default=0.9
        The minimum sensitivity, in [0, 1].
    pos_label : int, str or bool, default=1
        The label of the positive class.

    Returns
    -------
    specificity : float
        In [0, 1].

    Raises
    ------
    ValueError
        If ``y_true`` lacks a class, the lengths differ or ``y_score`` has the
        wrong shape.

    See Also
    --------
    make_specificity_at_sensitivity_scorer : This figure as a scorer.
    sensitivity_at_specificity : The mirror figure.

    Examples
    --------
    >>> from sk_medcnn.metrics import specificity_at_sensitivity
    >>> y_true = [0, 0, 0, 0, 1, 1, 1, 1]
    >>> y_score = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    >>> specificity_at_sensitivity(y_true, y_score, sensitivity=1.0)
    0.75
    """
    _rate_level(sensitivity, "sensitivity")
    truth, scores, _ = _binary_scores(
        y_true, y_score, pos_label, "specificity_at_sensitivity"
    )
    fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    feasible = tpr >= sensitivity - 1e-12
    return float((1.0 - fpr[feasible]).max())
