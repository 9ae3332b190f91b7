"""``sk-medcnn train`` and ``sk-medcnn benchmark``: the commands that fit models."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ._common import (
    EXIT_OK,
    NONE,
    CommandError,
    UsageError,
    _check_device,
    _check_output,
    _check_output_file,
    _count,
    _none,
)
from ._data import _has_split, _is_npz, load_data
from ._models import _check_model_suffix, save_any_model
from ._reports import evaluation, write_json

AUGMENTERS = ("flip", "rotation", "affine", "intensity", "noise", "erasing")


def _augmentation(names: str | None) -> Any:
    if not names:
        return None
    from .. import augmentation as aug

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
    from ..exceptions import ArchitectureNotFoundError
    from ..registry import get_architecture

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


def _check_image_size(classifier: Any, size: int, channels: int | None) -> None:
    """Refuse an ``--image-size`` whose training cannot fit in memory, up front."""
    from ..utils._memory import check_memory, training_memory, worth_estimating

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


def command_train(args: argparse.Namespace) -> int:
    """Train a classifier on DATA and save it (``sk-medcnn train``)."""
    out, report_path = _check_train_outputs(args)
    _check_device(args.device)
    classifier = _classifier_from(args)
    _check_options(classifier)
    if args.image_size:
        _check_image_size(classifier, args.image_size, args.channels)
    X, y, valid = _training_data(args)
    from ..utils._validation import infer_spatial_dims

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
    document = _training_report(args, classifier, n_train=len(X), seconds=seconds)
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


def _check_train_outputs(args: argparse.Namespace) -> tuple[Path, Path]:
    """Check the model, report and checkpoint outputs of ``train`` before any work.

    Returns
    -------
    out : pathlib.Path
        The model file.
    report_path : pathlib.Path
        The report file.
    """
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
    return out, report_path


def _classifier_from(args: argparse.Namespace) -> Any:
    """Return the unfitted classifier the options of ``train`` describe."""
    from .. import MedicalCNNClassifier

    chosen: dict[str, Any] = {}  # options left out keep the estimator's default
    if args.augment is not None:
        chosen["augmentation"] = (
            None if args.augment.lower() == NONE else _augmentation(args.augment)
        )
    return MedicalCNNClassifier(
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


def _training_data(
    args: argparse.Namespace,
) -> tuple[Any, Any, tuple[Any, Any] | None]:
    """Read the training data of ``train``, and its validation data if any.

    Returns
    -------
    X, y : ndarray
        The training images and labels.
    valid : tuple of ndarray, or None
        ``--valid``, else the ``val`` split of a ``.npz`` file that has one.
    """
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
    return X, y, valid


def _training_report(
    args: argparse.Namespace, classifier: Any, *, n_train: int, seconds: float
) -> dict[str, Any]:
    """Return the report of a fitted classifier, before its validation figures."""
    return {
        "data": str(args.data),
        "n_train": n_train,
        "image_shape": list(classifier.image_shape_),
        "classes": classifier.classes_.tolist(),
        "parameters": {
            name: value if isinstance(value, int | float | str | None) else repr(value)
            for name, value in classifier.get_params(deep=False).items()
        },
        "n_epochs": classifier.n_epochs_,
        "best_epoch": classifier.best_epoch_,
        "class_weight": (  # the class weights used ("auto" decides)
            classifier.class_weight_
            if classifier.class_weight_ is None
            or isinstance(classifier.class_weight_, str)
            else repr(classifier.class_weight_)
        ),
        "lr_schedule": classifier.lr_schedule_,  # "auto" decides
        "tta": classifier.tta_,  # the test-time augmentation used ("auto" decides)
        "tta_scores": classifier.tta_scores_,
        "fit_seconds": round(seconds, 2),
        "history": [
            {key: value for key, value in row.items() if key != "batches"}
            for row in classifier.history_
        ],
    }


def command_benchmark(args: argparse.Namespace) -> int:
    """Train per seed, then score a test split once (``sk-medcnn benchmark``)."""
    from .. import MedicalCNNClassifier
    from ..evaluation import benchmark_medmnist

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
