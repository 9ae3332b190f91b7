"""The model card recorded in fit, stored by save_model, printed by sk-medcnn info."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

from sk_medcnn import (
    MedicalCNNClassifier,
    MedicalCNNRegressor,
    load_model,
    model_card,
    save_model,
)
from sk_medcnn._card import DEFAULT_INTENDED_USE
from sk_medcnn.cli import main
from sk_medcnn.datasets import make_lesion_phantoms
from sk_medcnn.exceptions import ModelFileError
from sk_medcnn.preprocessing import IntensityNormalizer

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def data():
    X, y = make_lesion_phantoms(120, image_size=16, random_state=0)
    labels = np.array(["benign", "lesion"])[y]
    return X, labels


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return MedicalCNNClassifier(**FAST).fit(X, y)


def test_fit_records_the_data_and_held_out_figures(fitted, data):
    _, y = data
    card = fitted.model_card_
    training = card["training_data"]
    assert training["n_samples"] == 120
    assert training["n_held_out"] == 12  # validation_fraction=0.1
    assert training["n_trained_on"] == 108
    assert training["image_shape"] == [16, 16, 1]
    assert training["class_counts"] == {
        "benign": int(np.sum(y == "benign")),
        "lesion": int(np.sum(y == "lesion")),
    }
    validation = card["validation"]
    assert validation["n_samples"] == 12
    for name in ("accuracy", "auc", "sensitivity", "specificity"):
        low, high = validation[f"{name}_ci95"]
        assert low <= validation[name] <= high
    assert card["temperature"] == fitted.temperature_
    assert card["ood_threshold"] == fitted.ood_threshold_
    assert card["intended_use"] == DEFAULT_INTENDED_USE
    assert card["parameters"]["max_epochs"] == 1


def test_the_fingerprint_follows_the_data(data):
    X, y = data
    first = MedicalCNNClassifier(**FAST).fit(X, y).model_card_["training_data"]
    other = MedicalCNNClassifier(**FAST).fit(X[::-1], y[::-1])
    assert first["fingerprint"] != other.model_card_["training_data"]["fingerprint"]


def test_the_card_reads_as_markdown(fitted):
    text = model_card(fitted)
    assert text.startswith("# Model card: MedicalCNNClassifier (simple_cnn)")
    assert "## Intended use" in text
    assert "Research use only" in text
    assert "- Class counts: benign: " in text
    assert "- auc: " in text
    assert "95% CI" in text
    replaced = model_card(fitted, intended_use="Teaching.", limitations="Toy data.")
    assert "Teaching." in replaced
    assert "Toy data." in replaced
    assert fitted.model_card_["intended_use"] == DEFAULT_INTENDED_USE  # unchanged


def test_without_a_held_out_split_the_card_says_so(data):
    X, y = data
    clf = MedicalCNNClassifier(calibration=None, tta=None, **FAST).fit(X, y)
    assert clf.model_card_["validation"] is None
    assert "No held-out split" in model_card(clf)


def test_a_regressor_and_a_pipeline_have_cards(data):
    X, y = data
    reg = MedicalCNNRegressor(**FAST).fit(X, (y == "lesion").astype(float))
    assert "class_counts" not in reg.model_card_["training_data"]
    assert model_card(reg).startswith("# Model card: MedicalCNNRegressor")
    assert "class_weight" not in reg.model_card_  # nor "- class weight" lines
    assert "- class weight" not in model_card(reg)
    assert "- lr schedule: None" in model_card(reg)
    pipe = make_pipeline(IntensityNormalizer(), MedicalCNNClassifier(**FAST))
    assert "## Training data" in model_card(pipe.fit(X, y))


def test_a_model_without_a_card_is_named(fitted):
    old = copy.deepcopy(fitted)
    del old.model_card_
    with pytest.raises(ValueError, match="has no model card"):
        model_card(old)


def test_an_edited_card_is_saved_and_loaded(fitted, tmp_path):
    clf = copy.deepcopy(fitted)
    clf.model_card_["intended_use"] = "Second reader for chest X-rays, research."
    save_model(clf, tmp_path / "m.skmed")
    loaded = load_model(tmp_path / "m.skmed")
    assert loaded.model_card_ == clf.model_card_
    assert "Second reader" in model_card(loaded)


@pytest.mark.parametrize(
    "card",
    [
        ["not", "a", "dict"],
        {"n": float("nan")},
        {"nested": {"deep": [1, 2, {"x": float("inf")}]}},
        {"ok": np.arange(3)},
    ],
    ids=["list", "nan", "inf-nested", "array"],
)
def test_a_hostile_card_is_refused_at_load(fitted, tmp_path, card):
    clf = copy.deepcopy(fitted)
    clf.model_card_ = card
    save_model(clf, tmp_path / "bad.skmed")
    with pytest.raises(ModelFileError, match="model_card_ must be"):
        load_model(tmp_path / "bad.skmed")


def test_info_prints_a_saved_models_card(fitted, tmp_path, capsys):
    save_model(fitted, tmp_path / "m.skmed")
    assert main(["info", str(tmp_path / "m.skmed")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Model card:")
    assert "## Validation" in out
    old = copy.deepcopy(fitted)
    del old.model_card_
    save_model(old, tmp_path / "old.skmed")
    assert main(["info", str(tmp_path / "old.skmed")]) == 1
    assert "has no model card" in capsys.readouterr().err


def test_onnx_export_carries_the_card(fitted, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from sk_medcnn import export_onnx

    export_onnx(fitted, tmp_path / "m.onnx")
    properties = {
        p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props
    }
    assert properties["model_card"] == model_card(fitted)


def test_bad_arguments_are_named(fitted):
    with pytest.raises(TypeError, match="model must be a fitted"):
        model_card("not a model")
    with pytest.raises(TypeError, match="intended_use must be a str"):
        model_card(fitted, intended_use=3)
    with pytest.raises(TypeError, match="limitations must be a str"):
        model_card(fitted, limitations=["x"])
