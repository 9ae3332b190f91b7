"""The example scripts in examples/, each run in its quick mode.

examples/train_pneumoniamnist.py (the main job) is imported and run in-process; the
gallery examples (examples/plot_*.py) run as scripts in a subprocess, as a user runs
them. The plugin template has its own test, tests/test_plugin_package.py.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPT = EXAMPLES / "train_pneumoniamnist.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = (
    "learning_curves",
    "confusion_matrix",
    "examples",
    "roc_curve",
    "precision_recall",
    "calibration",
    "explanations",
)
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
    expected = {"report.json", "report.md", "model.skmed", "images"}
    expected |= {f"{name}.png" for name in FIGURES}
    assert names == expected  # and no temporary file left behind
    images = sorted(path.name for path in (quick_report / "images").iterdir())
    assert len(images) == 8
    assert {name.split("_", 2)[2] for name in images} == {"lesion.png", "healthy.png"}


def test_saved_model_serves_the_cli(quick_report, tmp_path, capsys):
    """The demo's model answers `sk-medcnn predict` on the demo's images."""
    from sk_medcnn import load_model
    from sk_medcnn.cli import main

    model = load_model(quick_report / "model.skmed")
    assert model.image_shape_ == (16, 16, 1)
    # fitted on the class names: the table and the maps say "lesion", not 1
    assert model.classes_.tolist() == ["healthy", "lesion"]
    table = tmp_path / "predictions.csv"
    code = main(
        [
            "predict",
            str(quick_report / "model.skmed"),
            str(quick_report / "images"),
            "--output",
            str(table),
        ]
    )
    assert code == 0, capsys.readouterr().err
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8
    truth = ["healthy" not in row["path"] for row in rows]
    predicted = [row["label"] == "lesion" for row in rows]
    assert np.mean(np.equal(truth, predicted)) >= 0.75  # the demo model, on PNGs
    report = json.loads((quick_report / "report.json").read_text(encoding="utf-8"))
    assert report["model"]["next_commands"][0].startswith("sk-medcnn predict ")


def test_demo_model_reads_a_class_folder_without_labels(quick_report, tmp_path):
    """A folder named by class is scored by the demo's model with no --labels."""
    from sk_medcnn.cli import main

    for image in (quick_report / "images").iterdir():
        name = "healthy" if "healthy" in image.name else "lesion"
        (tmp_path / "data" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name / image.name).write_bytes(image.read_bytes())
    output = tmp_path / "eval.json"
    code = main(
        [
            "evaluate",
            str(quick_report / "model.skmed"),
            str(tmp_path / "data"),
            "--bootstraps",
            "20",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    assert json.loads(output.read_text(encoding="utf-8"))["n_samples"] == 8


@pytest.mark.parametrize("on_path", [False, True])
def test_printed_commands_run_without_an_activated_environment(
    tmp_path, monkeypatch, on_path
):
    """`make demo` runs .venv/bin/python: it prints .venv/bin/sk-medcnn then."""
    script = load_script(SCRIPT)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    program = bin_dir / "sk-medcnn"
    program.write_text("#!/bin/sh\n", encoding="utf-8")
    program.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.setenv("PATH", str(bin_dir) if on_path else str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)
    expected = "sk-medcnn" if on_path else os.path.join(".venv", "bin", "sk-medcnn")
    assert script.cli_program() == expected
    commands = script.next_commands(
        Path("m.skmed"), Path("images"), Path("out"), script.cli_program()
    )
    assert all(command.startswith(f"{expected} ") for command in commands)


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
        low, high = report["confidence_intervals"]["intervals"][name]
        assert 0.0 <= low <= report["metrics"][name] <= high <= 1.0, name
    calibration = report["calibration"]
    assert 0.0 <= calibration["expected_calibration_error"] <= 1.0
    assert calibration["temperature"] > 0
    assert 0.0 < report["average_precision"] <= 1.0

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
    assert training["tta"] in ("shifts", None)  # what tta="auto" kept
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
    assert "| ROC AUC |" in text
    assert " to " in text
    assert "sk-medcnn predict" in text
    assert "model.skmed" in text


def test_report_names_no_absolute_path(quick_report, tmp_path):
    """The report shows the data file relative to the current folder, or its name."""
    script = load_script(SCRIPT)
    far = Path("/") / "nowhere" / "deep" / "folder" / "data.npz"
    assert script.display_path(far) == "data.npz"
    near = Path.cwd() / "data" / "x.npz"
    assert script.display_path(near) == str(Path("data") / "x.npz")
    text = (quick_report / "report.md").read_text(encoding="utf-8")
    assert str(quick_report.resolve().parent) not in text.split("## Data")[1]


@pytest.mark.parametrize("name", FIGURES)
def test_figures_are_png(quick_report, name):
    data = (quick_report / f"{name}.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5_000


# --- the gallery examples (examples/plot_*.py), each run once with --quick ------------
ROOT = EXAMPLES.parent
DATA = ROOT.parent / "shared" / "data" / "pneumoniamnist_28_trainval.npz"
GALLERY_TITLE = re.compile(r'^"""\n(?P<title>[^\n]+)\n(?P<underline>=+)\n\n', re.DOTALL)


def run_example(script: Path, output: Path, *arguments: str, quick: bool = True) -> str:
    """Run an example script as a user would (in quick mode); return its stdout."""
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        # two pytest workers on two cores: one torch thread each
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    env.pop("SK_MEDCNN_EXAMPLES_QUICK", None)
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            *(["--quick"] if quick else []),
            "--output",
            str(output),
            *arguments,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600 if quick else 1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


def assert_png(path: Path, min_bytes: int = 5_000) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    assert len(data) > min_bytes, path


def files_in(folder: Path) -> set[str]:
    names = {path.name for path in folder.iterdir()}
    assert not [name for name in names if ".part" in name], names  # atomic writes
    return names


def test_every_example_has_a_gallery_title_and_a_test():
    scripts = sorted(EXAMPLES.glob("*.py")) + sorted(EXAMPLES.glob("*/*.py"))
    tested = {
        "train_pneumoniamnist.py",
        "plot_keras_to_sk_medcnn.py",
        "plot_grid_search.py",
        "plot_dicom_pipeline.py",
        "plot_explanations.py",
        "plot_calibration.py",
        "plot_augmentation_gallery.py",
        "plot_volume_pipeline.py",
        "train_with_tinynet.py",  # tests/test_plugin_package.py
    }
    assert {script.name for script in scripts} - {"__init__.py"} == tested
    for script in scripts:
        if script.name == "__init__.py":
            continue
        match = GALLERY_TITLE.match(script.read_text(encoding="utf-8"))
        assert match, f"{script.name}: the docstring needs a title and a === line"
        assert len(match["underline"]) == len(match["title"]), script.name


def test_keras_to_sk_medcnn(tmp_path):
    stdout = run_example(EXAMPLES / "plot_keras_to_sk_medcnn.py", tmp_path)
    assert files_in(tmp_path) == {
        "report.md",
        "report.json",
        "training_loss.png",
        "roc_curve.png",
    }
    assert "109,442 parameters (Keras, with its one sigmoid unit: 109,313)" in stdout
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["quick"] is True
    assert report["n_parameters"] == 109_442  # the Keras model's 109,313 + 129
    assert report["params"]["architecture"] == "simple_cnn"
    assert report["params"]["architecture_params"] == {"padding": "valid"}
    assert report["params"]["optimizer"] == "adam"
    assert (report["params"]["batch_size"], report["params"]["max_epochs"]) == (32, 3)
    assert report["n_validation"] == 200
    assert sum(map(sum, report["confusion_matrix"])) == report["n_validation"]
    assert set(report["metrics"]) >= {"accuracy", "auc", "sensitivity", "ppv", "npv"}
    for name, estimate in report["metrics"].items():
        for value in estimate.values():
            assert math.isnan(value) or 0.0 <= value <= 1.0, (name, estimate)
    assert report["metrics"]["auc"]["low"] <= report["metrics"]["auc"]["value"]
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Clinical report: 200 samples" in text
    assert "(training_loss.png)" in text
    for name in ("training_loss.png", "roc_curve.png"):
        assert_png(tmp_path / name)


def test_grid_search(tmp_path):
    from sk_medcnn import load_model

    stdout = run_example(EXAMPLES / "plot_grid_search.py", tmp_path)
    assert files_in(tmp_path) == {
        "search_results.png",
        "cv_results.csv",
        "best_pipeline.joblib",
        "best_pipeline.skmed",
    }
    with (tmp_path / "cv_results.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert {(row["augmentation"], float(row["lr"])) for row in rows} == {
        (strength, lr) for strength in ("none", "mild", "strong") for lr in (1e-3, 3e-3)
    }
    assert sorted(int(row["rank"]) for row in rows)[0] == 1
    assert all(0.0 <= float(row["mean_auc"]) <= 1.0 for row in rows)
    assert "largest difference in predicted probability 0.0e+00" in stdout
    assert_png(tmp_path / "search_results.png")
    # the safe file loads here too, into a pipeline that predicts probabilities
    model = load_model(tmp_path / "best_pipeline.skmed")
    assert [name for name, _ in model.steps] == [
        "intensitynormalizer",
        "medicalcnnclassifier",
    ]
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    proba = model.predict_proba(images)
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_dicom_pipeline(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    from sk_medcnn import load_model

    stdout = run_example(EXAMPLES / "plot_dicom_pipeline.py", tmp_path)
    assert files_in(tmp_path) == {
        "dicom",
        "ct_windows.png",
        "test_predictions.png",
        "report.md",
        "dicom_pipeline.skmed",
    }
    original = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    uids = set()
    for label in ("lesion", "no_lesion"):
        paths = sorted((tmp_path / "dicom" / label).glob("*.dcm"))
        assert len(paths) == 30  # 60 files in quick mode, half with a lesion
        for path in paths[:5]:
            dataset = pydicom.dcmread(path)
            assert dataset.Modality == "CT"
            assert dataset.pixel_array.shape == original.pixel_array.shape
            uids.add(dataset.SOPInstanceUID)
    assert len(uids) == 10
    assert original.SOPInstanceUID not in uids
    assert "Clinical report: 18 samples" in stdout  # 30% of 60 files
    assert "not a clinical result" in (tmp_path / "report.md").read_text("utf-8")
    for name in ("ct_windows.png", "test_predictions.png"):
        assert_png(tmp_path / name)
    # the saved Pipeline predicts straight from a DICOM path
    model = load_model(tmp_path / "dicom_pipeline.skmed")
    path = str(next((tmp_path / "dicom" / "lesion").glob("*.dcm")))
    assert model.predict([path])[0] in {"lesion", "no_lesion"}
    assert list(model.classes_) == ["lesion", "no_lesion"]
    # the default augmentation keeps this small set from learning (AUC 0.49 at
    # 20 epochs, 0.85 without): the example turns it off
    assert model[-1].augmentation is None


@pytest.mark.slow
def test_dicom_pipeline_learns_the_discs(tmp_path):
    """The full run finds the painted discs through the window, not at chance."""
    pytest.importorskip("pydicom")
    stdout = run_example(EXAMPLES / "plot_dicom_pipeline.py", tmp_path, quick=False)
    found = re.search(r"test AUC: abdomen window ([\d.]+), full range", stdout)
    assert found is not None, stdout[-2000:]
    assert float(found.group(1)) >= 0.75  # 0.85 measured; 0.49 with augmentation


def test_volume_pipeline(tmp_path):
    nib = pytest.importorskip("nibabel")
    from nibabel.testing import data_path

    from sk_medcnn import load_model
    from sk_medcnn.io import read_volume

    stdout = run_example(EXAMPLES / "plot_volume_pipeline.py", tmp_path)
    assert files_in(tmp_path) == {
        "nifti",
        "masks",
        "scan.png",
        "grad_cam.png",
        "report.md",
        "volume_model.skmed",
    }
    source = nib.load(Path(data_path) / "anatomical.nii")
    lesions = sorted((tmp_path / "nifti" / "lesion").glob("*.nii.gz"))
    normals = sorted((tmp_path / "nifti" / "no_lesion").glob("*.nii.gz"))
    assert len(lesions) == len(normals) == 24  # 48 files in quick mode
    for path in (lesions[0], normals[0]):
        written = nib.load(path)
        assert written.shape == source.shape
        np.testing.assert_allclose(written.affine, source.affine)
    # a mask per file, empty exactly for the files without a lesion
    assert read_volume(tmp_path / "masks" / lesions[0].name).sum() > 0
    assert read_volume(tmp_path / "masks" / normals[0].name).sum() == 0
    assert "spatial_dims_ = 3, image_shape_ = (25, 41, 33, 1)" in stdout
    assert "Clinical report: 15 samples" in stdout  # 30% of 48 files
    # three maps scored by the pointing game on the 8 test volumes with a lesion
    assert len(re.findall(r"peaks in the ball in \d+ of 8 volumes", stdout)) == 3
    for name in ("scan.png", "grad_cam.png"):
        assert_png(tmp_path / name)
    # the saved model predicts straight from a NIfTI path, as a volume model
    model = load_model(tmp_path / "volume_model.skmed")
    assert model.spatial_dims_ == 3
    proba = model.predict_proba([str(lesions[0]), str(normals[0])])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_volume_pipeline_finds_the_balls(tmp_path):
    """The full run finds the painted balls, and Grad-CAM points at them."""
    pytest.importorskip("nibabel")
    stdout = run_example(EXAMPLES / "plot_volume_pipeline.py", tmp_path, quick=False)
    auc = re.search(r"^AUC +([\d.]+)", stdout, re.MULTILINE)
    hits = re.search(
        r"^HiResCAM, layer features.4 +peaks in the ball in (\d+) of (\d+) volumes",
        stdout,
        re.MULTILINE,
    )
    assert auc is not None, stdout[-2000:]
    assert hits is not None, stdout[-2000:]
    assert float(auc.group(1)) >= 0.9  # 1.00 measured; 0.63 with augmentation
    # the half-resolution HiResCAM points at the ball (30 of 30 measured)
    assert int(hits.group(1)) >= 0.8 * int(hits.group(2))


def test_explanations(tmp_path):
    stdout = run_example(EXAMPLES / "plot_explanations.py", tmp_path)
    figures = {"phantom_maps.png", "sanity_check.png", "sanity_check_maps.png"}
    if DATA.is_file():
        figures |= {"xray_maps.png", "xray_saliency.png"}
    assert files_in(tmp_path) == figures
    for name in figures:
        assert_png(tmp_path / name)
    ratios = {}
    for method in ("Grad-CAM", "HiResCAM", "gradient", "SmoothGrad"):
        found = re.search(rf"^{method} +(\d+\.\d) times chance$", stdout, re.MULTILINE)
        assert found, stdout[-2000:]
        ratios[method] = float(found.group(1))
    # two different maps: simple_cnn's flattening head sets them apart
    assert ratios["Grad-CAM"] != ratios["HiResCAM"]
    # one correlation per randomised layer of simple_cnn: 3 convolutions, 2 dense
    rows = re.findall(r"^(HiResCAM|gradient) +((?:-?\d\.\d\d *){5})$", stdout, re.M)
    assert len(rows) == 2


def test_calibration(tmp_path):
    stdout = run_example(EXAMPLES / "plot_calibration.py", tmp_path)
    assert files_in(tmp_path) == {
        "reliability_diagram.png",
        "roc_threshold.png",
        "report.md",
    }
    for name in ("reliability_diagram.png", "roc_threshold.png"):
        assert_png(tmp_path / name)
    threshold = float(re.search(r"tuned threshold: (\S+)", stdout)[1])
    assert 0.0 < threshold < 1.0
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert f"Tuned threshold: {threshold:.3f}" in text
    assert text.count("Clinical report:") == 2
    ece = re.findall(r"^ECE (\d\.\d+) ", stdout, re.MULTILINE)
    assert len(ece) == 3
    assert all(0.0 <= float(value) <= 1.0 for value in ece)


def test_augmentation_gallery(tmp_path):
    run_example(EXAMPLES / "plot_augmentation_gallery.py", tmp_path)
    assert files_in(tmp_path) == {"augmentation_gallery.png", "mixup.png"}
    assert_png(tmp_path / "augmentation_gallery.png", min_bytes=20_000)
    assert_png(tmp_path / "mixup.png")
