"""The fitted state of an estimator: the invariants ``fit`` establishes, checked.

Used where fitted attributes come from elsewhere than ``fit``: the safe model
format's loader (:mod:`sk_medcnn.persistence`) checks every estimator it reads
with :func:`check_fitted_state` before it builds the network.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from .._engine import LR_SCHEDULES
from .._ood import OOD_MAX_FEATURES
from ..utils._network import MEMORY_FORMATS
from ._base import _BaseMedicalCNN
from ._calibration import TEMPERATURE_RANGE
from ._classifier import MedicalCNNClassifier
from ._params import tta_like

#: The most class means an out-of-distribution score may hold.
MAX_OOD_GROUPS = 2**16


class FittedStateError(ValueError):
    """A fitted attribute (or parameter) that breaks an invariant of ``fit``.

    Parameters
    ----------
    name : str
        The attribute's (or parameter's) name.
    message : str
        What is wrong and what it must be.
    parameter : bool, default=False
        Whether ``name`` is a parameter rather than a fitted attribute.
    """

    def __init__(self, name: str, message: str, *, parameter: bool = False) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.parameter = parameter


def json_like(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is plain data a model card may hold (a dict at the top)."""
    if depth == 0 and type(value) is not dict:
        return False
    if depth > 8:
        return False
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is list:
        return all(json_like(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(
            type(key) is str and json_like(item, depth + 1)
            for key, item in value.items()
        )
    return False


class _FittedState:
    """The fitted attributes of one estimator, to be checked one by one.

    Parameters
    ----------
    estimator : MedicalCNNClassifier or MedicalCNNRegressor
        The estimator as built from the file, its fitted attributes set.
    max_image_values : int
        The most values one input image may hold.
    """

    def __init__(self, estimator: _BaseMedicalCNN, max_image_values: int) -> None:
        self.estimator = estimator
        self.values = vars(estimator)
        self.max_image_values = max_image_values

    def require(self, name: str, valid: bool, expected: str) -> None:
        """Refuse the attribute ``name`` unless ``valid``, saying what it must be."""
        if not valid:
            raise FittedStateError(
                name,
                f"fitted attribute {name} must be {expected}; got "
                f"{self.values.get(name, '<missing>')!r}.",
            )


def check_fitted_state(
    estimator: _BaseMedicalCNN, *, max_image_values: int = 2**26
) -> None:
    """Check the fitted attributes ``_restore_net`` and ``predict`` rely on.

    The invariants ``fit`` establishes, checked for an estimator whose fitted
    attributes come from elsewhere (a model file); attributes that models of
    earlier releases lack are set here, as those releases behaved.

    Parameters
    ----------
    estimator : MedicalCNNClassifier or MedicalCNNRegressor
        The estimator with its fitted attributes set, before its network is
        restored.
    max_image_values : int, default=2**26
        The most values one input image may hold.

    Raises
    ------
    FittedStateError
        Naming the first attribute (or parameter) that breaks an invariant.
    """
    if not isinstance(estimator.architecture, str):
        raise FittedStateError(
            "architecture", "architecture must be a registry name.", parameter=True
        )
    state = _FittedState(estimator, max_image_values)
    shape = _check_input_shape(state)
    _check_input_statistics(state, shape)
    _check_architecture_params(state)
    _check_ood_state(state)
    _check_lr_schedule(state)
    if "model_card_" in state.values and not json_like(state.values["model_card_"]):
        raise FittedStateError(
            "model_card_",
            "fitted attribute model_card_ must be a dict of str keys holding "
            "str, int, finite float, bool, None, lists and such dicts.",
        )
    if isinstance(estimator, MedicalCNNClassifier):
        _check_classifier_state(state)
    else:
        _check_regressor_state(state)


def _check_input_shape(state: _FittedState) -> tuple[int, ...]:
    """Check ``image_shape_`` and the sizes derived from it; return the shape."""
    shape = state.values.get("image_shape_")
    state.require(
        "image_shape_",
        type(shape) is tuple
        and len(shape) in (3, 4)
        and all(type(size) is int and size >= 1 for size in shape)
        and math.prod(shape) <= state.max_image_values,
        "a tuple ([depth,] height, width, channels) of at most "
        f"{state.max_image_values:,} values",
    )
    shape = cast(tuple[int, ...], shape)
    if "spatial_dims_" not in state.values:  # files written before volumes existed
        state.estimator.spatial_dims_ = len(shape) - 1
    state.require(
        "spatial_dims_",
        state.estimator.spatial_dims_ == len(shape) - 1,
        f"{len(shape) - 1}, the spatial axes of image_shape_ {shape}",
    )
    state.require(
        "n_features_in_",
        state.values.get("n_features_in_") == math.prod(shape),
        f"{math.prod(shape)} ([depth x] height x width x channels)",
    )
    return shape


def _check_input_statistics(state: _FittedState, shape: tuple[int, ...]) -> None:
    """Check the statistics the inputs are normalised with, one per channel."""
    for name in ("input_mean_", "input_std_"):
        value = state.values.get(name)
        state.require(
            name,
            isinstance(value, np.ndarray)
            and value.dtype.kind == "f"
            and value.shape == (shape[-1],)
            and bool(np.all(np.isfinite(value))),
            f"a finite float array of shape ({shape[-1]},)",
        )
    if "memory_format_" in state.values:  # files written before "auto" lack it
        state.require(
            "memory_format_",
            state.values["memory_format_"] in MEMORY_FORMATS,
            " or ".join(repr(name) for name in MEMORY_FORMATS),
        )
    if "input_normalization_" in state.values:  # files written before 0.2 lack it
        state.require(
            "input_normalization_",
            state.values["input_normalization_"]
            in ("data", "imagenet", "pretrained", "given"),
            "'data', 'imagenet', 'pretrained' or 'given'",
        )


def _check_architecture_params(state: _FittedState) -> None:
    """Check the factory's arguments as fitted, if the file records them."""
    if "architecture_params_" not in state.values:
        return
    params = state.values["architecture_params_"]
    given = state.estimator.architecture_params or {}
    state.require(
        "architecture_params_",
        type(params) is dict
        and all(type(key) is str for key in params)
        and all(key in params and params[key] == given[key] for key in given),
        "a dict with str keys holding architecture_params",
    )


def _check_classifier_state(state: _FittedState) -> None:
    """Check a classifier's classes, temperature, TTA and class weights."""
    estimator, values = state.estimator, state.values
    classes = values.get("classes_")
    state.require(
        "classes_",
        isinstance(classes, np.ndarray)
        and classes.ndim == 1
        and len(classes) >= 2
        and len(set(classes.tolist())) == len(classes),
        "a 1-D array of at least 2 distinct labels",
    )
    temperature = values.get("temperature_", 1.0)
    low, high = TEMPERATURE_RANGE
    state.require(
        "temperature_",
        isinstance(temperature, float) and low <= temperature <= high,
        "a float in [0.05, 20], as fit_temperature finds",
    )
    # files written before tta="auto" have no tta_: their tta was used
    if "tta_" not in values:
        estimator.tta_ = estimator.tta
    if "tta_scores_" not in values:
        estimator.tta_scores_ = None
    tta = estimator.tta_
    state.require(
        "tta_",
        tta is None or (isinstance(tta, str) and tta != "auto"),
        "None or a test-time augmentation such as 'shifts'",
    )
    if tta is not None:
        try:
            tta_like(tta, "tta_")
        except (TypeError, ValueError) as error:
            raise FittedStateError("tta_", str(error)) from error
    # files written before class_weight="auto" trained with class_weight as given
    if "class_weight_" not in values:
        estimator.class_weight_ = estimator.class_weight
    class_weight = estimator.class_weight_
    state.require(
        "class_weight_",
        class_weight is None
        or isinstance(class_weight, dict)
        or (isinstance(class_weight, str) and class_weight == "balanced"),
        "None, 'balanced' or a dict, as class_weight='auto' resolves",
    )


def _check_lr_schedule(state: _FittedState) -> None:
    """Check the schedule the network trained with (``"auto"`` resolved)."""
    # files written before lr_schedule="auto" trained with lr_schedule as given
    if "lr_schedule_" not in state.values:
        state.estimator.lr_schedule_ = state.estimator.lr_schedule
    schedule = state.estimator.lr_schedule_
    resolved = [name for name in LR_SCHEDULES if name != "auto"]
    state.require(
        "lr_schedule_",
        schedule is None or (isinstance(schedule, str) and schedule in resolved),
        f"one of {resolved!r}, as lr_schedule='auto' resolves",
    )


def _check_regressor_state(state: _FittedState) -> None:
    """Check a regressor's target scaling and the number of target axes."""
    mean, scale = state.values.get("target_mean_"), state.values.get("target_scale_")
    for name, value in (("target_mean_", mean), ("target_scale_", scale)):
        state.require(
            name,
            isinstance(value, np.ndarray)
            and value.dtype.kind == "f"
            and value.ndim == 1
            and len(value) >= 1
            and bool(np.all(np.isfinite(value))),
            "a finite 1-D float array",
        )
    mean, scale = cast(NDArray[Any], mean), cast(NDArray[Any], scale)
    state.require(
        "target_scale_", scale.shape == mean.shape, "shaped like target_mean_"
    )
    y_ndim = state.values.get("_y_ndim")
    state.require(
        "_y_ndim",
        type(y_ndim) is int and (y_ndim == 2 or (y_ndim == 1 and len(mean) == 1)),
        "1 (one target) or 2",
    )


def _check_ood_state(state: _FittedState) -> None:
    """Check the out-of-distribution score's attributes, if the file has them.

    Files written before the score existed have none: the model loads
    without it. The feature size is checked against the network when the
    blank image is predicted (the score runs in ``predict``).
    """
    values = state.values
    names = (
        "ood_location_",
        "ood_precision_",
        "ood_threshold_",
        "ood_false_alarm_rate_",
        "ood_n_held_out_",
    )
    if not any(name in values for name in names):
        for name in names:
            setattr(state.estimator, name, 0 if name == "ood_n_held_out_" else None)
        return
    held_out = values.get("ood_n_held_out_")
    state.require(
        "ood_n_held_out_",
        type(held_out) is int and 0 <= held_out <= 2**40,
        "an int >= 0",
    )
    threshold = values.get("ood_threshold_")
    if threshold is None:
        for name in ("ood_location_", "ood_precision_", "ood_false_alarm_rate_"):
            state.require(name, values.get(name) is None, "None, as ood_threshold_ is")
        return
    state.require(
        "ood_threshold_",
        type(threshold) is float and math.isfinite(threshold) and threshold >= 0,
        "None or a finite float >= 0",
    )
    rate = values.get("ood_false_alarm_rate_")
    state.require(
        "ood_false_alarm_rate_",
        type(rate) is float and 0 < rate < 1,
        "a float in (0, 1)",
    )
    location = values.get("ood_location_")
    state.require(
        "ood_location_",
        isinstance(location, np.ndarray)
        and location.dtype.kind == "f"
        and location.ndim == 2
        and 1 <= location.shape[0] <= MAX_OOD_GROUPS
        and 1 <= location.shape[1] <= OOD_MAX_FEATURES
        and bool(np.all(np.isfinite(location))),
        "a finite float array of shape (n_groups, n_features), n_features <= "
        f"{OOD_MAX_FEATURES}",
    )
    location = cast(NDArray[Any], location)
    size = location.shape[1]
    precision = values.get("ood_precision_")
    state.require(
        "ood_precision_",
        isinstance(precision, np.ndarray)
        and precision.dtype.kind == "f"
        and precision.shape == (size, size)
        and bool(np.all(np.isfinite(precision)))
        and bool(np.allclose(precision, precision.T)),
        f"a finite symmetric float array of shape ({size}, {size})",
    )
