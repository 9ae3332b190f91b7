"""Scorers of the operating points, for ``GridSearchCV(scoring=...)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.metrics import make_scorer

from ._checks import _rate_level
from ._classification import sensitivity_at_specificity, specificity_at_sensitivity

_SCORE_METHODS = ("decision_function", "predict_proba")


def make_sensitivity_at_specificity_scorer(
    specificity: float = 0.9, *, pos_label: Any = 1
) -> Callable[..., float]:
    """Build a scorer of the best sensitivity at a minimum specificity.

    The scorer calls the estimator's ``decision_function`` (or
    ``predict_proba`` when it has none) and returns
    :func:`sensitivity_at_specificity`, so that model selection optimises the
    operating point a screening test is chosen by.

    Parameters
    ----------
    specificity : float, default=0.9
        The minimum specificity, in [0, 1].
    pos_label : int, str or bool, default=1
        The label of the positive class (a value of the estimator's
        ``classes_``).

    Returns
    -------
    scorer : callable
        A scikit-learn scorer ``scorer(estimator, X, y)``; greater is better.

    See Also
    --------
    sensitivity_at_specificity : The metric.
    make_specificity_at_sensitivity_scorer : The mirror scorer.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from sk_medcnn.metrics import make_sensitivity_at_specificity_scorer
    >>> X, y = make_classification(200, random_state=0)
    >>> scorer = make_sensitivity_at_specificity_scorer(0.9)
    >>> scores = cross_val_score(LogisticRegression(), X, y, cv=3, scoring=scorer)
    >>> bool(scores.min() > 0.5)
    True
    """
    _rate_level(specificity, "specificity")
    return make_scorer(
        sensitivity_at_specificity,
        response_method=_SCORE_METHODS,
        specificity=specificity,
        pos_label=pos_label,
    )


def make_specificity_at_sensitivity_scorer(
    sensitivity: float = 0.9, *, pos_label: Any = 1
) -> Callable[..., float]:
    """Build a scorer of the best specificity at a minimum sensitivity.

    Parameters
    ----------
    sensitivity : float, default=0.9
        The minimum sensitivity, in [0, 1].
    pos_label : int, str or bool, default=1
        The label of the positive class.

    Returns
    -------
    scorer : callable
        A scikit-learn scorer ``scorer(estimator, X, y)``; greater is better.

    See Also
    --------
    specificity_at_sensitivity : The metric.
    make_sensitivity_at_specificity_scorer : The mirror scorer.
    """
    _rate_level(sensitivity, "sensitivity")
    return make_scorer(
        specificity_at_sensitivity,
        response_method=_SCORE_METHODS,
        sensitivity=sensitivity,
        pos_label=pos_label,
    )
