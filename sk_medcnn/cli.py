"""The ``sk-medcnn`` command line: train, evaluate, predict, explain, benchmark, info.

Every command reads an image folder (one subfolder per class) or a MedMNIST
``.npz`` file, and writes its outputs atomically (a temporary file renamed
into place), so an error or Ctrl-C never leaves a half-written model, report
or table. Errors print one line naming the file or the option, without a
traceback unless ``--verbose`` is given.

Exit codes: 0 success, 1 an error in the data, a file or a model, 2 a usage
error (unknown option, bad value), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

__all__ = ["main"]

logger = logging.getLogger("sk_medcnn.cli")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

AUGMENTERS = ("flip", "rotation", "affine", "intensity", "noise", "erasing")
MODEL_SUFFIXES = (".skmed", ".joblib", ".pkl", ".pickle")
#: the explanation methods of ``explain --method``, and their names in figures
METHOD_NAMES = {
    "hires_cam": "HiResCAM",
    "grad_cam": "Grad-CAM",
    "gradient": "gradient",
    "smoothgrad": "SmoothGrad",
    "integrated_gradients": "integrated gradients",
}


class CommandError(Exception):
    """An error to report in one line, with exit code 1."""

    exit_code = 1


class UsageError(CommandError):
    """A bad option value found after parsing: the usage, one line, exit code 2.

    For example an output that cannot be written, or an image size beyond
    memory; reported as argparse reports a bad value.
    """

    exit_code = 2


def _describe_missing(path: Path) -> str:
    """Say why ``path`` cannot be read: missing, under a file, or not a file."""
    import stat

    try:
        mode: int | None = path.stat().st_mode
    except OSError:  # missing, or a parent is a file
        mode = None
    if mode is not None:
        kinds = {
            stat.S_ISCHR: "a character device",
            stat.S_ISBLK: "a block device",
            stat.S_ISFIFO: "a named pipe",
            stat.S_ISSOCK: "a socket",
        }
        kind = next((name for test, name in kinds.items() if test(mode)), "special")
        return f"{path}: not a regular file or folder ({kind})"
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                return f"{path}: {ancestor} is a file, not a folder"
            break
    return f"{path}: no such file or folder"


def _check_output(option: str, text: str, *, folder: bool = False) -> Path:
    """Check before any work that ``text`` can be written; return it as a Path.

    The folder must exist (for a file) or be creatable (for a folder) and take
    new files (tried for real), the file must not be a folder or read-only; see
    :func:`sk_medcnn.utils._files.check_output_path`. Raises a UsageError
    naming the option.
    """
    from .utils._files import check_output_path

    path = Path(text)
    try:
        check_output_path(path, folder=folder)
    except OSError as error:
        reason = str(error)
        for prefix in ("Cannot write into", "Cannot write", "Cannot create the folder"):
            start = f"{prefix} {str(path)!r}: "
            if reason.startswith(start):
                reason = reason[len(start) :]
                break
        reason = reason.replace(f" {str(path)!r}", "")
        if isinstance(error, IsADirectoryError) and not folder:
            reason = "a folder, not a file name"
        raise UsageError(f"{option} {text}: {reason.rstrip('.')}") from error
    return path


def _warn(message: str) -> None:
    print(f"sk-medcnn: warning: {message}", file=sys.stderr)


# --- data --------------------------------------------------------------------
def _is_npz(path: Path) -> bool:
    return path.suffix.lower() == ".npz"


def load_data(
    source: str,
    *,
    split: str,
    image_size: int | None = None,
    channels: int | None = None,
    on_error: str = "raise",
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Read labelled images from an image folder or a MedMNIST ``.npz`` file.

    Parameters
    ----------
    source : str
        A folder with one subfolder per class, or a ``.npz`` file in the
        MedMNIST layout.
    split : {"train", "val", "test"}
        The split of a ``.npz`` file; ignored for folders.
    image_size : int, optional
        Resize every image of a folder to this square size.
    channels : {1, 3}, optional
        Convert the images of a folder to grayscale or RGB.
    on_error : {"raise", "skip"}, default="raise"
        What to do with an unreadable file in a folder.

    Returns
    -------
    X : ndarray
        The images.
    y : ndarray of shape (n_samples,)
        The labels.

    Raises
    ------
    CommandError
        If ``source`` does not exist, or is neither a folder nor a ``.npz`` file.
    """
    path = Path(source)
    if not (path.is_dir() or path.is_file()):
        raise CommandError(_describe_missing(path))
    if path.is_dir():
        from .io import load_image_folder

        return load_image_folder(
            path, shape=image_size, channels=channels, on_error=on_error
        )
    if _is_npz(path):
        from .datasets import load_medmnist
        from .utils._validation import infer_spatial_dims

        X, y = load_medmnist(path, split)
        spatial = X.shape[1 : 1 + infer_spatial_dims(X)]
        if image_size is not None and spatial != (image_size,) * len(spatial):
            from .preprocessing import Resize

            X = Resize((image_size,) * len(spatial)).fit_transform(X)
        if y.ndim != 1:
            raise CommandError(
                f"{source}: the {split!r} labels have shape {y.shape}; the command "
                "line trains single-label classifiers only (see the Python API "
                "for multi-label tasks)"
            )
        return X, y
    raise CommandError(
        f"{source}: expected a folder with one subfolder per class or a MedMNIST "
        ".npz file"
    )


def _has_split(source: str, split: str) -> bool:
    path = Path(source)
    if not (path.is_file() and _is_npz(path)):
        return False
    with np.load(path, allow_pickle=False) as data:
        return f"{split}_images" in data.files


# --- models ------------------------------------------------------------------
def _check_model_suffix(path: Path) -> None:
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise CommandError(
            f"{path}: a model file name must end in {', '.join(MODEL_SUFFIXES)} "
            "(.skmed is the safe format; the others are joblib pickles)"
        )


def save_any_model(model: Any, path: Path) -> None:
    """Save ``model`` in the format its file name asks for, atomically.

    Parameters
    ----------
    model : estimator
        A fitted sk_medcnn estimator or Pipeline.
    path : pathlib.Path
        ``.skmed`` for the safe format (:func:`sk_medcnn.save_model`), or
        ``.joblib``/``.pkl`` for a joblib pickle.
    """
    _check_model_suffix(path)
    if path.suffix.lower() == ".skmed":
        from .persistence import save_model

        save_model(model, path)
        return
    import joblib

    from .utils._files import atomic_path

    with atomic_path(path) as tmp:
        joblib.dump(model, tmp)


def load_any_model(path_text: str, *, device: str = "cpu") -> Any:
    """Load a model saved by :func:`save_any_model`.

    Parameters
    ----------
    path_text : str
        The model file.
    device : str, default="cpu"
        Where the network runs.

    Returns
    -------
    model : estimator
    """
    path = Path(path_text)
    if path.is_dir():
        raise CommandError(f"{path_text}: a folder, not a model file")
    if not path.is_file():
        problem = _describe_missing(path)
        if problem.endswith("no such file or folder"):
            problem = f"{path_text}: no such model file"
        raise CommandError(problem)
    _check_model_suffix(path)
    if path.suffix.lower() == ".skmed":
        from .persistence import load_model

        return load_model(path, device=device)
    import joblib

    _warn(
        f"{path_text} is a pickle: loading it runs code from the file; load only "
        "files you trust (the .skmed format runs none)"
    )
    import zipfile

    if zipfile.is_zipfile(path):
        raise CommandError(
            f"{path_text}: a zip archive, not a joblib pickle; a model written by "
            "save_model is a .skmed file: rename it to end in .skmed"
        )
    try:
        model = joblib.load(path)
    except Exception as error:  # a damaged or foreign pickle fails in many ways
        raise CommandError(
            f"{path_text}: not a readable joblib model "
            f"({type(error).__name__}: {error})"
        ) from error
    if not hasattr(_final_estimator(model), "image_shape_"):
        raise CommandError(
            f"{path_text}: holds a {type(model).__name__}, not a fitted sk_medcnn "
            "model (an estimator, or a Pipeline ending in one)"
        )
    return model


def _final_estimator(model: Any) -> Any:
    return model.steps[-1][1] if hasattr(model, "steps") else model


def _reads_paths(model: Any) -> bool:
    from .io import ImageLoader

    return hasattr(model, "steps") and isinstance(model.steps[0][1], ImageLoader)


def _images_for(
    model: Any, paths: Sequence[str], *, on_error: str = "raise"
) -> tuple[Any, list[str]]:
    """Return what ``model`` predicts from, and the paths that were read.

    What it predicts from is the paths (a Pipeline that reads them) or the
    images read; the paths read are all of them unless ``on_error="skip"``.
    """
    from .exceptions import ImageReadError
    from .io._batch import read_images

    if _reads_paths(model):
        if on_error == "skip":  # each file read with the model's own loader
            loader = model.steps[0][1]
            readable = []
            for path in paths:
                try:
                    loader.transform(np.asarray([path], dtype=object))
                except (ImageReadError, ValueError) as error:
                    _warn(f"skipped {path}: {str(error).splitlines()[0]}")
                else:
                    readable.append(path)
            paths = readable
        return np.asarray(paths, dtype=object), list(paths)
    estimator = _final_estimator(model)
    if _takes_volumes(model):
        return _volumes_for(estimator, paths, on_error=on_error)
    height, width, channels = estimator.image_shape_
    images, read = read_images(
        paths, shape=(height, width), channels=channels, on_error=on_error
    )
    kept = [path for path, ok in zip(paths, read, strict=True) if ok]
    if images.ndim == 3:
        images = images[..., np.newaxis]
    return images, kept


def _takes_volumes(model: Any) -> bool:
    """Whether the model's network takes volumes (CT or MRI stacks)."""
    return len(getattr(_final_estimator(model), "image_shape_", ())) == 4


def _volumes_for(
    estimator: Any, paths: Sequence[str], *, on_error: str
) -> tuple[Any, list[str]]:
    """Read volume files and series folders for a model of volumes, one at a time."""
    from .exceptions import ImageReadError
    from .utils._files_array import ImageFiles

    volumes, kept = [], []
    for path in paths:
        try:
            files = ImageFiles(
                [path], image_shape=estimator.image_shape_, spatial_dims=3
            )
            volumes.append(files[:])
        except (ImageReadError, ValueError) as error:
            if on_error != "skip":
                raise
            _warn(f"skipped {path}: {str(error).splitlines()[0]}")
        else:
            kept.append(path)
    if not volumes:
        return np.zeros((0, *estimator.image_shape_), dtype=np.float32), kept
    return np.concatenate(volumes), kept


def _is_series_folder(path: Path) -> bool:
    """Whether a folder holds DICOM files directly (one series, one volume)."""
    from .io._dicom_series import list_series_files

    return bool(list_series_files(path))


def _collect_files(inputs: Sequence[str], *, volumes: bool = False) -> list[str]:
    """Expand folders into the files (volumes: and series folders) they hold."""
    from .io import list_image_files
    from .io._volume import spatial_dims_of_file

    files: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and volumes:
            if _is_series_folder(path):
                files.append(str(path))
                continue
            found = sorted(
                child
                for child in path.iterdir()
                if (child.is_file() and spatial_dims_of_file(child) == 3)
                or (child.is_dir() and _is_series_folder(child))
            )
            if not found:
                raise CommandError(
                    f"{item}: the folder holds no NIfTI files and no DICOM series"
                )
            files.extend(str(found_path) for found_path in found)
        elif path.is_dir():
            found = list_image_files(path)
            if not found:
                raise CommandError(f"{item}: the folder holds no image files")
            files.extend(str(found_path) for found_path in found)
        elif path.is_file():
            files.append(str(path))
        else:
            raise CommandError(_describe_missing(path))
    return files


# --- reports -----------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` as indented JSON, atomically.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    document : dict
        JSON-serialisable, numpy scalars and arrays included.
    """
    from .utils._files import atomic_open

    with atomic_open(path) as handle:
        json.dump(document, handle, indent=2, default=_json_default)
        handle.write("\n")


def evaluation(
    model: Any,
    X: Any,
    y: NDArray[Any],
    *,
    threshold: float = 0.5,
    n_bootstraps: int = 1000,
    random_state: int | None = 0,
) -> tuple[dict[str, Any], str]:
    """Score ``model`` on ``(X, y)``: a clinical report for two classes.

    Parameters
    ----------
    model : fitted classifier or Pipeline
    X : array-like
        Images (or paths for a Pipeline that reads files).
    y : ndarray of shape (n_samples,)
        True labels.
    threshold : float, default=0.5
        Probability of the positive class (``classes_[1]``) at or above which an
        image is called positive.
    n_bootstraps : int, default=1000
        Bootstrap resamples for the 95% confidence intervals.
    random_state : int or None, default=0
        Seeds the bootstrap.

    Returns
    -------
    document : dict
        The figures, JSON-serialisable.
    text : str
        A printable table.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    estimator = _final_estimator(model)
    classes = estimator.classes_
    y = np.asarray(y)
    if y.dtype.kind in "iub" and classes.dtype.kind in "UO":
        y = y.astype(str)
    unknown = sorted(set(np.unique(y).tolist()) - set(classes.tolist()))
    if unknown:
        raise CommandError(
            f"the data has classes {unknown} that the model does not know; its "
            f"classes are {classes.tolist()} (map them with --labels, e.g. "
            f"--labels {unknown[0]}={classes.tolist()[0]},...)"
        )
    from .exceptions import OutOfDistributionWarning
    from .inspection import check_distribution

    with warnings.catch_warnings():  # counted in the report instead
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        proba = model.predict_proba(X)
    document: dict[str, Any] = {"n_samples": len(y), "classes": classes.tolist()}
    lines = []
    if len(classes) == 2:
        from .metrics import clinical_report

        positive = (
            classes[1].item() if isinstance(classes[1], np.generic) else classes[1]
        )
        report = clinical_report(
            y,
            proba[:, 1],
            threshold=threshold,
            n_bootstraps=n_bootstraps,
            random_state=random_state,
            pos_label=positive,
        )
        predicted = np.where(proba[:, 1] >= threshold, classes[1], classes[0])
        document.update(
            {
                "positive_class": positive,
                "threshold": threshold,
                "metrics": {
                    name: {
                        "value": estimate.value,
                        "ci_low": estimate.low,
                        "ci_high": estimate.high,
                    }
                    for name, estimate in report.items()
                },
            }
        )
        lines.append(str(report))
    else:
        predicted = classes[np.argmax(proba, axis=1)]
        document["metrics"] = {
            "accuracy": {"value": float(accuracy_score(y, predicted))},
            "balanced_accuracy": {
                "value": float(balanced_accuracy_score(y, predicted))
            },
        }
        for name, entry in document["metrics"].items():
            lines.append(f"{name:<20} {entry['value']:.3f}")
    matrix = sk_confusion_matrix(y, predicted, labels=classes)
    document["confusion_matrix"] = {"labels": classes.tolist(), "counts": matrix}
    if len(classes) > 2:  # the clinical report prints the binary one
        width = 2 + max(
            max(len(str(label)) for label in classes), len(str(matrix.max()))
        )
        header = " " * width + "".join(f"{label!s:>{width}}" for label in classes)
        lines += ["", "Confusion matrix (rows: true, columns: predicted)", header]
        for label, row in zip(classes, matrix, strict=True):
            counts = "".join(f"{count:>{width}}" for count in row)
            lines.append(f"{label!s:<{width}}{counts}")
    document["out_of_distribution"], line = _distribution_summary(
        check_distribution(model, X), estimator
    )
    lines += ["", line]
    return document, "\n".join(lines)


def _distribution_summary(check: Any, estimator: Any) -> tuple[dict[str, Any], str]:
    """Count the images unlike the training images, for the evaluation report."""
    n_images = len(check.in_distribution)
    flagged = int(np.count_nonzero(~check.in_distribution))
    rate = getattr(estimator, "ood_false_alarm_rate_", None)
    threshold = getattr(estimator, "ood_threshold_", None)
    by_score = (
        int(np.count_nonzero(check.ood_score > threshold))
        if threshold is not None
        else None
    )
    summary = {
        "n_flagged": flagged,
        "share_flagged": flagged / n_images if n_images else 0.0,
        "n_flagged_by_score": by_score,
        "ood_threshold": threshold,
        "false_alarm_rate": rate,
    }
    line = (
        f"Unlike the training images: {flagged} of {n_images} "
        f"({summary['share_flagged']:.1%})"
    )
    if rate is not None:
        line += (
            f"; {by_score} by the learned score, whose threshold "
            f"{threshold:.3g} flags about {rate:.0%} of images like the "
            "training ones"
        )
    else:
        line += " by intensity (the model has no learned out-of-distribution score)"
    return summary, line + "."


# --- commands ----------------------------------------------------------------
def _augmentation(names: str | None) -> Any:
    if not names:
        return None
    from . import augmentation as aug

    factories = {
        "flip": aug.RandomFlip,
        "rotation": lambda: aug.RandomRotation(10),
        "affine": aug.RandomAffine,
        "intensity": aug.RandomIntensity,
        "noise": aug.RandomNoise,
        "erasing": aug.RandomErasing,
    }
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in factories]
    if unknown:
        raise UsageError(
            f"--augment: unknown augmentation {', '.join(unknown)}; choose from "
            f"{', '.join(AUGMENTERS)}"
        )
    return [factories[name]() for name in chosen]


#: the command-line option of each estimator parameter the options set
_OPTION_OF = {
    "max_epochs": "--epochs",
    "random_state": "--seed",
    "augmentation": "--augment",
}


def _check_options(classifier: Any) -> None:
    """Check the estimator's parameters, naming the command-line option."""
    from .exceptions import ArchitectureNotFoundError
    from .registry import get_architecture

    for name, checker in classifier._parameter_constraints.items():
        try:
            checker(getattr(classifier, name), name)
        except (ValueError, TypeError) as error:
            option = _OPTION_OF.get(name, "--" + name.replace("_", "-"))
            raise UsageError(f"{option}: {error}") from error
    try:
        get_architecture(classifier.architecture)
    except ArchitectureNotFoundError as error:
        raise UsageError(f"--architecture: {error}") from error


def _count(n: int, noun: str) -> str:
    """``"1 image"``, ``"2 images"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


#: what an option's value says for the estimator's ``None``
NONE = "none"


def _none(text: Any) -> Any:
    """``"none"`` (any case) as None; anything else as it is."""
    return None if isinstance(text, str) and text.lower() == NONE else text


def _estimator_defaults() -> dict[str, Any]:
    """Return the parameters of a default :class:`~sk_medcnn.MedicalCNNClassifier`.

    ``sk-medcnn train`` takes its defaults from here, so the command line and
    the Python API train the same model unless told otherwise.

    Returns
    -------
    defaults : dict
        ``MedicalCNNClassifier().get_params(deep=False)``.
    """
    from . import MedicalCNNClassifier

    return MedicalCNNClassifier().get_params(deep=False)


def _shown(value: Any) -> Any:
    """Spell an estimator default as the command line does (None as "none")."""
    return NONE if value is None else value


def command_train(args: argparse.Namespace) -> int:
    """Train a classifier on DATA and save it (``sk-medcnn train``)."""
    from . import MedicalCNNClassifier

    _check_model_suffix(Path(args.output))
    out = _check_output_file("--output", args.output)
    report_path = Path(args.report) if args.report else out.with_suffix(".report.json")
    _check_output_file(
        "--report" if args.report else "--out (its report)", str(report_path)
    )
    if args.checkpoint_dir:
        _check_output("--checkpoint-dir", args.checkpoint_dir, folder=True)
    if args.resume and not args.checkpoint_dir:
        raise UsageError("--resume needs --checkpoint-dir, where the fit was saved")
    _check_device(args.device)
    chosen: dict[str, Any] = {}  # options left out keep the estimator's default
    if args.augment is not None:
        chosen["augmentation"] = (
            None if args.augment.lower() == NONE else _augmentation(args.augment)
        )
    classifier = MedicalCNNClassifier(
        architecture=args.architecture,
        optimizer=args.optimizer,
        lr=args.lr,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        lr_schedule=_none(args.lr_schedule),
        early_stopping=args.early_stopping,
        patience=args.patience,
        class_weight=_none(args.class_weight),
        tta=_none(args.tta),
        calibration=_none(args.calibration),
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        device=args.device,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,  # progress by default on the command line
        **chosen,
    )
    _check_options(classifier)
    if args.image_size:
        _check_image_size(classifier, args.image_size, args.channels)
    X, y = load_data(
        args.data,
        split="train",
        image_size=args.image_size,
        channels=args.channels,
        on_error=args.on_error,
    )
    valid = None
    if args.valid:
        valid = load_data(
            args.valid,
            split="val",
            image_size=args.image_size,
            channels=args.channels,
            on_error=args.on_error,
        )
    elif _has_split(args.data, "val"):
        valid = load_data(args.data, split="val", image_size=args.image_size)
    from .utils._validation import infer_spatial_dims

    noun = "volume" if infer_spatial_dims(X) == 3 else "image"
    print(
        f"Training {args.architecture} on {_count(len(X), noun)} of shape "
        f"{tuple(X.shape[1:])} from {args.data} "
        f"({_count(args.epochs, 'epoch')} at most)",
        flush=True,
    )
    start = time.perf_counter()
    classifier.fit(X, y)
    seconds = time.perf_counter() - start
    document: dict[str, Any] = {
        "data": str(args.data),
        "n_train": len(X),
        "image_shape": list(classifier.image_shape_),
        "classes": classifier.classes_.tolist(),
        "parameters": {
            name: value if isinstance(value, int | float | str | None) else repr(value)
            for name, value in classifier.get_params(deep=False).items()
        },
        "n_epochs": classifier.n_epochs_,
        "best_epoch": classifier.best_epoch_,
        "tta": classifier.tta_,  # the test-time augmentation used ("auto" decides)
        "tta_scores": classifier.tta_scores_,
        "fit_seconds": round(seconds, 2),
        "history": [
            {key: value for key, value in row.items() if key != "batches"}
            for row in classifier.history_
        ],
    }
    text = ""
    if valid is not None:
        valid_document, text = evaluation(
            classifier, valid[0], valid[1], n_bootstraps=args.bootstraps
        )
        document["validation"] = valid_document
    save_any_model(classifier, out)
    write_json(report_path, document)
    print(f"Trained {_count(classifier.n_epochs_, 'epoch')} in {seconds:.1f} s")
    if text and valid is not None:
        print(f"\nValidation ({len(valid[1])} images)\n{text}\n")
    print(f"Model: {out}\nReport: {report_path}")
    return EXIT_OK


def _relabel(y: NDArray[Any], text: str, classes: NDArray[Any]) -> NDArray[Any]:
    """Map the data's labels onto the model's classes with ``--labels A=0,B=1``."""
    mapping: dict[str, Any] = {}
    known = {str(label): label for label in classes.tolist()}
    for item in text.split(","):
        name, _, label = item.partition("=")
        if not name.strip() or label.strip() not in known:
            raise UsageError(
                f"--labels {text}: expected NAME=CLASS pairs, comma-separated, each "
                f"CLASS one of the model's classes {list(known)}; got {item!r}"
            )
        mapping[name.strip()] = known[label.strip()]
    unmapped = sorted({str(label) for label in np.unique(y)} - set(mapping))
    if unmapped:
        raise UsageError(f"--labels {text}: no class given for the labels {unmapped}")
    return np.asarray([mapping[str(label)] for label in y])


def command_evaluate(args: argparse.Namespace) -> int:
    """Score a saved model on DATA (``sk-medcnn evaluate``)."""
    if args.output:
        _check_output_file("--output", args.output)
    _check_device(args.device)
    model = load_any_model(args.model, device=args.device)
    estimator = _final_estimator(model)
    if not hasattr(estimator, "classes_"):
        raise CommandError(f"{args.model}: not a classifier")
    if Path(args.data).is_dir() and _reads_paths(model):
        from .io import load_image_folder

        X, y = load_image_folder(args.data, lazy=True)
    else:
        *spatial, channels = estimator.image_shape_
        X, y = load_data(
            args.data,
            split=args.split,
            image_size=spatial[0] if len(set(spatial)) == 1 else None,
            channels=channels if Path(args.data).is_dir() else None,
        )
    if args.labels:
        y = _relabel(y, args.labels, estimator.classes_)
    document, text = evaluation(
        model,
        X,
        y,
        threshold=args.threshold,
        n_bootstraps=args.bootstraps,
        random_state=args.seed,
    )
    document.update({"model": str(args.model), "data": str(args.data)})
    print(f"{args.data}: {len(y)} images\n{text}")
    if args.output:
        write_json(Path(args.output), document)
        print(f"Report: {args.output}")
    return EXIT_OK


def command_benchmark(args: argparse.Namespace) -> int:
    """Train per seed, then score a test split once (``sk-medcnn benchmark``)."""
    from . import MedicalCNNClassifier
    from .evaluation import benchmark_medmnist

    if not _is_npz(Path(args.data)):
        raise CommandError(
            f"{args.data}: benchmark needs a MedMNIST .npz file with train and "
            "test splits"
        )
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--output {args.output}: a file, not a folder")
    _check_device(args.device)
    classifier = MedicalCNNClassifier(
        architecture=args.architecture,
        max_epochs=args.epochs,
        tta=None if args.tta == "none" else args.tta,
        device=args.device,
        verbose=0 if args.quiet else 1,
    )
    _check_options(classifier)
    print(
        f"Benchmarking {args.architecture} on {args.data}: "
        f"{_count(len(args.seeds), 'seed')}, trained on "
        f"{' + '.join(args.train_on)}; the test split is read after the last fit",
        flush=True,
    )
    result = benchmark_medmnist(
        classifier,
        args.data,
        seeds=args.seeds,
        train_on=args.train_on,
        output_dir=out,
        n_bootstraps=args.bootstraps,
    )
    print(f"\n{result}\n\nPredictions and tables: {out}")
    return EXIT_OK


def _check_output_file(option: str, text: str) -> Path:
    """Check before any work that the file ``text`` can be written; return it."""
    return _check_output(option, text)


def _check_image_size(classifier: Any, size: int, channels: int | None) -> None:
    """Refuse an ``--image-size`` whose training cannot fit in memory, up front."""
    from .utils._memory import check_memory, training_memory, worth_estimating

    n_channels = channels or 1
    if not worth_estimating(int(classifier.batch_size) * size * size * n_channels * 4):
        return
    need = training_memory(
        classifier._factory()[0],
        dict(classifier.architecture_params or {}),
        (size, size, n_channels),
        2,
        int(classifier.batch_size),
    )
    try:
        check_memory(
            need or 0,
            f"training {classifier.architecture} on {size}x{size} images "
            f"(batch size {classifier.batch_size})",
            "Pass a smaller --image-size.",
        )
    except ValueError as error:
        raise UsageError(f"--image-size {size}: {error}") from error


def _check_device(text: str) -> None:
    from .utils._torch import resolve_device

    try:
        resolve_device(text)
    except (ValueError, RuntimeError) as error:
        raise UsageError(f"--device {text}: {error}") from error


def command_predict(args: argparse.Namespace) -> int:
    """Predict the class of image files (``sk-medcnn predict``)."""
    from .exceptions import OutOfDistributionWarning
    from .inspection import check_distribution
    from .utils._files import atomic_open

    output = _check_output_file("--output", args.output)
    if args.dicom_out is not None:
        _check_output("--dicom-out", args.dicom_out, folder=True)
    _check_device(args.device)
    model = load_any_model(args.model, device=args.device)
    estimator = _final_estimator(model)
    if not hasattr(estimator, "classes_"):
        raise CommandError(f"{args.model}: not a classifier")
    paths = _collect_files(args.inputs, volumes=_takes_volumes(model))
    X, paths = _images_for(model, paths, on_error=args.on_error)
    if not paths:
        raise CommandError("no image could be read (every file was skipped)")
    classes = estimator.classes_
    with warnings.catch_warnings():  # said below, image by image
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        proba = model.predict_proba(X)
    labels = classes[np.argmax(proba, axis=1)]
    check = check_distribution(model, X)
    with atomic_open(output, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "path",
                "label",
                *(f"proba_{label}" for label in classes),
                "in_distribution",
                "ood_score",
                "ood_reason",
            ]
        )
        for path, label, row, ok, score, reason in zip(
            paths,
            labels,
            proba,
            check.in_distribution,
            check.ood_score,
            check.reasons,
            strict=True,
        ):
            writer.writerow(
                [
                    path,
                    label,
                    *(f"{value:.6f}" for value in row),
                    "yes" if ok else "no",
                    "" if np.isnan(score) else f"{score:.4g}",
                    reason,
                ]
            )
    print(f"Predicted {_count(len(paths), 'image')}: {output}")
    if args.dicom_out is not None:
        _write_dicom_reports(args, model, paths, labels, proba, classes, check)
    unlike = np.flatnonzero(~check.in_distribution)
    if len(unlike):
        print(
            f"{_count(len(unlike), 'image')} unlike the training images "
            "(in_distribution = no): their predictions may be meaningless."
        )
        for index in unlike[:5]:
            print(f"  {Path(paths[index]).name}: {check.reasons[index]}")
        if len(unlike) > 5:
            print(f"  ... and {len(unlike) - 5} more (see {output})")
    return EXIT_OK


def _write_dicom_reports(
    args: argparse.Namespace,
    model: Any,
    paths: Sequence[str],
    labels: NDArray[Any],
    proba: NDArray[Any],
    classes: NDArray[Any],
    check: Any,
) -> None:
    """Write a DICOM SR beside each DICOM input's prediction (``--dicom-out``)."""
    from .io import write_dicom_report
    from .io._readers import detect_format

    out_dir = Path(args.dicom_out)
    written = 0
    for index, path in enumerate(paths):
        if detect_format(Path(path)) != "DICOM":
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            write_dicom_report(
                path,
                out_dir / f"{index:04d}_{_file_stem(path)}_sr.dcm",
                label=labels[index],
                probabilities={
                    str(label): float(p)
                    for label, p in zip(classes, proba[index], strict=True)
                },
                model_name=Path(args.model).stem,
                in_distribution=bool(check.in_distribution[index]),
                ood_reason=check.reasons[index],
            )
        except ImportError as error:
            raise CommandError(str(error)) from error
        written += 1
    print(
        f"Wrote {_count(written, 'DICOM structured report')} to {out_dir}"
        + ("" if written else " (no DICOM input)")
    )


def _class_label(classes: NDArray[Any], text: str) -> Any:
    """Return the label of ``classes`` written ``text`` on the command line."""
    for label in classes.tolist():
        if str(label) == text:
            return label
    raise UsageError(
        f"--target {text}: not a class of the model; its classes are "
        f"{', '.join(str(label) for label in classes.tolist())}"
    )


def command_explain(args: argparse.Namespace) -> int:
    """Write explanation-map overlays of image files (``sk-medcnn explain``)."""
    from .inspection import (
        grad_cam,
        plot_overlay,
        plot_volume_overlay,
        saliency_map,
    )
    from .utils._files import atomic_path

    out_dir = _check_output("--output", args.output, folder=True)
    _check_device(args.device)
    model = load_any_model(args.model, device=args.device)
    if not hasattr(_final_estimator(model), "classes_"):
        raise CommandError(f"{args.model}: not a classifier")
    classes = _final_estimator(model).classes_
    target = None if args.target is None else _class_label(classes, args.target)
    paths = _collect_files(args.inputs, volumes=_takes_volumes(model))
    X, paths = _images_for(model, paths, on_error=args.on_error)
    if not paths:
        raise CommandError("no image could be read (every file was skipped)")
    images = X
    if _reads_paths(model):
        images = model.steps[0][1].transform(X)
    if args.method in ("grad_cam", "hires_cam"):
        maps = grad_cam(model, X, target=target, variant=args.method)
    else:
        maps = saliency_map(model, X, target=target, method=args.method, random_state=0)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    proba = model.predict_proba(X)
    best = np.argmax(proba, axis=1)
    explained = (
        best if target is None else np.full(len(best), classes.tolist().index(target))
    )
    blank = maps.reshape(len(maps), -1).max(axis=1) <= 0
    name = METHOD_NAMES[args.method]
    out_dir.mkdir(parents=True, exist_ok=True)  # only now: a failure leaves none
    written = []
    for index, path in enumerate(paths):
        title = (
            f"{Path(path).name}\npredicted {classes[best[index]]} "
            f"(P = {proba[index, best[index]]:.3f})"
        )
        if maps.ndim == 4:  # a volume: three orthogonal slices through the peak
            figure, axes = plt.subplots(1, 3, figsize=(10, 3.6), layout="constrained")
            plot_volume_overlay(np.asarray(images[index]), maps[index], axes=axes)
            figure.suptitle(title, fontsize=9)
            axis = axes
        else:
            figure, axis = plt.subplots(figsize=(4.6, 4))
            plot_overlay(np.asarray(images[index]), maps[index], ax=axis)
            axis.set_title(title, fontsize=9)
        colour_bar = figure.colorbar(
            ScalarMappable(Normalize(0, 1), cmap="jet"), ax=axis, fraction=0.046
        )
        colour_bar.set_label(f"{name}: evidence for {classes[explained[index]]}")
        target_file = out_dir / f"{index:04d}_{_file_stem(path)}_{args.method}.png"
        with atomic_path(target_file) as tmp:
            figure.savefig(tmp, dpi=100, bbox_inches="tight")
        plt.close(figure)
        written.append(target_file)
    print(f"Wrote {_count(len(written), name + ' overlay')} to {out_dir}")
    if blank.any():
        print(
            f"{_count(int(blank.sum()), 'map')} with no positive evidence for the "
            "explained class (drawn as such, not as a heat map): "
            + ", ".join(Path(paths[i]).name for i in np.flatnonzero(blank))
        )
    return EXIT_OK


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def command_export(args: argparse.Namespace) -> int:
    """Write a saved model as an ONNX graph (``sk-medcnn export``)."""
    from .export import export_onnx

    output = _check_output_file("--output", args.output)
    model = load_any_model(args.model)
    try:
        export_onnx(model, output)
    except ImportError as error:
        raise CommandError(str(error)) from error
    except (TypeError, ValueError) as error:
        raise CommandError(f"{args.model}: {error}") from error
    estimator = _final_estimator(model)
    what = "probabilities" if hasattr(estimator, "classes_") else "predictions"
    print(
        f"Exported {args.model} to {output}: float32 images (n, height, width, "
        f"channels) in, {what} out (without test-time augmentation)."
    )
    return EXIT_OK


def command_serve(args: argparse.Namespace) -> int:
    """Serve a saved model over HTTP (``sk-medcnn serve``)."""
    from .serve import create_app

    _check_device(args.device)
    try:
        app = create_app(
            args.model,
            max_upload_bytes=int(args.max_upload_mb * 2**20),
            timeout=args.timeout,
            device=args.device,
        )
    except ImportError as error:
        raise CommandError(str(error)) from error
    except ValueError as error:
        raise UsageError(str(error)) from error
    import uvicorn

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        _warn(
            f"--host {args.host}: the service has no authentication; anyone who "
            "can reach this address can use the model."
        )
    print(f"Serving {args.model} on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def command_info(args: argparse.Namespace) -> int:
    """Print a model's card, or versions, the device and the architectures."""
    import sklearn
    import skorch
    import torch

    from . import __version__, architecture_spatial_dims, list_architectures
    from .utils._torch import resolve_device

    if args.model is not None:
        from ._card import model_card

        model = load_any_model(args.model)
        try:
            print(model_card(model), end="")
        except ValueError as error:
            raise CommandError(f"{args.model}: {error}") from error
        return EXIT_OK

    print(f"sk_medcnn {__version__}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    print(
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"skorch {skorch.__version__}, numpy {np.__version__}"
    )
    print(
        f"device: {resolve_device('auto')} (auto); torch threads: "
        f"{torch.get_num_threads()}"
    )
    extras = {
        "pydicom": "DICOM",
        "nibabel": "NIfTI",
        "matplotlib": "figures",
        "safetensors": ".skmed models",
        "onnxruntime": "ONNX export",
    }
    for module, use in extras.items():
        state = "installed" if _installed(module) else "missing"
        print(f"  {module:<12} {state:<10} ({use})")
    print("architectures (the spatial dimensions they build networks for):")
    for name in list_architectures():
        dims = ", ".join(f"{dim}-D" for dim in architecture_spatial_dims(name))
        print(f"  {name:<16} {dims}")
    return EXIT_OK


def _file_stem(path: str | Path) -> str:
    """Return the name of ``path`` without its extension (``.nii.gz`` as one)."""
    from .io._readers import extension_of

    name = Path(path).name
    extension = extension_of(path)
    return name[: len(name) - len(extension)] if extension else name


# --- parser ------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show "(default: ...)" after each option's help, unless there is none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        flag = action.nargs == 0 and not isinstance(
            action, argparse.BooleanOptionalAction
        )
        if action.default is None or (flag and action.default is False):
            return action.help
        return super()._get_help_string(action)


class _DeprecatedAlias(argparse.Action):
    """An old option spelling: stores into the new one's dest, with a warning."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        new = "--" + self.dest.replace("_", "-")
        _warn(f"{option_string} is deprecated and will be removed; use {new}")
        setattr(namespace, self.dest, values)


class _VersionAction(argparse.Action):
    """``--version``: sk_medcnn's, torch's and the device ``"auto"`` picks."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any):
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="print the versions of sk_medcnn and torch, and the device",
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        import torch

        from . import __version__
        from .utils._torch import resolve_device

        print(
            f"sk-medcnn {__version__} (torch {torch.__version__}, device "
            f"{resolve_device('auto')})"
        )
        parser.exit()


def _subcommand_parser(
    parser: argparse.ArgumentParser, name: str | None
) -> argparse.ArgumentParser:
    """Return the parser of subcommand ``name``, or ``parser`` when there is none."""
    for action in parser._actions:  # argparse keeps no public handle on them
        choices = getattr(action, "choices", None)
        if (
            isinstance(action, argparse._SubParsersAction)
            and choices
            and name in choices
        ):
            return cast(argparse.ArgumentParser, choices[name])
    return parser


def _options(parser: argparse.ArgumentParser) -> list[str]:
    """Return the long options ``parser`` shows in its help."""
    return [
        option
        for action in parser._actions
        if action.help is not argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--")
    ]


def _check_spelling(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Refuse an unknown ``--option`` of a subcommand, naming the closest one.

    Done before parsing: argparse reports a missing required option first, and
    an unknown one with the top-level usage and no suggestion.
    """
    import difflib

    command = next((arg for arg in argv if not arg.startswith("-")), None)
    subparser = _subcommand_parser(parser, command)
    if subparser is parser:
        return
    hidden = [
        option
        for action in subparser._actions
        if action.help is argparse.SUPPRESS
        for option in action.option_strings
    ]
    known = _options(subparser) + hidden + _options(parser)
    for arg in argv[list(argv).index(cast(str, command)) + 1 :]:
        if arg == "--":
            return
        name = arg.split("=", 1)[0]
        if not name.startswith("--") or any(o.startswith(name) for o in known):
            continue  # argparse takes unique prefixes of options
        close = difflib.get_close_matches(name, _options(subparser), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        subparser.error(f"unrecognized arguments: {arg}{hint}")


def build_parser() -> argparse.ArgumentParser:
    """Build the ``sk-medcnn`` argument parser.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="sk-medcnn",
        description="Train, evaluate and explain CNN classifiers of medical images.",
        epilog="DATA is a folder with one subfolder of images per class (PNG, "
        "JPEG, TIFF, DICOM, NIfTI) or a MedMNIST .npz file. Models ending in "
        ".skmed use the safe format, which loads without running code.",
    )
    parser.add_argument("--version", action=_VersionAction)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose", action="store_true", help="show tracebacks and debug messages"
    )
    common.add_argument(
        "--device", default="cpu", help="'auto', 'cpu', 'cuda', ... (default: cpu)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    defaults = _estimator_defaults()
    train_common = argparse.ArgumentParser(add_help=False)
    train_common.add_argument(
        "--verbose", action="store_true", help="show tracebacks and debug messages"
    )
    train_common.add_argument(
        "--device",
        default=str(defaults["device"]),
        help="'auto' (a GPU when there is one), 'cpu', 'cuda', 'cuda:1', 'mps'",
    )
    train = commands.add_parser(
        "train",
        parents=[train_common],
        help="train a classifier and save it",
        description="Train a classifier on DATA, save it and write a JSON report "
        "(with the validation split of a .npz file, or --valid, evaluated). The "
        "defaults are MedicalCNNClassifier's, except --seed: the same command "
        "gives the same model.",
        formatter_class=_DefaultsFormatter,
    )
    train.add_argument("data", metavar="DATA", help="image folder or .npz file")
    train.add_argument(
        "--output",
        metavar="MODEL",
        help="model file to write: .skmed (safe format) or .joblib (required)",
    )
    train.add_argument(  # the old spelling: still works, with a warning
        "--out", dest="output", action=_DeprecatedAlias, help=argparse.SUPPRESS
    )
    train.add_argument(
        "--report",
        metavar="JSON",
        help="report file (default: MODEL with .report.json)",
    )
    train.add_argument("--valid", metavar="DATA", help="validation data")
    train.add_argument(
        "--architecture",
        default=defaults["architecture"],
        help="a registered architecture (see `sk-medcnn info`)",
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        default=defaults["max_epochs"],
        help="epochs to train (at most, with --early-stopping)",
    )
    train.add_argument(
        "--batch-size",
        type=_positive_int,
        default=defaults["batch_size"],
        help="images per training step",
    )
    train.add_argument(
        "--lr", type=_positive_float, default=defaults["lr"], help="learning rate"
    )
    train.add_argument(
        "--optimizer",
        default=defaults["optimizer"],
        choices=("adam", "adamw", "sgd"),
        help="the optimizer",
    )
    train.add_argument(
        "--lr-schedule",
        default=_shown(defaults["lr_schedule"]),
        choices=("cosine", "step", "plateau", "onecycle", NONE),
        help="learning-rate schedule over the epochs",
    )
    train.add_argument(
        "--early-stopping",
        action=argparse.BooleanOptionalAction,
        default=defaults["early_stopping"],
        help="hold out part of the training data and restore the best epoch's weights",
    )
    train.add_argument(
        "--patience",
        type=_positive_int,
        default=defaults["patience"],
        help="epochs without improvement before early stopping",
    )
    train.add_argument(
        "--class-weight",
        default=_shown(defaults["class_weight"]),
        choices=("balanced", NONE),
        help="weight the loss against class imbalance",
    )
    train.add_argument(
        "--augment",
        metavar="LIST",
        default=None,
        help=f"augmentations, comma-separated, from: {', '.join(AUGMENTERS)}; "
        f"'{NONE}' for none (default: the estimator's, "
        f"{_shown(defaults['augmentation'])!r})",
    )
    train.add_argument(
        "--tta",
        default=_shown(defaults["tta"]),
        help="test-time augmentation: views averaged at prediction, e.g. auto, "
        f"hflip, shifts, hflip+shifts, or '{NONE}'",
    )
    train.add_argument(
        "--calibration",
        default=_shown(defaults["calibration"]),
        choices=("temperature", NONE),
        help="fit a temperature on a held-out part of the training data",
    )
    train.add_argument(
        "--image-size", type=_positive_int, metavar="N", help="resize images to N x N"
    )
    train.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="convert folder images to 1 (gray) or 3 (RGB) channels",
    )
    train.add_argument(
        "--on-error",
        default="raise",
        choices=("raise", "skip"),
        help="unreadable files in a folder: stop, or skip with a warning",
    )
    train.add_argument(
        "--checkpoint-dir", metavar="DIR", help="save the training state every epoch"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the training saved in --checkpoint-dir",
    )
    train.add_argument(
        "--bootstraps",
        type=_positive_int,
        default=1000,
        help="bootstrap resamples for the validation report's 95%% intervals",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random_state of the estimator (its own default, None, differs "
        "from run to run)",
    )
    train.add_argument(
        "--quiet",
        action="store_true",
        help="no epoch lines or progress bar while training",
    )
    train.set_defaults(handler=command_train)

    evaluate = commands.add_parser(
        "evaluate",
        parents=[common],
        help="score a saved model on labelled data",
        description="Print ACC, AUC, sensitivity, specificity, PPV, NPV, F1 and "
        "balanced accuracy with bootstrap 95% confidence intervals, and the "
        "confusion matrix.",
    )
    evaluate.add_argument(
        "model", metavar="MODEL", help="a saved classifier (.skmed or .joblib)"
    )
    evaluate.add_argument(
        "data", metavar="DATA", help="labelled images: a class folder or a .npz file"
    )
    evaluate.add_argument(
        "--split",
        default="val",
        choices=("train", "val", "test"),
        help="split of a .npz file (default: val)",
    )
    evaluate.add_argument(
        "--threshold",
        type=_probability,
        default=0.5,
        help="predict the positive class from this probability on (default: 0.5)",
    )
    evaluate.add_argument(
        "--labels",
        metavar="NAME=CLASS,...",
        help="map the data's labels onto the model's classes, e.g. "
        "normal=0,pneumonia=1 for a folder and a model trained on a .npz file",
    )
    evaluate.add_argument(
        "--bootstraps",
        type=_positive_int,
        default=1000,
        help="bootstrap resamples for the 95%% intervals (default: 1000)",
    )
    evaluate.add_argument(
        "--seed", type=int, default=0, help="seed of the resampling (default: 0)"
    )
    evaluate.add_argument("--output", metavar="JSON", help="also write the report")
    evaluate.set_defaults(handler=command_evaluate)

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="predict image files, write a CSV table",
    )
    predict.add_argument(
        "model", metavar="MODEL", help="a saved classifier (.skmed or .joblib)"
    )
    predict.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE_OR_FOLDER",
        help="image files, or folders read with their subfolders",
    )
    predict.add_argument(
        "--output",
        required=True,
        metavar="CSV",
        help="the table to write: a row per file (required)",
    )
    predict.add_argument(
        "--on-error",
        default="raise",
        choices=("raise", "skip"),
        help="unreadable files: stop, or skip them with a warning",
    )
    predict.add_argument(
        "--dicom-out",
        metavar="DIR",
        help="also write a DICOM structured report per DICOM input, in its study",
    )
    predict.set_defaults(handler=command_predict)

    explain = commands.add_parser(
        "explain",
        parents=[common],
        help="write Grad-CAM or saliency overlays",
    )
    explain.add_argument(
        "model", metavar="MODEL", help="a saved classifier (.skmed or .joblib)"
    )
    explain.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE_OR_FOLDER",
        help="image files, or folders read with their subfolders",
    )
    explain.add_argument(
        "--output",
        required=True,
        metavar="DIR",
        help="folder for the overlays, a PNG file per image (required)",
    )
    explain.add_argument(
        "--on-error",
        default="raise",
        choices=("raise", "skip"),
        help="unreadable files: stop, or skip them with a warning",
    )
    explain.add_argument(
        "--method",
        default="hires_cam",
        choices=tuple(METHOD_NAMES),
        help="hires_cam (default) follows what simple_cnn computes and equals "
        "grad_cam for the ResNets; gradient, smoothgrad and "
        "integrated_gradients are pixel saliency maps",
    )
    explain.add_argument(
        "--target",
        metavar="CLASS",
        help="the class to explain (default: each image's predicted class)",
    )
    explain.set_defaults(handler=command_explain)

    benchmark = commands.add_parser(
        "benchmark",
        parents=[common],
        help="train over seeds, score a MedMNIST test split once",
        description="Train the classifier on the train (+ val) split of a MedMNIST "
        ".npz file once per seed; only then read the test split and score each "
        "model on it once. Writes per-image predictions (the MedMNIST evaluator's "
        "CSV layout) and tables of ACC, AUC, balanced accuracy, sensitivity, "
        "specificity and ECE with confidence intervals over seeds and by "
        "bootstrap.",
    )
    benchmark.add_argument("data", metavar="DATA", help="a MedMNIST .npz file")
    benchmark.add_argument(
        "--output", required=True, metavar="DIR", help="folder for the results"
    )
    benchmark.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        metavar="SEED",
        help="one fit per seed (default: %(default)s)",
    )
    benchmark.add_argument(
        "--train-on",
        nargs="+",
        default=["train", "val"],
        choices=("train", "val"),
        metavar="SPLIT",
        help="splits to train on, from train, val (default: %(default)s)",
    )
    benchmark.add_argument(
        "--architecture", default="simple_cnn", help="(default: %(default)s)"
    )
    benchmark.add_argument(
        "--epochs", type=_positive_int, default=20, help="(default: %(default)s)"
    )
    benchmark.add_argument(
        "--tta",
        default="auto",
        help="'auto', 'none', or e.g. shifts, hflip+shifts (default: %(default)s)",
    )
    benchmark.add_argument(
        "--bootstraps", type=_positive_int, default=1000, help="(default: %(default)s)"
    )
    benchmark.add_argument("--quiet", action="store_true", help="no per-epoch table")
    benchmark.set_defaults(handler=command_benchmark)

    export = commands.add_parser(
        "export",
        parents=[common],
        help="write a saved model as ONNX, to run without PyTorch",
        description="Write MODEL as an ONNX graph (needs the onnx extra): float32 "
        "images (n, height, width, channels) in, probabilities out, with the "
        "input standardisation, temperature and exportable Pipeline steps.",
    )
    export.add_argument(
        "model", metavar="MODEL", help="a saved model (.skmed or .joblib)"
    )
    export.add_argument(
        "--output",
        required=True,
        metavar="ONNX",
        help="the ONNX file to write (required)",
    )
    export.set_defaults(handler=command_export)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="serve a saved model: a JSON API and a page for a browser",
        description="Serve MODEL (.skmed only) over HTTP: GET / (a page), "
        "/health, /model; POST /predict and /explain with a multipart field "
        "'file'. Needs the serve extra.",
    )
    serve.add_argument(
        "model", metavar="MODEL", help="a saved classifier in the safe .skmed format"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=_positive_int, default=8000, help="(default: %(default)s)"
    )
    serve.add_argument(
        "--max-upload-mb",
        type=_positive_float,
        default=32.0,
        help="largest upload in MiB (default: %(default)s)",
    )
    serve.add_argument(
        "--timeout",
        type=_positive_float,
        default=60.0,
        help="seconds before a request is answered 503 (default: %(default)s)",
    )
    serve.set_defaults(handler=command_serve)

    info = commands.add_parser(
        "info",
        parents=[common],
        help="a model's card, or versions, device and architectures",
    )
    info.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="print this saved model's card (training data, validation, use)",
    )
    info.set_defaults(handler=command_info)
    return parser


@contextlib.contextmanager
def _console(verbose: bool) -> Iterator[list[str]]:
    """Route logs and warnings of one command to stderr, one line each.

    sk_medcnn's own log lines always show. Other libraries' log records (e.g.
    pydicom's complaints about a corrupt file) show only with ``--verbose``.
    Warnings are collected and printed once each when the command ends; when it
    fails, its one error line is printed alone (with ``--verbose``, everything).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sk-medcnn: %(message)s"))
    root = logging.getLogger()
    ours = logging.getLogger("sk_medcnn")
    saved = (root.level, ours.level, ours.propagate)
    quiet = logging.NullHandler()  # keeps logging's last-resort printer away
    if verbose:
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
    else:
        root.addHandler(quiet)
        ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False
    messages: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                yield messages
            finally:
                for warning in caught:
                    text = str(warning.message)
                    if text not in messages:
                        messages.append(text)
    finally:
        root.removeHandler(handler)
        root.removeHandler(quiet)
        ours.removeHandler(handler)
        root.setLevel(saved[0])
        ours.setLevel(saved[1])
        ours.propagate = saved[2]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sk-medcnn`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    exit_code : int
        0 on success, 1 on an error, 2 on a usage error, 130 when interrupted.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        _check_spelling(parser, argv)
        args = parser.parse_args(argv)
        command = _subcommand_parser(parser, args.command)
        if args.command == "train" and args.output is None:
            command.error("the following arguments are required: --output")
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_.code or 0)
    from .exceptions import ArchitectureNotFoundError

    failed = True
    messages: list[str] = []
    try:
        with _console(args.verbose) as messages:
            code = int(args.handler(args))
        failed = False
        return code
    except KeyboardInterrupt:
        print("sk-medcnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as error:  # a bad option value: as argparse reports one
        if args.verbose:
            traceback.print_exc()
        command.print_usage(sys.stderr)
        print(f"sk-medcnn {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (
        CommandError,
        ValueError,
        TypeError,
        OSError,
        ImportError,
        ArchitectureNotFoundError,
        MemoryError,
    ) as error:
        if args.verbose:
            traceback.print_exc()
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if isinstance(error, OSError) and error.filename and not message:
            message = f"{error.filename}: {error.strerror}"
        if isinstance(error, MemoryError):
            message = f"out of memory ({message or 'MemoryError'})"
        print(
            f"sk-medcnn {args.command}: error: {message or type(error).__name__}",
            file=sys.stderr,
        )
        return error.exit_code if isinstance(error, CommandError) else EXIT_ERROR
    finally:
        if not failed or args.verbose:
            for text in messages:
                _warn(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
