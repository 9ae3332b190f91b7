"""Ready-made training recipes chosen on held-out data, from sk_medcnn's parts.

A recipe is a plain scikit-learn estimator: a soft-voting ensemble over seeds
(in ``"general"`` also over two kinds of network;
:class:`sklearn.ensemble.VotingClassifier`) of
:class:`~sk_medcnn.MedicalCNNClassifier` members, each trained with
augmentation of every batch and calibrated by a temperature. ``"pneumonia"``
sets its decision threshold on held-out training data
(:class:`sklearn.model_selection.TunedThresholdClassifierCV`); ``"general"``
predicts the most probable class. ``threshold="auto"`` gives either recipe
an :class:`AutoThresholdClassifier`, which tunes the threshold only when
there are two classes.
``"pneumonia"`` was chosen by cross-validation on PneumoniaMNIST (user guide,
"Defaults and a recipe", from ``benchmarks/eval_defaults.py``); ``"general"``
was scored under acquisition shifts on the three MedMNIST data sets of the
benchmarks (user guide,
"Defaults under acquisition shifts", from
``benchmarks/eval_generalisation.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.ensemble import VotingClassifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    FixedThresholdClassifier,
    TunedThresholdClassifierCV,
    check_cv,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils import Tags, get_tags
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .augmentation import RandomAffine, RandomIntensity
from .estimators import MedicalCNNClassifier
from .utils._runtime import draw_seeds

__all__ = ["AutoThresholdClassifier", "list_recipes", "make_recipe"]

#: Share of the training data ``threshold="tuned"`` or ``"auto"`` holds out to
#: set the threshold.
THRESHOLD_HOLDOUT = 0.2
_THRESHOLDS = ("auto", "tuned", "argmax")


def _radiograph_augmentation() -> Pipeline:
    """Small rotations, shifts and zooms on half the images, then intensity jitter.

    Half the images keep their pixels: every resampling blurs a little, and
    networks trained on resampled images only learnt to read the sharper
    unresampled images as normal (specificity 0.98, sensitivity 0.94 at the
    0.5 threshold in cross-validation, against 0.96 and 0.98 with ``p=0.5``).
    """
    return make_pipeline(
        RandomAffine(translate=(0.05, 0.05), degrees=10.0, scale=(0.95, 1.05), p=0.5),
        RandomIntensity(brightness=0.1, contrast=0.2, gamma=0.2),
    )


# name -> description, number of members, the MedicalCNNClassifier
# parameters of one member ("augmentation" holds a factory, so that every
# member owns its augmenter objects) and optionally the recipe's own
# "threshold" and "variants" (settings laid over "member", cycled over the
# members).
_RECIPES: dict[str, dict[str, Any]] = {
    "pneumonia": {
        "description": (
            "grayscale chest radiographs at MedMNIST size (28 px): 5 augmented "
            "simple_cnn members, one-cycle schedule over 30 epochs, temperature, "
            "test-time shifts, threshold tuned for balanced accuracy"
        ),
        "n_members": 5,
        "member": {
            "architecture": "simple_cnn",
            "optimizer": "adam",
            "lr": 3e-3,
            "lr_schedule": "onecycle",
            "max_epochs": 30,
            "batch_size": 32,
            "early_stopping": False,
            "validation_fraction": 0.2,
            "class_weight": None,
            "augmentation": _radiograph_augmentation,
            "calibration": "temperature",
            "tta": "shifts",
        },
    },
    "general": {
        "description": (
            "any data set, images or volumes, two classes or more: 5 simple_cnn "
            "members with MedicalCNNClassifier's defaults (augmentation, class "
            "weights, schedule and test-time augmentation 'auto', temperature), "
            "the fifth with batch normalisation; the most probable class (no "
            "tuned threshold)"
        ),
        "n_members": 5,
        "threshold": "argmax",
        "member": {"architecture": "simple_cnn"},
        # the fifth member of every five normalises its batches: two kinds of
        # network disagree more than two seeds of one (Notes)
        "variants": ({},) * 4 + ({"architecture_params": {"batch_norm": True}},),
    },
}


def _variants(recipe: dict[str, Any], overrides: dict[str, Any]) -> tuple[Any, ...]:
    """Return the recipe's per-member settings, cycled over the members.

    One empty setting (every member alike) when ``member_params`` choose
    another network or pretrained weights: the variants are settings of the
    recipe's own network.
    """
    own = recipe["member"].get("architecture")
    other = overrides.get("architecture", own) != own
    if other or overrides.get("pretrained") is not None:
        return ({},)
    return tuple(recipe.get("variants", ({},)))


def list_recipes() -> dict[str, str]:
    """Name and describe the available recipes.

    Returns
    -------
    recipes : dict of str to str
        Each recipe's name and description, sorted by name.

    See Also
    --------
    make_recipe : Build the estimator of a recipe.

    Examples
    --------
    >>> from sk_medcnn.recipes import list_recipes
    >>> list(list_recipes())
    ['general', 'pneumonia']
    """
    return {name: _RECIPES[name]["description"] for name in sorted(_RECIPES)}


def _check_arguments(
    name: Any, n_members: Any, threshold: Any, member_params: Any
) -> None:
    if not isinstance(name, str) or name not in _RECIPES:
        raise ValueError(
            f"name must be one of {', '.join(map(repr, sorted(_RECIPES)))} (see "
            f"list_recipes()); got {name!r}."
        )
    if n_members is not None:
        if not isinstance(n_members, Integral) or isinstance(n_members, bool):
            raise TypeError(
                f"n_members must be an int or None; got {type(n_members).__name__}."
            )
        if n_members < 1:
            raise ValueError(f"n_members must be >= 1; got {n_members}.")
    if threshold is None:
        pass
    elif isinstance(threshold, str):
        if threshold not in _THRESHOLDS:
            raise ValueError(
                f"threshold must be one of {', '.join(map(repr, _THRESHOLDS))} or a "
                f"probability in (0, 1); got {threshold!r}."
            )
    elif isinstance(threshold, Real) and not isinstance(threshold, bool):
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(
                f"threshold must be a probability in (0, 1); got {threshold!r}."
            )
    else:
        raise TypeError(
            "threshold must be 'auto', 'tuned', 'argmax', a float or None; got "
            f"{type(threshold).__name__}."
        )
    if member_params is not None:
        if not isinstance(member_params, dict):
            raise TypeError(
                "member_params must be a dict or None; got "
                f"{type(member_params).__name__}."
            )
        unknown = sorted(set(member_params) - set(MedicalCNNClassifier().get_params()))
        if unknown:
            raise ValueError(
                f"member_params holds {', '.join(map(repr, unknown))}, which "
                "MedicalCNNClassifier does not take (see its get_params())."
            )
        if "random_state" in member_params:
            raise ValueError(
                "member_params must not hold random_state: every member's seed is "
                "drawn from make_recipe's random_state."
            )


def _member(
    settings: dict[str, Any], overrides: dict[str, Any], seed: int | None
) -> MedicalCNNClassifier:
    params: dict[str, Any] = {}
    for key, value in settings.items():
        factory: Callable[[], Any] | None = value if key == "augmentation" else None
        params[key] = factory() if factory is not None else copy.deepcopy(value)
    params.update(copy.deepcopy(overrides))
    return MedicalCNNClassifier(**params, random_state=seed)


def make_recipe(
    name: str = "pneumonia",
    *,
    n_members: int | None = None,
    threshold: str | float | None = None,
    member_params: dict[str, Any] | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> BaseEstimator:
    """Build the unfitted estimator of a named, cross-validated training recipe.

    The result is a plain scikit-learn classifier (``fit``, ``predict``,
    ``predict_proba``, ``score``, ``clone``, ``get_params``, pickling): a
    soft-voting :class:`~sklearn.ensemble.VotingClassifier` of ``n_members``
    :class:`~sk_medcnn.MedicalCNNClassifier` members that differ in their seed
    (and in ``"general"``, every fifth member in its network), inside a
    threshold wrapper where ``threshold`` asks for one. The ensemble
    averages the members' probabilities. Each member augments every training
    batch and fits a temperature on held-out training data (``"pneumonia"``:
    20%, with test-time shifts; ``"general"``: the classifier's defaults, 10%
    and ``tta="auto"``). Under a threshold wrapper ``fit`` takes sample
    weights only through metadata routing (as ``TunedThresholdClassifierCV``);
    without one (``"argmax"``) ``fit(X, y, sample_weight=w)`` passes them to
    every member (a single member takes them itself; with metadata routing
    enabled, request them with ``set_fit_request`` as for any scikit-learn
    ensemble). ``class_weight`` in ``member_params`` weighs the classes.

    Parameters
    ----------
    name : str, default="pneumonia"
        A recipe from :func:`list_recipes`.

        - ``"pneumonia"``: grayscale chest radiographs at 28 px
          (PneumoniaMNIST), five ``simple_cnn`` members trained for 30 epochs
          (one-cycle schedule to a learning rate of 3e-3) with small affine
          maps and intensity jitter, temperature scaling, test-time shifts;
          the threshold tuned.
        - ``"general"``: any data set (images or volumes, two classes or
          more): five members with :class:`~sk_medcnn.MedicalCNNClassifier`'s
          defaults, which adapt to the data (augmentation for images or
          volumes, test-time augmentation kept only where held-out data show
          it helps, class weights with a warm-up for two classes with a rare
          one), the fifth (and every fifth of more) with batch normalisation
          after each convolution (``architecture_params={"batch_norm":
          True}``): a second kind of network disagrees with the others more
          than another seed would (Notes); the most probable class
          (``"argmax"``): on PneumoniaMNIST's
          small subsets a tuned threshold gave a lower balanced accuracy and
          accuracy than that, and it trains the ensemble twice on two
          classes (Notes).
    n_members : int, default=None
        Members of the ensemble; the recipe's own number when None. With 1, the
        member is used without the ensemble. ``"general"`` with fewer than five
        has no batch-normalised member.
    threshold : {"auto", "tuned", "argmax"}, float or None, default=None
        How two-class predictions are made from the probabilities; None takes
        the recipe's own (``"tuned"`` for ``"pneumonia"``, ``"argmax"`` for
        ``"general"``).

        - ``"auto"``: ``"tuned"`` when ``fit`` sees two classes, ``"argmax"``
          otherwise (:class:`AutoThresholdClassifier`).

        - ``"tuned"``: a copy of the ensemble is trained on a stratified 80%
          of the training data, the threshold on the positive class's
          probability that maximises the balanced accuracy on the other 20%
          is kept, and the ensemble is trained again on all the data
          (``TunedThresholdClassifierCV(scoring="balanced_accuracy", cv=0.2,
          refit=True)``: two fits, and scikit-learn's ``refit=False`` would
          also fit twice). The balanced accuracy does not depend on the
          prevalence, so neither does the threshold; the held-out images are
          never augmented. ``predict_proba`` is the ensemble's.
        - ``"argmax"``: no wrapper; the most probable class.
        - a float in (0, 1): this threshold
          (:class:`~sklearn.model_selection.FixedThresholdClassifier`).
    member_params : dict, default=None
        :class:`~sk_medcnn.MedicalCNNClassifier` parameters overriding the
        recipe's in every member, e.g. ``{"max_epochs": 5, "device": "cpu"}``.
        Another ``architecture`` or ``pretrained`` weights make every member
        the same network (the general recipe's batch-normalised member is a
        variant of its own ``simple_cnn``), and so does
        ``architecture_params``, which replaces the variant's too
        (``{"architecture_params": None}``: five plain members).
    random_state : int, RandomState instance or None, default=None
        Seeds the members (each gets its own seed drawn from it) and the
        threshold's held-out split. None gives a different model at each fit.

    Returns
    -------
    estimator : sklearn classifier
        Unfitted. Persist a fitted one with :mod:`joblib` or :mod:`pickle`
        (trusted files only): :func:`sk_medcnn.save_model` stores a single
        estimator or a Pipeline, so its safe format takes each fitted member
        on its own, not the ensemble: ``estimators_[i]`` with ``"argmax"``,
        ``estimator_.estimators_[i]`` under a tuned threshold,
        ``estimator_.estimator_.estimators_[i]`` under ``"auto"`` with two
        classes.

    Raises
    ------
    ValueError
        If ``name``, ``n_members`` or ``threshold`` is out of range, or
        ``member_params`` holds ``random_state``.
    TypeError
        If an argument has the wrong type.

    See Also
    --------
    list_recipes : The available recipes.
    sk_medcnn.MedicalCNNClassifier : The members.

    Notes
    -----
    ``"pneumonia"`` was chosen by 5-fold cross-validation on the
    PneumoniaMNIST train split [1]_, over 3 seeds, among candidates screened
    on single folds. ``"general"`` was scored by its validation AUC, as it
    is and under ten acquisition shifts, on PneumoniaMNIST and RetinaMNIST
    and on small subsets of their training splits, and on VesselMNIST3D at
    300 volumes. With five default networks (members that differ only in
    their seed, the recipe until 2026-12-07) its validation AUC was above
    the mean of theirs in every cell, by 0.006 to 0.008 on RetinaMNIST,
    0.001 on PneumoniaMNIST, whose networks are near 0.99, and 0.025 on
    VesselMNIST3D at 300 volumes (in distribution; a little more under the
    shifts). A batch-normalised fifth member, a network that scores higher
    than the default one on some of these cells and lower on others, adds
    to that, paired by seed against the recipe of five default networks: 0.011 ±
    0.003 AUC at 300 RetinaMNIST images (10 seeds), 0.002 ± 0.002 on the
    whole split (10), 0.008 ± 0.002 at 300 VesselMNIST3D volumes (3), 0.002 and
    0.003 on PneumoniaMNIST's 10% and 300 images (3), and -0.002 ± 0.003 at
    10% of RetinaMNIST (10): level there. Against one separately seeded
    default network the gain is within the spread over seeds on
    RetinaMNIST and VesselMNIST3D. On VesselMNIST3D it also lowers the
    balanced accuracy of the arg-max (0.773 against 0.790; accuracy 0.913
    against 0.897): the batch-normalised network predicts fewer of the rare
    aneurysms.
    Until 2026-12-07 it tuned a threshold for balanced accuracy on 20% of
    the training data (``threshold="auto"``): on PneumoniaMNIST's subsets
    that gave a lower balanced accuracy and accuracy than the same
    ensemble's arg-max, on VesselMNIST3D at 300 volumes the same balanced
    accuracy and a far lower accuracy, and it fits the ensemble twice.
    Figures, the time of a fit and the commands that reproduce them are in
    the user guide.
    Averaging networks that differ only in their seed mostly removes the
    seed-to-seed variation of one network and can add a little AUC [2]_; the
    temperature follows Guo et al. [3]_.

    References
    ----------
    .. [1] J. Yang et al., "MedMNIST v2 - A large-scale lightweight benchmark
       for 2D and 3D biomedical image classification", Scientific Data 10:41,
       2023.
    .. [2] B. Lakshminarayanan, A. Pritzel and C. Blundell, "Simple and
       scalable predictive uncertainty estimation using deep ensembles",
       NeurIPS 2017.
    .. [3] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of
       modern neural networks", ICML 2017.

    Examples
    --------
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.recipes import make_recipe
    >>> X, y = make_lesion_phantoms(60, image_size=12, lesion_radius=2,
    ...                             random_state=0)
    >>> model = make_recipe(n_members=2, random_state=0,
    ...                     member_params={"max_epochs": 1, "device": "cpu"})
    >>> model = model.fit(X, y)
    >>> model.predict_proba(X[:3]).shape
    (3, 2)
    >>> bool(0.0 <= model.best_threshold_ <= 1.0)
    True
    """
    _check_arguments(name, n_members, threshold, member_params)
    recipe = _RECIPES[name]
    if threshold is None:
        threshold = recipe.get("threshold", "tuned")
    count = int(recipe["n_members"] if n_members is None else n_members)
    seeds: list[int | None] = (
        [None] * (count + 1)
        if random_state is None
        else list(draw_seeds(random_state, count + 1))
    )
    overrides = dict(member_params or {})
    variants = _variants(recipe, overrides)
    members = [
        _member(recipe["member"] | variants[i % len(variants)], overrides, seeds[i])
        for i in range(count)
    ]
    model: BaseEstimator = (
        members[0]
        if count == 1
        else VotingClassifier(
            [(f"member{i}", member) for i, member in enumerate(members)],
            voting="soft",
        )
    )
    if threshold == "auto":
        return AutoThresholdClassifier(
            model, cv=THRESHOLD_HOLDOUT, random_state=seeds[-1]
        )
    if threshold == "tuned":
        return TunedThresholdClassifierCV(
            model,
            scoring="balanced_accuracy",
            response_method="predict_proba",
            cv=THRESHOLD_HOLDOUT,
            refit=True,
            random_state=seeds[-1],
        )
    if threshold == "argmax":
        return model
    return FixedThresholdClassifier(
        model, threshold=float(threshold), response_method="predict_proba"
    )


class AutoThresholdClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Tune a two-class classifier's decision threshold; leave others at arg-max.

    A data-set-agnostic decision rule: ``fit`` looks at the classes of ``y``.
    With two, it fits a
    :class:`~sklearn.model_selection.TunedThresholdClassifierCV` that sets the
    threshold on the positive class's probability for the best ``scoring`` on
    held-out training data, then refits on all of it; with more, a clone of
    ``estimator`` fitted on all the data predicts the most probable class
    (scikit-learn's threshold tuning is for two classes only). Sample weights
    and other fit parameters reach the estimator, the scorer and the splitter
    through scikit-learn's metadata routing, as in
    ``TunedThresholdClassifierCV``: enable it with
    ``sklearn.set_config(enable_metadata_routing=True)`` and request them,
    e.g. ``estimator.set_fit_request(sample_weight=True)``.

    Parameters
    ----------
    estimator : classifier
        Unfitted, with ``predict_proba``; cloned by ``fit``.
    scoring : str or callable, default="balanced_accuracy"
        What the threshold maximises: a scikit-learn scorer name or a scorer
        (``make_scorer``; one that requests ``sample_weight`` with
        ``set_score_request`` weighs the threshold's choice too). The
        balanced accuracy does not depend on the prevalence of the classes.
    cv : float, int or cross-validation generator, default=0.2
        Held-out data for the threshold: a float is the share of one
        stratified split (as in ``TunedThresholdClassifierCV``).
    random_state : int, RandomState instance or None, default=None
        Seeds the held-out split of a float ``cv``.

    Attributes
    ----------
    estimator_ : classifier
        The fitted ``TunedThresholdClassifierCV`` (two classes) or the fitted
        clone of ``estimator`` (more).
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    best_threshold_ : float or None
        The tuned threshold on the probability of ``classes_[1]``; None with
        more than two classes.
    n_features_in_ : int
        Features seen by ``fit``, when the fitted estimator records them.

    See Also
    --------
    make_recipe : Its ``threshold="auto"`` builds this.
    sklearn.model_selection.TunedThresholdClassifierCV : The two-class case.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sk_medcnn.recipes import AutoThresholdClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(90, 3))
    >>> binary = AutoThresholdClassifier(LogisticRegression(), random_state=0)
    >>> binary.fit(X, (X[:, 0] > 0.5).astype(int)).best_threshold_ is not None
    True
    >>> three = AutoThresholdClassifier(LogisticRegression()).fit(X, np.arange(90) % 3)
    >>> three.best_threshold_ is None, three.classes_.tolist()
    (True, [0, 1, 2])
    """

    def __init__(
        self,
        estimator: Any,
        *,
        scoring: str | Callable[..., float] = "balanced_accuracy",
        cv: Any = THRESHOLD_HOLDOUT,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.estimator = estimator
        self.scoring = scoring
        self.cv = cv
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike, **params: Any) -> AutoThresholdClassifier:
        """Fit the estimator, with a tuned threshold when ``y`` has two classes.

        Parameters
        ----------
        X : array-like
            Training inputs, as ``estimator`` takes them.
        y : array-like of shape (n_samples,)
            Class labels, two or more.
        **params : dict
            Metadata such as ``sample_weight``, routed to the estimator's
            ``fit``, the scorer and the splitter as they request it; only with
            metadata routing enabled.

        Returns
        -------
        self : AutoThresholdClassifier
            Fitted.

        Raises
        ------
        TypeError
            If ``estimator`` has no ``predict_proba``.
        ValueError
            If ``y`` holds one class only, ``scoring`` is not a scorer, or
            ``params`` are given while metadata routing is disabled.
        """
        if params and not get_config()["enable_metadata_routing"]:
            raise ValueError(
                f"AutoThresholdClassifier.fit got {', '.join(sorted(params))}, which "
                "it passes on only through metadata routing: call "
                "sklearn.set_config(enable_metadata_routing=True) and request "
                "them, e.g. estimator.set_fit_request(sample_weight=True)."
            )
        if not hasattr(self.estimator, "predict_proba"):
            raise TypeError(
                "estimator must be a classifier with predict_proba; got "
                f"{type(self.estimator).__name__}."
            )
        try:
            get_scorer(self.scoring)  # named at once, also when no threshold is tuned
        except (ValueError, TypeError) as error:
            raise ValueError(
                "scoring must be a scikit-learn scorer name or a scorer; got "
                f"{self.scoring!r}."
            ) from error
        if y is None:
            raise ValueError(
                "AutoThresholdClassifier requires y to be passed, but the target y "
                "is None."
            )
        check_classification_targets(y)
        classes = np.unique(np.asarray(y))
        if len(classes) < 2:
            found = ", ".join(map(repr, classes.tolist())) or "no samples"
            noun = "class" if len(classes) == 1 else "classes"
            raise ValueError(
                f"y must hold at least two classes; got {len(classes)} {noun} "
                f"({found})."
            )
        # checked here, so an unknown name is this estimator's error at any class count
        fit_params = (
            process_routing(self, "fit", **params).estimator.fit if params else {}
        )
        if len(classes) == 2:
            self.estimator_ = TunedThresholdClassifierCV(
                clone(self.estimator),
                scoring=self.scoring,
                response_method="predict_proba",
                cv=self.cv,
                refit=True,
                random_state=self.random_state,
            ).fit(X, y, **params)
            self.best_threshold_: float | None = float(self.estimator_.best_threshold_)
        else:
            self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
            self.best_threshold_ = None
        self.classes_ = self.estimator_.classes_
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def get_metadata_routing(self) -> MetadataRouter:
        """Return where ``fit`` sends metadata: the estimator, scorer and splitter.

        Returns
        -------
        routing : sklearn.utils.metadata_routing.MetadataRouter
            The estimator's ``fit``, the scorer's ``score`` (used to tune a
            two-class threshold) and, for a splitter given as ``cv``, its
            ``split``.
        """
        router = MetadataRouter(owner=self).add(
            estimator=self.estimator,
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )
        router.add(
            scorer=get_scorer(self.scoring),
            method_mapping=MethodMapping().add(caller="fit", callee="score"),
        )
        if not isinstance(self.cv, Real):
            router.add(
                splitter=check_cv(self.cv, classifier=True),
                method_mapping=MethodMapping().add(caller="fit", callee="split"),
            )
        return router

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = get_tags(self.estimator).input_tags.sparse
        return tags

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predict classes: by the tuned threshold (two classes) or arg-max.

        Parameters
        ----------
        X : array-like
            Inputs, as ``estimator`` takes them.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict(X))

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the estimator's class probabilities (no threshold changes them).

        Parameters
        ----------
        X : array-like
            Inputs, as ``estimator`` takes them.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict_proba(X))

    @available_if(lambda self: hasattr(self.estimator, "predict_log_proba"))
    def predict_log_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the logarithms of the estimator's class probabilities.

        Parameters
        ----------
        X : array-like
            Inputs, as ``estimator`` takes them.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict_log_proba(X))

    @available_if(lambda self: hasattr(self.estimator, "decision_function"))
    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """Return the estimator's decision function (no threshold changes it).

        Parameters
        ----------
        X : array-like
            Inputs, as ``estimator`` takes them.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            As the estimator returns them.
        """
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.decision_function(X))
