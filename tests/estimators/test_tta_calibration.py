"""Test-time augmentation, temperature scaling and sklearn's calibration tools."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import log_loss
from sklearn.model_selection import TunedThresholdClassifierCV

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor
from sk_medcnn.estimators._calibration import fit_temperature
from sk_medcnn.utils._inference import apply_view, tta_views

FAST = {"max_epochs": 2, "batch_size": 16, "random_state": 0, "device": "cpu"}


def test_views_are_exact_flips_and_edge_replicated_shifts():
    rng = np.random.default_rng(0)
    images = rng.random((3, 20, 40, 2)).astype(np.float32)
    views = tta_views("hflip+vflip+shifts", images.shape[1:])
    assert len(views) == 8
    assert views[0] == (False, False, 0, 0)
    tensor = torch.from_numpy(images)
    by_view = {view: apply_view(tensor, view).numpy() for view in views}
    np.testing.assert_array_equal(by_view[views[0]], images)
    np.testing.assert_array_equal(by_view[views[1]], images[:, :, ::-1])
    np.testing.assert_array_equal(by_view[views[2]], images[:, ::-1])
    np.testing.assert_array_equal(by_view[views[3]], images[:, ::-1, ::-1])
    padded = np.pad(images, ((0, 0), (1, 1), (2, 2), (0, 0)), mode="edge")
    # 5% of 20 rows is 1 pixel, of 40 columns 2 pixels; content moves by +-shift
    np.testing.assert_array_equal(by_view[views[4]], padded[:, 2:22, 2:42])
    np.testing.assert_array_equal(by_view[views[5]], padded[:, 0:20, 2:42])
    np.testing.assert_array_equal(by_view[views[6]], padded[:, 1:21, 4:44])
    np.testing.assert_array_equal(by_view[views[7]], padded[:, 1:21, 0:40])
    assert len(tta_views(None, (8, 8))) == 1
    assert len(tta_views("shifts", (8, 8))) == 5


def test_tta_averages_the_probabilities_of_the_views(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(tta=None, **FAST).fit(X, y)
    plain = clf.predict_proba(X)
    flipped = clf.predict_proba(X[:, :, ::-1])
    clf.set_params(tta="hflip")
    averaged = clf.predict_proba(X)
    np.testing.assert_allclose(averaged, (plain + flipped) / 2, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[averaged.argmax(1)])
    scores = clf.decision_function(X)
    np.testing.assert_allclose(
        scores, np.log(averaged[:, 1]) - np.log(averaged[:, 0]), rtol=1e-6, atol=1e-7
    )
    np.testing.assert_array_equal(averaged, clf.predict_proba(X))  # deterministic


def test_tta_is_a_parameter_of_the_fit_too(phantoms):
    # a search over tta needs it in get_params, and clone keeps it
    X, y = phantoms
    clf = MedicalCNNClassifier(tta="hflip+vflip", **FAST).fit(X, y)
    assert clf.get_params()["tta"] == "hflip+vflip"
    assert clf.predict_proba(X).shape == (len(X), 2)


def test_regressor_tta_averages_predictions(phantoms):
    X, y = phantoms
    reg = MedicalCNNRegressor(**FAST).fit(X, y.astype(float))
    expected = (reg.predict(X) + reg.predict(X[:, ::-1])) / 2
    reg.set_params(tta="vflip")
    np.testing.assert_allclose(reg.predict(X), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("tta", "error"),
    [("rotate", ValueError), ("hflip+hflip", ValueError), (1, TypeError)],
)
def test_bad_tta_is_named(phantoms, tta, error):
    X, y = phantoms
    with pytest.raises(error, match="tta"):
        MedicalCNNClassifier(tta=tta, **FAST).fit(X, y)


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 3))
    proba = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in proba])
    # an overconfident model: its logits are the true ones times 3
    temperature = fit_temperature(3 * true_logits[None], y)
    assert temperature == pytest.approx(3.0, rel=0.1)


def test_fit_temperature_never_sharpens_on_a_split_without_errors():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    logits = np.zeros((1, 200, 2))
    logits[0, np.arange(200), y] = rng.uniform(0.2, 3.0, 200)  # all right
    assert fit_temperature(logits, y) == pytest.approx(1.0, abs=1e-3)
    # with one error the whole range is searched again, and these
    # underconfident logits are sharpened
    logits[0, 0] = logits[0, 0, ::-1]
    assert fit_temperature(logits, y) < 1.0


def test_temperature_scaling_lowers_held_out_log_loss_and_keeps_predictions(
    phantoms,
):
    X, y = phantoms
    y = y.copy()
    y[::6] = 1 - y[::6]  # wrong labels: the held-out split has errors
    params = {**FAST, "max_epochs": 6, "early_stopping": True, "lr": 3e-3}
    plain = MedicalCNNClassifier(calibration=None, **params).fit(X, y)
    calibrated = MedicalCNNClassifier(calibration="temperature", **params).fit(X, y)
    assert plain.temperature_ == 1.0
    assert calibrated.temperature_ != 1.0
    # same split, same training: the same decisions, other probabilities
    np.testing.assert_array_equal(calibrated.predict(X), plain.predict(X))
    held_out = calibrated._validation_index
    loss_plain = log_loss(y[held_out], plain.predict_proba(X[held_out]), labels=[0, 1])
    loss_calibrated = log_loss(
        y[held_out], calibrated.predict_proba(X[held_out]), labels=[0, 1]
    )
    assert loss_calibrated <= loss_plain + 1e-9


def test_calibration_holds_out_a_split_without_early_stopping(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(calibration="temperature", **FAST).fit(X, y)
    assert len(clf._validation_index) == 7  # ceil(0.1 * 64)
    with pytest.raises(ValueError, match="calibration"):
        MedicalCNNClassifier(calibration="platt", **FAST).fit(X, y)


def test_works_inside_calibrated_classifier_cv(phantoms):
    X, y = phantoms
    calibrated = CalibratedClassifierCV(
        MedicalCNNClassifier(**FAST), cv=2, method="sigmoid"
    ).fit(X, y)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert len(calibrated.calibrated_classifiers_) == 2


def test_works_inside_tuned_threshold_classifier_cv(phantoms):
    X, y = phantoms
    tuned = TunedThresholdClassifierCV(
        MedicalCNNClassifier(**FAST), scoring="balanced_accuracy", cv=2
    ).fit(X, y)
    assert 0.0 < tuned.best_threshold_ < 1.0
    proba = tuned.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(
        tuned.predict(X), tuned.classes_[(proba >= tuned.best_threshold_).astype(int)]
    )


def test_default_calibration_on_too_few_samples_says_how_to_train_on_all(phantoms):
    X, y = phantoms
    pair = [int(np.flatnonzero(y == 0)[0]), int(np.flatnonzero(y == 1)[0])]
    with pytest.raises(ValueError, match=r"validation_fraction.*calibration=None"):
        MedicalCNNClassifier(**FAST).fit(X[pair], y[pair])
    fitted = MedicalCNNClassifier(calibration=None, **FAST).fit(X[pair], y[pair])
    assert fitted.temperature_ == 1.0
