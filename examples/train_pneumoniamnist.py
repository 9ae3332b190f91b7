"""
The main job: train on PneumoniaMNIST and write a report
========================================================

The project's main job (``make demo``): fit
``MedicalCNNClassifier(architecture="simple_cnn")`` with the library's defaults
(Adam, batch 32, 20 epochs of cosine annealing, a temperature fitted on a
held-out 10 % of the training split, predictions averaged over shifted copies
of each image) on the official PneumoniaMNIST 28x28 train split, then evaluate
it on the official validation split. The test split is not used.

The data file is read from ``../shared/data/pneumoniamnist_28_trainval.npz``
relative to the project root (or ``--data PATH``). Without it the script falls
back to synthetic lesion phantoms (``sk_medcnn.datasets.make_lesion_phantoms``)
and says so in the log and in the report.

Output, in ``--output DIR`` (default ``reports/demo``), each file written
atomically (``report.json`` last, so its presence means a complete run):

- ``report.json``: data set, parameters, metrics with 95% confidence intervals,
  calibration error, confusion matrix, timings, per-epoch history and versions;
- ``report.md``: the same as readable tables, linking the pictures;
- ``learning_curves.png``, ``confusion_matrix.png``, ``roc_curve.png``,
  ``precision_recall.png``, ``calibration.png``, ``examples.png`` and
  ``explanations.png`` (HiResCAM maps);
- ``model.skmed``, the fitted model, whose classes are the class names
  (``normal``, ``pneumonia``), and ``images/``, eight validation images as PNG
  files, for ``sk-medcnn predict`` and ``sk-medcnn explain``.

Run from the project root::

    python examples/train_pneumoniamnist.py --output reports/demo  # 1-2 min
    python examples/train_pneumoniamnist.py --quick --output /tmp/demo  # ~20 s
"""

# sphinx_gallery_thumbnail_path = "_static/demo_examples.png"

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import logging
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skorch
import torch
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

import sk_medcnn
from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.inspection import (
    plot_explanations,
    plot_reliability_diagram,
    plot_roc,
)
from sk_medcnn.io import atomic_open
from sk_medcnn.metrics import clinical_report, expected_calibration_error

logger = logging.getLogger("train_pneumoniamnist")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    PROJECT_ROOT.parent / "shared" / "data" / "pneumoniamnist_28_trainval.npz"
)
DEFAULT_OUTPUT = Path("reports") / "demo"

POSITIVE_LABEL = 1
LABELS = (0, 1)
PNEUMONIA_NAMES = {0: "normal", 1: "pneumonia"}
# names in the labels' order: the model, fitted on the names, encodes them as 0, 1
PHANTOM_NAMES = {0: "healthy", 1: "lesion"}

# Fallback data: synthetic phantoms (full run, and the tiny --quick run).
PHANTOM_SIZES = {"full": (2000, 500, 28), "quick": (200, 100, 16)}
PHANTOM_RANDOM_STATE = 0
QUICK_MAX_EPOCHS = 2
DEFAULT_MAX_EPOCHS = MedicalCNNClassifier().max_epochs
N_EXAMPLES = 16  # validation images in examples.png
N_MISCLASSIFIED = 4  # of which at most this many are errors
N_EXPLAINED = 8  # of the example images, also drawn with their HiResCAM maps
N_BOOTSTRAPS = 1000  # resamples for the 95% confidence intervals
N_SAMPLE_IMAGES_PER_CLASS = 4  # PNG files written for `sk-medcnn predict`

MODEL_FILE_NAME = "model.skmed"
FIGURES = {
    "learning_curves": "learning_curves.png",
    "confusion_matrix": "confusion_matrix.png",
    "examples": "examples.png",
    "roc_curve": "roc_curve.png",
    "precision_recall": "precision_recall.png",
    "calibration": "calibration.png",
    "explanations": "explanations.png",
}


# --- command line ------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        description=(
            "Train the reference CNN on PneumoniaMNIST (28x28 train split), "
            "evaluate it on the validation split and write a report."
        )
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="PATH",
        help=(
            "PneumoniaMNIST .npz file in the MedMNIST layout (default: "
            f"{DEFAULT_DATA} if it exists, else synthetic lesion phantoms)"
        ),
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help=f"folder for the report and the pictures (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help=(
            f"maximum training epochs (default: {DEFAULT_MAX_EPOCHS}, "
            f"{QUICK_MAX_EPOCHS} with --quick)"
        ),
    )
    parser.add_argument(
        "--architecture",
        default="simple_cnn",
        help="registered architecture name (default: simple_cnn)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random_state of the model (default: 0)"
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="'auto' (default), 'cpu', 'cuda', ...",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="PATH",
        help=(
            "where to save the fitted model in the safe .skmed format, for "
            "`sk-medcnn predict` and `sk-medcnn explain` (default: "
            f"{MODEL_FILE_NAME} in the output folder)"
        ),
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no epoch lines while training (default: one line per epoch)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            "tiny smoke run: 200/100 lesion phantoms of 16x16 pixels, "
            f"{QUICK_MAX_EPOCHS} epochs (ignores the data file)"
        ),
    )
    return parser


# --- data --------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_data(
    data: Path | None, *, quick: bool
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any], dict[str, Any]]:
    """Return ``X_train, y_train, X_val, y_val`` and a description of the data."""
    if not quick:
        path = DEFAULT_DATA if data is None else data
        if path.is_file():
            logger.info("Reading PneumoniaMNIST from %s", path)
            X_train, y_train = load_medmnist(path, "train")
            X_val, y_val = load_medmnist(path, "val")
            info = {
                "name": "PneumoniaMNIST",
                "source": display_path(path),
                "sha256": _sha256(path),
                "synthetic": False,
                "splits": "official train split / official validation split",
                "class_names": PNEUMONIA_NAMES,
            }
            return X_train, y_train, X_val, y_val, info
        logger.warning(
            "PneumoniaMNIST file %s not found: FALLING BACK to synthetic lesion "
            "phantoms; the metrics below are not PneumoniaMNIST results.",
            path,
        )
    n_train, n_val, image_size = PHANTOM_SIZES["quick" if quick else "full"]
    logger.info(
        "Generating lesion phantoms (make_lesion_phantoms): %d train / %d val, "
        "%dx%d pixels, random_state=%d",
        n_train,
        n_val,
        image_size,
        image_size,
        PHANTOM_RANDOM_STATE,
    )
    X, y = make_lesion_phantoms(
        n_train + n_val, image_size=image_size, random_state=PHANTOM_RANDOM_STATE
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=n_val, stratify=y, random_state=PHANTOM_RANDOM_STATE
    )
    info = {
        "name": "lesion phantoms (synthetic)",
        "source": (
            f"sk_medcnn.datasets.make_lesion_phantoms({n_train + n_val}, "
            f"image_size={image_size}, random_state={PHANTOM_RANDOM_STATE}), "
            f"stratified split {n_train} / {n_val}"
        ),
        "sha256": None,
        "synthetic": True,
        "splits": "stratified random split of one generated set",
        "class_names": PHANTOM_NAMES,
    }
    return X_train, y_train, X_val, y_val, info


def display_path(path: Path) -> str:
    """``path`` relative to the current folder, or its file name alone.

    The report is shared: it names the file relative to the current folder
    (``../shared/data/...`` at most), never the absolute folders of the machine
    that wrote it; the SHA-256 identifies the data.
    """
    relative = Path(os.path.relpath(path.resolve(), Path.cwd().resolve()))
    if relative.parts[:2] == ("..", ".."):  # far away: its folders say nothing
        return path.name
    return str(relative)


def class_counts(y: NDArray[Any], names: dict[int, str]) -> dict[str, int]:
    """Count the samples of each class, by class name."""
    values, counts = np.unique(y, return_counts=True)
    found = dict(zip(values.tolist(), counts.tolist(), strict=True))
    return {names[label]: int(found.get(label, 0)) for label in LABELS}


# --- evaluation ----------------------------------------------------------------
def compute_metrics(
    y_true: NDArray[Any], y_pred: NDArray[Any], p_positive: NDArray[Any]
) -> dict[str, float | None]:
    """Binary classification metrics; label 1 is the positive class."""
    negative = LABELS[0]
    # zero_division=nan: a class never predicted gives an undefined PPV / NPV
    # (reported as null), not a made-up 0.
    metrics = {
        "accuracy": accuracy_score(y_true, y_pred),
        "auc": roc_auc_score(y_true, p_positive),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "sensitivity": recall_score(y_true, y_pred, pos_label=POSITIVE_LABEL),
        "specificity": recall_score(y_true, y_pred, pos_label=negative),
        "ppv": precision_score(
            y_true, y_pred, pos_label=POSITIVE_LABEL, zero_division=np.nan
        ),
        "npv": precision_score(
            y_true, y_pred, pos_label=negative, zero_division=np.nan
        ),
        "f1": f1_score(y_true, y_pred, pos_label=POSITIVE_LABEL, zero_division=np.nan),
    }
    return {
        name: None if math.isnan(value) else float(value)
        for name, value in metrics.items()
    }


def history_records(clf: MedicalCNNClassifier) -> list[dict[str, Any]]:
    """Per-epoch records of the fitted classifier's skorch history."""
    keys = ("epoch", "train_loss", "valid_loss", "valid_acc", "dur")
    rows = clf.history_[:, keys]
    best = clf.history_[:, "valid_loss_best"]
    return [
        {
            **{
                key: (int(v) if key == "epoch" else float(v))
                for key, v in zip(keys, row, strict=True)
            },
            "valid_loss_best": bool(is_best),
        }
        for row, is_best in zip(rows, best, strict=True)
    ]


# --- files -------------------------------------------------------------------
def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over."""
    with atomic_open(path, "wb") as file:
        file.write(data)


def save_figure(figure: Any, path: Path) -> None:
    """Render a matplotlib figure to PNG and write it atomically."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    write_atomic(path, buffer.getvalue())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)  # e.g. an optimizer class or a torch.device


# --- pictures ------------------------------------------------------------------
def plot_learning_curves(
    history: list[dict[str, Any]],
    validation_fraction: float,
    restored_epoch: int | None,
    path: Path,
) -> None:
    """Training and held-out loss, and held-out accuracy, by epoch."""
    import matplotlib.pyplot as plt

    held_out = f"held-out {validation_fraction:.0%} of train"
    epochs = [row["epoch"] for row in history]
    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axes.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    loss_axes.plot(epochs, [r["valid_loss"] for r in history], "s-", label=held_out)
    acc_axes.plot(
        epochs,
        [r["valid_acc"] for r in history],
        "s-",
        color="tab:orange",
        label=held_out,
    )
    for axes in (loss_axes, acc_axes):
        if restored_epoch is not None:
            axes.axvline(
                restored_epoch,
                color="grey",
                linestyle="--",
                linewidth=1,
                label=f"restored epoch ({restored_epoch})",
            )
        axes.set_xlabel("epoch")
        # integer ticks, as many as fit: 20+ epoch labels would overlap
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
        axes.grid(alpha=0.3)
        axes.legend()
    loss_axes.set_ylabel("cross-entropy loss")
    loss_axes.set_title("Loss")
    acc_axes.set_ylabel("accuracy")
    acc_axes.set_title("Accuracy")
    figure.tight_layout()
    save_figure(figure, path)


def plot_confusion_matrix(
    y_true: NDArray[Any], y_pred: NDArray[Any], names: dict[int, str], path: Path
) -> None:
    """Confusion matrix of the validation split (counts)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=list(LABELS),
        display_labels=[names[label] for label in LABELS],
        cmap="Blues",
        colorbar=False,
        ax=axes,
    )
    axes.set_title("Validation confusion matrix")
    figure.tight_layout()
    save_figure(figure, path)


def plot_roc_curve(
    y_true: NDArray[Any], p_positive: NDArray[Any], name: str, path: Path
) -> None:
    """ROC curve of the validation split, with the 0.5 operating point.

    :func:`sk_medcnn.inspection.plot_roc` prints the AUC with three digits, as
    the report does (scikit-learn's ``RocCurveDisplay`` rounds it to two).
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    plot_roc(
        y_true, p_positive, threshold=0.5, pos_label=POSITIVE_LABEL, ax=axes, name=name
    )
    axes.set_title("Validation ROC curve")
    figure.tight_layout()
    save_figure(figure, path)


def plot_precision_recall(
    y_true: NDArray[Any], p_positive: NDArray[Any], name: str, path: Path
) -> float:
    """Precision-recall curve of the validation split; return the average precision.

    With a prevalence far from one half, precision (PPV) against recall
    (sensitivity) shows what the ROC curve hides: how many positive calls are
    right.
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    display = PrecisionRecallDisplay.from_predictions(
        y_true,
        p_positive,
        pos_label=POSITIVE_LABEL,
        name=name,
        ax=axes,
        plot_chance_level=True,
    )
    average_precision = float(display.average_precision)
    axes.legend(
        [f"{name} (AP = {average_precision:.3f})", "chance (prevalence)"],
        loc="lower left",
    )
    axes.set_xlabel("recall (sensitivity)")
    axes.set_ylabel("precision (PPV)")
    axes.set_title("Validation precision-recall curve")
    figure.tight_layout()
    save_figure(figure, path)
    return average_precision


def plot_calibration(
    y_true: NDArray[Any],
    p_positive: NDArray[Any],
    name: str,
    names: dict[int, str],
    path: Path,
) -> float:
    """Reliability diagram of the validation split; return the ECE."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    plot_reliability_diagram(
        y_true, p_positive, n_bins=10, pos_label=POSITIVE_LABEL, ax=axes, name=name
    )
    positive = names[POSITIVE_LABEL]
    axes.set_xlabel(f"predicted probability of {positive}")
    axes.set_ylabel(f"observed frequency of {positive}")
    axes.set_title("Validation calibration (10 bins)")
    figure.tight_layout()
    save_figure(figure, path)
    return float(
        expected_calibration_error(
            y_true, p_positive, n_bins=10, pos_label=POSITIVE_LABEL
        )
    )


def plot_explanation_panels(
    clf: MedicalCNNClassifier,
    X: NDArray[Any],
    y_true: NDArray[Any],
    names: dict[int, str],
    indices: NDArray[Any],
    path: Path,
) -> None:
    """HiResCAM maps of the predicted class over a few validation images.

    ``clf`` was fitted on the class names, ``y_true`` holds the data's labels.
    """
    figure = plot_explanations(
        clf,
        X[indices],
        method="hires_cam",
        y_true=[names[int(label)] for label in y_true[indices]],
    )
    save_figure(figure, path)


def plot_examples(
    X: NDArray[Any],
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    p_positive: NDArray[Any],
    names: dict[int, str],
    indices: NDArray[Any],
    path: Path,
) -> None:
    """A grid of validation images: true and predicted label, P(positive)."""
    import matplotlib.pyplot as plt

    n_columns = 4
    n_rows = math.ceil(len(indices) / n_columns)
    figure, axes_grid = plt.subplots(
        n_rows, n_columns, figsize=(2.2 * n_columns, 2.8 * n_rows), squeeze=False
    )
    images = np.asarray(X)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    value_range = (0, 255) if images.dtype == np.uint8 else (None, None)
    positive_name = names[POSITIVE_LABEL]
    for axes in axes_grid.ravel():
        axes.axis("off")
    for axes, index in zip(axes_grid.ravel(), indices, strict=False):
        wrong = y_pred[index] != y_true[index]
        axes.imshow(
            images[index],
            cmap="gray",
            vmin=value_range[0],
            vmax=value_range[1],
            interpolation="nearest",
        )
        axes.set_title(
            f"#{index}  true: {names[int(y_true[index])]}\n"
            f"pred: {names[int(y_pred[index])]}\n"
            f"P({positive_name}) = {p_positive[index]:.2f}",
            fontsize=8,
            color="tab:red" if wrong else "black",
            fontweight="bold" if wrong else "normal",
        )
    n_wrong = int(np.count_nonzero(y_pred[indices] != y_true[indices]))
    figure.suptitle(
        f"{len(indices)} validation images: {n_wrong} misclassified (red), "
        "the others drawn at random",
        fontsize=10,
    )
    figure.tight_layout()
    save_figure(figure, path)


def choose_examples(
    y_true: NDArray[Any], y_pred: NDArray[Any], *, seed: int
) -> NDArray[np.intp]:
    """Pick up to ``N_MISCLASSIFIED`` errors, then random images up to ``N_EXAMPLES``.

    A purely random grid of a 97 % accurate model rarely shows an error; the
    errors are the interesting part, so a few are always included.
    """
    rng = np.random.default_rng(seed)
    wrong = np.flatnonzero(y_pred != y_true)
    right = np.flatnonzero(y_pred == y_true)
    n_wrong = min(N_MISCLASSIFIED, len(wrong))
    n_right = min(N_EXAMPLES - n_wrong, len(right))
    chosen = np.concatenate(
        [
            rng.choice(wrong, size=n_wrong, replace=False),
            rng.choice(right, size=n_right, replace=False),
        ]
    )
    return np.sort(chosen).astype(np.intp)


def write_sample_images(
    X: NDArray[Any], y: NDArray[Any], names: dict[int, str], folder: Path
) -> list[str]:
    """Write the first validation images of each class as PNG files.

    They give ``sk-medcnn predict`` and ``sk-medcnn explain`` something to read
    right after the demo; the file names carry the true class.
    """
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    images = np.asarray(X)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.dtype != np.uint8:  # phantoms are floats in [0, 1]
        images = np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)
    written = []
    for label in LABELS:
        for index in np.flatnonzero(y == label)[:N_SAMPLE_IMAGES_PER_CLASS]:
            name = f"val_{index:04d}_{names[label].replace(' ', '_')}.png"
            buffer = io.BytesIO()
            Image.fromarray(images[index]).save(buffer, format="png")
            write_atomic(folder / name, buffer.getvalue())
            written.append(name)
    return written


def next_commands(
    model: Path, images: Path, output: Path, program: str = "sk-medcnn"
) -> list[str]:
    """The command lines to try on the saved model."""
    return [
        f"{program} predict {model} {images} --output {output / 'predictions.csv'}",
        f"{program} explain {model} {images} --output {output / 'maps'}",
    ]


def cli_program() -> str:
    """How to call ``sk-medcnn`` from the current folder.

    ``make demo`` runs this script with ``.venv/bin/python`` without activating the
    environment, so a bare ``sk-medcnn`` is not found there (exit 127): name the
    command beside the interpreter unless the one on ``PATH`` is that one.
    """
    beside = Path(sys.executable).parent / "sk-medcnn"
    found = shutil.which("sk-medcnn")
    if not beside.is_file() or (
        found is not None and Path(found).resolve() == beside.resolve()
    ):
        return "sk-medcnn"
    relative = os.path.relpath(beside, Path.cwd())
    return str(beside) if relative.startswith("..") else relative


# --- report ------------------------------------------------------------------------
def _format(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_markdown(report: dict[str, Any]) -> str:
    """The human-readable report."""
    dataset = report["dataset"]
    metrics = report["metrics"]
    timing = report["timing"]
    training = report["training"]
    matrix = report["confusion_matrix"]
    names = matrix["label_names"]
    positive = dataset["class_names"][str(POSITIVE_LABEL)]
    lines = [
        f"# {report['title']}",
        "",
        f"Created {report['created']} by `examples/train_pneumoniamnist.py`.",
        "",
    ]
    if dataset["synthetic"]:
        lines += [
            "> **Synthetic data.** The PneumoniaMNIST file was not used: these are "
            "results on lesion phantoms, not on chest X-rays.",
            "",
        ]
    counts = dataset["class_counts"]
    lines += [
        "## Data",
        "",
        f"- Data set: {dataset['name']}",
        f"- Source: `{dataset['source']}`",
    ]
    if dataset["sha256"]:
        lines.append(f"- SHA-256: `{dataset['sha256']}`")
    lines += [
        f"- Splits: {dataset['splits']}",
        f"- Image shape: {' x '.join(str(s) for s in dataset['image_shape'])}",
        "",
        "| split | images | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
        f"| train | {dataset['n_train']} | "
        + " | ".join(str(counts["train"][n]) for n in names)
        + " |",
        f"| validation | {dataset['n_val']} | "
        + " | ".join(str(counts["val"][n]) for n in names)
        + " |",
        "",
        "## Validation metrics",
        "",
        f"Positive class: label {POSITIVE_LABEL} = {positive}; decision threshold 0.5.",
        "",
        "| metric | value | 95% CI |",
        "|---|---:|---:|",
    ]
    rows = {
        "accuracy": "accuracy (ACC)",
        "auc": "ROC AUC",
        "balanced_accuracy": "balanced accuracy",
        "sensitivity": f"sensitivity (recall of {positive})",
        "specificity": "specificity",
        "ppv": "PPV (precision)",
        "npv": "NPV",
        "f1": f"F1 ({positive})",
    }
    intervals = report["confidence_intervals"]["intervals"]
    for key, label in rows.items():
        interval = intervals.get(key)
        ci = (
            "n/a"
            if interval is None
            else f"{_format(interval[0])} to {_format(interval[1])}"
        )
        lines.append(f"| {label} | {_format(metrics[key])} | {ci} |")
    calibration = report["calibration"]
    lines += [
        f"| average precision (PR AUC) | {_format(report['average_precision'])} | |",
        f"| expected calibration error (ECE, {calibration['n_bins']} bins) "
        f"| {_format(calibration['expected_calibration_error'])} | |",
        "",
        f"Intervals: {report['confidence_intervals']['method']}.",
        "",
        "Confusion matrix (rows: true class, columns: predicted class):",
        "",
        "| true \\ predicted | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    lines += [
        f"| {name} | " + " | ".join(str(count) for count in row) + " |"
        for name, row in zip(names, matrix["matrix"], strict=True)
    ]
    lines += [
        "",
        "![Confusion matrix](confusion_matrix.png) ![ROC curve](roc_curve.png)",
        "",
        "## Precision-recall and calibration",
        "",
        "Precision (PPV) against recall (sensitivity) over every threshold; and "
        "the reliability diagram: the observed frequency of "
        f"{positive} against the predicted probability (points on the diagonal "
        "are calibrated, below it over-confident), after the temperature "
        f"{calibration['temperature']:.3f} fitted in `fit`.",
        "",
        "![Precision-recall curve](precision_recall.png) "
        "![Calibration](calibration.png)",
        "",
        "## Training",
        "",
        f"- Architecture: `{report['params']['architecture']}`, optimizer "
        f"`{report['params']['optimizer']}`, lr {report['params']['lr']}, "
        f"batch size {report['params']['batch_size']}, random_state "
        f"{report['params']['random_state']}",
        f"- Epochs trained: {training['epochs_trained']} of at most "
        f"{report['params']['max_epochs']}; "
        + (
            f"weights restored from epoch {training['best_epoch']} (lowest "
            "held-out loss)"
            if report["params"]["early_stopping"]
            else f"the weights of the last epoch (schedule "
            f"`{report['params']['lr_schedule']}`)"
        ),
        "- A stratified "
        f"{report['params']['validation_fraction']:.0%} of the training split is "
        "held out inside `fit` (the held-out curves above; temperature "
        f"{training['temperature']:.3f}); test-time views: "
        f"`{report['params']['tta']}` (used: `{training.get('tta')}`). The "
        "validation split above is never seen "
        "in training or model selection.",
        f"- Fit time: {timing['fit_s']:.1f} s; prediction: "
        f"{timing['predict_s']:.2f} s for {dataset['n_val']} images "
        f"({timing['predict_images_per_s']:.0f} images/s)",
        "",
        "| epoch | train loss | held-out loss | held-out acc | time (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row['epoch']}{' *' if row['epoch'] == training['best_epoch'] else ''} "
        f"| {row['train_loss']:.4f} | {row['valid_loss']:.4f} "
        f"| {row['valid_acc']:.3f} | {row['dur']:.1f} |"
        for row in training["history"]
    ]
    lines += [
        "",
        "\\* restored epoch",
        "",
        "![Learning curves](learning_curves.png)",
        "",
        "## Validation examples",
        "",
        f"Up to {N_MISCLASSIFIED} misclassified images (titles in red), the "
        f"others drawn at random, {N_EXAMPLES} in all.",
        "",
        "![Validation examples](examples.png)",
        "",
        "## Where the model looks",
        "",
        "HiResCAM maps (Draelos and Carin, 2020) of the predicted class over "
        f"the first {len(report['examples']['explained_indices'])} example images:"
        " red marks the regions that raise its score. A map with no positive "
        "evidence is labelled as such, not drawn.",
        "",
        "![Explanations](explanations.png)",
        "",
        "## The saved model",
        "",
        f"The model is saved in the safe format as `{report['model']['path']}`, "
        f"with {len(report['model']['sample_images'])} validation images as PNG "
        "files to try it on:",
        "",
        "From this report's folder:",
        "",
        "```console",
        *(f"$ {command}" for command in report["model"]["next_commands"]),
        "```",
        "",
        "## Environment",
        "",
        f"- Device: {report['environment']['device']} "
        f"({report['environment']['torch_threads']} torch threads)",
    ]
    lines += [
        f"- {package}: {version}"
        for package, version in report["environment"]["versions"].items()
    ]
    lines.append("")
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Train, evaluate and write the report; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data is not None and not args.quick and not args.data.is_file():
        parser.error(f"--data {str(args.data)!r}: no such file")
    if args.max_epochs is not None and args.max_epochs < 1:
        parser.error(f"--max-epochs must be >= 1; got {args.max_epochs}")
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    import matplotlib

    matplotlib.use("Agg")  # before pyplot is imported (here or by sklearn)

    output = args.output
    model_path = output / MODEL_FILE_NAME if args.model is None else args.model
    if model_path.suffix != ".skmed":
        parser.error(f"--model {str(model_path)!r}: the file name must end in .skmed")
    output.mkdir(parents=True, exist_ok=True)
    if not model_path.parent.is_dir():
        parser.error(f"--model {str(model_path)!r}: the folder does not exist")
    max_epochs = args.max_epochs or (
        QUICK_MAX_EPOCHS if args.quick else DEFAULT_MAX_EPOCHS
    )

    X_train, y_train, X_val, y_val, dataset = load_data(args.data, quick=args.quick)
    names = dataset["class_names"]
    dataset.update(
        image_shape=list(X_train.shape[1:]),
        n_train=len(y_train),
        n_val=len(y_val),
        class_counts={
            "train": class_counts(y_train, names),
            "val": class_counts(y_val, names),
        },
        class_names={str(label): name for label, name in names.items()},
    )
    logger.info(
        "%s: %d train images %s, %d validation images %s",
        dataset["name"],
        dataset["n_train"],
        dataset["class_counts"]["train"],
        dataset["n_val"],
        dataset["class_counts"]["val"],
    )

    clf = MedicalCNNClassifier(
        architecture=args.architecture,
        optimizer="adam",
        batch_size=32,
        max_epochs=max_epochs,
        device=args.device,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,  # an epoch line as each epoch ends
    )
    logger.info(
        "Training %s for %d epochs (%.0f%% of train held out for calibration)",
        args.architecture,
        max_epochs,
        100 * clf.validation_fraction,
    )
    # The model learns the class names, not 0/1: its predictions, the table of
    # `sk-medcnn predict` and the titles of `sk-medcnn explain` say "pneumonia",
    # and a folder of normal/ and pneumonia/ images is scored without --labels.
    class_names = np.array([names[label] for label in LABELS])
    label_of = {name: label for label, name in names.items()}
    start = time.perf_counter()
    clf.fit(X_train, class_names[np.asarray(y_train, dtype=np.intp)])
    fit_time = time.perf_counter() - start
    history = history_records(clf)
    logger.info(
        "Trained %d epochs in %.1f s on %s", clf.n_epochs_, fit_time, clf.device_
    )

    sk_medcnn.save_model(clf, model_path)
    logger.info("Saved the model to %s", model_path)

    start = time.perf_counter()
    proba = clf.predict_proba(X_val)
    predict_time = time.perf_counter() - start
    p_positive = proba[:, list(clf.classes_).index(names[POSITIVE_LABEL])]
    y_pred = np.array([label_of[name] for name in clf.predict(X_val)])
    metrics = compute_metrics(y_val, y_pred, p_positive)
    # 95% percentile-bootstrap intervals, resampled within each class
    intervals = {
        name: None if math.isnan(estimate.low) else [estimate.low, estimate.high]
        for name, estimate in clinical_report(
            y_val,
            p_positive,
            threshold=0.5,
            pos_label=POSITIVE_LABEL,
            n_bootstraps=N_BOOTSTRAPS,
            random_state=args.seed,
        ).items()
    }
    matrix = confusion_matrix(y_val, y_pred, labels=list(LABELS))
    logger.info(
        "Validation: ACC %s  AUC %s  sensitivity %s  specificity %s",
        _format(metrics["accuracy"]),
        _format(metrics["auc"]),
        _format(metrics["sensitivity"]),
        _format(metrics["specificity"]),
    )

    paths = {key: output / file_name for key, file_name in FIGURES.items()}
    logger.info("Drawing the figures into %s", output)
    plot_learning_curves(
        history,
        clf.validation_fraction,
        clf.best_epoch_ if clf.early_stopping else None,
        paths["learning_curves"],
    )
    plot_confusion_matrix(y_val, y_pred, names, paths["confusion_matrix"])
    plot_roc_curve(y_val, p_positive, args.architecture, paths["roc_curve"])
    average_precision = plot_precision_recall(
        y_val, p_positive, args.architecture, paths["precision_recall"]
    )
    ece = plot_calibration(
        y_val, p_positive, args.architecture, names, paths["calibration"]
    )
    example_indices = choose_examples(y_val, y_pred, seed=args.seed)
    plot_examples(
        X_val, y_val, y_pred, p_positive, names, example_indices, paths["examples"]
    )
    explained = example_indices[:N_EXPLAINED]
    plot_explanation_panels(clf, X_val, y_val, names, explained, paths["explanations"])
    images_dir = output / "images"
    sample_images = write_sample_images(X_val, y_val, names, images_dir)

    report = {
        "title": (f"{args.architecture} on {dataset['name']}: validation report"),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "arguments": sys.argv[1:] if argv is None else list(argv),
        "dataset": dataset,
        "params": clf.get_params(deep=False),
        "metrics": metrics,
        "confidence_intervals": {
            "level": 0.95,
            "method": f"percentile bootstrap, {N_BOOTSTRAPS} stratified resamples",
            "intervals": intervals,
        },
        "calibration": {
            "expected_calibration_error": ece,
            "n_bins": 10,
            "temperature": float(clf.temperature_),
        },
        "average_precision": average_precision,
        "model": {
            "path": display_path(model_path),
            "sample_images": [f"{images_dir.name}/{name}" for name in sample_images],
            # run from the report's folder: true wherever the folder is moved
            "next_commands": next_commands(
                Path(os.path.relpath(model_path.resolve(), output.resolve())),
                Path(images_dir.name),
                Path(),
            ),
        },
        "positive_label": POSITIVE_LABEL,
        "decision_threshold": 0.5,
        "confusion_matrix": {
            "labels": list(LABELS),
            "label_names": [names[label] for label in LABELS],
            "rows": "true class",
            "columns": "predicted class",
            "matrix": matrix.tolist(),
        },
        "timing": {
            "fit_s": fit_time,
            "predict_s": predict_time,
            "predict_images_per_s": len(y_val) / predict_time,
        },
        "training": {
            "epochs_trained": int(clf.n_epochs_),
            "best_epoch": int(clf.best_epoch_),
            "temperature": float(clf.temperature_),
            "tta": clf.tta_,  # the test-time views tta="auto" kept (or None)
            "history": history,
        },
        "examples": {
            "validation_indices": example_indices.tolist(),
            "explained_indices": explained.tolist(),
            "selection": (f"up to {N_MISCLASSIFIED} misclassified, the rest at random"),
        },
        "environment": {
            "versions": {
                "sk_medcnn": sk_medcnn.__version__,
                "torch": torch.__version__,
                "sklearn": sklearn.__version__,
                "skorch": skorch.__version__,
                "numpy": np.__version__,
                "matplotlib": matplotlib.__version__,
                "python": platform.python_version(),
            },
            "device": clf.device_,
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },
        "figures": dict(FIGURES),
    }
    markdown_path = output / "report.md"
    json_path = output / "report.json"
    write_atomic(markdown_path, render_markdown(report).encode("utf-8"))
    # report.json last: its presence means every other file is complete
    write_atomic(
        json_path,
        (
            json.dumps(report, indent=2, default=_json_default, allow_nan=False) + "\n"
        ).encode("utf-8"),
    )

    print(
        f"{dataset['name']}, validation split ({dataset['n_val']} images): "
        f"ACC {_format(metrics['accuracy'])}, AUC {_format(metrics['auc'])}, "
        f"sensitivity {_format(metrics['sensitivity'])}, "
        f"specificity {_format(metrics['specificity'])}"
    )
    print(
        f"{clf.n_epochs_} epochs in {fit_time:.1f} s; report: {json_path}, "
        f"{markdown_path}; figures in {output}"
    )
    print(f"Model: {model_path}; sample images: {images_dir}. Try next:")
    for command in next_commands(model_path, images_dir, output, cli_program()):
        print(f"  {command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
