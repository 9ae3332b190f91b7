"""``sk-medcnn evaluate``: score a saved model on labelled data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._common import (
    EXIT_OK,
    CommandError,
    UsageError,
    _check_device,
    _check_output_file,
)
from ._data import load_data
from ._models import _final_estimator, _reads_paths, load_any_model
from ._reports import evaluation, write_json


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
        from ..io import load_image_folder

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
