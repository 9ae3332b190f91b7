"""The parameter checks the estimators share (see ``_parameter_constraints``)."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from .._engine import (
    OPTIMIZERS,
)
from ..utils._inference import TTA_TOKENS
from ..utils._validation import (
    one_of,
)

#: Upper bounds of the parameters that size resources. Far above any machine's
#: cores, and low enough that a hostile value (in a model file, say) gets a
#: ValueError: torch.set_num_threads(2**31 - 1) ends the process in libgomp.
MAX_THREADS = 1024
MAX_WORKERS = 256


def architecture_like(value: Any, name: str) -> None:
    if isinstance(value, str) or callable(value):
        return
    raise TypeError(
        f"{name} must be a registered architecture name (see "
        "sk_medcnn.list_architectures()) or a factory callable "
        f"(in_channels, n_outputs, image_shape, **params) -> nn.Module; got {value!r}."
    )


def optimizer_like(value: Any, name: str) -> None:
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
        return
    one_of(tuple(OPTIMIZERS))(value, name)


def device_like(value: Any, name: str) -> None:
    if isinstance(value, str | torch.device):
        return
    raise TypeError(f"{name} must be a str or torch.device; got {value!r}.")


#: ``augmentation="auto"`` leaves images smaller than this (pixels on a side,
#: e.g. rows of features seen as one-row images) unaugmented.
AUTO_AUGMENTATION_MIN_SIZE = 8


def augmentation_like(value: Any, name: str) -> None:
    # the full protocol check happens in augmentation_steps
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(
                f"{name} must be None, 'auto', an augmenter from "
                f"sk_medcnn.augmentation, or a list or Pipeline of them; got {value!r}."
            )
        return
    if isinstance(value, list | tuple):
        for step in value:
            if step is None:
                raise TypeError(
                    f"{name} is a list holding None; leave the step out of the list."
                )
            augmentation_like(step, name)
        return
    for step in [value]:
        if step is not None and not isinstance(step, BaseEstimator):
            raise TypeError(
                f"{name} must be None, 'auto', an augmenter from "
                "sk_medcnn.augmentation, or a list or Pipeline of them; got "
                f"{type(step).__name__}."
            )


def tta_like(value: Any, name: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be None or a str such as 'hflip' or 'hflip+shifts'; "
            f"got {type(value).__name__}."
        )
    tokens = value.split("+")
    unknown = [token for token in tokens if token not in TTA_TOKENS]
    if unknown or len(set(tokens)) != len(tokens):
        raise ValueError(
            f"{name} must be None or '+'-joined distinct tokens from "
            f"{', '.join(map(repr, TTA_TOKENS))}; got {value!r}."
        )


def classifier_tta_like(value: Any, name: str) -> None:
    """Check the classifier's ``tta``: ``"auto"`` or what :func:`tta_like` takes."""
    if isinstance(value, str) and value == "auto":
        return
    try:
        tta_like(value, name)
    except ValueError:
        raise ValueError(
            f"{name} must be 'auto', None or '+'-joined distinct tokens from "
            f"{', '.join(map(repr, TTA_TOKENS))}; got {value!r}."
        ) from None
    except TypeError:
        raise TypeError(
            f"{name} must be 'auto', None or a str such as 'hflip' or "
            f"'hflip+shifts'; got {type(value).__name__}."
        ) from None


def pretrained_like(value: Any, name: str) -> None:
    if value is None or isinstance(value, str | os.PathLike):
        return
    if isinstance(value, BaseEstimator):  # checked to be a fitted CNN in fit
        return
    raise TypeError(
        f"{name} must be None, a weights file (.pth, .pt, .safetensors), a .skmed "
        f"model file or a fitted sk_medcnn estimator; got {type(value).__name__}."
    )


_NORMALIZATIONS = ("auto", "data", "imagenet")


def normalization_like(value: Any, name: str) -> None:
    if isinstance(value, str):
        one_of(_NORMALIZATIONS)(value, name)
        return
    if isinstance(value, tuple | list) and len(value) == 2:
        for part in value:
            values = np.asarray(part, dtype=object).reshape(-1)
            if len(values) < 1 or not all(
                isinstance(item, int | float | np.number)
                and not isinstance(item, bool)
                and math.isfinite(float(item))
                for item in values
            ):
                raise ValueError(
                    f"{name}=(mean, std) must hold finite numbers, one per channel "
                    f"or one for all; got {value!r}."
                )
        if np.any(np.asarray(value[1], dtype=float) <= 0):
            raise ValueError(f"{name}=(mean, std) needs std > 0; got {value!r}.")
        return
    raise TypeError(
        f"{name} must be 'auto', 'data', 'imagenet' or a (mean, std) pair; got "
        f"{value!r}."
    )


def path_like(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name} must be None or a path; got {type(value).__name__}.")


def class_weight_like(value: Any, name: str) -> None:
    if value is None or isinstance(value, dict):
        return
    if isinstance(value, str) and value in ("auto", "balanced"):
        return
    error = ValueError if isinstance(value, str) else TypeError
    raise error(f"{name} must be 'auto', None, 'balanced' or a dict; got {value!r}.")
