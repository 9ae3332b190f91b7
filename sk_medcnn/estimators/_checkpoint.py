"""Checkpoints of a fit: where they go and the data and settings they belong to."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray

from .._engine import (
    CHECKPOINT_NAME,
    TrainingCheckpoint,
    load_checkpoint,
)

if TYPE_CHECKING:
    from ._base import _BaseMedicalCNN


def make_checkpoint(
    estimator: _BaseMedicalCNN,
    images: NDArray[Any],
    y_encoded: NDArray[Any],
    generators: dict[str, torch.Generator],
    *,
    n_train: int,
    rows: NDArray[np.intp] | None = None,
    sample_weight: NDArray[np.float32] | None = None,
    resolved: dict[str, Any] | None = None,
) -> tuple[TrainingCheckpoint | None, dict[str, Any] | None]:
    """Make the checkpoint callback and load the state to resume, if any.

    The checkpoint belongs to the data (a sample of ``images``, the targets,
    ``rows`` and ``sample_weight``) and the settings: another fit refuses it.
    ``resolved`` holds the settings as the fit resolved them
    (``class_weight`` and ``lr_schedule`` for ``"auto"``), which stand for
    the parameters: a checkpoint belongs to what trained, not to how it was
    asked for.
    """
    if estimator.checkpoint_dir is None:
        if estimator.resume:
            raise ValueError(
                "resume=True needs checkpoint_dir, the folder the interrupted "
                "fit saved its checkpoints to."
            )
        return None, None
    folder = Path(estimator.checkpoint_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"checkpoint_dir={str(folder)!r} is a file, not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a parent is a file, or no permission
        reason = error.strerror or str(error)
        raise ValueError(
            f"checkpoint_dir={str(folder)!r} cannot be created ({reason})."
        ) from error
    path = folder / CHECKPOINT_NAME
    described = fingerprint(estimator, images, y_encoded, n_train)
    for name, value in (resolved or {}).items():
        described[name] = _setting(value)
    if rows is not None and not np.array_equal(rows, np.arange(len(images))):
        # which samples train (weights of 0 leave some out, counts repeat)
        described["rows_crc32"] = zlib.crc32(
            np.ascontiguousarray(rows, dtype=np.int64).tobytes()
        )
    if sample_weight is not None:
        described["sample_weight_crc32"] = zlib.crc32(
            np.ascontiguousarray(sample_weight).tobytes()
        )
    resume_state = load_checkpoint(path, described) if estimator.resume else None
    return TrainingCheckpoint(path, described, generators, resume_state), (resume_state)


def _setting(value: Any) -> Any:
    """Return a parameter as a checkpoint records it: plain, or as its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def fingerprint(
    estimator: _BaseMedicalCNN,
    images: NDArray[Any],
    y_encoded: NDArray[Any],
    n_train: int,
) -> dict[str, Any]:
    """Describe the data and the settings a checkpoint belongs to."""
    ignored = {
        "verbose",
        "checkpoint_dir",
        "resume",
        "device",
        "tta",
        "ood_false_alarm_rate",
        "num_workers",
        "n_threads",
    }
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        if name in ignored:
            continue
        params[name] = _setting(value)
    step = max(1, len(images) // 64)
    sample = np.ascontiguousarray(images[::step])
    return {
        **json.loads(json.dumps(params, default=str)),
        "n_samples": len(images),
        "n_train": int(n_train),
        "image_shape": list(images.shape[1:]),
        "dtype": str(images.dtype),
        "y_crc32": zlib.crc32(np.ascontiguousarray(y_encoded).tobytes()),
        "X_sample_crc32": zlib.crc32(sample.tobytes()),
    }
