"""ONNX export: onnxruntime gives what predict_proba (predict) gives, without TTA."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor, export_onnx
from sk_medcnn.cli import main
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.preprocessing import (
    CenterCrop,
    IntensityNormalizer,
    IntensityWindow,
    Resize,
)

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0, "device": "cpu"}
ATOL = 1e-5
PNEUMONIAMNIST = (
    Path(__file__).resolve().parents[2] / "shared/data/pneumoniamnist_28_trainval.npz"
)


@pytest.fixture(scope="module")
def images():
    X, y = make_lesion_phantoms(96, image_size=16, random_state=0)
    return X, y


def _run(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = np.asarray(X, dtype=np.float32)
    if batch.ndim == 3:
        batch = batch[..., None]
    return session.run(None, {"images": batch})[0]


def test_a_classifier_exports_its_probabilities(images, tmp_path):
    X, y = images
    clf = MedicalCNNClassifier(tta="shifts", **FAST).fit(X, y)
    path = export_onnx(clf, tmp_path / "m.onnx")
    assert path == tmp_path / "m.onnx"
    clf.set_params(tta=None)  # the graph has no test-time augmentation
    for rows in (slice(0, 1), slice(0, 9), slice(None)):  # any batch size
        np.testing.assert_allclose(
            _run(path, X[rows]), clf.predict_proba(X[rows]), atol=ATOL
        )
    assert clf.temperature_ != 1.0  # the temperature is in the graph
    properties = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(properties["classes"]) == clf.classes_.tolist()
    assert json.loads(properties["image_shape"]) == [16, 16, 1]
    assert properties["spatial_dims"] == "2"
    assert properties["output"] == "probabilities"
    assert properties["estimator"] == "MedicalCNNClassifier"
    assert float(properties["temperature"]) == clf.temperature_


def test_rgb_images_and_a_resnet(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(40, 32, 32, 3)).astype(np.uint8)
    y = np.arange(40) % 3
    clf = MedicalCNNClassifier("resnet18", tta=None, **FAST).fit(X, y)
    path = export_onnx(clf, tmp_path / "r.onnx")
    np.testing.assert_allclose(_run(path, X[:5]), clf.predict_proba(X[:5]), atol=ATOL)


def test_a_regressor_exports_its_predictions(images, tmp_path):
    X, y = images
    targets = np.c_[y, 2.0 * y + 1]  # two outputs, in their own units
    reg = MedicalCNNRegressor(**FAST).fit(X, targets)
    path = export_onnx(reg, tmp_path / "reg.onnx")
    np.testing.assert_allclose(_run(path, X[:6]), reg.predict(X[:6]), atol=1e-4)


@pytest.mark.parametrize(
    "steps",
    [
        [IntensityNormalizer(), CenterCrop(12)],
        [IntensityWindow(level=100, width=200), IntensityNormalizer(method="minmax")],
        [IntensityNormalizer(per_image=False)],
        [IntensityNormalizer(method="minmax", per_image=False), "passthrough"],
    ],
    ids=["zscore-crop", "window-minmax", "zscore-fitted", "minmax-fitted"],
)
def test_a_pipeline_exports_its_exact_steps(images, tmp_path, steps):
    X, y = images
    X = X.copy()
    X[0] = 7  # a constant image: the normalisers' zero-scale rules
    pipe = make_pipeline(*steps, MedicalCNNClassifier(tta=None, **FAST)).fit(X, y)
    path = export_onnx(pipe, tmp_path / "p.onnx")
    np.testing.assert_allclose(_run(path, X[:8]), pipe.predict_proba(X[:8]), atol=ATOL)


def test_real_chest_x_rays(tmp_path):
    if not PNEUMONIAMNIST.exists():
        pytest.skip("PneumoniaMNIST is not beside the project")
    X, y = load_medmnist(PNEUMONIAMNIST, "train")
    X_val, _ = load_medmnist(PNEUMONIAMNIST, "val")
    clf = MedicalCNNClassifier(tta=None, **FAST).fit(X[:400], y[:400])
    path = export_onnx(clf, tmp_path / "x.onnx")
    np.testing.assert_allclose(
        _run(path, X_val[:64]), clf.predict_proba(X_val[:64]), atol=ATOL
    )


def test_a_step_without_an_exact_onnx_form_is_named(images, tmp_path):
    X, y = images
    pipe = make_pipeline(Resize(12), MedicalCNNClassifier(**FAST)).fit(X, y)
    with pytest.raises(
        ValueError, match=r"step 'resize' \(Resize\) cannot be exported"
    ):
        export_onnx(pipe, tmp_path / "p.onnx")
    percentile = IntensityNormalizer(method="percentile")
    pipe = make_pipeline(percentile, MedicalCNNClassifier(**FAST)).fit(X, y)
    with pytest.raises(ValueError, match="intensitynormalizer"):
        export_onnx(pipe, tmp_path / "p.onnx")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_bad_models_and_paths(images, tmp_path):
    with pytest.raises(NotFittedError):
        export_onnx(MedicalCNNClassifier(), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="got StandardScaler"):
        export_onnx(StandardScaler(), tmp_path / "m.onnx")
    X, y = images
    clf = MedicalCNNClassifier(**FAST).fit(X[:32], y[:32])
    with pytest.raises(FileNotFoundError, match="missing"):
        export_onnx(clf, tmp_path / "missing" / "m.onnx")
    for opset in ("17", 3, True):
        with pytest.raises(ValueError, match="opset_version must be"):
            export_onnx(clf, tmp_path / "m.onnx", opset_version=opset)
    assert list(tmp_path.iterdir()) == []


def test_without_onnx_the_error_says_what_to_install(images, tmp_path, monkeypatch):
    X, y = images
    clf = MedicalCNNClassifier(**FAST).fit(X[:32], y[:32])
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ImportError, match=r"sk-medcnn\[onnx\]"):
        export_onnx(clf, tmp_path / "m.onnx")


def test_the_command_line_exports_a_saved_model(images, tmp_path, capsys):
    from sk_medcnn import save_model

    X, y = images
    clf = MedicalCNNClassifier(tta=None, **FAST).fit(X, y)
    save_model(clf, tmp_path / "m.skmed")
    out = tmp_path / "m.onnx"
    assert main(["export", str(tmp_path / "m.skmed"), "--output", str(out)]) == 0
    assert "probabilities out" in capsys.readouterr().out
    np.testing.assert_allclose(_run(out, X[:4]), clf.predict_proba(X[:4]), atol=ATOL)
    assert (
        main(["export", str(tmp_path / "m.skmed"), "--output", "/no/such/m.onnx"]) == 2
    )
