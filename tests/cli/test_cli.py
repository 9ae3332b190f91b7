"""The sk-medcnn command line, run as the installed console script."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from sk_medcnn.cli import main
from sk_medcnn.datasets import make_lesion_phantoms

SCRIPT = Path(sys.executable).with_name("sk-medcnn")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.fail(f"the console script {SCRIPT} is not installed (pip install -e .)")
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "OMP_NUM_THREADS": "1",
            "PATH": str(SCRIPT.parent),
            # the code under test, when it is not the installed copy
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        },
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """40 PNG phantoms, 16x16, in one subfolder per class."""
    root = tmp_path_factory.mktemp("data")
    X, y = make_lesion_phantoms(40, image_size=16, random_state=0)
    for index, (image, label) in enumerate(zip(X, y, strict=True)):
        name = "lesion" if label else "normal"
        (root / name).mkdir(exist_ok=True)
        iio.imwrite(root / name / f"{index:03d}.png", image)
    return root


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_train_predict_evaluate_explain(folder, tmp_path):
    result = run(
        "train", str(folder), "--output", "model.skmed", "--epochs", "2",
        "--batch-size", "8", "--valid", str(folder), "--bootstraps", "50",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "epoch" in result.stdout  # progress table
    assert "Sensitivity" in result.stdout
    report = json.loads((tmp_path / "model.report.json").read_text())
    assert report["classes"] == ["lesion", "normal"]
    assert report["n_epochs"] == 2
    assert 0.0 <= report["validation"]["metrics"]["auc"]["value"] <= 1.0

    result = run(
        "predict", "model.skmed", str(folder / "lesion"), "--output", "p.csv",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "p.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(list((folder / "lesion").iterdir()))
    assert set(rows[0]) == {
        "path",
        "label",
        "proba_lesion",
        "proba_normal",
        "in_distribution",
        "ood_score",
        "ood_reason",
    }
    # its own data: none unlike it in intensity, few above the learned score's
    # threshold (set to flag 5% of images like the training ones)
    flagged = [row for row in rows if row["in_distribution"] == "no"]
    assert all("training range" not in row["ood_reason"] for row in rows)
    assert len(flagged) <= max(1, 0.2 * len(rows))
    assert all(float(row["ood_score"]) >= 0 for row in rows)
    for row in rows:
        proba = float(row["proba_lesion"]) + float(row["proba_normal"])
        assert proba == pytest.approx(1.0, abs=2e-6)
        assert row["label"] in {"lesion", "normal"}

    result = run(
        "evaluate", "model.skmed", str(folder), "--bootstraps", "50",
        "--output", "eval.json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert evaluation["n_samples"] == 40
    assert np.sum(evaluation["confusion_matrix"]["counts"]) == 40
    unlike = evaluation["out_of_distribution"]
    assert unlike["false_alarm_rate"] == 0.05
    assert 0 <= unlike["n_flagged_by_score"] <= unlike["n_flagged"] <= 40
    assert unlike["share_flagged"] == unlike["n_flagged"] / 40
    assert "Unlike the training images:" in result.stdout

    lesion_files = sorted((folder / "lesion").iterdir())[:2]
    result = run(
        "explain", "model.skmed", *map(str, lesion_files), "--output", "maps",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pictures = sorted((tmp_path / "maps").iterdir())
    assert len(pictures) == 2
    assert all(iio.imread(p).ndim == 3 for p in pictures)


def test_info_lists_architectures(tmp_path):
    result = run("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^  simple_cnn +2-D, 3-D$", result.stdout, re.MULTILINE)
    assert re.search(r"^  resnet18 +2-D, 3-D$", result.stdout, re.MULTILINE)
    assert re.search(r"^  acs_resnet18 +3-D$", result.stdout, re.MULTILINE)
    assert "torch" in result.stdout


def test_a_corrupt_file_gives_one_line_and_writes_nothing(folder, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for sub in ("lesion", "normal"):
        (data / sub).mkdir()
        for source in sorted((folder / sub).iterdir())[:4]:
            (data / sub / source.name).write_bytes(source.read_bytes())
    (data / "lesion" / "bad.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    out = tmp_path / "out"
    out.mkdir()
    result = run("train", str(data), "--output", str(out / "m.skmed"), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bad.dcm" in lines[0]
    assert "Traceback" not in result.stderr
    assert _files(out) == []  # no model, no report, no temporary file

    # --verbose shows the traceback
    result = run(
        "train", str(data), "--output", str(out / "m.skmed"), "--verbose", cwd=tmp_path
    )
    assert "Traceback" in result.stderr


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "missing_folder", "--output", "m.skmed"], "missing_folder"),
        (["predict", "missing.skmed", "x.png", "--output", "p.csv"], "missing.skmed"),
        (["train", "{data}", "--output", "m.txt"], "m.txt"),
        (["train", "{empty}", "--output", "m.skmed"], "empty"),
        (["train", "{data}", "--output", "nodir/m.skmed"], "nodir"),
    ],
)
def test_errors_name_the_file_or_option(folder, tmp_path, capsys, argv, needle):
    (tmp_path / "empty").mkdir()
    argv = [a.format(data=folder, empty=tmp_path / "empty") for a in argv]
    # an output that cannot be written is a bad option value: exit code 2
    code = 2 if needle == "nodir" else 1
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    if code == 2:  # a bad option value: the usage, then one error line
        assert err[0].startswith("usage: sk-medcnn train")
        err = [line for line in err if "error:" in line]
    assert len(err) == 1
    assert needle in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "data", "--output", "m.skmed", "--epochs", "0"],
        ["evaluate", "m.skmed", "data", "--threshold", "2"],
        ["frobnicate"],
        ["predict", "m.skmed"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "explain", "info"])
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert command in capsys.readouterr().out


def test_every_argument_has_a_line_of_help():
    """`sk-medcnn COMMAND --help` explains each argument, positional ones too."""
    import argparse

    from sk_medcnn.cli import build_parser

    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    missing = [
        f"{name} {action.dest}"
        for name, subparser in commands.choices.items()
        for action in subparser._actions
        if not isinstance(action, argparse._HelpAction)
        and action.help is not argparse.SUPPRESS
        and not (action.help or "").strip()
    ]
    assert missing == []


def test_npz_data_and_joblib_models(tmp_path, capsys):
    X, y = make_lesion_phantoms(48, image_size=16, random_state=1)
    np.savez(
        tmp_path / "d.npz",
        train_images=X[:32], train_labels=y[:32, None],
        val_images=X[32:], val_labels=y[32:, None],
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        code = main(
            ["train", "d.npz", "--output", "m.joblib", "--epochs", "1", "--quiet",
             "--bootstraps", "20"]
        )  # fmt: skip
        assert code == 0
        assert main(["evaluate", "m.joblib", "d.npz", "--bootstraps", "20"]) == 0
    out = capsys.readouterr()
    assert "Validation (16 images)" in out.out
    assert "pickle" in out.err  # loading a pickle warns


@pytest.fixture(scope="module")
def small_model(folder, tmp_path_factory):
    """A model trained on the PNG folder (1 epoch), saved in both formats."""
    root = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        argv = ["train", str(folder), "--output", "m.skmed", "--epochs", "1", "--quiet"]
        assert main(argv) == 0
        assert main([*argv[:3], "m.joblib", *argv[4:]]) == 0
    return root


def _one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error:" in line]
    assert len(errors) == 1, err
    assert needle in errors[0], errors[0]
    assert not any("Traceback" in line for line in err)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("text", "not a readable joblib model"),
        ("dict", "holds a dict, not a fitted sk_medcnn model"),
        ("skmed", "rename it to end in .skmed"),
    ],
)
def test_a_bad_joblib_model_gives_one_line(
    folder, small_model, tmp_path, capsys, content, needle
):
    import joblib

    model = tmp_path / "bad.joblib"
    if content == "text":
        model.write_text("not a pickle\n")
    elif content == "dict":
        joblib.dump({"a": 1}, model)
    else:
        model.write_bytes((small_model / "m.skmed").read_bytes())
    argv = ["predict", str(model), str(folder / "lesion"), "--output"]
    assert main([*argv, str(tmp_path / "p.csv")]) == 1
    _one_line_error(capsys, needle)
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--tta", "bogus"], "--tta"),
        (["--resume"], "--resume needs --checkpoint-dir"),
        (["--architecture", "resnet99"], "--architecture"),
        (["--device", "tpu"], "--device tpu"),
        (["--augment", "warp"], "--augment"),
        (["--lr-schedule", "none", "--patience", "0"], "--patience"),
    ],
)
def test_train_options_are_checked_before_reading_data(
    folder, tmp_path, capsys, extra, needle
):
    """A bad option value is a usage error: exit 2, the usage and one error line."""
    argv = ["train", str(folder), "--output", str(tmp_path / "m.skmed"), *extra]
    assert main(argv) == 2
    out = capsys.readouterr()
    assert "Training" not in out.out  # refused before the data were read
    assert out.err.startswith("usage: sk-medcnn train")
    errors = [line for line in out.err.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert needle in errors[0]
    assert list(tmp_path.iterdir()) == []


def test_train_uses_the_estimator_defaults(monkeypatch):
    """The command line reads its defaults from the estimator, not from copies."""
    from sk_medcnn import MedicalCNNClassifier
    from sk_medcnn.cli import _estimator_defaults, build_parser

    defaults = MedicalCNNClassifier().get_params(deep=False)
    assert _estimator_defaults() == defaults
    args = build_parser().parse_args(["train", "data", "--output", "m.skmed"])
    assert args.epochs == defaults["max_epochs"]
    assert args.batch_size == defaults["batch_size"]
    assert args.lr == defaults["lr"]
    assert args.device == defaults["device"]
    assert args.early_stopping == defaults["early_stopping"]
    for option, name in (
        ("lr_schedule", "lr_schedule"),
        ("tta", "tta"),
        ("calibration", "calibration"),
        ("class_weight", "class_weight"),
    ):
        assert getattr(args, option) == (defaults[name] or "none"), option

    # another default in the estimator is the command line's default too
    changed = {**defaults, "max_epochs": 7, "tta": None, "lr_schedule": "step"}
    # patched where build_parser looks it up, in the parser's module
    monkeypatch.setattr("sk_medcnn.cli._parser._estimator_defaults", lambda: changed)
    args = build_parser().parse_args(["train", "data", "--output", "m.skmed"])
    assert (args.epochs, args.tta, args.lr_schedule) == (7, "none", "step")


def test_train_help_shows_every_default(capsys):
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--epochs EPOCHS", "--lr LR", "--tta TTA", "--device DEVICE"):
        assert option in text
    from sk_medcnn import MedicalCNNClassifier

    defaults = MedicalCNNClassifier().get_params(deep=False)
    assert f"(default: {defaults['max_epochs']})" in text
    assert f"(default: {defaults['device']})" in text


def test_out_is_a_deprecated_alias_of_output(folder, tmp_path, capsys):
    from sk_medcnn.cli import build_parser

    args = build_parser().parse_args(["train", "data", "--out", "m.skmed"])
    assert args.output == "m.skmed"
    assert "--out is deprecated" in capsys.readouterr().err
    assert main(["train", str(folder)]) == 2
    assert "required: --output" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["train", "data", "--output", "m.skmed", "--epocs", "3"], "--epochs"),
        (["predict", "m.skmed", "x.png", "--ouput", "p.csv"], "--output"),
        (
            ["explain", "m.skmed", "x.png", "--output", "maps", "--methd", "x"],
            "--method",
        ),
    ],
)
def test_a_misspelt_option_suggests_the_closest(argv, suggestion, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: sk-medcnn {argv[0]}")  # the subcommand's usage
    assert f"did you mean {suggestion}?" in err


def test_version_names_torch_and_the_device(capsys):
    import torch

    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__}" in out
    assert "device " in out


def test_predict_and_explain_can_skip_unreadable_files(
    folder, small_model, tmp_path, capsys
):
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted((folder / "lesion").iterdir())[:3]:
        (images / source.name).write_bytes(source.read_bytes())
    (images / "broken.png").write_bytes(b"not a png")
    model = str(small_model / "m.skmed")
    csv_path = tmp_path / "p.csv"
    assert main(["predict", model, str(images), "--output", str(csv_path)]) == 1
    _one_line_error(capsys, "broken.png")
    argv = ["predict", model, str(images), "--output", str(csv_path)]
    assert main([*argv, "--on-error", "skip"]) == 0
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(Path(row["path"]).name for row in rows) == sorted(
        p.name for p in images.iterdir() if p.name != "broken.png"
    )
    assert "broken.png" in capsys.readouterr().err  # the skip is reported

    maps = tmp_path / "maps"
    assert main(["explain", model, str(images), "--output", str(maps)]) == 1
    assert not maps.exists()  # a failed run leaves no folder behind
    argv = ["explain", model, str(images), "--output", str(maps), "--on-error", "skip"]
    assert main(argv) == 0
    assert len(list(maps.iterdir())) == 3


def test_outputs_are_checked_before_the_work(folder, small_model, tmp_path, capsys):
    model = str(small_model / "m.skmed")
    taken = tmp_path / "notes.txt"
    taken.write_text("keep me")
    argv = ["explain", model, str(folder / "lesion"), "--output", str(taken)]
    assert main(argv) == 2
    _one_line_error(capsys, "--output")
    assert taken.read_text() == "keep me"
    argv = ["evaluate", model, str(folder), "--output", str(tmp_path / "no" / "e.json")]
    assert main(argv) == 2
    out = capsys.readouterr()
    assert "Sensitivity" not in out.out  # refused before evaluating
    assert "--output" in out.err


def test_reports_use_plain_values():
    from sk_medcnn import MedicalCNNClassifier
    from sk_medcnn.cli import evaluation

    X, y = make_lesion_phantoms(40, image_size=16, random_state=0)
    model = MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X, y)
    document, text = evaluation(model, X, y, n_bootstraps=20)
    assert type(document["positive_class"]) is int
    assert "np." not in text


def test_a_path_reading_pipeline_skips_with_its_own_loader(folder, tmp_path, capsys):
    from sklearn.pipeline import make_pipeline

    from sk_medcnn import MedicalCNNClassifier, save_model
    from sk_medcnn.io import ImageLoader, load_image_folder

    paths, labels = load_image_folder(folder, lazy=True)
    pipe = make_pipeline(
        ImageLoader(shape=(16, 16)), MedicalCNNClassifier(max_epochs=1, random_state=0)
    ).fit(np.asarray(paths, dtype=object), labels)
    save_model(pipe, tmp_path / "pipe.skmed")
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted((folder / "normal").iterdir())[:2]:
        (images / source.name).write_bytes(source.read_bytes())
    (images / "broken.png").write_bytes(b"not a png")
    csv_path = tmp_path / "p.csv"
    argv = ["predict", str(tmp_path / "pipe.skmed"), str(images), "--output"]
    assert main([*argv, str(csv_path), "--on-error", "skip"]) == 0
    with open(csv_path, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    assert "broken.png" in capsys.readouterr().err
    # explain creates the output folder, parents included, once the maps exist
    maps = tmp_path / "new" / "maps"
    argv = ["explain", str(tmp_path / "pipe.skmed"), str(images), "--output"]
    assert main([*argv, str(maps), "--on-error", "skip"]) == 0
    assert len(list(maps.iterdir())) == 2


# --- hardening (issue 23) ---------------------------------------------------------
@contextlib.contextmanager
def _unprivileged():
    """Run the block as user ``nobody`` when root (permissions bind it then)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["train", "{data}", "--output", "{file}/m.skmed"], "--output"),
        (
            ["train", "{data}", "--output", "m.skmed", "--report", "{file}/r.json"],
            "--report",
        ),
        (["train", "{data}", "--output", "m.skmed", "--report", "{dir}"], "--report"),
        (
            ["train", "{data}", "--output", "m.skmed", "--checkpoint-dir", "{file}/ck"],
            "--checkpoint-dir",
        ),
        (["train", "{data}", "--output", "{readonly}"], "--output"),
        (["evaluate", "{model}", "{data}", "--output", "{file}/e.json"], "--output"),
        (["predict", "{model}", "{data}", "--output", "{file}/p.csv"], "--output"),
        (["predict", "{model}", "{data}", "--output", "{readonly}"], "--output"),
        (["explain", "{model}", "{data}", "--output", "{file}/maps"], "--output"),
    ],
)
def test_unwritable_outputs_are_refused_before_the_work(
    folder, small_model, tmp_path, capsys, argv, option
):
    (tmp_path / "notes.txt").write_text("a file")
    (tmp_path / "taken").mkdir()
    readonly = tmp_path / "readonly.skmed"
    readonly.write_text("keep me")
    readonly.chmod(0o444)
    names = {
        "data": folder,
        "model": small_model / "m.skmed",
        "file": tmp_path / "notes.txt",
        "dir": tmp_path / "taken",
        "readonly": readonly,
    }
    argv = [a.format(**names) for a in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        assert main(argv) == 2
    out = capsys.readouterr()
    assert "Training" not in out.out  # refused before the data were read
    errors = [line for line in out.err.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert f"{option} " in errors[0]
    assert "Traceback" not in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert readonly.read_text() == "keep me"


def test_a_read_only_folder_is_refused_before_training(folder, capsys):
    # tmp_path's parents are root's (0700): a folder nobody can reach
    root = Path(tempfile.mkdtemp(prefix="sk_medcnn_cli_ro_"))
    try:
        root.chmod(0o755)
        locked = root / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        argv = [
            "train",
            str(folder),
            "--output",
            str(locked / "m.skmed"),
            "--epochs",
            "1",
        ]
        with _unprivileged():
            code = main(argv)
        assert code == 2
        out = capsys.readouterr()
        assert "Training" not in out.out
        assert "--out" in out.err
        assert "Permission denied" in out.err
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(root)


@pytest.mark.parametrize(
    ("inputs", "needle"),
    [
        ("/dev/null", "/dev/null: not a regular file or folder (a character device)"),
        ("{file}/x.png", "notes.txt is a file, not a folder"),
        ("{missing}", "no such file or folder"),
    ],
)
def test_predict_says_what_is_wrong_with_an_input(
    small_model, tmp_path, capsys, inputs, needle
):
    (tmp_path / "notes.txt").write_text("a file")
    names = {"file": tmp_path / "notes.txt", "missing": tmp_path / "missing.png"}
    argv = ["predict", str(small_model / "m.skmed"), inputs.format(**names)]
    assert main([*argv, "--output", str(tmp_path / "p.csv")]) == 1
    _one_line_error(capsys, needle)


def test_an_image_size_beyond_memory_is_refused_up_front(folder, tmp_path, capsys):
    argv = ["train", str(folder), "--output", str(tmp_path / "m.skmed")]
    assert main([*argv, "--image-size", "100000"]) == 2
    out = capsys.readouterr()
    assert "Training" not in out.out
    _one_line_error_text = [line for line in out.err.splitlines() if "error:" in line]
    assert len(_one_line_error_text) == 1
    assert "--image-size 100000: " in _one_line_error_text[0]
    assert "TiB of memory" in _one_line_error_text[0]
    assert list(tmp_path.iterdir()) == []


def test_a_memory_error_is_one_line(folder, tmp_path, capsys, monkeypatch):
    from sk_medcnn.cli import _train  # where command_train looks load_data up

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 9.31 GiB")

    monkeypatch.setattr(_train, "load_data", exhausted)
    assert main(["train", str(folder), "--output", str(tmp_path / "m.skmed")]) == 1
    _one_line_error(capsys, "out of memory (Unable to allocate 9.31 GiB)")


def test_predict_flags_a_ct_in_hounsfield_units(folder, small_model, tmp_path, capsys):
    """A head CT given to a model of 8-bit images is flagged, with the reason."""
    pydicom_data = pytest.importorskip("pydicom.data")
    ct = pydicom_data.get_testdata_file("CT_small.dcm")
    images = tmp_path / "images"
    images.mkdir()
    (images / "ct.dcm").write_bytes(Path(ct).read_bytes())
    source = sorted((folder / "lesion").iterdir())[0]
    (images / "xray.png").write_bytes(source.read_bytes())
    csv_path = tmp_path / "p.csv"
    argv = ["predict", str(small_model / "m.skmed"), str(images), "--output"]
    assert main([*argv, str(csv_path)]) == 0
    with open(csv_path, newline="") as handle:
        rows = {Path(row["path"]).name: row for row in csv.DictReader(handle)}
    assert rows["ct.dcm"]["in_distribution"] == "no"
    assert "training range" in rows["ct.dcm"]["ood_reason"]
    assert float(rows["ct.dcm"]["ood_score"]) > float(rows["xray.png"]["ood_score"])
    assert rows["xray.png"]["in_distribution"] == "yes"
    assert rows["xray.png"]["ood_reason"] == ""
    out = capsys.readouterr().out
    assert "1 image unlike the training images" in out
    assert "ct.dcm" in out


def test_explain_methods_target_and_blank_maps(small_model, folder, tmp_path, capsys):
    model = str(small_model / "m.skmed")
    files = [str(path) for path in sorted((folder / "normal").iterdir())[:2]]
    for method in ("hires_cam", "grad_cam", "gradient"):
        maps = tmp_path / method
        argv = ["explain", model, *files, "--output", str(maps), "--method", method]
        assert main([*argv, "--target", "lesion"]) == 0
        names = sorted(path.name for path in maps.iterdir())
        assert len(names) == 2
        assert all(name.endswith(f"_{method}.png") for name in names)
    capsys.readouterr()
    argv = ["explain", model, *files, "--output", str(tmp_path / "x")]
    assert main([*argv, "--target", "tumour"]) == 2
    assert "--target tumour: not a class" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_evaluate_maps_folder_names_onto_npz_labels(folder, tmp_path, capsys):
    """A model trained on 0/1 labels is evaluated on a folder of named classes."""
    X, y = make_lesion_phantoms(40, image_size=16, random_state=0)
    np.savez(tmp_path / "d.npz", train_images=X, train_labels=y[:, None])
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        argv = ["train", "d.npz", "--output", "m.skmed", "--epochs", "1", "--quiet"]
        assert main(argv) == 0
        evaluate = ["evaluate", "m.skmed", str(folder), "--bootstraps", "20"]
        assert main(evaluate) == 1
        assert "--labels" in capsys.readouterr().err  # the error says how
        assert main([*evaluate, "--labels", "normal=0,lesion=1"]) == 0
        assert "40 images" in capsys.readouterr().out
        assert main([*evaluate, "--labels", "normal=0,lesion=7"]) == 2
        assert main([*evaluate, "--labels", "normal=0"]) == 2
        assert "no class given for the labels ['lesion']" in capsys.readouterr().err
