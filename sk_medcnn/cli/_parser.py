"""The ``sk-medcnn`` argument parser, its option types and its spelling check."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TypeAlias, cast

import numpy as np

from ._common import NONE, _shown, _warn
from ._deploy import command_export, command_serve
from ._evaluate import command_evaluate
from ._explain import METHOD_NAMES, command_explain
from ._info import command_info
from ._predict import command_predict
from ._train import AUGMENTERS, command_benchmark, command_train


def _estimator_defaults() -> dict[str, Any]:
    """Return the parameters of a default :class:`~sk_medcnn.MedicalCNNClassifier`.

    ``sk-medcnn train`` takes its defaults from here, so the command line and
    the Python API train the same model unless told otherwise.

    Returns
    -------
    defaults : dict
        ``MedicalCNNClassifier().get_params(deep=False)``.
    """
    from .. import MedicalCNNClassifier

    return MedicalCNNClassifier().get_params(deep=False)


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

        from .. import __version__
        from ..utils._runtime import resolve_device

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
    common = _common_options(
        device="cpu", device_help="'auto', 'cpu', 'cuda', ... (default: cpu)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(commands)
    _add_evaluate(commands, common)
    _add_predict(commands, common)
    _add_explain(commands, common)
    _add_benchmark(commands, common)
    _add_export(commands, common)
    _add_serve(commands, common)
    _add_info(commands, common)
    return parser


#: what ``add_subparsers`` returns: each ``_add_*`` function adds one command to it
_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _common_options(*, device: str, device_help: str) -> argparse.ArgumentParser:
    """Return the parent parser of the options every command takes.

    Parameters
    ----------
    device : str
        The default of ``--device``.
    device_help : str
        The help of ``--device``.

    Returns
    -------
    parent : argparse.ArgumentParser
        With ``--verbose`` and ``--device``, and no ``--help``.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose", action="store_true", help="show tracebacks and debug messages"
    )
    common.add_argument("--device", default=device, help=device_help)
    return common


def _add_train(commands: _Commands) -> None:
    """Add ``train``: its defaults are those of ``MedicalCNNClassifier()``."""
    defaults = _estimator_defaults()
    common = _common_options(
        device=str(defaults["device"]),
        device_help="'auto' (a GPU when there is one), 'cpu', 'cuda', 'cuda:1', 'mps'",
    )
    train = commands.add_parser(
        "train",
        parents=[common],
        help="train a classifier and save it",
        description="Train a classifier on DATA, save it and write a JSON report "
        "(with the validation split of a .npz file, or --valid, evaluated). The "
        "defaults are MedicalCNNClassifier's, except --seed: the same command "
        "gives the same model.",
        formatter_class=_DefaultsFormatter,
    )
    _add_train_files(train)
    _add_train_fitting(train, defaults)
    _add_train_regularisation(train, defaults)
    _add_train_run(train)
    train.set_defaults(handler=command_train)


def _add_train_files(train: argparse.ArgumentParser) -> None:
    """Add the data and the files ``train`` reads and writes."""
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


def _add_train_fitting(
    train: argparse.ArgumentParser, defaults: dict[str, Any]
) -> None:
    """Add the network and the optimisation of ``train``, with the defaults."""
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
        choices=("auto", "cosine", "step", "plateau", "onecycle", NONE),
        help="learning-rate schedule over the epochs ('auto': onecycle, a "
        "warm-up, when the loss is class-weighted, else cosine)",
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


def _add_train_regularisation(
    train: argparse.ArgumentParser, defaults: dict[str, Any]
) -> None:
    """Add the class weights, augmentation, test-time views and calibration."""
    train.add_argument(
        "--class-weight",
        default=_shown(defaults["class_weight"]),
        choices=("auto", "balanced", NONE),
        help="weight the loss against class imbalance ('auto': balanced for two "
        "classes when the rarer has under 20%% of the samples)",
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


def _add_train_run(train: argparse.ArgumentParser) -> None:
    """Add how ``train`` reads images, saves its state, seeds and reports."""
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


def _add_evaluate(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """Add ``evaluate``."""
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


def _add_image_files(
    command: argparse.ArgumentParser, *, output: str, output_help: str
) -> None:
    """Add the model, the files and ``--on-error`` of ``predict`` and ``explain``.

    Parameters
    ----------
    command : argparse.ArgumentParser
        The command's parser.
    output : str
        The metavar of ``--output``.
    output_help : str
        The help of ``--output``.
    """
    command.add_argument(
        "model", metavar="MODEL", help="a saved classifier (.skmed or .joblib)"
    )
    command.add_argument(
        "inputs",
        nargs="+",
        metavar="FILE_OR_FOLDER",
        help="image files, or folders read with their subfolders",
    )
    command.add_argument(
        "--output",
        required=True,
        metavar=output,
        help=output_help,
    )
    command.add_argument(
        "--on-error",
        default="raise",
        choices=("raise", "skip"),
        help="unreadable files: stop, or skip them with a warning",
    )


def _add_predict(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """Add ``predict``."""
    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="predict image files, write a CSV table",
    )
    _add_image_files(
        predict,
        output="CSV",
        output_help="the table to write: a row per file (required)",
    )
    predict.add_argument(
        "--dicom-out",
        metavar="DIR",
        help="also write a DICOM structured report per DICOM input, in its study",
    )
    predict.set_defaults(handler=command_predict)


def _add_explain(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """Add ``explain``."""
    explain = commands.add_parser(
        "explain",
        parents=[common],
        help="write Grad-CAM or saliency overlays",
    )
    _add_image_files(
        explain,
        output="DIR",
        output_help="folder for the overlays, a PNG file per image (required)",
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


def _add_benchmark(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """Add ``benchmark``."""
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


def _add_export(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """Add ``export``."""
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


def _add_serve(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """Add ``serve``."""
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


def _add_info(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """Add ``info``."""
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
