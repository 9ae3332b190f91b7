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
from sk_medcnn._engine import WeightedRegressionLoss
from sk_medcnn.augmentation import MixUp
from sk_medcnn.estimators._calibration import fit_temperature
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


def test_loss_weights_have_mean_one_on_each_set():
    from sk_medcnn.estimators._weights import loss_weights as _loss_weights

    weights = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 30.0])
    scaled = _loss_weights(weights, np.array([0, 1, 2, 3]), np.array([4, 5]))
    np.testing.assert_allclose(scaled, [0.4, 0.8, 1.2, 1.6, 0.5, 1.5])


def test_weighted_classification_loss_is_the_weighted_mean_cross_entropy():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, generator=generator)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    loss_weight = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0, 0.5])  # mean 1.333
    rows = torch.nn.functional.one_hot(labels, 3).float() * loss_weight[:, None]
    per_sample = nn.functional.cross_entropy(logits, labels, reduction="none")
    expected = (loss_weight * per_sample).mean()
    torch.testing.assert_close(FocalLoss(gamma=0.0)(logits, rows), expected)


@pytest.mark.parametrize("name", ["mse", "huber"])
def test_weighted_regression_loss_is_the_batch_mean_of_weighted_losses(name):
    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(5, 2, generator=generator) * 3
    values = torch.randn(5, 2, generator=generator)
    loss_weight = torch.tensor([1.0, 0.5, 2.0, 4.0, 1.0])
    function = nn.functional.huber_loss if name == "huber" else nn.functional.mse_loss
    per_sample = function(outputs, values, reduction="none").mean(dim=1)
    targets = torch.cat([values, loss_weight[:, None]], dim=1)
    torch.testing.assert_close(
        WeightedRegressionLoss(name)(outputs, targets),
        (loss_weight * per_sample).mean(),
    )
    # weights 1: torch's own mean loss
    ones = torch.cat([values, torch.ones(5, 1)], dim=1)
    unweighted = (nn.HuberLoss() if name == "huber" else nn.MSELoss())(outputs, values)
    torch.testing.assert_close(WeightedRegressionLoss(name)(outputs, ones), unweighted)
    with pytest.raises(ValueError, match="loss must be"):
        WeightedRegressionLoss("mae")


@pytest.mark.parametrize("class_weight", [None, {0: 1.0, 1: 4.0}])
def test_held_out_loss_is_the_weighted_mean_over_several_batches(class_weight):
    from sk_medcnn.datasets import make_lesion_phantoms

    X, y = make_lesion_phantoms(200, image_size=16, random_state=1)
    sample_weight = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    clf = MedicalCNNClassifier(
        max_epochs=2,
        validation_fraction=0.9,  # 180 held out: two inference batches of <= 128
        calibration="temperature",
        early_stopping=False,
        lr_schedule=None,
        tta=None,
        class_weight=class_weight,
        random_state=0,
        device="cpu",
    ).fit(X, y, sample_weight=sample_weight)
    rows = clf._validation_index
    assert len(rows) > 128
    images = X[rows][..., np.newaxis]  # what fit holds: (n, H, W, C)
    logits = torch.as_tensor(clf._raw_outputs(images, checked=True)[0])
    per_sample = nn.functional.cross_entropy(
        logits.float(), torch.as_tensor(y[rows]), reduction="none"
    ).numpy()
    weight = sample_weight[rows]
    if class_weight is not None:
        weight = weight * np.array([class_weight[label] for label in y[rows]])
    expected = float(np.sum(weight * per_sample) / np.sum(weight))
    assert clf.history_[-1, "valid_loss"] == pytest.approx(expected, rel=1e-5)


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
        (np.array(["a"] * 64), "sample_weight must be 64 non-negative numbers"),
        ([], "sample_weight must be 64 non-negative numbers"),
        (np.r_[np.inf, np.ones(63)], "sample_weight contains infinity"),
    ],
)
def test_bad_sample_weight_is_refused_naming_it(phantoms, sample_weight, message):
    X, y = phantoms
    with pytest.raises(ValueError, match=message):
        MedicalCNNClassifier(**FAST).fit(X, y, sample_weight=sample_weight)


def test_a_custom_loss_module_takes_whole_counts_as_repeated_samples(phantoms):
    X, y = phantoms
    counts = np.random.default_rng(0).integers(0, 3, len(y))  # a bootstrap
    settings = {"loss": nn.CrossEntropyLoss(label_smoothing=0.1), **FAST}
    counted = MedicalCNNClassifier(**settings).fit(X, y, sample_weight=counts)
    rows = np.repeat(np.arange(len(y)), counts)
    repeated = MedicalCNNClassifier(**settings).fit(X[rows], y[rows])
    np.testing.assert_array_equal(counted.predict_proba(X), repeated.predict_proba(X))
    with pytest.raises(ValueError, match="sample_weight cannot weigh a custom loss"):
        MedicalCNNClassifier(**settings).fit(X, y, sample_weight=counts + 0.5)
    MedicalCNNClassifier(**settings).fit(X, y, sample_weight=np.ones(len(y)))


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
