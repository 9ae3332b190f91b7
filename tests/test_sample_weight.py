"""``fit(X, y, sample_weight=...)``: weighted losses, and what weights mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import config_context
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from torch import nn

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor
from sk_medcnn._training import WeightedRegressionLoss
from sk_medcnn.augmentation import MixUp
from sk_medcnn.classifier import fit_temperature
from sk_medcnn.losses import FocalLoss

FAST = {"max_epochs": 2, "random_state": 0, "device": "cpu", "batch_size": 16}


@pytest.mark.parametrize("Estimator", [MedicalCNNClassifier, MedicalCNNRegressor])
def test_equal_weights_give_the_unweighted_fit(Estimator, phantoms):
    X, y = phantoms
    plain = Estimator(**FAST).fit(X, y)
    weighted = Estimator(**FAST).fit(X, y, sample_weight=np.full(len(y), 2.5))
    np.testing.assert_array_equal(plain.predict(X), weighted.predict(X))
    if Estimator is MedicalCNNClassifier:
        np.testing.assert_array_equal(plain.predict_proba(X), weighted.predict_proba(X))


@pytest.mark.parametrize("Estimator", [MedicalCNNClassifier, MedicalCNNRegressor])
def test_zero_weights_equal_leaving_the_samples_out(Estimator, phantoms):
    X, y = phantoms
    # the extra samples are flipped images with flipped labels: if they took any
    # part (split, statistics, batches, loss), the fit would differ
    X_more = np.concatenate([X, X[:, ::-1]])
    y_more = np.concatenate([y, 1 - y])
    sample_weight = np.r_[np.ones(len(y)), np.zeros(len(y))]
    alone = Estimator(**FAST).fit(X, y)
    padded = Estimator(**FAST).fit(X_more, y_more, sample_weight=sample_weight)
    np.testing.assert_array_equal(alone.predict(X), padded.predict(X))
    if Estimator is MedicalCNNRegressor:
        np.testing.assert_array_equal(alone.target_mean_, padded.target_mean_)
        np.testing.assert_array_equal(alone.target_scale_, padded.target_scale_)


def test_weighting_a_class_raises_its_predicted_probability(phantoms):
    X, y = phantoms
    settings = {**FAST, "max_epochs": 4, "calibration": None, "tta": None}
    plain = MedicalCNNClassifier(**settings).fit(X, y)
    heavy = MedicalCNNClassifier(**settings).fit(
        X, y, sample_weight=np.where(y == 1, 8.0, 1.0)
    )
    assert (
        heavy.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean() + 0.05
    )


def test_weighted_classification_loss_is_the_weighted_mean_cross_entropy():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, generator=generator)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    sample_weight = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0, 0.25])
    class_weight = torch.tensor([1.0, 2.0, 0.5])
    rows = torch.nn.functional.one_hot(labels, 3).float() * sample_weight[:, None]
    per_sample = nn.functional.cross_entropy(logits, labels, reduction="none")
    combined = sample_weight * class_weight[labels]
    expected = (combined * per_sample).sum() / combined.sum()
    loss = FocalLoss(gamma=0.0, weight=class_weight)(logits, rows)
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("name", ["mse", "huber"])
def test_weighted_regression_loss_is_the_weighted_mean(name):
    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(5, 2, generator=generator) * 3
    values = torch.randn(5, 2, generator=generator)
    sample_weight = torch.tensor([1.0, 0.5, 2.0, 4.0, 1.0])
    function = nn.functional.huber_loss if name == "huber" else nn.functional.mse_loss
    per_sample = function(outputs, values, reduction="none").mean(dim=1)
    expected = (sample_weight * per_sample).sum() / sample_weight.sum()
    targets = torch.cat([values, sample_weight[:, None]], dim=1)
    torch.testing.assert_close(WeightedRegressionLoss(name)(outputs, targets), expected)
    # equal weights: torch's own mean loss
    ones = torch.cat([values, torch.ones(5, 1)], dim=1)
    unweighted = (nn.HuberLoss() if name == "huber" else nn.MSELoss())(outputs, values)
    torch.testing.assert_close(WeightedRegressionLoss(name)(outputs, ones), unweighted)
    with pytest.raises(ValueError, match="loss must be"):
        WeightedRegressionLoss("mae")


def test_weighted_temperature_equals_repeated_samples():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, 40, 2)) * 3
    labels = rng.integers(0, 2, size=40)
    counts = rng.integers(1, 4, size=40)
    repeated = fit_temperature(
        np.repeat(logits, counts, axis=1), np.repeat(labels, counts)
    )
    weighted = fit_temperature(logits, labels, sample_weight=counts.astype(float))
    assert weighted == pytest.approx(repeated, rel=1e-4)


def test_weights_go_with_mixup_focal_loss_and_balanced_classes(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        augmentation=MixUp(alpha=0.4), loss="focal", class_weight="balanced", **FAST
    )
    clf.fit(X, y, sample_weight=np.linspace(0.5, 2.0, len(y)))
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    assert np.isfinite(clf.history_[:, "valid_loss"]).all()
    assert 0.0 <= clf.history_[-1, "valid_acc"] <= 1.0
    assert clf.predict_proba(X).shape == (len(y), 2)


def test_resume_refuses_a_checkpoint_of_other_weights(phantoms, tmp_path):
    X, y = phantoms
    settings = {**FAST, "checkpoint_dir": tmp_path}
    MedicalCNNClassifier(**settings).fit(X, y, sample_weight=np.linspace(1, 2, len(y)))
    with pytest.raises(ValueError, match="written for other data"):
        MedicalCNNClassifier(**settings, resume=True).fit(
            X, y, sample_weight=np.linspace(2, 1, len(y))
        )


def test_sample_weight_reaches_the_estimator_in_pipelines_and_routing(phantoms):
    X, y = phantoms
    sample_weight = np.where(y == 1, 3.0, 1.0)
    direct = MedicalCNNClassifier(**FAST).fit(X, y, sample_weight=sample_weight)
    pipe = make_pipeline(FunctionTransformer(), MedicalCNNClassifier(**FAST))
    pipe.fit(X, y, medicalcnnclassifier__sample_weight=sample_weight)
    np.testing.assert_array_equal(direct.predict_proba(X), pipe.predict_proba(X))
    with config_context(enable_metadata_routing=True):
        clf = MedicalCNNClassifier(**FAST)
        clf.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        scores = cross_validate(
            clf,
            X,
            y,
            cv=StratifiedKFold(2),
            params={"sample_weight": sample_weight},
        )
    assert scores["test_score"].shape == (2,)


@pytest.mark.parametrize(
    ("sample_weight", "message"),
    [
        (-np.ones(64), "Negative values in data passed to `sample_weight`"),
        (np.r_[np.nan, np.ones(63)], "sample_weight contains NaN"),
        (np.ones(3), r"sample_weight.shape == \(3,\), expected \(64,\)"),
        (np.zeros(64), "at least one non-zero"),
        (np.r_[1.0, np.zeros(63)], "at least 2 samples of positive sample_weight"),
    ],
)
def test_bad_sample_weight_is_refused_naming_it(phantoms, sample_weight, message):
    X, y = phantoms
    with pytest.raises(ValueError, match=message):
        MedicalCNNClassifier(**FAST).fit(X, y, sample_weight=sample_weight)


def test_a_custom_loss_module_cannot_take_weights(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(loss=nn.CrossEntropyLoss(), **FAST)
    with pytest.raises(ValueError, match="sample_weight cannot weigh a custom loss"):
        clf.fit(X, y, sample_weight=np.linspace(1, 2, len(y)))
    clf.fit(X, y, sample_weight=np.ones(len(y)))  # equal weights weigh nothing
    assert hasattr(clf, "net_")


@pytest.mark.parametrize("Estimator", [MedicalCNNClassifier, MedicalCNNRegressor])
def test_weighted_fits_save_and_load(Estimator, phantoms, tmp_path):
    import joblib

    from sk_medcnn import load_model, save_model

    X, y = phantoms
    model = Estimator(**FAST).fit(X, y, sample_weight=np.linspace(0.5, 2.0, len(y)))
    save_model(model, tmp_path / "model.skmed")
    joblib.dump(model, tmp_path / "model.joblib")
    for loaded in (
        load_model(tmp_path / "model.skmed"),
        joblib.load(tmp_path / "model.joblib"),
    ):
        np.testing.assert_allclose(loaded.predict(X), model.predict(X))


def test_ensembles_that_pass_weights_train_the_estimator(phantoms):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import AdaBoostClassifier, BaggingClassifier

    X, y = phantoms
    X = X.reshape(len(X), -1)  # BaggingClassifier takes 2-D X only
    sample_weight = np.linspace(0.5, 2.0, len(y))
    member = MedicalCNNClassifier(image_shape=(16, 16), **FAST)
    for ensemble in (
        AdaBoostClassifier(member, n_estimators=2, random_state=0),  # needs weights
        BaggingClassifier(member, n_estimators=2, random_state=0),  # draws as weights
        CalibratedClassifierCV(member, cv=2),
    ):
        ensemble.fit(X, y, sample_weight=sample_weight)
        proba = ensemble.predict_proba(X)
        assert proba.shape == (len(y), 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
