"""Corruption transformers and robustness_report (issue 22, part 2)."""

from __future__ import annotations

import pickle
import warnings

import matplotlib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

import sk_medcnn.robustness as robustness
from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.exceptions import OutOfDistributionWarning
from sk_medcnn.robustness import (
    Contrast,
    GaussianNoise,
    JPEGCompression,
    RobustnessReport,
    default_corruptions,
    robustness_report,
)

matplotlib.use("Agg")

#: every corruption class, from the package's public names
CLASSES = [
    getattr(robustness, name)
    for name in robustness.__all__
    if name[0].isupper() and name != "RobustnessReport"
]


def make(cls, severity=3):
    if "random_state" in cls().get_params():
        return cls(severity, random_state=0)
    return cls(severity)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    X = rng.integers(40, 200, size=(6, 28, 28), dtype=np.uint8)
    X[:, 10:18, 10:18] = 230  # structure for blur, resolution and JPEG to lose
    return X


@pytest.mark.parametrize("cls", CLASSES)
def test_keeps_dtype_and_layout_and_changes_the_image(cls, images):
    corruption = make(cls)
    for X in (images, images[..., None], np.repeat(images[..., None], 3, axis=3)):
        out = corruption.fit_transform(X)
        assert out.dtype == X.dtype
        assert out.shape == X.shape
        assert not np.array_equal(out, X)
    flat = images.reshape(len(images), -1)
    assert corruption.fit_transform(flat).shape == flat.shape
    floats = images.astype(np.float32) / 255
    out = corruption.fit_transform(floats)
    assert out.dtype == np.float32
    assert floats.min() - 1e-6 <= out.min() <= out.max() <= floats.max() + 1e-6


@pytest.mark.parametrize("cls", CLASSES)
def test_higher_severity_corrupts_more(cls, images):
    clean = images.astype(np.float64)
    distance = [
        np.abs(make(cls, s).fit_transform(images).astype(np.float64) - clean).mean()
        for s in (1, 3, 5)
    ]
    assert distance[0] < distance[1] < distance[2], distance


@pytest.mark.parametrize("cls", CLASSES)
def test_deterministic_and_picklable(cls, images):
    corruption = make(cls, 4)
    first = corruption.fit_transform(images)
    np.testing.assert_array_equal(corruption.transform(images), first)
    np.testing.assert_array_equal(clone(corruption).fit_transform(images), first)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(corruption)).fit_transform(images), first
    )


@pytest.mark.parametrize("severity", [0, 6, 2.5, True, "3"])
def test_a_bad_severity_is_named(severity, images):
    with pytest.raises((TypeError, ValueError), match="severity must be an int"):
        Contrast(severity).fit_transform(images)


def test_jpeg_needs_one_or_three_channels(images):
    two = np.stack([images, images], axis=-1)
    # (n, H, W, 2) is read as volumes by default (infer_spatial_dims), so 2-D
    # images of two channels need spatial_dims=2
    with pytest.raises(ValueError, match="1 or 3 channels; got 2"):
        JPEGCompression(spatial_dims=2).fit_transform(two)
    with pytest.raises(ValueError, match="1 or 3 channels; got 2"):
        JPEGCompression().fit_transform(np.stack([two[:, :8, :8]] * 4, axis=1))


def test_random_corruptions_follow_a_random_state_instance(images):
    noise = GaussianNoise(5, random_state=np.random.RandomState(0))
    assert not np.array_equal(noise.fit_transform(images), noise.transform(images))


@parametrize_with_checks([make(cls, 2) for cls in CLASSES])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="X has .* values per row, not a square number"
        )
        check(estimator)


# --- the report -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(max_epochs=3, device="cpu", random_state=0)
    return clf.fit(X[:48], y[:48]), X[48:], y[48:]


def test_report_of_every_default_corruption(fitted):
    clf, X, y = fitted
    with warnings.catch_warnings():  # corrupting on purpose: no OOD warning
        warnings.simplefilter("error", OutOfDistributionWarning)
        report = robustness_report(clf, X, y, severities=[1, 5])
    assert isinstance(report, RobustnessReport)
    assert len(report.rows) == 2 * len(default_corruptions())
    assert report.n_samples == len(y)
    proba = clf.predict_proba(X)
    assert report.clean["accuracy"] == pytest.approx(
        np.mean(clf.classes_[proba.argmax(axis=1)] == y)
    )
    for row in report.rows:
        assert 0 <= row["auc"] <= 1
        assert row["auc_drop"] == pytest.approx(
            (report.clean["auc"] - row["auc"]) / report.clean["auc"]
        )
    worst = report.worst("auc")
    assert worst["auc"] == min(row["auc"] for row in report.rows)
    text = str(report)
    assert text.startswith(f"Robustness report: {len(y)} images;")
    assert "bias_field" in text
    ax = report.plot("accuracy")
    assert len(ax.get_lines()) == len(default_corruptions()) + 1  # and "clean"
    assert list(report.to_frame().columns)[:2] == ["corruption", "severity"]


def test_report_of_a_multiclass_pipeline_and_named_corruptions():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    X = rng.normal(100, 10, size=(90, 8, 8))
    X[y == 1, :4] += 60
    X[y == 2, 4:] += 60
    X = np.clip(X, 0, 255).astype(np.uint8)
    model = make_pipeline(
        FunctionTransformer(lambda images: images.reshape(len(images), -1) / 255),
        LogisticRegression(max_iter=500),
    ).fit(X, y)
    report = robustness_report(
        model, X, y, corruptions={"low contrast": Contrast()}, severities=[1, 3, 5]
    )
    assert [row["corruption"] for row in report.rows] == ["low contrast"] * 3
    assert report.clean["auc"] > 0.9
    assert report.rows[-1]["auc"] <= report.clean["auc"]


def test_report_errors_are_named(fitted):
    clf, X, y = fitted
    with pytest.raises(ValueError, match="at least one corruption"):
        robustness_report(clf, X, y, corruptions={})
    with pytest.raises(ValueError, match="severities must be ints from 1 to 5"):
        robustness_report(clf, X, y, corruptions=[Contrast()], severities=[0])
    with pytest.raises(TypeError, match="no severity"):
        robustness_report(clf, X, y, corruptions=[LogisticRegression()])
    with pytest.raises(ValueError, match="same length"):
        robustness_report(clf, X, y[:3], corruptions=[Contrast()])
    with pytest.raises(ValueError, match="X holds no images"):
        robustness_report(clf, X[:0], y[:0], corruptions=[Contrast()])
    with pytest.raises(TypeError, match="model must be a fitted classifier"):
        robustness_report(None, X, y, corruptions=[Contrast()])
    with pytest.raises(TypeError, match="corruptions must be a dict"):
        robustness_report(clf, X, y, corruptions="contrast")
    with pytest.raises(TypeError, match="severities must be ints"):
        robustness_report(clf, X, y, corruptions=[Contrast()], severities="135")
    report = robustness_report(clf, X, y, corruptions=[Contrast()], severities=[2])
    with pytest.raises(ValueError, match="metric must be"):
        report.worst("f1")
