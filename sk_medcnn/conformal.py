"""Split-conformal prediction sets: predictions that know when to abstain.

:class:`ConformalClassifier` wraps a probabilistic classifier (a
:class:`~sk_medcnn.MedicalCNNClassifier`, a Pipeline ending in one, or any
scikit-learn classifier with ``predict_proba``) and turns its probabilities into
*prediction sets*: for an error rate ``alpha``, each set holds the true class with
probability at least ``1 - alpha`` on data exchangeable with the calibration
data, whatever the model. A set of one class is a confident prediction; a set of
several classes (or none) is the model saying "refer this case to a human".
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, ClassVar, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.utils import Tags, get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .utils._validation import (
    check_params,
    one_of,
    open_fraction,
    random_state_like,
    warn_user,
)

__all__ = ["ConformalClassifier"]

METHODS = ("lac", "aps")


def _estimator_like(value: Any, name: str) -> None:
    if value is None:
        return
    if not (hasattr(value, "fit") and hasattr(value, "predict_proba")):
        raise TypeError(
            f"{name} must be a classifier with fit and predict_proba (or None for "
            f"a MedicalCNNClassifier); got {value!r}."
        )


def _calibration_size_like(value: Any, name: str) -> None:
    if isinstance(value, Integral) and not isinstance(value, bool):
        if value < 2:
            raise ValueError(f"{name} must be >= 2 samples or a fraction; got {value}.")
        return
    if isinstance(value, Real) and not isinstance(value, bool):
        open_fraction(value, name)
        return
    raise TypeError(f"{name} must be an int or a float in (0, 1); got {value!r}.")


def _conformity_scores(proba: NDArray[np.float64], method: str) -> NDArray[np.float64]:
    """Non-conformity of every class of every sample, shape ``proba.shape``.

    ``"lac"``: one minus the class's probability. ``"aps"``: the probability
    mass of the classes ranked before it (higher probability; ties broken by
    class order) plus its own.
    """
    if method == "lac":
        return 1.0 - proba
    order = np.argsort(-proba, axis=1, kind="stable")
    ranked = np.take_along_axis(proba, order, axis=1)
    cumulative = np.cumsum(ranked, axis=1)
    scores = np.empty_like(proba)
    np.put_along_axis(scores, order, cumulative, axis=1)
    return scores


class ConformalClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Prediction sets with guaranteed coverage, by split-conformal prediction.

    ``fit`` trains a clone of ``estimator`` on part of the data and keeps the
    rest to calibrate (``cv="split"``), or takes an already fitted estimator and
    calibrates on all the data given (``cv="prefit"``: your own calibration
    split). :meth:`predict_set` then returns, for each image, the set of
    classes whose non-conformity is within the calibrated quantile: on data
    exchangeable with the calibration data, the set holds the true class with
    probability at least ``1 - alpha`` (and, with ``method="lac"`` and no tied
    scores, at most ``1 - alpha + 1 / (n_calibration + 1)``), whatever the
    model [1]_.
    ``predict`` and ``predict_proba`` are the estimator's.

    Parameters
    ----------
    estimator : classifier or None, default=None
        A classifier with ``predict_proba``; None uses
        ``MedicalCNNClassifier()`` with its defaults.
    alpha : float, default=0.1
        The error rate: sets miss the true class at most this often. Can be
        changed after ``fit`` (``set_params`` or ``predict_set(X, alpha=)``)
        without refitting.
    method : {"lac", "aps"}, default="lac"
        The non-conformity score. ``"lac"`` (least ambiguous set-valued
        classifier [2]_): one minus the class's probability; the smallest sets
        on average, possibly empty when no class is probable enough. ``"aps"``
        (adaptive prediction sets [3]_, without randomisation): the
        probability mass down to the class; sets grow with the model's
        uncertainty, and always hold the most probable class. Without the
        randomisation it is conservative: coverage above ``1 - alpha``.
    cv : {"split", "prefit"}, default="split"
        ``"split"``: hold out ``calibration_size`` of ``(X, y)`` (stratified),
        fit a clone of ``estimator`` on the rest. ``"prefit"``: ``estimator``
        is fitted already and used as it is; all of ``(X, y)`` calibrates. The
        calibration data must not have been used to train it.
    calibration_size : float or int, default=0.2
        With ``cv="split"``: the fraction (or number) of samples held out to
        calibrate. A few hundred give sets close to the nominal coverage.
    random_state : int, RandomState instance or None, default=None
        Seeds the split.

    Attributes
    ----------
    estimator_ : classifier
        The fitted classifier (``estimator`` itself with ``cv="prefit"``).
    classes_ : ndarray of shape (n_classes,)
        The classes, in the order of ``predict_set``'s columns.
    calibration_scores_ : ndarray of shape (n_calibration,)
        The sorted non-conformity scores of the calibration samples' true
        classes.
    n_calibration_ : int
        Calibration samples.

    See Also
    --------
    sk_medcnn.metrics.set_coverage : Empirical coverage of prediction sets.
    sk_medcnn.metrics.referral_rate : The share of sets that are not a single
        class.
    sk_medcnn.metrics.clinical_report : Takes ``prediction_sets=``.

    Notes
    -----
    The guarantee is marginal: over calibration and test data drawn together,
    not for each image, and not under a shift between them (another scanner,
    another prevalence). With fewer than ``1 / alpha - 1`` calibration samples
    no quantile exists and every set holds every class (a warning says so).

    References
    ----------
    .. [1] A. N. Angelopoulos and S. Bates, "A Gentle Introduction to Conformal
       Prediction and Distribution-Free Uncertainty Quantification",
       arXiv:2107.07511, 2021.
    .. [2] M. Sadinle, J. Lei and L. Wasserman, "Least Ambiguous Set-Valued
       Classifiers with Bounded Error Levels", JASA 114:525, 2019.
    .. [3] Y. Romano, M. Sesia and E. Candès, "Classification with Valid and
       Adaptive Coverage", NeurIPS 2020.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sk_medcnn.conformal import ConformalClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> X, y = make_lesion_phantoms(400, image_size=16, random_state=0)
    >>> X = X.reshape(len(X), -1) / 255.0
    >>> conformal = ConformalClassifier(
    ...     LogisticRegression(), alpha=0.1, random_state=0
    ... ).fit(X[:300], y[:300])
    >>> sets = conformal.predict_set(X[300:])
    >>> sets.shape, sets.dtype
    ((100, 2), dtype('bool'))
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "estimator": _estimator_like,
        "alpha": open_fraction,
        "method": one_of(METHODS),
        "cv": one_of(("split", "prefit")),
        "calibration_size": _calibration_size_like,
        "random_state": random_state_like,
    }

    def __init__(
        self,
        estimator: Any = None,
        *,
        alpha: float = 0.1,
        method: str = "lac",
        cv: str = "split",
        calibration_size: float | int = 0.2,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.estimator = estimator
        self.alpha = alpha
        self.method = method
        self.cv = cv
        self.calibration_size = calibration_size
        self.random_state = random_state

    def fit(self, X: Any, y: ArrayLike, **fit_params: Any) -> ConformalClassifier:
        """Fit the estimator (unless prefit) and calibrate the sets.

        Parameters
        ----------
        X : array-like or list of paths
            Images, as the estimator takes them.
        y : array-like of shape (n_samples,)
            Labels.
        **fit_params : dict
            Passed to the estimator's ``fit`` (``cv="split"`` only), e.g.
            ``sample_weight``, split with the samples.

        Returns
        -------
        self : ConformalClassifier
            The fitted meta-estimator.
        """
        check_params(self)
        if y is None:
            raise ValueError(
                "ConformalClassifier requires y to be passed, but the target y is None."
            )
        y = cast("NDArray[Any]", column_or_1d(y, warn=True))
        check_classification_targets(y)
        if self.cv == "prefit":
            if self.estimator is None:
                raise ValueError('cv="prefit" needs a fitted estimator, not None.')
            check_is_fitted(self.estimator)
            if fit_params:
                raise ValueError(
                    'cv="prefit" fits nothing; got fit parameters '
                    f"{sorted(fit_params)}."
                )
            self.estimator_ = self.estimator
            X_calibration, y_calibration = X, y
        else:
            estimator = self.estimator
            if estimator is None:
                from .estimators import MedicalCNNClassifier

                estimator = MedicalCNNClassifier()
            keys = sorted(fit_params)
            split = train_test_split(
                X,
                y,
                *(fit_params[key] for key in keys),
                test_size=self.calibration_size,
                stratify=y,
                random_state=self.random_state,
            )
            X_train, X_calibration = split[0], split[1]
            y_train, y_calibration = split[2], split[3]
            train_params = {key: split[4 + 2 * i] for i, key in enumerate(keys)}
            self.estimator_ = clone(estimator).fit(X_train, y_train, **train_params)
        self.classes_ = np.asarray(self.estimator_.classes_)
        unknown = sorted(set(np.unique(y_calibration).tolist()) - set(self.classes_))
        if unknown:
            raise ValueError(
                f"y holds labels {unknown} that the estimator was not fitted on "
                f"(its classes: {self.classes_.tolist()})."
            )
        proba = self._proba(X_calibration)
        rows = np.searchsorted(self.classes_, y_calibration)
        if not np.array_equal(self.classes_[rows], y_calibration):  # unsorted classes
            lookup = {label: index for index, label in enumerate(self.classes_)}
            rows = np.array([lookup[label] for label in y_calibration])
        scores = _conformity_scores(proba, self.method)
        self.calibration_scores_ = np.sort(scores[np.arange(len(rows)), rows])
        self.n_calibration_ = len(rows)
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        if self.estimator is not None:  # what the inner estimator takes
            inner = get_tags(self.estimator).input_tags
            tags.input_tags.sparse = inner.sparse
            tags.input_tags.allow_nan = inner.allow_nan
        return tags

    def _proba(self, X: Any) -> NDArray[np.float64]:
        proba = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] != len(self.classes_):
            raise ValueError(
                "the estimator's predict_proba must return (n_samples, n_classes); "
                f"got shape {proba.shape}."
            )
        return proba

    def threshold(self, alpha: float | None = None) -> float:
        """Return the calibrated quantile of the non-conformity scores.

        Parameters
        ----------
        alpha : float or None, default=None
            The error rate; None takes the ``alpha`` parameter.

        Returns
        -------
        threshold : float
            The ``ceil((n + 1)(1 - alpha))``-th smallest calibration score, or
            infinity when ``n`` is too small for ``alpha`` (every set then
            holds every class).
        """
        check_is_fitted(self, "calibration_scores_")
        alpha = self.alpha if alpha is None else alpha
        open_fraction(alpha, "alpha")
        n = self.n_calibration_
        rank = math.ceil((n + 1) * (1 - alpha))
        if rank > n:
            warn_user(
                f"{n} calibration samples are too few for alpha={alpha:g}: at least "
                f"{math.ceil(1 / alpha) - 1} are needed, so every set holds every "
                "class. Calibrate on more samples or raise alpha."
            )
            return math.inf
        return float(self.calibration_scores_[rank - 1])

    def predict_set(self, X: Any, alpha: float | None = None) -> NDArray[np.bool_]:
        """Predict the set of each image, as a boolean mask of the classes.

        Parameters
        ----------
        X : array-like or list of paths
            Images, as the estimator takes them.
        alpha : float or None, default=None
            The error rate; None takes the ``alpha`` parameter.

        Returns
        -------
        sets : ndarray of shape (n_samples, n_classes), dtype bool
            ``sets[i, k]`` is True when class ``classes_[k]`` is in image
            ``i``'s set.
        """
        threshold = self.threshold(alpha)
        scores = _conformity_scores(self._proba(X), self.method)
        sets = scores <= threshold
        if self.method == "aps":  # the most probable class always belongs
            sets[np.arange(len(sets)), scores.argmin(axis=1)] = True
        return sets

    def predict(self, X: Any) -> NDArray[Any]:
        """Predict classes with the estimator.

        Parameters
        ----------
        X : array-like or list of paths
            Images.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict(X))

    def predict_proba(self, X: Any) -> NDArray[np.float64]:
        """Predict class probabilities with the estimator.

        Parameters
        ----------
        X : array-like or list of paths
            Images.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in ``classes_`` order.
        """
        check_is_fitted(self, "estimator_")
        return self._proba(X)
