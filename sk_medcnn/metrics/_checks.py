"""Input checks shared by the metrics of :mod:`sk_medcnn.metrics`."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.multiclass import type_of_target


def _as_1d(values: ArrayLike, name: str) -> NDArray[Any]:
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of shape (n_samples,); got shape "
            f"{array.shape}."
        )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array


def _check_lengths(first: NDArray[Any], second: NDArray[Any], names: str) -> None:
    if len(first) != len(second):
        raise ValueError(
            f"{names} must have the same length; got {len(first)} and {len(second)}."
        )
    if len(first) == 0:
        raise ValueError(f"{names} are empty; the metric needs at least one sample.")


def _binary_scores(
    y_true: ArrayLike, y_score: ArrayLike, pos_label: Any, function: str
) -> tuple[NDArray[np.bool_], NDArray[np.float64], list[Any]]:
    """Validate labels and scores; return ``(y_true == pos, scores, labels)``.

    ``y_score`` is ``(n_samples,)`` scores of the positive class, or
    ``(n_samples, 2)`` probabilities whose columns follow the sorted labels
    (``classes_`` order); the positive class's column is taken.
    """
    truth = _as_1d(y_true, "y_true")
    scores = np.asarray(y_score)
    if scores.dtype.kind not in "biuf":
        raise ValueError(f"y_score must hold numbers; got dtype {scores.dtype}.")
    if not (scores.ndim == 1 or (scores.ndim == 2 and scores.shape[1] in (1, 2))):
        raise ValueError(
            "y_score must be (n_samples,) scores of the positive class or "
            "(n_samples, 2) probabilities (predict_proba); got shape "
            f"{scores.shape}."
        )
    scores = scores.astype(np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError("y_score contains NaN or infinity.")
    _check_lengths(truth, scores, "y_true and y_score")
    if type_of_target(truth) not in ("binary", "multiclass"):
        raise ValueError(
            f"y_true must hold class labels; got {type_of_target(truth)} values."
        )
    labels = np.unique(truth).tolist()
    if len(labels) > 2:
        raise ValueError(
            f"{function} is for binary problems, but y_true holds {len(labels)} "
            f"labels {labels!r}."
        )
    if len(labels) == 2 and pos_label not in labels:
        raise ValueError(
            f"pos_label={pos_label!r} is not a label of y_true; the labels are "
            f"{labels!r}. Pass pos_label= the positive class (e.g. "
            f"pos_label={labels[1]!r})."
        )
    if pos_label not in labels:
        raise ValueError(
            f"{function} needs both classes in y_true, but y_true holds no sample "
            f"of pos_label={pos_label!r} (labels present: {labels!r}): AUC, "
            "sensitivity and the ROC curve are undefined without positives."
        )
    if len(labels) < 2:
        raise ValueError(
            f"{function} needs both classes in y_true, but every sample is "
            f"pos_label={pos_label!r}: AUC, specificity and the ROC curve are "
            "undefined without negatives."
        )
    if scores.ndim == 2:
        column = labels.index(pos_label) if scores.shape[1] == 2 else 0
        scores = scores[:, column]
    return truth == pos_label, scores, labels


def _finite_number(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number; got {value!r}.")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite; got {value!r}.")


def _rate_level(value: Any, name: str) -> None:
    _finite_number(value, name)
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; got {value!r}.")
