"""Recipes, and scikit-learn compositions of MedicalCNNClassifier they rely on."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.ensemble import BaggingClassifier, VotingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import balanced_accuracy_score, make_scorer
from sklearn.model_selection import (
    FixedThresholdClassifier,
    GridSearchCV,
    TunedThresholdClassifierCV,
)

from sk_medcnn import MedicalCNNClassifier, load_model, save_model
from sk_medcnn.datasets import make_lesion_phantoms
from sk_medcnn.recipes import AutoThresholdClassifier, list_recipes, make_recipe

FAST = {"max_epochs": 1, "batch_size": 16, "device": "cpu"}


class _NoLogProba(LogisticRegression):
    """A classifier without predict_log_proba."""

    @property
    def predict_log_proba(self):  # type: ignore[override]
        raise AttributeError("predict_log_proba")


def _member(seed, **params):
    return MedicalCNNClassifier(**{**FAST, **params}, random_state=seed)


# --- make_recipe ----------------------------------------------------------------


def test_list_recipes_names_and_describes_them():
    recipes = list_recipes()
    assert list(recipes) == sorted(recipes)
    assert "pneumonia" in recipes
    assert all(isinstance(text, str) and text for text in recipes.values())


def test_default_recipe_tunes_the_threshold_of_a_soft_vote_of_seeded_members():
    model = make_recipe(random_state=0)
    assert isinstance(model, TunedThresholdClassifierCV)
    assert model.scoring == "balanced_accuracy"
    assert model.refit is True
    assert model.cv == 0.2
    voting = model.estimator
    assert isinstance(voting, VotingClassifier)
    assert voting.voting == "soft"
    members = [member for _, member in voting.estimators]
    assert len(members) == 5
    seeds = [member.random_state for member in members]
    assert len(set(seeds)) == 5
    for member in members:
        assert isinstance(member, MedicalCNNClassifier)
        assert member.calibration == "temperature"
        assert member.tta == "shifts"
        assert member.lr_schedule == "onecycle"
        assert member.class_weight is None
        assert member.augmentation is not None
    # each member owns its augmenters: changing one leaves the others alone
    assert members[0].augmentation is not members[1].augmentation
    # the same random_state gives the same seeds; members differ only in them
    again = make_recipe(random_state=0)
    assert [m.random_state for _, m in again.estimator.estimators] == seeds
    assert again.random_state == model.random_state
    params = [
        {k: v for k, v in m.get_params(deep=False).items() if k != "augmentation"}
        | {"random_state": None}
        for m in members
    ]
    assert all(p == params[0] for p in params)


def test_unseeded_recipe_leaves_members_unseeded():
    model = make_recipe(n_members=2)
    assert [m.random_state for _, m in model.estimator.estimators] == [None, None]


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (None, TunedThresholdClassifierCV),  # the pneumonia recipe's own
        ("tuned", TunedThresholdClassifierCV),
        ("auto", AutoThresholdClassifier),
        ("argmax", VotingClassifier),
        (0.3, FixedThresholdClassifier),
    ],
)
def test_threshold_policies(threshold, expected):
    model = make_recipe(n_members=2, threshold=threshold, random_state=0)
    assert isinstance(model, expected)
    assert isinstance(
        model if threshold == "argmax" else model.estimator, VotingClassifier
    )
    if threshold == 0.3:
        assert model.threshold == 0.3


def test_one_member_is_the_classifier_itself():
    model = make_recipe(n_members=1, threshold="argmax", random_state=0)
    assert isinstance(model, MedicalCNNClassifier)


def test_member_params_override_the_recipe():
    model = make_recipe(
        n_members=2, member_params={"max_epochs": 3, "tta": None}, random_state=0
    )
    assert all(
        m.max_epochs == 3 and m.tta is None for _, m in model.estimator.estimators
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "knee"}, ValueError, "name must be one of"),
        ({"n_members": 0}, ValueError, "n_members must be >= 1"),
        ({"n_members": 2.0}, TypeError, "n_members must be an int"),
        ({"threshold": "youden"}, ValueError, "threshold must be one of"),
        ({"threshold": 1.0}, ValueError, r"probability in \(0, 1\)"),
        ({"threshold": [0.5]}, TypeError, "threshold must be .auto., .tuned."),
        ({"member_params": [("lr", 1)]}, TypeError, "member_params must be a dict"),
        ({"member_params": {"random_state": 1}}, ValueError, "random_state"),
        ({"member_params": {"epochs": 3}}, ValueError, "member_params holds 'epochs'"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_recipe(**kwargs)


def test_recipe_fits_predicts_and_is_reproducible(phantoms):
    X, y = phantoms
    recipe = make_recipe(n_members=2, member_params=FAST, random_state=0)
    first = clone(recipe).fit(X, y)
    second = clone(recipe).fit(X, y)
    proba = first.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba, second.predict_proba(X))
    assert first.best_threshold_ == second.best_threshold_
    # the ensemble averages its members; predict applies the tuned threshold
    voting = first.estimator_
    members = [m.predict_proba(X) for m in voting.estimators_]
    np.testing.assert_allclose(proba, np.mean(members, axis=0))
    expected = (proba[:, 1] >= first.best_threshold_).astype(int)
    np.testing.assert_array_equal(first.predict(X), expected)
    assert all(m.temperature_ > 0 for m in voting.estimators_)


def test_fixed_threshold_recipe_fits_and_pickles(phantoms):
    X, y = phantoms
    model = make_recipe(
        n_members=2, threshold=0.7, member_params=FAST, random_state=0
    ).fit(X, y)
    proba = model.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(model.predict(X), (proba >= 0.7).astype(int))
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


# --- compositions with sklearn ensembles ------------------------------------------


def test_recipe_persists_with_joblib_and_members_in_the_safe_format(phantoms, tmp_path):
    X, y = phantoms
    model = make_recipe(n_members=2, member_params=FAST, random_state=0).fit(X, y)
    proba = model.predict_proba(X)
    path = tmp_path / "recipe.joblib"
    joblib.dump(model, path)
    restored = joblib.load(path)
    np.testing.assert_array_equal(restored.predict_proba(X), proba)
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    with pytest.raises(TypeError, match="save_model saves a fitted"):
        save_model(model, tmp_path / "recipe.skmed")
    for index, member in enumerate(model.estimator_.estimators_):
        save_model(member, tmp_path / f"member{index}.skmed")
        loaded = load_model(tmp_path / f"member{index}.skmed")
        np.testing.assert_array_equal(loaded.predict_proba(X), member.predict_proba(X))


def test_voting_classifier_of_cnns_clones_fits_and_persists(phantoms, tmp_path):
    X, y = phantoms
    voting = VotingClassifier(
        [("a", _member(0)), ("b", _member(1, tta="hflip"))], voting="soft"
    )
    fitted = clone(voting).fit(X, y)
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert fitted.score(X, y) >= 0.0
    # nested parameters reach the members, as GridSearchCV needs
    assert clone(voting).set_params(a__lr=0.01).estimators[0][1].lr == 0.01

    # pickle and joblib keep the whole ensemble
    path = tmp_path / "voting.joblib"
    joblib.dump(fitted, path)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(X), proba)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(fitted)).predict_proba(X), proba
    )

    # the safe format stores single estimators and Pipelines, not ensembles;
    # each fitted member can be saved and loaded on its own
    with pytest.raises(TypeError, match="save_model saves a fitted"):
        save_model(fitted, tmp_path / "voting.skmed")
    member = fitted.estimators_[1]
    save_model(member, tmp_path / "member.skmed")
    loaded = load_model(tmp_path / "member.skmed")
    np.testing.assert_array_equal(loaded.predict_proba(X), member.predict_proba(X))


def test_bagging_over_flat_images_clones_fits_and_pickles(phantoms):
    # BaggingClassifier checks X as a 2-D array: pass flat images and image_shape
    X, y = phantoms
    flat = X.reshape(len(X), -1)
    bagging = BaggingClassifier(
        _member(None, image_shape=X.shape[1:]),
        n_estimators=2,
        bootstrap=False,
        random_state=0,
    )
    fitted = clone(bagging).fit(flat, y)
    proba = fitted.predict_proba(flat)
    assert proba.shape == (len(X), 2)
    seeds = [member.random_state for member in fitted.estimators_]
    assert len(set(seeds)) == 2  # bagging seeds every member differently
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(fitted)).predict_proba(flat), proba
    )
    np.testing.assert_array_equal(
        clone(bagging).fit(flat, y).predict_proba(flat), proba
    )


def test_grid_search_over_a_recipe_member_parameter(phantoms):
    X, y = phantoms
    recipe = make_recipe(n_members=2, member_params=FAST, random_state=0)
    grid = {"estimator__member0__lr": [1e-3, 3e-3]}
    search = GridSearchCV(recipe, grid, cv=2, scoring="roc_auc").fit(X, y)
    assert search.best_params_["estimator__member0__lr"] in (1e-3, 3e-3)
    assert search.best_estimator_.predict_proba(X).shape == (len(X), 2)


# --- the data-set-agnostic recipe and its decision rule -------------------------


def test_general_recipe_is_members_with_the_defaults_and_the_argmax():
    voting = make_recipe("general", random_state=0)
    assert isinstance(voting, VotingClassifier)  # no threshold wrapper
    assert voting.voting == "soft"
    members = [member for _, member in voting.estimators]
    assert len(members) == 5
    assert len({m.random_state for m in members}) == 5
    defaults = MedicalCNNClassifier().get_params(deep=False)
    batch_norm = defaults | {"architecture_params": {"batch_norm": True}}
    for i, member in enumerate(members):  # the fifth normalises its batches
        expected = batch_norm if i == 4 else defaults
        assert member.get_params(deep=False) | {"random_state": None} == expected
    ten = [m for _, m in make_recipe("general", n_members=10).estimators]
    assert [m.architecture_params is not None for m in ten] == 2 * (
        [False] * 4 + [True]
    )
    assert ten[4].architecture_params is not ten[9].architecture_params
    # an explicit threshold still wins over the recipe's own
    auto = make_recipe("general", threshold="auto", random_state=0)
    assert isinstance(auto, AutoThresholdClassifier)
    assert (auto.scoring, auto.cv) == ("balanced_accuracy", 0.2)
    assert [m.get_params() for _, m in auto.estimator.estimators] == [
        m.get_params() for m in members
    ]  # the same members, seeds included
    assert isinstance(
        make_recipe("general", n_members=2, threshold="tuned"),
        TunedThresholdClassifierCV,
    )
    assert isinstance(
        make_recipe("pneumonia", threshold="auto"), AutoThresholdClassifier
    )


_MIXED = [None] * 4 + [{"batch_norm": True}]


@pytest.mark.parametrize(
    ("member_params", "expected"),
    [
        # another network or pretrained weights: no variant, every member alike
        ({"architecture": "resnet18"}, [None] * 5),
        ({"pretrained": "weights.pth"}, [None] * 5),
        # the recipe's own values keep the batch-normalised member
        ({"architecture": "simple_cnn"}, _MIXED),
        ({"pretrained": None}, _MIXED),
        ({"max_epochs": 3, "device": "cpu"}, _MIXED),
        # architecture_params replace the variant's in every member
        ({"architecture_params": None}, [None] * 5),
        ({"architecture_params": {"width": 8}}, [{"width": 8}] * 5),
    ],
)
def test_general_recipe_variant_follows_member_params(member_params, expected):
    """The batch-normalised member is a variant of the recipe's own network:
    choosing another network, weights or the network's parameters makes every
    member the same; the recipe's own values and other parameters keep it."""
    voting = make_recipe("general", member_params=member_params)
    members = [member for _, member in voting.estimators]
    assert [m.architecture_params for m in members] == expected
    for key, value in member_params.items():
        assert [m.get_params()[key] for m in members] == [value] * 5


@pytest.mark.parametrize(
    ("spatial_dims", "layer"), [(2, "BatchNorm2d"), (3, "BatchNorm3d")]
)
def test_general_recipe_fits_a_batch_normalised_member(spatial_dims, layer):
    X, y = make_lesion_phantoms(
        24, image_size=8, lesion_radius=2, spatial_dims=spatial_dims, random_state=0
    )
    model = make_recipe("general", member_params=FAST, random_state=0).fit(X, y)
    layers = [
        {type(module).__name__ for module in m.net_.module_.modules()}
        for m in model.estimators_
    ]
    assert [layer in names for names in layers] == [False] * 4 + [True]
    assert model.predict_proba(X[:3]).shape == (3, 2)


def test_general_recipe_passes_sample_weights_to_its_members(phantoms):
    """Without a threshold wrapper the ensemble hands sample_weight to every
    member: weighting out most of one class makes it rare to the members'
    class_weight="auto" rule (samples of positive weight count)."""
    X, y = phantoms
    weight = np.ones(len(y))
    weight[np.flatnonzero(y == 1)[3:]] = 0.0  # three of class 1 keep a weight
    model = make_recipe("general", n_members=2, member_params=FAST, random_state=0)
    model.fit(X, y, sample_weight=weight)
    assert [m.class_weight_ for m in model.estimators_] == ["balanced"] * 2
    unweighted = make_recipe(
        "general", n_members=2, member_params=FAST, random_state=0
    ).fit(X, y)
    assert [m.class_weight_ for m in unweighted.estimators_] == [None] * 2


def _blobs(n_classes, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(120) % n_classes
    X = rng.normal(size=(120, 4)) + y[:, None] * 0.8
    return X, y


def test_auto_threshold_tunes_two_classes_as_scikit_learn_does():
    X, y = _blobs(2)
    y = np.where(y == 1, "disease", "healthy")
    auto = AutoThresholdClassifier(LogisticRegression(), random_state=0).fit(X, y)
    tuned = TunedThresholdClassifierCV(
        LogisticRegression(),
        scoring="balanced_accuracy",
        response_method="predict_proba",
        cv=0.2,
        refit=True,
        random_state=0,
    ).fit(X, y)
    assert auto.best_threshold_ == pytest.approx(tuned.best_threshold_)
    assert isinstance(auto.estimator_, TunedThresholdClassifierCV)
    np.testing.assert_array_equal(auto.classes_, ["disease", "healthy"])
    np.testing.assert_array_equal(auto.predict(X), tuned.predict(X))
    np.testing.assert_allclose(auto.predict_proba(X), tuned.predict_proba(X))


def test_auto_threshold_takes_the_most_probable_of_more_classes():
    X, y = _blobs(3)
    auto = AutoThresholdClassifier(LogisticRegression(), random_state=0).fit(X, y)
    assert auto.best_threshold_ is None
    plain = LogisticRegression().fit(X, y)
    np.testing.assert_allclose(auto.predict_proba(X), plain.predict_proba(X))
    proba = auto.predict_proba(X)
    np.testing.assert_array_equal(auto.predict(X), auto.classes_[proba.argmax(axis=1)])
    assert auto.score(X, y) == plain.score(X, y)


def test_auto_threshold_refuses_what_it_cannot_use():
    X, y = _blobs(2)
    with pytest.raises(NotFittedError):
        AutoThresholdClassifier(LogisticRegression()).predict(X)
    with pytest.raises(TypeError, match="estimator must be a classifier"):
        AutoThresholdClassifier(LinearRegression()).fit(X, y)
    with pytest.raises(ValueError, match="at least two classes; got 1 class"):
        AutoThresholdClassifier(LogisticRegression()).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="scoring must be a scikit-learn scorer"):
        AutoThresholdClassifier(LogisticRegression(), scoring="youden").fit(*_blobs(3))
    with pytest.raises(ValueError, match=r"sample_weight.*enable_metadata_routing"):
        AutoThresholdClassifier(LogisticRegression()).fit(
            X, y, sample_weight=np.ones(len(X))
        )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_auto_threshold_routes_sample_weights(n_classes):
    X, y = _blobs(n_classes)
    weights = np.random.default_rng(1).uniform(0.1, 3.0, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        inner = LogisticRegression().set_fit_request(sample_weight=True)
        scorer = make_scorer(balanced_accuracy_score).set_score_request(
            sample_weight=True
        )
        auto = AutoThresholdClassifier(inner, scoring=scorer, random_state=0)
        weighted = clone(auto).fit(X, y, sample_weight=weights)
        unweighted = clone(auto).fit(X, y)
        if n_classes == 2:
            reference = TunedThresholdClassifierCV(
                inner,
                scoring=scorer,
                response_method="predict_proba",
                cv=0.2,
                refit=True,
                random_state=0,
            ).fit(X, y, sample_weight=weights)
        else:
            reference = LogisticRegression().fit(X, y, sample_weight=weights)
        routing = auto.get_metadata_routing()
    np.testing.assert_allclose(weighted.predict_proba(X), reference.predict_proba(X))
    assert not np.allclose(weighted.predict_proba(X), unweighted.predict_proba(X))
    assert "sample_weight" in str(routing)
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(
            TypeError, match=r"AutoThresholdClassifier.fit got .*sample_wieght"
        ):
            auto.fit(X, y, sample_wieght=weights)


def test_auto_threshold_passes_on_log_proba_and_decision_function():
    for n_classes in (2, 3):
        X, y = _blobs(n_classes)
        auto = AutoThresholdClassifier(LogisticRegression(), random_state=0).fit(X, y)
        np.testing.assert_allclose(
            np.exp(auto.predict_log_proba(X)), auto.predict_proba(X)
        )
        fitted = auto.estimator_
        if n_classes == 2:
            fitted = fitted.estimator_
        np.testing.assert_allclose(
            auto.decision_function(X), fitted.decision_function(X)
        )
    assert hasattr(AutoThresholdClassifier(MedicalCNNClassifier()), "predict_log_proba")
    assert not hasattr(AutoThresholdClassifier(_NoLogProba()), "predict_log_proba")


@pytest.mark.parametrize("threshold", [None, "auto"])
def test_general_recipe_fits_several_classes_of_images_and_pickles(phantoms, threshold):
    X, _ = phantoms
    y = np.arange(len(X)) % 3  # three classes: no threshold to tune
    model = make_recipe(
        "general",
        n_members=2,
        threshold=threshold,
        member_params=FAST,
        random_state=0,
    ).fit(X, y)
    if threshold == "auto":
        assert model.best_threshold_ is None
    else:
        assert isinstance(model, VotingClassifier)
    proba = model.predict_proba(X[:10])
    assert proba.shape == (10, 3)
    np.testing.assert_array_equal(model.predict(X[:10]), proba.argmax(axis=1))
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X[:10]), proba)
