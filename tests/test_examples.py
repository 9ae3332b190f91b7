"""Smoke test of the example script examples/train_pneumoniamnist.py (--quick)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPT = EXAMPLES / "train_pneumoniamnist.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = ("learning_curves", "confusion_matrix", "examples", "roc_curve")
METRICS = (
    "accuracy",
    "auc",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
)


def load_script(path):
    name = f"_example_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """Run the script once in --quick mode; return its output folder."""
    output = tmp_path_factory.mktemp("demo")
    script = load_script(SCRIPT)
    assert script.main(["--quick", "--output", str(output)]) == 0
    return output


def test_quick_run_writes_every_file(quick_report):
    names = {path.name for path in quick_report.iterdir()}
    expected = {"report.json", "report.md"} | {f"{name}.png" for name in FIGURES}
    assert names == expected  # and no temporary file left behind


def test_report_json(quick_report):
    report = json.loads((quick_report / "report.json").read_text(encoding="utf-8"))
    dataset = report["dataset"]
    assert dataset["synthetic"] is True  # --quick always uses phantoms
    assert (dataset["n_train"], dataset["n_val"]) == (200, 100)
    assert dataset["image_shape"] == [16, 16]
    assert sum(dataset["class_counts"]["val"].values()) == dataset["n_val"]

    for name in METRICS:
        value = report["metrics"][name]
        assert value is None or 0.0 <= value <= 1.0, (name, value)
    for name in ("accuracy", "auc", "sensitivity", "specificity"):
        assert report["metrics"][name] is not None

    matrix = report["confusion_matrix"]
    assert matrix["labels"] == [0, 1]
    assert sum(map(sum, matrix["matrix"])) == dataset["n_val"]
    (tn, fp), (fn, tp) = matrix["matrix"]
    metrics = report["metrics"]
    assert math.isclose(metrics["accuracy"], (tn + tp) / dataset["n_val"])
    assert math.isclose(metrics["sensitivity"], tp / (tp + fn))
    assert math.isclose(metrics["specificity"], tn / (tn + fp))

    training = report["training"]
    assert report["params"]["max_epochs"] == 2
    assert 1 <= training["epochs_trained"] == len(training["history"]) <= 2
    for row in training["history"]:
        assert set(row) >= {"train_loss", "valid_loss", "valid_acc", "dur"}
    assert report["timing"]["fit_s"] > 0
    assert report["timing"]["predict_images_per_s"] > 0
    assert set(report["environment"]["versions"]) >= {
        "sk_medcnn",
        "torch",
        "sklearn",
        "skorch",
    }


def test_report_markdown_links_figures(quick_report):
    text = (quick_report / "report.md").read_text(encoding="utf-8")
    assert "Synthetic data" in text
    for name in FIGURES:
        assert f"({name}.png)" in text


@pytest.mark.parametrize("name", FIGURES)
def test_figures_are_png(quick_report, name):
    data = (quick_report / f"{name}.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5_000
