"""Scores of conformal prediction sets: coverage, size and referral rate."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import _as_1d, _check_lengths


def _check_sets(prediction_sets: ArrayLike) -> NDArray[np.bool_]:
    sets = np.asarray(prediction_sets)
    if sets.dtype != np.bool_ or sets.ndim != 2 or sets.shape[1] < 2:
        raise ValueError(
            "prediction_sets must be a boolean array of shape (n_samples, "
            "n_classes), as ConformalClassifier.predict_set returns; got "
            f"{sets.dtype} of shape {sets.shape}."
        )
    if len(sets) == 0:
        raise ValueError("prediction_sets holds no samples.")
    return sets


def set_coverage(
    y_true: ArrayLike, prediction_sets: ArrayLike, *, labels: ArrayLike
) -> float:
    """Compute the share of samples whose prediction set holds the true class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    prediction_sets : array-like of shape (n_samples, n_classes), dtype bool
        Sets, as :meth:`sk_medcnn.conformal.ConformalClassifier.predict_set`
        returns them.
    labels : array-like of shape (n_classes,)
        The class of each column (the classifier's ``classes_``).

    Returns
    -------
    coverage : float
        In [0, 1]; conformal sets at error rate ``alpha`` reach at least
        ``1 - alpha`` on average.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.metrics import set_coverage
    >>> sets = np.array([[True, False], [True, True], [False, True]])
    >>> set_coverage(["a", "b", "a"], sets, labels=["a", "b"])
    0.6666666666666666
    """
    sets = _check_sets(prediction_sets)
    truth = _as_1d(y_true, "y_true")
    _check_lengths(truth, sets, "y_true and prediction_sets")
    columns = np.asarray(labels)
    if columns.ndim != 1 or len(columns) != sets.shape[1]:
        raise ValueError(
            f"labels must name the {sets.shape[1]} columns of prediction_sets; got "
            f"{columns.tolist()!r}."
        )
    lookup = {label: index for index, label in enumerate(columns.tolist())}
    missing = sorted({label for label in truth.tolist() if label not in lookup})
    if missing:
        raise ValueError(f"y_true holds labels {missing} that labels does not name.")
    rows = np.array([lookup[label] for label in truth.tolist()], dtype=np.intp)
    return float(np.mean(sets[np.arange(len(rows)), rows]))


def mean_set_size(prediction_sets: ArrayLike) -> float:
    """Compute the average number of classes in a prediction set.

    Parameters
    ----------
    prediction_sets : array-like of shape (n_samples, n_classes), dtype bool
        Sets, as :meth:`sk_medcnn.conformal.ConformalClassifier.predict_set`
        returns them.

    Returns
    -------
    size : float
        In [0, n_classes]; smaller is more informative at the same coverage.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.metrics import mean_set_size
    >>> mean_set_size(np.array([[True, False], [True, True]]))
    1.5
    """
    return float(np.mean(_check_sets(prediction_sets).sum(axis=1)))


def referral_rate(prediction_sets: ArrayLike) -> float:
    """Compute the share of prediction sets that are not a single class.

    A set of several classes (the model cannot tell them apart at the chosen
    error rate) or of none (no class is plausible enough) is a case to refer
    to a human reader.

    Parameters
    ----------
    prediction_sets : array-like of shape (n_samples, n_classes), dtype bool
        Sets, as :meth:`sk_medcnn.conformal.ConformalClassifier.predict_set`
        returns them.

    Returns
    -------
    rate : float
        In [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.metrics import referral_rate
    >>> referral_rate(np.array([[True, False], [True, True], [False, False]]))
    0.6666666666666666
    """
    return float(np.mean(_check_sets(prediction_sets).sum(axis=1) != 1))
