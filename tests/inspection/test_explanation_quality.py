"""Explanation quality as numbers: sk_medcnn.metrics.explanation_score and scorers."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import make_lesion_phantoms
from sk_medcnn.inspection._perturbation import noisy_linear_impute
from sk_medcnn.inspection._randomisation import _rank_correlations
from sk_medcnn.metrics import (
    ExplanationScorer,
    explanation_score,
    make_explanation_scorer,
)
from sk_medcnn.preprocessing import IntensityNormalizer

METHODS = ["gradcam", "hirescam", "gradient", "smoothgrad", "integrated_gradients"]
METRICS = [
    "road",
    "deletion",
    "insertion",
    "randomisation",
    "data_randomisation",
    "mass_in_mask",
    "pointing_game",
    "auprc",
]
FAST = {"n_samples": 2, "n_steps": 4}  # SmoothGrad and integrated gradients


def _method_params(method):
    return FAST if method in ("smoothgrad", "integrated_gradients") else None


@pytest.fixture(scope="module")
def lesions():
    X, y, masks = make_lesion_phantoms(
        200, image_size=16, contrast=0.8, return_masks=True, random_state=0
    )
    return X, y, masks


@pytest.fixture(scope="module")
def learned(lesions):
    # measured: 0.94 accuracy on the 40 held-out phantoms, under a second
    X, y, masks = lesions
    clf = MedicalCNNClassifier(
        max_epochs=4, architecture_params={"width": 16}, random_state=0
    ).fit(X[:160], y[:160])
    test = slice(160, None)
    return clf, X[test], y[test], masks[test]


def _oracle(masks):
    """A map method that knows where the lesions are (the truth, blurred)."""

    def explain(estimator, X, target=None):
        lookup = {image.tobytes(): mask for image, mask in zip(*masks, strict=True)}
        maps = np.array([lookup[image.tobytes()] for image in X], dtype=np.float64)
        return gaussian_filter(maps, sigma=(0, 1, 1))

    return explain


def _random_maps(estimator, X, target=None):
    return np.random.RandomState(1).random_sample(np.shape(X)[:3])


# --- the faithfulness metrics -----------------------------------------------------
def test_road_of_the_true_lesion_beats_a_random_map(learned):
    clf, X, y, masks = learned
    positive = y == 1
    oracle = _oracle((X, masks))
    kwargs = {"metric": "road", "random_state": 0, "average": False}
    truth = explanation_score(clf, X[positive], y[positive], method=oracle, **kwargs)
    chance = explanation_score(
        clf, X[positive], y[positive], method=_random_maps, **kwargs
    )
    assert truth.mean() > chance.mean() + 0.1
    assert abs(chance.mean()) < 0.1  # random removal: both orders alike


@pytest.mark.parametrize("metric", ["deletion", "insertion"])
def test_deletion_and_insertion_of_the_true_lesion_beat_a_random_map(learned, metric):
    clf, X, y, masks = learned
    positive = y == 1
    oracle = _oracle((X, masks))
    truth = explanation_score(
        clf, X[positive], y[positive], method=oracle, metric=metric, random_state=0
    )
    chance = explanation_score(
        clf, X[positive], y[positive], method=_random_maps, metric=metric
    )
    assert 0 <= chance < truth <= 1


def test_faithfulness_scores_depend_on_y_and_fractions(learned):
    clf, X, y, _ = learned
    base = explanation_score(clf, X[:8], y[:8], metric="deletion", average=False)
    assert base.shape == (8,)
    other = explanation_score(
        clf, X[:8], y[:8], metric="deletion", fractions=[0, 0.5, 1], average=False
    )
    assert not np.allclose(base, other)
    # the same random_state gives the same ROAD (imputation noise, tied pixels)
    first = explanation_score(clf, X[:8], y[:8], random_state=3)
    assert explanation_score(clf, X[:8], y[:8], random_state=3) == first


def test_noisy_linear_imputation_solves_the_neighbour_average():
    rng = np.random.RandomState(0)
    images = rng.random_sample((2, 6, 7, 2))
    removed = rng.random_sample((2, 6, 7)) < 0.5
    filled = noisy_linear_impute(images, removed, 0.0, rng)
    np.testing.assert_array_equal(filled[~removed], images[~removed])
    # every filled pixel is the weighted mean of its neighbours inside the image
    padded = np.pad(filled, ((0, 0), (1, 1), (1, 1), (0, 0)))
    weights = np.pad(np.ones((2, 6, 7, 1)), ((0, 0), (1, 1), (1, 1), (0, 0)))
    kernel = {(0, 1): 1 / 6, (1, 0): 1 / 6, (1, 1): 1 / 12}
    total = np.zeros_like(filled)
    norm = np.zeros((2, 6, 7, 1))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == dx == 0:
                continue
            weight = kernel[(abs(dy), abs(dx))]
            window = (slice(None), slice(1 + dy, 7 + dy), slice(1 + dx, 8 + dx))
            total += weight * padded[window]
            norm += weight * weights[window]
    np.testing.assert_allclose(filled[removed], (total / norm)[removed], atol=1e-10)
    noisy = noisy_linear_impute(images, removed, 0.5, np.random.RandomState(0))
    assert np.abs(noisy - filled)[removed].mean() > 0.1


def test_perturbed_images_keep_the_dtype_of_X(learned):
    clf, X, _, _ = learned
    seen = []

    class Spy:
        def __init__(self, estimator):
            self.estimator = estimator

        def predict_proba(self, images):
            seen.append(images.dtype)
            return self.estimator.predict_proba(images)

    from sk_medcnn.inspection import _perturbation

    maps = np.random.RandomState(0).random_sample(X[:4].shape)
    _perturbation._faithfulness(
        Spy(clf),
        X[:4],
        maps.astype(np.float32),
        np.zeros(4, dtype=np.intp),
        "road",
        np.array([0.2, 0.5]),
        0.01,
        None,
        32,
        np.random.RandomState(0),
    )
    assert seen == [np.uint8, np.uint8]


# --- localisation ---------------------------------------------------------------
def test_pointing_game_of_the_true_lesion_is_one(learned):
    clf, X, y, masks = learned
    hits = explanation_score(
        clf,
        X,
        y,
        method=_oracle((X, masks)),
        metric="pointing_game",
        masks=masks,
        average=False,
    )
    assert np.isnan(hits[y == 0]).all()  # no lesion, nothing to point at
    np.testing.assert_array_equal(hits[y == 1], 1.0)
    assert explanation_score(
        clf, X, y, method=_oracle((X, masks)), metric="auprc", masks=masks
    ) == pytest.approx(1.0)


def test_localisation_of_a_random_map_is_near_chance(learned):
    clf, X, y, masks = learned
    positive = y == 1
    mass = explanation_score(
        clf, X, y, method=_random_maps, metric="mass_in_mask", masks=masks
    )
    assert mass == pytest.approx(masks[positive].mean(), abs=0.05)


def test_learned_maps_localise_better_than_chance(learned):
    clf, X, y, masks = learned
    positive = y == 1
    score = explanation_score(
        clf, X, y, method="hirescam", metric="mass_in_mask", masks=masks
    )
    assert score > 1.5 * masks[positive].mean()  # measured 0.24 against 0.13


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((40, 8, 8), bool),
        np.zeros((39, 16, 16), bool),
        np.zeros((40, 16, 16, 1), bool),
    ],
)
def test_masks_of_the_wrong_shape_raise(learned, bad):
    clf, X, y, _ = learned
    with pytest.raises(ValueError, match=r"masks must have shape \(40, 16, 16\)"):
        explanation_score(clf, X, y, metric="pointing_game", masks=bad)


def test_localisation_needs_masks(learned):
    clf, X, y, masks = learned
    with pytest.raises(ValueError, match="need masks="):
        explanation_score(clf, X, y, metric="auprc")
    with pytest.raises(ValueError, match="only 0/1"):
        explanation_score(clf, X, y, metric="auprc", masks=masks * 2.5)
    with pytest.raises(ValueError, match="non-empty mask"):
        explanation_score(clf, X, y, metric="auprc", masks=np.zeros_like(masks))


# --- randomisation ----------------------------------------------------------------
def test_rank_correlation_matches_scipy():
    rng = np.random.RandomState(0)
    first = rng.random_sample((3, 5, 5)).round(1)  # with ties
    second = first + rng.normal(0, 0.3, first.shape)
    expected = [
        spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(first, second, strict=True)
    ]
    np.testing.assert_allclose(_rank_correlations(first, second), expected)
    blank = np.zeros((1, 5, 5))
    assert _rank_correlations(blank, blank)[0] == 1.0
    assert _rank_correlations(blank, first[:1])[0] == 0.0


def test_randomisation_scores_a_map_that_ignores_the_model_as_zero(learned):
    clf, X, y, _ = learned

    def edges(estimator, X, target=None):  # depends on the image only
        return np.abs(np.gradient(X.astype(float), axis=1))

    assert explanation_score(
        clf, X, y, method=edges, metric="randomisation"
    ) == pytest.approx(0.0)
    score = explanation_score(
        clf, X, y, method="gradient", metric="randomisation", random_state=0
    )
    assert 0.3 < score <= 1  # measured 0.8: the map follows the weights


def test_randomisation_leaves_the_model_untouched(learned):
    clf, X, y, _ = learned
    before = clf.predict_proba(X)
    explanation_score(clf, X, y, method="gradient", metric="randomisation")
    np.testing.assert_array_equal(clf.predict_proba(X), before)


@pytest.mark.slow  # fits a second network
def test_data_randomisation_refits_a_clone_on_permuted_labels(learned):
    clf, X, y, _ = learned
    before = clf.predict_proba(X)
    score = explanation_score(
        clf,
        X,
        y,
        method="gradient",
        metric="data_randomisation",
        max_epochs=1,
        random_state=0,
    )
    assert 0 < score <= 1
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    with pytest.raises(ValueError, match="y must be given"):
        explanation_score(clf, X, None, metric="data_randomisation")
    with pytest.raises(ValueError, match="at least 2 classes in y"):
        explanation_score(clf, X[y == 1], y[y == 1], metric="data_randomisation")


# --- every method with every metric ---------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", [m for m in METRICS if m != "data_randomisation"])
def test_every_method_and_metric_gives_a_bounded_score(learned, method, metric):
    clf, X, y, masks = learned
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Grad-CAM's blank maps
        score = explanation_score(
            clf,
            X[:6],
            y[:6],
            method=method,
            metric=metric,
            masks=masks[:6],
            method_params=_method_params(method),
            fractions=None,
            random_state=0,
        )
    low = -1 if metric == "road" else 0
    assert low <= score <= 1


# --- options ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "grad_cam"}, r"method must be one of .*Did you mean 'gradcam'"),
        ({"metric": "ROAD"}, r"metric must be one of 'road', 'deletion'"),
        ({"metric": "pointing"}, r"metric must be one of .*'pointing_game'"),
        ({"fractions": [0.5, 0.2]}, "fractions must be at least 2 increasing"),
        ({"fractions": [0.5, 1.0]}, r"in \[0, 1\), as ROAD keeps"),
        ({"baseline": "zero"}, "baseline must be one of"),
        ({"method_params": {"variant": "x"}}, "method_params must not set"),
    ],
)
def test_bad_options_raise_naming_the_parameter(learned, options, message):
    clf, X, y, _ = learned
    with pytest.raises(ValueError, match=message):
        explanation_score(clf, X, y, **options)
    with pytest.raises(ValueError, match=message):
        make_explanation_scorer(**options)


def test_bad_inputs_raise(learned):
    clf, X, y, _ = learned
    with pytest.raises(TypeError, match=r"unexpected option.*'mask'"):
        make_explanation_scorer(metric="auprc", mask=None)
    with pytest.raises(TypeError, match=r"unexpected option.*'average'"):
        make_explanation_scorer(average=False)
    with pytest.raises(ValueError, match="masks are used by the localisation"):
        make_explanation_scorer(metric="road", masks=np.zeros((2, 16, 16), bool))
    with pytest.raises(ValueError, match="not classes of the classifier"):
        explanation_score(clf, X, np.full(len(X), 7))
    with pytest.raises(ValueError, match="X must be an image array"):
        explanation_score(clf, X.reshape(len(X), -1), y, metric="deletion")
    with pytest.raises(TypeError, match="MedicalCNNClassifier"):
        explanation_score(object(), X, y)
    with pytest.raises(ValueError, match="non-negative maps"):
        explanation_score(clf, X, y, method=lambda e, X, target: -np.ones(X.shape))


# --- scorers in scikit-learn --------------------------------------------------------
def test_scorer_equals_the_function_and_pickles(learned):
    clf, X, y, masks = learned
    scorer = make_explanation_scorer("hirescam", "mass_in_mask", random_state=0)
    assert isinstance(scorer, ExplanationScorer)
    assert repr(scorer) == (
        "make_explanation_scorer('hirescam', 'mass_in_mask', random_state=0)"
    )
    expected = explanation_score(
        clf, X, y, method="hirescam", metric="mass_in_mask", masks=masks
    )
    assert scorer(clf, X, y, masks=masks) == expected
    fixed = make_explanation_scorer("hirescam", "mass_in_mask", masks=masks)
    assert fixed(clf, X, y) == expected
    assert pickle.loads(pickle.dumps(scorer))(clf, X, y, masks=masks) == expected


def test_scorer_in_cross_validate(phantoms):
    X, y = phantoms
    scoring = {
        "accuracy": "accuracy",
        "deletion": make_explanation_scorer(
            "gradient", "deletion", fractions=[0, 0.5, 1]
        ),
    }
    result = cross_validate(
        MedicalCNNClassifier(max_epochs=1, random_state=0), X, y, cv=2, scoring=scoring
    )
    assert result["test_deletion"].shape == (2,)
    assert ((result["test_deletion"] >= 0) & (result["test_deletion"] <= 1)).all()


@pytest.mark.slow  # four fits and a refit: about 5 s
def test_localisation_scorer_in_grid_search_with_routed_masks(lesions):
    X, y, masks = lesions
    X, y, masks = X[:48], y[:48], masks[:48]
    pipe = make_pipeline(
        IntensityNormalizer(), MedicalCNNClassifier(max_epochs=1, random_state=0)
    )
    search = GridSearchCV(
        pipe,
        {"medicalcnnclassifier__lr": [1e-3, 1e-2]},
        cv=2,
        scoring={
            "mass": make_explanation_scorer("gradient", "mass_in_mask"),
            "accuracy": "accuracy",
        },
        refit="mass",
    )
    with sklearn.config_context(enable_metadata_routing=True):
        search.fit(X, y, masks=masks)
    scores = search.cv_results_["mean_test_mass"]
    assert scores.shape == (2,)
    assert ((scores > 0) & (scores < 1)).all()
    # the routed masks were each fold's own: scoring a fold by hand agrees
    fitted = clone(pipe).set_params(**search.best_params_).fit(X[24:], y[24:])
    scorer = make_explanation_scorer("gradient", "mass_in_mask")
    assert np.isfinite(scorer(fitted, X[:24], y[:24], masks=masks[:24]))
    # without routing, the masks cannot follow the folds: say so
    with pytest.raises(ValueError, match="metadata routing"):
        scorer(fitted, X[:24], y[:24], masks=masks)


def test_a_pipeline_is_scored_on_the_images_as_given(learned):
    _, X, y, masks = learned
    pipe = make_pipeline(
        IntensityNormalizer(), MedicalCNNClassifier(max_epochs=1, random_state=0)
    ).fit(X, y)
    score = explanation_score(pipe, X, y, metric="deletion", random_state=0)
    assert 0 <= score <= 1
    hits = explanation_score(
        pipe, X, y, method="gradient", metric="pointing_game", masks=masks
    )
    assert 0 <= hits <= 1


def test_perturbed_copies_raise_no_out_of_distribution_warning(learned):
    # deleted and imputed copies are unusual by design; the warning is for the
    # user's images, not the scorer's own
    from sk_medcnn.exceptions import OutOfDistributionWarning

    clf, X, y, _ = learned
    for metric in ("road", "deletion", "insertion"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            explanation_score(clf, X, y, method="gradient", metric=metric)
        assert not [w for w in caught if w.category is OutOfDistributionWarning]
