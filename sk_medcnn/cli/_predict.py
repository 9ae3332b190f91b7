"""``sk-medcnn predict``: a CSV table of predictions, and DICOM reports."""

from __future__ import annotations

import argparse
import csv
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._common import (
    EXIT_OK,
    CommandError,
    _check_device,
    _check_output,
    _check_output_file,
    _count,
)
from ._data import _collect_files, _images_for
from ._models import _final_estimator, _takes_volumes, load_any_model
from ._reports import _file_stem


def command_predict(args: argparse.Namespace) -> int:
    """Predict the class of image files (``sk-medcnn predict``)."""
    from ..exceptions import OutOfDistributionWarning
    from ..inspection import check_distribution
    from ..utils._files import atomic_open

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
    from ..io import write_dicom_report
    from ..io._readers import detect_format

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
