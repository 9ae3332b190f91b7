"""Explanation quality as numbers: faithfulness, randomisation and localisation.

The public entry points, :func:`explanation_score` and
:func:`make_explanation_scorer`, are re-exported by :mod:`sk_medcnn.metrics`;
the scores themselves are computed in ``_perturbation`` (faithfulness),
``_randomisation`` and ``_localisation``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_random_state
from sklearn.utils.metadata_routing import MetadataRequest

from ..utils._runtime import draw_seeds
from ..utils._validation import (
    boolean,
    non_negative_float,
    one_of,
    optional,
    optional_dict,
    positive_int,
    random_state_like,
)
from ._base import DEFAULT_BATCH_SIZE, input_size, n_images, resolve_model
from ._grad_cam import grad_cam
from ._localisation import _check_masks, _localisation
from ._perturbation import _check_fractions, _faithfulness, _image_array
from ._randomisation import (
    _label_randomised_fit,
    _randomised_copy,
    _rank_correlations,
)
from ._saliency import saliency_map

__all__ = ["explanation_score", "make_explanation_scorer"]

#: The explanation methods, each as the map function and its fixed arguments.
_METHODS: dict[str, tuple[Callable[..., NDArray[np.float32]], dict[str, Any]]] = {
    "gradcam": (grad_cam, {"variant": "grad_cam"}),
    "hirescam": (grad_cam, {"variant": "hires_cam"}),
    "gradient": (saliency_map, {"method": "gradient"}),
    "smoothgrad": (saliency_map, {"method": "smoothgrad"}),
    "integrated_gradients": (saliency_map, {"method": "integrated_gradients"}),
}
_FAITHFULNESS = ("road", "deletion", "insertion")
_RANDOMISATION = ("randomisation", "data_randomisation")
_LOCALISATION = ("mass_in_mask", "pointing_game", "auprc")
_METRICS = _FAITHFULNESS + _RANDOMISATION + _LOCALISATION


# --- options --------------------------------------------------------------------
def _check_options(
    method: Any,
    metric: Any,
    *,
    average: Any,
    method_params: Any,
    fractions: Any,
    noise: Any,
    baseline: Any,
    max_epochs: Any,
    batch_size: Any,
    random_state: Any,
) -> None:
    """Check every option of :func:`explanation_score`; the messages name them."""
    if not callable(method):
        one_of(tuple(_METHODS))(method, "method")
    one_of(_METRICS)(metric, "metric")
    boolean(average, "average")
    optional_dict(method_params, "method_params")
    fixed = {"target", "random_state"}
    if not callable(method):
        fixed |= set(_METHODS[method][1])
    clash = sorted(fixed & set(method_params or {}))
    if clash:
        raise ValueError(
            f"method_params must not set {clash!r}: method={method!r} and the "
            "score choose them (target is y)."
        )
    _check_fractions(fractions, metric)
    non_negative_float(noise, "noise")
    one_of((None, "blur", "mean"))(baseline, "baseline")
    optional(positive_int)(max_epochs, "max_epochs")
    positive_int(batch_size, "batch_size")
    random_state_like(random_state, "random_state")


# --- maps ---------------------------------------------------------------------------
def _explain(
    estimator: Any,
    X: Any,
    target: Any,
    method: str | Callable[..., ArrayLike],
    method_params: dict[str, Any] | None,
    batch_size: int,
    seed: int,
) -> NDArray[np.float32]:
    """Return the maps of ``method`` for ``X`` (one per image, in [0, 1])."""
    shape = getattr(resolve_model(estimator).classifier, "image_shape_", ())
    if len(shape) == 4:
        raise ValueError(
            "explanation scores are defined for 2-D images (their perturbations "
            "and masks are 2-D); this model takes volumes of shape "
            f"{tuple(shape)} (depth, height, width, channels). Use grad_cam or "
            "saliency_map for its maps."
        )
    if callable(method):
        maps = np.asarray(method(estimator, X, target=target, **(method_params or {})))
        if maps.ndim != 3 or len(maps) != n_images(X) or maps.dtype.kind not in "biuf":
            raise ValueError(
                "method, when a callable, must return maps of shape (n_samples, "
                f"height, width) with one map per image of X; got {maps.dtype} of "
                f"shape {maps.shape}."
            )
        if not np.isfinite(maps).all() or (maps < 0).any():
            raise ValueError(
                "method, when a callable, must return finite, non-negative maps "
                "(high = relevant); take the absolute value or clip first."
            )
        return maps.astype(np.float32, copy=False)
    function, fixed = _METHODS[method]
    params = {**fixed, **(method_params or {}), "batch_size": batch_size}
    if function is saliency_map:
        params["random_state"] = seed
    return function(estimator, X, target=target, **params)


def _true_class_columns(estimator: Any, y: Any, X: Any) -> NDArray[np.intp]:
    """Return each image's column in ``predict_proba``: y's class, else predicted."""
    classes = resolve_model(estimator).classifier.classes_
    if y is None:
        return np.asarray(estimator.predict_proba(X).argmax(axis=1), dtype=np.intp)
    return np.searchsorted(classes, y).astype(np.intp)


def _check_targets(estimator: Any, y: Any, n_samples: int) -> Any:
    """Return ``y`` as a 1-D array of known classes (None stays None)."""
    if y is None:
        return None
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != n_samples:
        raise ValueError(
            f"y must hold one label per image ({n_samples}); got shape {labels.shape}."
        )
    classes = resolve_model(estimator).classifier.classes_
    unknown = sorted(set(labels.tolist()) - set(classes.tolist()))
    if unknown:
        raise ValueError(
            f"y holds {unknown[:5]!r}, not classes of the classifier; classes_ are "
            f"{classes.tolist()!r}."
        )
    return labels


def _check_labels(estimator: Any, y: Any, n_samples: int, metric: str) -> Any:
    """Return ``y`` checked (:func:`_check_targets`) and enough for ``metric``."""
    if n_samples == 0:
        raise ValueError("X holds no images; pass at least one.")
    labels = _check_targets(estimator, y, n_samples)
    if metric == "data_randomisation" and labels is None:
        raise ValueError(
            "metric='data_randomisation' trains a copy on permuted labels, so y "
            "must be given."
        )
    if metric == "data_randomisation" and len(np.unique(labels)) < 2:
        raise ValueError(
            "metric='data_randomisation' trains a copy on permuted labels, which "
            f"needs at least 2 classes in y; y holds only {labels[0]!r}."
        )
    return labels


def _randomisation(
    estimator: Any,
    X: Any,
    labels: Any,
    classes: NDArray[Any],
    maps: NDArray[np.float32],
    metric: str,
    method: str | Callable[..., ArrayLike],
    method_params: dict[str, Any] | None,
    max_epochs: int | None,
    batch_size: int,
    seeds: tuple[int, int],
) -> NDArray[np.float64]:
    """Return 1 - |Spearman| between ``maps`` and a randomised model's maps.

    ``classes`` are the classifier's; ``seeds`` are those of the maps and of
    the randomised model.
    """
    map_seed, model_seed = seeds
    if metric == "randomisation":
        other = _randomised_copy(estimator, model_seed)
    else:
        other = _label_randomised_fit(estimator, X, labels, max_epochs, model_seed)
    # the same target: the class the trained model is explained for
    target = labels
    if target is None:
        target = classes[_true_class_columns(estimator, None, X)]
    with warnings.catch_warnings():
        # blank CAMs are expected of a random network: no warning about them
        warnings.filterwarnings(
            "ignore", message=r".* maps are all zero", category=UserWarning
        )
        reference = _explain(
            other, X, target, method, method_params, batch_size, map_seed
        )
    return 1.0 - np.abs(_rank_correlations(maps, reference))


# --- the public functions ---------------------------------------------------------
def explanation_score(
    estimator: Any,
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    method: str | Callable[..., ArrayLike] = "hirescam",
    metric: str = "road",
    masks: ArrayLike | None = None,
    average: bool = True,
    method_params: dict[str, Any] | None = None,
    fractions: ArrayLike | None = None,
    noise: float = 0.01,
    baseline: str | None = None,
    max_epochs: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    random_state: int | np.random.RandomState | None = None,
) -> float | NDArray[np.float64]:
    """Score how good an explanation method's maps are for a fitted classifier.

    Every score is greater-is-better. The maps explain the class ``y`` of
    each image (the predicted class when ``y`` is None) and the faithfulness
    curves follow that class's probability.

    Parameters
    ----------
    estimator : MedicalCNNClassifier or Pipeline
        A fitted :class:`~sk_medcnn.MedicalCNNClassifier`, or a fitted
        Pipeline ending in one.
    X : array-like of shape (n_samples, height, width) or \
            (n_samples, height, width, channels)
        Images as given to the estimator's ``predict`` (the faithfulness
        metrics need image arrays; the others take anything ``predict``
        takes).
    y : array-like of shape (n_samples,), default=None
        The true labels: the class explained and scored for each image.
    method : {"gradcam", "hirescam", "gradient", "smoothgrad", \
            "integrated_gradients"} or callable, default="hirescam"
        The explanation: :func:`~sk_medcnn.inspection.grad_cam` (variants
        ``"grad_cam"`` and ``"hires_cam"``; HiResCAM is the default, as for
        ``grad_cam`` itself) or
        :func:`~sk_medcnn.inspection.saliency_map` with that method; or your
        own, ``method(estimator, X, target=y, **method_params)`` returning
        non-negative maps of shape (n_samples, height, width), high =
        relevant (e.g. Captum's, or a reference map to compare against).
    metric : {"road", "deletion", "insertion", "randomisation", \
            "data_randomisation", "mass_in_mask", "pointing_game", "auprc"}, \
            default="road"
        ``"road"``: mean gap between the class probability when the least
        and when the most relevant pixels are removed, at each of
        ``fractions``, removed pixels being filled by noisy linear imputation
        (Rong et al. [1]_); in [-1, 1]. ``"deletion"``: 1 - the area under the
        class probability as the most relevant pixels are replaced by the
        baseline; ``"insertion"``: the area as they are put back into the
        baseline, most relevant first (Petsiuk et al. [2]_); both in [0, 1].
        ``"randomisation"``: 1 - the absolute Spearman correlation between
        the maps of the model and of a copy with every layer re-initialised;
        ``"data_randomisation"``: the same against a clone trained on ``X``
        with permuted ``y`` (Adebayo et al. [3]_); in [0, 1]. With ``masks``:
        ``"mass_in_mask"``, the share of map mass inside the mask;
        ``"pointing_game"``, 1 if the map's maximum is inside the mask;
        ``"auprc"``, the average precision of the map as a detector of the
        mask's pixels; images with an empty mask get NaN and are left out of
        the mean.
    masks : array-like of shape (n_samples, height, width), default=None
        Boolean masks of what should be found, aligned with ``X`` (the size of
        the images as given); needed by the localisation metrics only.
    average : bool, default=True
        Return the mean score (NaN left out) instead of one per image.
    method_params : dict, default=None
        More arguments of the map function (``layer``, ``n_samples``,
        ``noise``, ``n_steps``); ``target`` is ``y``.
    fractions : array-like of float, default=None
        Increasing fractions of pixels perturbed: by default 0.1, 0.2, ...,
        0.9 for ROAD and 0, 0.1, ..., 1 for deletion and insertion.
    noise : float, default=0.01
        ROAD's imputation noise, as a fraction of X's intensity range.
    baseline : {"blur", "mean"}, default=None
        What deletion and insertion replace pixels with: the image blurred
        (Gaussian, sigma a tenth of the image size) or its mean intensity.
        None: ``"mean"`` for deletion, ``"blur"`` for insertion.
    max_epochs : int, default=None
        For ``"data_randomisation"``: epochs of the clone trained on permuted
        labels (None: the estimator's own).
    batch_size : int, default=32
        Images explained and perturbed at once.
    random_state : int, RandomState instance or None, default=None
        Seeds the imputation noise, SmoothGrad's noise, the re-initialised
        weights, the permuted labels and the order of tied pixels; an int
        gives the same score every call.

    Returns
    -------
    score : float or ndarray of shape (n_samples,)
        The mean score, or one per image when ``average=False``.

    Raises
    ------
    ValueError
        If ``method``, ``metric`` or another option is not accepted (the
        message names it), ``masks`` do not match ``X``, or ``y`` holds an
        unknown class.
    TypeError
        If ``estimator`` is not a MedicalCNNClassifier or a Pipeline ending in
        one.

    See Also
    --------
    make_explanation_scorer : The same scores as scikit-learn scorers.
    sk_medcnn.inspection.grad_cam, sk_medcnn.inspection.saliency_map : The maps.

    Notes
    -----
    What each score rewards, and its biases, is discussed in the user guide
    (:doc:`/explanation_quality`). ROAD favours smooth maps, deletion is
    confounded by the out-of-distribution images it creates, the
    randomisation scores measure sensitivity to the model, not correctness,
    and localisation rewards maps that match the annotation, whatever the
    model uses. ``"data_randomisation"`` trains a network: it costs a fit.
    The perturbed copies of the faithfulness scores are unusual images by
    design, so the classifier's out-of-distribution warning is silenced for
    them (the model's own score flags many deleted copies).

    References
    ----------
    .. [1] Y. Rong, T. Leemann, V. Borisov, G. Kasneci and E. Kasneci, "A
       Consistent and Efficient Evaluation Strategy for Attribution Methods",
       ICML 2022.
    .. [2] V. Petsiuk, A. Das and K. Saenko, "RISE: Randomized Input Sampling
       for Explanation of Black-box Models", BMVC 2018.
    .. [3] J. Adebayo, J. Gilmer, M. Muelly, I. Goodfellow, M. Hardt and B.
       Kim, "Sanity Checks for Saliency Maps", NeurIPS 2018.

    Examples
    --------
    >>> from sk_medcnn import MedicalCNNClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.metrics import explanation_score
    >>> X, y, masks = make_lesion_phantoms(32, image_size=16, return_masks=True,
    ...                                    random_state=0)
    >>> clf = MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> score = explanation_score(clf, X[:8], y[:8], metric="road", random_state=0)
    >>> bool(-1 <= score <= 1)
    True
    >>> hits = explanation_score(clf, X, y, method="hirescam",
    ...                          metric="pointing_game", masks=masks, average=False)
    >>> hits.shape
    (32,)
    """
    _check_options(
        method,
        metric,
        average=average,
        method_params=method_params,
        fractions=fractions,
        noise=noise,
        baseline=baseline,
        max_epochs=max_epochs,
        batch_size=batch_size,
        random_state=random_state,
    )
    model = resolve_model(estimator)
    n_samples = n_images(X)
    labels = _check_labels(estimator, y, n_samples, metric)
    map_seed, perturb_seed, model_seed = draw_seeds(random_state, 3)
    if metric in _LOCALISATION:
        size = input_size(model, X)
        if size is not None:  # check before the maps are computed
            _check_masks(masks, (n_samples, *size))
    image_array = _image_array(X, metric) if metric in _FAITHFULNESS else None

    maps = _explain(estimator, X, labels, method, method_params, batch_size, map_seed)
    if metric in _FAITHFULNESS:
        assert image_array is not None
        scores = _faithfulness(
            estimator,
            image_array,
            maps,
            _true_class_columns(estimator, labels, X),
            metric,
            _check_fractions(fractions, metric),
            noise,
            baseline,
            batch_size,
            check_random_state(perturb_seed),
        )
    elif metric in _RANDOMISATION:
        scores = _randomisation(
            estimator,
            X,
            labels,
            model.classifier.classes_,
            maps,
            metric,
            method,
            method_params,
            max_epochs,
            batch_size,
            (map_seed, model_seed),
        )
    else:
        scores = _localisation(maps, _check_masks(masks, maps.shape), metric)
    if not average:
        return scores
    if np.isnan(scores).all():
        raise ValueError(
            f"metric={metric!r}: no image of X has a non-empty mask, so there is "
            "nothing to localise."
        )
    return float(np.nanmean(scores))


class ExplanationScorer:
    """A scikit-learn scorer of explanation quality (see make_explanation_scorer).

    ``scorer(estimator, X, y, masks=None)`` returns
    :func:`explanation_score` with the options given to the factory. For
    localisation metrics without fixed masks it requests ``masks`` from
    scikit-learn's metadata routing, so that ``cross_validate`` and
    ``GridSearchCV`` give it each test fold's masks.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options

    def __call__(
        self, estimator: Any, X: Any, y: Any = None, masks: Any = None
    ) -> float:
        """Return the mean explanation score of ``estimator`` on ``X``."""
        options = dict(self._options)
        if masks is not None:
            options["masks"] = masks
        return float(explanation_score(estimator, X, y, **options))

    def __repr__(self) -> str:
        shown = [f"{self._options['method']!r}", f"{self._options['metric']!r}"]
        for name, value in self._options.items():
            if name in ("method", "metric") or value is _DEFAULTS.get(name):
                continue
            shown.append(f"{name}=..." if name == "masks" else f"{name}={value!r}")
        return f"make_explanation_scorer({', '.join(shown)})"

    def get_metadata_routing(self) -> MetadataRequest:
        """Return the metadata this scorer asks for: ``masks`` when it needs them.

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRequest
        """
        request = MetadataRequest(owner=type(self).__name__)
        if self._options["metric"] in _LOCALISATION and self._options["masks"] is None:
            request.score.add_request(param="masks", alias=True)
        return request


_SIGNATURE = inspect.signature(explanation_score)
_DEFAULTS = {
    name: parameter.default
    for name, parameter in _SIGNATURE.parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
}


def make_explanation_scorer(
    method: str | Callable[..., ArrayLike] = "hirescam",
    metric: str = "road",
    **kwargs: Any,
) -> ExplanationScorer:
    """Build a scikit-learn scorer of explanation quality.

    The scorer, ``scorer(estimator, X, y)``, returns the mean
    :func:`explanation_score` of ``method``'s maps under ``metric`` for the
    true classes ``y``; greater is better, so it works as ``scoring=`` in
    ``cross_validate``, ``cross_val_score`` and ``GridSearchCV``, alone or in
    a dict of scorers.

    Parameters
    ----------
    method : {"gradcam", "hirescam", "gradient", "smoothgrad", \
            "integrated_gradients"} or callable, default="hirescam"
        The explanation method; see :func:`explanation_score`.
    metric : {"road", "deletion", "insertion", "randomisation", \
            "data_randomisation", "mass_in_mask", "pointing_game", "auprc"}, \
            default="road"
        The score; see :func:`explanation_score`.
    **kwargs
        The keyword options of :func:`explanation_score` (``masks``,
        ``method_params``, ``fractions``, ``noise``, ``baseline``,
        ``max_epochs``, ``batch_size``, ``random_state``), checked here.

    Returns
    -------
    scorer : ExplanationScorer
        A callable ``scorer(estimator, X, y, masks=None)`` returning a float.

    Raises
    ------
    ValueError
        If ``method``, ``metric`` or an option is not accepted.
    TypeError
        If an option is unknown (``average`` too: a scorer gives the mean).

    See Also
    --------
    explanation_score : The scores as a function, also per image.

    Notes
    -----
    Localisation metrics need masks aligned with the images the scorer
    receives. Inside cross-validation the scorer receives a fold of ``X``,
    so masks fixed here would not line up: leave ``masks`` out and let
    scikit-learn's metadata routing split them with ``X``. The scorer asks
    for them::

        sklearn.set_config(enable_metadata_routing=True)
        cross_validate(clf, X, y, scoring=scorer, params={"masks": masks})

    (``GridSearchCV(...).fit(X, y, masks=masks)`` likewise). Masks given
    here suit a scorer called on one fixed set of images,
    ``scorer(model, X_test, y_test)``. Each call of a scorer computes maps
    for all its images and, for the faithfulness metrics, predicts
    ``len(fractions)`` (ROAD: twice that) perturbed copies of each: score a
    subset of a large validation set. ``"data_randomisation"`` fits a clone
    of the estimator on the scored fold with permuted labels at each call.

    Examples
    --------
    >>> from sklearn.model_selection import cross_validate
    >>> from sk_medcnn import MedicalCNNClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.metrics import make_explanation_scorer
    >>> X, y = make_lesion_phantoms(24, image_size=16, random_state=0)
    >>> scoring = {"accuracy": "accuracy",
    ...            "road": make_explanation_scorer("hirescam", "road",
    ...                                            random_state=0)}
    >>> result = cross_validate(MedicalCNNClassifier(max_epochs=1, random_state=0),
    ...                         X, y, cv=2, scoring=scoring)
    >>> result["test_road"].shape
    (2,)
    """
    unknown = sorted(set(kwargs) - set(_DEFAULTS) | ({"average"} & set(kwargs)))
    if unknown:
        allowed = sorted(set(_DEFAULTS) - {"average"})
        raise TypeError(
            f"make_explanation_scorer got unexpected option(s) {unknown!r}; the "
            f"options are {allowed!r}."
        )
    options = {**_DEFAULTS, **kwargs, "method": method, "metric": metric}
    _check_options(
        method,
        metric,
        **{
            name: options[name]
            for name in (
                "average",
                "method_params",
                "fractions",
                "noise",
                "baseline",
                "max_epochs",
                "batch_size",
                "random_state",
            )
        },
    )
    if options["masks"] is not None and metric not in _LOCALISATION:
        raise ValueError(
            f"masks are used by the localisation metrics {list(_LOCALISATION)!r} "
            f"only; metric={metric!r} does not take them."
        )
    return ExplanationScorer(options)
