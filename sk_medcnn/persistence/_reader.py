"""Reading: turn a file's JSON object tree back into estimators, checking each node.

Every value is rebuilt from JSON and safetensors only: tagged values
(``__tuple__``, ``__ndarray__``, ``__estimator__``, ...) by fixed rules, classes
from the allow-list, each parameter checked as the estimator's own checks do,
fitted attributes by ``_fitted``, and each network rebuilt from the architecture
registry by name, its weights compared with the architecture before they are
loaded strictly.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from skorch.history import History

from ..estimators._base import _BaseMedicalCNN
from ..exceptions import ArchitectureNotFoundError, ModelFileError, PluginLoadError
from ..registry import ENTRY_POINT_GROUP, get_architecture
from ..utils._validation import check_params
from ._allowlist import _ALLOWED_CLASS_REFERENCES, _ALLOWED_ESTIMATORS
from ._fitted import _check_fitted_state, _is_image_shape, _is_passthrough
from ._format import (
    _ARRAY_DTYPES,
    _ARRAYS,
    _ESTIMATOR_KEYS,
    _LOCAL_PARAMS,
    _MAX_DEPTH,
    _MAX_DOCUMENT_BYTES,
    _MAX_IMAGE_VALUES,
    _NAME,
    _SCALAR_DTYPES,
    _TEXT_DTYPE,
    _attribute,
    _child,
    _import_safetensors,
)


class _ArchitectureUnavailableError(ModelFileError, ArchitectureNotFoundError):
    """A model file naming an architecture that is not installed.

    Both ``except ModelFileError`` and ``except ArchitectureNotFoundError`` catch it.
    """


class _Reader:
    """Turn the JSON object tree back into estimators, with checks at every step."""

    def __init__(
        self,
        path: Path,
        arrays: Mapping[str, NDArray[Any]],
        networks: Mapping[str, bytes],
        trusted: dict[str, type],
        device: torch.device,
    ) -> None:
        self.path = path
        self.arrays = arrays
        self.networks = networks
        self.estimators = {**trusted, **_ALLOWED_ESTIMATORS}
        self.class_references = {**trusted, **_ALLOWED_CLASS_REFERENCES}
        self.trusted = trusted
        self.device = device
        self.used_arrays: set[str] = set()
        self.used_networks: set[str] = set()
        self.sklearn_steps = False

    def error(self, where: str, message: str) -> ModelFileError:
        location = f" at {where!r}" if where else ""
        return ModelFileError(f"{self.path}{location}: {message}")

    def value(self, node: Any, where: str, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise self.error(where, f"values nest more than {_MAX_DEPTH} levels deep.")
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is list:
            return [
                self.value(item, f"{where}[{i}]", depth + 1)
                for i, item in enumerate(node)
            ]
        if type(node) is not dict:  # pragma: no cover - json gives no other type
            raise self.error(where, f"unexpected JSON value {node!r}.")
        if not any(key.startswith("__") for key in node):
            return {
                key: self.value(item, _child(where, key), depth + 1)
                for key, item in node.items()
            }
        if len(node) != 1:
            raise self.error(
                where,
                f"a tagged value must have exactly one key; got {sorted(node)}.",
            )
        ((tag, payload),) = node.items()
        return self.tagged(tag, payload, where, depth)

    def tagged(self, tag: str, payload: Any, where: str, depth: int) -> Any:
        """Decode the value of a one-key node ``{tag: payload}``."""
        if tag == "__tuple__":
            items = self.expect(payload, list, where, tag)
            return tuple(self.value(item, where, depth + 1) for item in items)
        if tag == "__dict__":
            return self.mapping(self.expect(payload, list, where, tag), where, depth)
        if tag == "__float__":
            if payload not in ("nan", "inf", "-inf"):
                raise self.error(where, f"invalid __float__ {payload!r}.")
            return float(payload)
        if tag == "__scalar__":
            return self.scalar(payload, where)
        if tag == "__ndarray__":
            return self.array(payload, where)
        if tag == "__history__":
            return self.history(self.expect(payload, list, where, tag), where, depth)
        if tag == "__random_state__":
            return self.random_state(payload, where)
        if tag == "__torch_device__":
            return self.torch_device(self.expect(payload, str, where, tag), where)
        if tag == "__path__":
            return Path(self.expect(payload, str, where, tag))
        if tag == "__class__":
            return self.class_reference(self.expect(payload, str, where, tag), where)
        if tag == "__estimator__":
            return self.estimator(payload, where, depth + 1)
        raise self.error(where, f"unknown tag {tag!r}.")

    def mapping(self, pairs: list[Any], where: str, depth: int) -> dict[Any, Any]:
        """Decode a ``__dict__``: a dict whose keys are not all plain names."""
        result = {}
        for pair in pairs:
            if type(pair) is not list or len(pair) != 2:
                raise self.error(where, "__dict__ must hold [key, value] pairs.")
            key = self.value(pair[0], where, depth + 1)
            try:
                result[key] = self.value(pair[1], where, depth + 1)
            except TypeError as error:  # an unhashable key
                raise self.error(where, f"invalid dict key {key!r}.") from error
        return result

    def history(self, payload: list[Any], where: str, depth: int) -> History:
        """Decode a ``__history__``: skorch's training history, epoch by epoch."""
        epochs = self.value(payload, where, depth + 1)
        if not all(
            type(epoch) is dict and all(type(key) is str for key in epoch)
            for epoch in epochs
        ):
            raise self.error(where, "a history must be a list of objects.")
        return History(epochs)

    def torch_device(self, text: str, where: str) -> torch.device:
        """Decode a ``__torch_device__`` such as ``"cuda:0"``."""
        if not re.fullmatch(r"[a-z]{1,16}(:[0-9]{1,3})?", text):
            raise self.error(where, f"invalid torch device {text!r}.")
        try:
            return torch.device(text)
        except RuntimeError as error:
            raise self.error(where, f"invalid torch device {text!r}.") from error

    def class_reference(self, name: str, where: str) -> type:
        """Decode a ``__class__``: a class on the allow-list, never imported."""
        if name not in self.class_references:
            raise self.error(
                where,
                f"names the class {name!r}, which is not on the allow-list (the "
                "torch.optim optimizers and trusted classes); nothing was "
                "imported. Pass the class in trusted=[...] if you trust it.",
            )
        return self.class_references[name]

    def expect(self, payload: Any, kind: type, where: str, tag: str) -> Any:
        if type(payload) is not kind:
            raise self.error(
                where,
                f"{tag} must hold a JSON {kind.__name__}; got "
                f"{type(payload).__name__}.",
            )
        return payload

    def record(self, payload: Any, keys: set[str], where: str, tag: str) -> Any:
        if type(payload) is not dict or set(payload) != keys:
            got = sorted(payload) if type(payload) is dict else type(payload).__name__
            raise self.error(
                where, f"{tag} must hold the keys {sorted(keys)}; got {got}."
            )
        return payload

    def shape(self, shape: Any, where: str) -> tuple[int, ...]:
        if (
            type(shape) is not list
            or len(shape) > 32
            or not all(type(size) is int and size >= 0 for size in shape)
        ):
            raise self.error(where, f"invalid array shape {shape!r}.")
        return tuple(shape)

    def scalar(self, payload: Any, where: str) -> np.generic:
        record = self.record(payload, {"dtype", "value"}, where, "__scalar__")
        dtype = (
            _SCALAR_DTYPES.get(record["dtype"])
            if isinstance(record["dtype"], str)
            else None
        )
        if dtype is None:
            raise self.error(where, f"unsupported scalar dtype {record['dtype']!r}.")
        value = record["value"]
        if type(value) is dict and set(value) == {"__float__"}:
            value = self.value(value, where, depth=0)
        valid = {
            "b": (bool,),
            "i": (int,),
            "u": (int,),
            "f": (int, float),
            "U": (str,),
        }[dtype.kind]
        if type(value) not in valid:
            raise self.error(where, f"invalid {dtype} scalar {value!r}.")
        try:
            return cast(np.generic, np.array(value, dtype=dtype)[()])
        except (OverflowError, ValueError) as error:
            raise self.error(where, f"invalid {dtype} scalar {value!r}.") from error

    def array(self, payload: Any, where: str) -> NDArray[Any]:
        if type(payload) is dict and "data" in payload:
            record = self.record(
                payload, {"dtype", "shape", "data"}, where, "__ndarray__"
            )
            shape = self.shape(record["shape"], where)
            data = self.expect(record["data"], list, where, "__ndarray__ data")
            if len(data) != math.prod(shape):
                raise self.error(
                    where, f"array data holds {len(data)} values for shape {shape}."
                )
            dtype_name = record["dtype"]
            if dtype_name == "object":
                if not all(
                    item is None or type(item) in (str, int, float, bool)
                    for item in data
                ):
                    raise self.error(
                        where, "an object array may hold only str, numbers or null."
                    )
                array = np.empty(len(data), dtype=object)
                array[:] = data
                return array.reshape(shape)
            if not isinstance(dtype_name, str) or not _TEXT_DTYPE.fullmatch(dtype_name):
                raise self.error(where, f"unsupported array dtype {dtype_name!r}.")
            if not all(type(item) is str for item in data):
                raise self.error(where, "a text array may hold only strings.")
            dtype = np.dtype(dtype_name)
            if len(data) * dtype.itemsize > _MAX_DOCUMENT_BYTES:
                # fixed-width strings: a short document must not fill the memory
                raise self.error(
                    where,
                    f"a text array of {len(data)} strings of dtype {dtype_name} "
                    f"would take more than {_MAX_DOCUMENT_BYTES:,} bytes.",
                )
            if any(len(item) > dtype.itemsize // 4 for item in data):
                raise self.error(where, f"a string is longer than dtype {dtype_name}.")
            return np.array(data, dtype=dtype).reshape(shape)
        record = self.record(payload, {"key", "dtype", "shape"}, where, "__ndarray__")
        key = record["key"]
        if not isinstance(key, str) or key not in self.arrays:
            raise self.error(where, f"refers to array {key!r}, absent from {_ARRAYS}.")
        if key in self.used_arrays:
            raise self.error(where, f"refers to array {key!r} a second time.")
        self.used_arrays.add(key)
        array = self.arrays[key]
        declared = (
            _ARRAY_DTYPES.get(record["dtype"])
            if isinstance(record["dtype"], str)
            else None
        )
        shape = self.shape(record["shape"], where)
        if declared is None or array.dtype != declared or array.shape != shape:
            raise self.error(
                where,
                f"array {key!r} in {_ARRAYS} has dtype {array.dtype} and shape "
                f"{array.shape}; the document declares {record['dtype']!r} and "
                f"{shape}.",
            )
        return array

    def random_state(self, payload: Any, where: str) -> np.random.RandomState:
        record = self.record(
            payload,
            {"keys", "pos", "has_gauss", "cached_gaussian"},
            where,
            "RandomState",
        )
        keys = record["keys"]
        valid = (
            type(keys) is list
            and len(keys) == 624
            and all(type(key) is int and 0 <= key < 2**32 for key in keys)
            and type(record["pos"]) is int
            and 0 <= record["pos"] <= 624
            and record["has_gauss"] in (0, 1)
            and type(record["has_gauss"]) is int
            and type(record["cached_gaussian"]) in (int, float)
        )
        if not valid:
            raise self.error(where, "invalid RandomState state.")
        state = np.random.RandomState()
        state.set_state(
            (
                "MT19937",
                np.array(keys, dtype=np.uint32),
                record["pos"],
                record["has_gauss"],
                float(record["cached_gaussian"]),
            )
        )
        return state

    def estimator(self, payload: Any, where: str, depth: int) -> BaseEstimator:
        cls = self.estimator_class(payload, where)
        name = payload["class"]
        if name.startswith("sklearn.") and cls is not Pipeline:
            self.sklearn_steps = True
        params = self.names(payload["params"], where, "params")
        attributes = self.names(payload["attributes"], where, "attributes")
        accepted = [
            parameter.name
            for parameter in inspect.signature(cls).parameters.values()
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]
        estimator = self.build(cls, name, params, accepted, where, depth)
        for attribute, node in attributes.items():
            if attribute in accepted or hasattr(cls, attribute):
                raise self.error(
                    _attribute(where, attribute),
                    f"{attribute!r} is a parameter, method or class attribute of "
                    f"{cls.__name__}, not a fitted attribute.",
                )
            value = self.fitted_value(attribute, node, where, depth)
            setattr(estimator, attribute, value)
        if cls is Pipeline:
            self.check_steps(estimator.steps, where)
        is_network = issubclass(cls, _BaseMedicalCNN)
        if is_network != ("network" in payload):
            raise self.error(
                where,
                f"{cls.__name__} {'needs' if is_network else 'takes no'} 'network'.",
            )
        if is_network:
            self.restore_network(estimator, payload["network"], where)
        return estimator

    def estimator_class(self, payload: Any, where: str) -> type[BaseEstimator]:
        """Check an estimator node's keys; return its class, from the allow-list."""
        if type(payload) is not dict or not (
            _ESTIMATOR_KEYS <= set(payload) <= _ESTIMATOR_KEYS | {"network"}
        ):
            got = sorted(payload) if type(payload) is dict else type(payload).__name__
            raise self.error(
                where,
                f"an estimator must hold the keys {sorted(_ESTIMATOR_KEYS)} (and "
                f"'network' for a CNN); got {got}.",
            )
        name = payload["class"]
        cls = self.estimators.get(name) if isinstance(name, str) else None
        if cls is None or not issubclass(cls, BaseEstimator):
            raise self.error(
                where,
                f"names the class {name!r}, which is not on the allow-list of "
                "sk_medcnn and scikit-learn estimators; nothing was imported. If "
                "it is a class of your own that you trust, import it and pass it "
                "in trusted=[...].",
            )
        return cls

    def build(
        self,
        cls: type[BaseEstimator],
        name: str,
        params: dict[str, Any],
        accepted: list[str],
        where: str,
        depth: int,
    ) -> BaseEstimator:
        """Build the estimator of class ``cls``, named ``name``, from its parameters."""
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise self.error(
                where,
                f"{cls.__name__} has no parameters {unknown}; it accepts {accepted}.",
            )
        values = {
            param: (
                self.steps(node, where, depth)
                if cls is Pipeline and param == "steps"
                else self.value(node, _child(where, param), depth)
            )
            for param, node in params.items()
        }
        try:
            estimator = cls(**values)
        except (TypeError, ValueError) as error:
            raise self.error(where, f"cannot build {cls.__name__}: {error}") from error
        if name.startswith("sk_medcnn."):  # our checkers; sklearn's are private
            try:
                check_params(estimator)
                if hasattr(estimator, "_check_param_combination"):
                    estimator._check_param_combination()
            except (TypeError, ValueError) as error:
                raise self.error(where, f"invalid parameter: {error}") from error
            self.check_output_size(estimator, where)
        if issubclass(cls, _BaseMedicalCNN):
            # a file must not choose where a later refit writes or what it reads
            estimator.set_params(**_LOCAL_PARAMS)
        return estimator

    def fitted_value(self, attribute: str, node: Any, where: str, depth: int) -> Any:
        """Decode the fitted ``attribute`` of ``where``; check input sizes at once."""
        here = _attribute(where, attribute)
        value = self.value(node, here, depth)
        if attribute == "n_features_in_" and not (
            type(value) is int and 1 <= value <= _MAX_IMAGE_VALUES
        ):
            raise self.error(
                here,
                "n_features_in_ must be an int in [1, "
                f"{_MAX_IMAGE_VALUES:,}]; got {value!r}.",
            )
        if attribute == "image_shape_" and not _is_image_shape(value):
            raise self.error(
                here,
                "image_shape_ must be a tuple of 1 to 4 sizes >= 1 holding at "
                f"most {_MAX_IMAGE_VALUES:,} values; got {value!r}.",
            )
        return value

    def steps(self, node: Any, where: str, depth: int) -> Any:
        """Decode a Pipeline's steps, naming each step as ``set_params`` does."""
        if type(node) is not list:
            return self.value(node, _child(where, "steps"), depth)
        steps = []
        for item in node:
            is_tuple = type(item) is dict and set(item) == {"__tuple__"}
            pair = item["__tuple__"] if is_tuple else None
            if type(pair) is list and len(pair) == 2 and type(pair[0]) is str:
                name = pair[0]
                steps.append((name, self.value(pair[1], _child(where, name), depth)))
            else:
                steps.append(self.value(item, _child(where, "steps"), depth))
        return steps

    def check_steps(self, steps: Any, where: str) -> None:
        """Check a Pipeline's steps: named estimators, transformers but the last."""
        valid = (
            type(steps) is list
            and len(steps) >= 1
            and all(
                type(step) is tuple and len(step) == 2 and type(step[0]) is str
                for step in steps
            )
        )
        if not valid:
            raise self.error(
                _child(where, "steps"), "steps must be a list of (name, estimator)."
            )
        names = [name for name, _ in steps]
        if len(set(names)) != len(names):
            raise self.error(_child(where, "steps"), f"repeated step names {names}.")
        for name, step in steps[:-1]:
            if not _is_passthrough(step) and not hasattr(step, "transform"):
                raise self.error(_child(where, name), "a step must be a transformer.")
        if not isinstance(steps[-1][1], BaseEstimator):
            raise self.error(_child(where, steps[-1][0]), "must be an estimator.")

    def check_output_size(self, estimator: BaseEstimator, where: str) -> None:
        """Refuse geometry parameters that would make huge images at predict time."""
        shape = getattr(estimator, "shape", None)
        if shape is None:
            return
        sizes = shape if isinstance(shape, tuple | list) else (shape, shape)
        if math.prod(int(size) for size in sizes) > _MAX_IMAGE_VALUES:
            raise self.error(
                _child(where, "shape"),
                f"shape={shape!r} makes images of more than {_MAX_IMAGE_VALUES:,} "
                "pixels.",
            )

    def names(self, mapping: Any, where: str, kind: str) -> dict[str, Any]:
        if type(mapping) is not dict:
            raise self.error(
                where, f"{kind} must be a JSON object; got {type(mapping).__name__}."
            )
        for name in mapping:
            if not _NAME.fullmatch(name) or name.startswith("__"):
                raise self.error(where, f"invalid name in {kind}: {name!r}.")
        return mapping

    # --- networks -------------------------------------------------------------------
    def restore_network(
        self, estimator: _BaseMedicalCNN, member: Any, where: str
    ) -> None:
        if not isinstance(member, str) or member not in self.networks:
            raise self.error(where, f"refers to network member {member!r}, absent.")
        if member in self.used_networks:
            raise self.error(where, f"refers to network member {member!r} again.")
        self.used_networks.add(member)
        history = estimator.__dict__.pop("history_", None)
        if history is not None and not isinstance(history, History):
            raise self.error(
                _attribute(where, "history_"), "history_ must be a __history__ list."
            )
        if "net_" in vars(estimator):
            raise self.error(where, "net_ is restored from the weights, not the JSON.")
        _check_fitted_state(estimator, where, self.error)
        try:
            tensors = _import_safetensors().torch.load(self.networks[member])
        except Exception as error:  # SafetensorError and what it wraps
            raise self.error(
                where, f"{member} is not a valid safetensors file: {error}"
            ) from error
        architecture = estimator.architecture
        try:
            self.check_weights(estimator, tensors, where, member)
            estimator._restore_net(
                tensors,
                device=self.device,
                history=None if history is None else history.to_list(),
            )
        except PluginLoadError as error:
            raise ModelFileError(
                f"{self.path}: the model needs architecture {architecture!r}, whose "
                f"plugin failed to import: {error}"
            ) from error
        except ArchitectureNotFoundError as error:
            raise _ArchitectureUnavailableError(
                f"{self.path}: the model needs architecture {architecture!r}, which "
                "is not available here: it is neither built in nor registered in "
                "this process, and no installed package provides it in the "
                f"{ENTRY_POINT_GROUP!r} entry-point group. Install the package that "
                "provides it, or register it with sk_medcnn.register_architecture "
                "before loading."
            ) from error
        except (TypeError, ValueError, RuntimeError) as error:
            raise self.error(
                where, f"the network cannot be rebuilt: {error}"
            ) from error
        for name, tensor in estimator.net_.module_.state_dict().items():
            if tensors[name].dtype != tensor.dtype:
                raise self.error(
                    where,
                    f"weight {name!r} in {member} has dtype {tensors[name].dtype}; "
                    f"architecture {architecture!r} expects {tensor.dtype}.",
                )

    def check_weights(
        self,
        estimator: _BaseMedicalCNN,
        tensors: Mapping[str, torch.Tensor],
        where: str,
        member: str,
    ) -> None:
        """Compare the weights with the architecture, built on the meta device.

        The meta device allocates nothing, so a file whose parameters would build
        a huge network (``architecture_params={"width": 10**6}``) is refused before
        any memory is spent on it. Factories that cannot build on the meta device
        are checked after the real build, by ``load_state_dict(strict=True)``.
        """
        factory = get_architecture(estimator.architecture)
        *spatial, channels = estimator.image_shape_
        params = estimator._fitted_architecture_params()
        try:
            with torch.device("meta"):
                body = factory(
                    channels, estimator._fitted_n_outputs(), tuple(spatial), **params
                )
            expected = {
                f"body.{name}": tensor for name, tensor in body.state_dict().items()
            }
        except Exception:  # the real build reports these errors with context
            return
        if any(torch.nn.parameter.is_lazy(tensor) for tensor in expected.values()):
            return
        saved = {name for name in tensors if name.startswith("body.")}
        missing, unexpected = (
            sorted(set(expected) - saved),
            sorted(saved - set(expected)),
        )
        if missing or unexpected:
            raise self.error(
                where,
                f"the weights in {member} do not fit architecture "
                f"{estimator.architecture!r}: missing {missing[:5]}, unexpected "
                f"{unexpected[:5]}.",
            )
        for name, tensor in expected.items():
            saved_tensor = tensors[name]
            if saved_tensor.shape != tensor.shape or saved_tensor.dtype != tensor.dtype:
                raise self.error(
                    where,
                    f"weight {name!r} in {member} has shape "
                    f"{tuple(saved_tensor.shape)} and dtype {saved_tensor.dtype}; "
                    "architecture "
                    f"{estimator.architecture!r} expects {tuple(tensor.shape)} and "
                    f"{tensor.dtype}.",
                )
