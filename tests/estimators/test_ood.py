"""The out-of-distribution score learned in fit: ood_score, its threshold, warnings."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf
from sklearn.pipeline import make_pipeline

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor, load_model, save_model
from sk_medcnn._ood import (
    OOD_FAR_FACTOR,
    feature_layer,
    fit_mahalanobis,
    mahalanobis_score,
    ood_threshold,
    ood_warning,
)
from sk_medcnn.datasets import make_lesion_phantoms
from sk_medcnn.exceptions import ModelFileError, OutOfDistributionWarning
from sk_medcnn.inspection import check_distribution
from sk_medcnn.preprocessing import IntensityNormalizer
from sk_medcnn.utils._inference import embed_raw, predict_raw_with_features, tta_views

FAST = {"max_epochs": 2, "batch_size": 16, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def data():
    X, y = make_lesion_phantoms(240, image_size=16, random_state=0)
    return X[:160], y[:160], X[160:], y[160:]


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return MedicalCNNClassifier(**FAST).fit(X, y)


def _noise(n, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, size, size)).astype(np.uint8)


# --- the pieces ----------------------------------------------------------------
@pytest.mark.parametrize(("n_samples", "n_features"), [(300, 16), (40, 64), (500, 3)])
def test_fit_mahalanobis_agrees_with_sklearn_ledoit_wolf(n_samples, n_features):
    rng = np.random.default_rng(n_samples)
    scale = rng.uniform(0.1, 3.0, n_features)
    features = (rng.normal(size=(n_samples, n_features)) * scale).astype(np.float32)
    groups = rng.integers(0, 3, n_samples)
    location, precision = fit_mahalanobis(features, groups, block_size=7)
    for group in range(3):
        np.testing.assert_allclose(
            location[group], features[groups == group].mean(axis=0), atol=1e-5
        )
    centred = features.astype(np.float64) - location[groups]
    expected = LedoitWolf(assume_centered=True).fit(centred).precision_
    np.testing.assert_allclose(precision, expected, rtol=1e-8, atol=1e-10)


def test_fit_mahalanobis_gives_an_empty_group_the_overall_mean():
    features = np.arange(12, dtype=np.float32).reshape(6, 2)
    location, _ = fit_mahalanobis(features, np.array([0, 0, 0, 2, 2, 2]))
    np.testing.assert_allclose(location[1], features.mean(axis=0))


def test_mahalanobis_score_is_the_distance_to_the_nearest_mean():
    location = np.array([[0.0, 0.0], [10.0, 0.0]])
    precision = np.diag([1.0, 4.0])
    features = np.array([[1.0, 0.0], [9.0, 1.0], [np.nan, 0.0], [np.inf, 0.0]])
    score = mahalanobis_score(features, location, precision)
    np.testing.assert_allclose(score[:2], [1.0, math.sqrt(1 + 4)])
    assert np.isinf(score[2:]).all()


def test_mahalanobis_score_is_the_quadratic_form_of_a_full_precision():
    rng = np.random.default_rng(0)
    factor = rng.normal(size=(64, 64))
    precision = factor @ factor.T + np.eye(64)
    location = rng.normal(size=(3, 64))
    features = rng.normal(size=(50, 64)).astype(np.float32)
    expected = np.min(
        [
            [(row - mean) @ precision @ (row - mean) for mean in location]
            for row in features.astype(np.float64)
        ],
        axis=1,
    )
    score = mahalanobis_score(features, location, precision)
    np.testing.assert_allclose(score, np.sqrt(expected), rtol=1e-12)
    alone = [mahalanobis_score(row[None], location, precision)[0] for row in features]
    np.testing.assert_allclose(alone, score, rtol=1e-12)


def test_ood_threshold_is_the_conformal_rank():
    scores = np.arange(1.0, 20.0)  # 19 held-out scores
    assert ood_threshold(scores, 0.1) == 18.0  # ceil(20 * 0.9) = 18th smallest
    assert ood_threshold(scores, 0.5) == 10.0
    assert ood_threshold(scores[:5], 0.05) == 5.0  # too few: the largest
    assert ood_threshold(np.array([np.inf, 2.0]), 0.5) == 2.0
    assert ood_threshold(np.array([np.inf]), 0.5) == math.inf


def test_ood_threshold_flags_at_most_the_rate_of_new_exchangeable_scores():
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(400):
        held_out, new = rng.normal(size=99), rng.normal(size=1000)
        rates.append(np.mean(new > ood_threshold(held_out, 0.1)))
    assert np.mean(rates) <= 0.1 + 0.005  # guaranteed on average, not per draw


def test_ood_warning_only_when_unlikely_at_the_false_alarm_rate():
    threshold = 10.0
    assert ood_warning(np.full(100, 5.0), threshold, 0.05) is None
    typical = np.r_[np.full(95, 5.0), np.full(5, 11.0)]  # the 5% expected
    assert ood_warning(typical, threshold, 0.05) is None
    many = np.r_[np.full(70, 5.0), np.full(30, 11.0)]
    assert "30 of 100 images" in ood_warning(many, threshold, 0.05)
    far = np.array([OOD_FAR_FACTOR * threshold + 1])  # one image, far out
    message = ood_warning(far, threshold, 0.05)
    assert "1 of 1 images" in message
    assert "more than 2 times" in message
    assert ood_warning(np.array([threshold + 1]), threshold, 0.05) is None


def test_feature_layer_finds_the_output_layers_input(fitted):
    body = fitted.net_.module_.body
    module, capture = feature_layer(body, "simple_cnn")
    assert capture == "input"
    assert module is [m for m in body.modules() if type(m).__name__ == "Linear"][-1]
    with pytest.raises(ValueError, match="layer='nope' is not a module"):
        feature_layer(body, "simple_cnn", "nope")


def test_features_come_from_the_same_pass_and_the_image_itself(fitted, data):
    X_val = data[2][:10, :, :, None].astype(np.float32)
    module = fitted.net_.module_
    capture = feature_layer(module.body, "simple_cnn")
    expected = embed_raw(
        module,
        X_val,
        target=capture[0],
        capture=capture[1],
        device=fitted.net_.device,
        batch_size=4,
    )
    views = tta_views("hflip+shifts", X_val.shape[1:])
    outputs, features = predict_raw_with_features(
        module, X_val, device=fitted.net_.device, batch_size=4, views=views,
        capture=capture,
    )  # fmt: skip
    assert outputs.shape[:2] == (len(views), 10)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    _, reduced = predict_raw_with_features(
        module, X_val, device=fitted.net_.device, batch_size=3, capture=capture,
        reduce=lambda batch: batch.sum(axis=1),
    )  # fmt: skip
    np.testing.assert_allclose(reduced, expected.sum(axis=1), rtol=1e-5)


# --- the estimators ------------------------------------------------------------
def test_fit_learns_the_score_and_its_threshold(fitted, data):
    X, _, X_val, _ = data
    n_features = fitted.ood_precision_.shape[0]
    assert fitted.ood_location_.shape == (2, n_features)  # one mean per class
    assert fitted.ood_precision_.shape == (n_features, n_features)
    assert fitted.ood_false_alarm_rate_ == 0.05
    assert fitted.ood_n_held_out_ == math.ceil(0.1 * len(X))  # the temperature's
    assert 0 < fitted.ood_threshold_ < math.inf
    score = fitted.ood_score(X_val)
    assert score.shape == (len(X_val),)
    assert np.all(score >= 0)
    assert np.mean(score > fitted.ood_threshold_) <= 0.15  # 5% stated, 80 images
    noise = fitted.ood_score(_noise(20))
    assert np.all(noise > fitted.ood_threshold_)
    assert np.median(noise) > 2 * np.median(score)


def test_predict_warns_on_images_unlike_the_training_images(fitted, data):
    X_val = data[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDistributionWarning)
        fitted.predict(X_val)  # its own kind of images: no warning
    hounsfield = X_val[:3].astype(np.float32) * 8 - 1000
    with pytest.warns(OutOfDistributionWarning, match="3 of 3 images are unlike"):
        fitted.predict_proba(hounsfield)
    with pytest.warns(OutOfDistributionWarning, match="ood_threshold_"):
        fitted.decision_function(_noise(30))


def test_the_score_costs_predict_no_second_pass(fitted, data, monkeypatch):
    calls = []
    module = fitted.net_.module_
    handle = module.register_forward_hook(lambda *args: calls.append(1))
    try:
        fitted.predict(data[2][:8])
    finally:
        handle.remove()
    n_views = len(tta_views(fitted._prediction_tta(), fitted.image_shape_))
    assert len(calls) == n_views  # one batch, one pass per view


def test_none_learns_no_score(data):
    X, y, X_val, _ = data
    clf = MedicalCNNClassifier(ood_false_alarm_rate=None, **FAST).fit(X, y)
    assert clf.ood_threshold_ is None
    assert clf.ood_location_ is None
    with pytest.raises(AttributeError, match="ood_false_alarm_rate=None"):
        clf.ood_score(X_val)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDistributionWarning)
        clf.predict(_noise(10))
    check = check_distribution(clf, X_val[:4])
    assert np.isnan(check.ood_score).all()


def test_the_rate_sets_the_threshold(data):
    X, y, _, _ = data
    strict = MedicalCNNClassifier(ood_false_alarm_rate=0.5, **FAST).fit(X, y)
    loose = MedicalCNNClassifier(ood_false_alarm_rate=0.01, **FAST).fit(X, y)
    assert strict.ood_threshold_ < loose.ood_threshold_
    assert strict.predict_proba(X[:5]).tolist() == loose.predict_proba(X[:5]).tolist()


def test_without_a_held_out_split_the_threshold_uses_training_rows(data):
    X, y, _, _ = data
    clf = MedicalCNNClassifier(calibration=None, tta=None, **FAST).fit(X, y)
    assert clf.ood_n_held_out_ == 0
    assert 0 < clf.ood_threshold_ < math.inf


@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, -0.1, "low", True])
def test_a_bad_rate_names_the_parameter(data, value):
    X, y, _, _ = data
    with pytest.raises((ValueError, TypeError), match="ood_false_alarm_rate"):
        MedicalCNNClassifier(ood_false_alarm_rate=value, **FAST).fit(X, y)


def test_the_regressor_learns_one_mean(data):
    X, y, X_val, _ = data
    reg = MedicalCNNRegressor(early_stopping=True, **FAST).fit(X, y.astype(float))
    assert reg.ood_location_.shape[0] == 1
    assert reg.ood_n_held_out_ > 0
    assert np.all(reg.ood_score(_noise(5)) > reg.ood_threshold_)
    assert reg.ood_score(X_val).shape == (len(X_val),)


def test_a_pipeline_scores_what_the_model_sees(data):
    X, y, X_val, _ = data
    pipe = make_pipeline(IntensityNormalizer(), MedicalCNNClassifier(**FAST))
    pipe.fit(X, y)
    check = check_distribution(pipe, np.concatenate([X_val[:4], _noise(4)]))
    assert check.in_distribution[4:].tolist() == [False] * 4
    assert all("out-of-distribution score" in r for r in check.reasons[4:])
    expected = pipe[-1].ood_score(pipe[:-1].transform(X_val[:4]))
    np.testing.assert_allclose(check.ood_score[:4], expected)


def test_check_distribution_joins_both_checks(fitted, data):
    X_val = data[2]
    hounsfield = X_val[:2].astype(np.float32) * 8 - 1000
    check = check_distribution(fitted, np.concatenate([X_val[:2], hounsfield]))
    assert check.in_distribution.tolist()[2:] == [False, False]
    assert "out-of-distribution score" in check.reasons[2]
    assert "training range" in check.reasons[2]  # the intensity check's words
    assert check.ood_score[2] > fitted.ood_threshold_


# --- persistence ---------------------------------------------------------------
def test_the_score_survives_save_and_load(fitted, data, tmp_path):
    save_model(fitted, tmp_path / "m.skmed")
    loaded = load_model(tmp_path / "m.skmed")
    assert loaded.ood_threshold_ == fitted.ood_threshold_
    np.testing.assert_allclose(
        loaded.ood_score(data[2][:6]), fitted.ood_score(data[2][:6])
    )


def test_a_model_saved_before_the_score_loads_without_it(data, tmp_path):
    X, y, X_val, _ = data
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    for name in list(vars(clf)):
        if name.startswith("ood_") and name.endswith("_"):  # fitted attributes
            delattr(clf, name)
    save_model(clf, tmp_path / "old.skmed")
    loaded = load_model(tmp_path / "old.skmed")
    assert loaded.ood_threshold_ is None
    assert loaded.predict(X_val[:3]).shape == (3,)
    with pytest.raises(AttributeError, match="no out-of-distribution score"):
        loaded.ood_score(X_val[:3])


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ood_threshold_", float("nan"), "ood_threshold_ must be"),
        ("ood_threshold_", -1.0, "ood_threshold_ must be"),
        ("ood_false_alarm_rate_", 1.0, "ood_false_alarm_rate_ must be"),
        ("ood_precision_", np.eye(3), "ood_precision_ must be"),
        ("ood_location_", np.full((2, 3), np.nan), "ood_location_ must be"),
        ("ood_n_held_out_", -3, "ood_n_held_out_ must be"),
    ],
)
def test_a_hostile_score_is_refused_at_load(fitted, tmp_path, name, value, message):
    import copy

    clf = copy.deepcopy(fitted)
    setattr(clf, name, value)
    save_model(clf, tmp_path / "bad.skmed")
    with pytest.raises(ModelFileError, match=message):
        load_model(tmp_path / "bad.skmed")


def test_a_score_of_the_wrong_width_is_refused_at_load(fitted, tmp_path):
    import copy

    clf = copy.deepcopy(fitted)
    clf.ood_location_ = np.zeros((2, 5))
    clf.ood_precision_ = np.eye(5)
    save_model(clf, tmp_path / "bad.skmed")
    with pytest.raises(ModelFileError, match="cannot predict a blank input"):
        load_model(tmp_path / "bad.skmed")
