"""Fitted-state checks: what a fitted model must be to be saved, or loaded.

Saving takes a fitted CNN estimator, or a Pipeline ending in one. Loading checks,
before the network is rebuilt, every fitted attribute that ``_restore_net`` and
``predict`` rely on: a file may hold any values there, and an attribute of the
wrong type or shape must be refused with its name, not fail later in ``predict``.
Files written by earlier releases lack some attributes; those get the values the
release that wrote them meant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeGuard

from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..estimators._base import _BaseMedicalCNN
from ..estimators._fitted import FittedStateError, check_fitted_state
from ..exceptions import ModelFileError
from ._format import (
    _MAX_IMAGE_VALUES,
    _attribute,
    _child,
)


def _check_saveable(model: Any) -> _BaseMedicalCNN:
    """Check the model's shape: a fitted CNN estimator, or a Pipeline ending in one."""
    final = model
    while isinstance(final, Pipeline):  # nested pipelines end in the estimator too
        steps = final.steps
        final = steps[-1][1] if type(steps) is list and steps else None
    if not isinstance(final, _BaseMedicalCNN):
        best = (
            " (save search.best_estimator_)"
            if hasattr(model, "best_estimator_")
            else ""
        )
        raise TypeError(
            "save_model saves a fitted MedicalCNNClassifier or MedicalCNNRegressor, "
            "or a Pipeline ending in one; got "
            f"{type(model).__name__}{best}."
        )
    check_is_fitted(final, "net_")
    return final


def _is_passthrough(step: Any) -> bool:
    return step is None or (type(step) is str and step == "passthrough")


def _is_image_shape(value: Any) -> TypeGuard[tuple[int, ...]]:
    return (
        type(value) is tuple
        and 1 <= len(value) <= 4
        and all(type(size) is int and size >= 1 for size in value)
        and math.prod(value) <= _MAX_IMAGE_VALUES
    )


def _check_fitted_state(
    estimator: _BaseMedicalCNN, where: str, error: Callable[[str, str], ModelFileError]
) -> None:
    """Check a loaded estimator's fitted state (see :func:`check_fitted_state`).

    ``error(where, message)`` makes the :class:`ModelFileError` to raise for
    the place in the object tree the broken attribute or parameter holds.
    """
    try:
        check_fitted_state(estimator, max_image_values=_MAX_IMAGE_VALUES)
    except FittedStateError as broken:
        place = (_child if broken.parameter else _attribute)(where, broken.name)
        raise error(place, broken.message) from broken.__cause__
