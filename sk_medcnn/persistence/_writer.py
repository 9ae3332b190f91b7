"""Writing: :func:`save_model`, and the object tree it turns into JSON values.

The writer stores, for each estimator, its allow-listed class name, its
parameters and its fitted attributes as JSON values; numeric arrays go to
``arrays.safetensors`` and each network's weights to its own member. Anything
that is not plain data (a callable, a torch module, a class off the allow-list)
is refused with a message naming where it is, before a byte is written.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from os import PathLike
from pathlib import PurePath
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from skorch.history import History

from ..estimators._base import _BaseMedicalCNN
from ..registry import ENTRY_POINT_GROUP
from ._allowlist import (
    _ALLOWED_CLASS_REFERENCES,
    _ALLOWED_ESTIMATORS,
    _check_trusted,
    _qualified_name,
)
from ._archive import _write_archive
from ._fitted import _check_saveable
from ._format import (
    _ARRAY_DTYPES,
    _MAX_DEPTH,
    _SCALAR_DTYPES,
    _attribute,
    _child,
    _import_safetensors,
    _where,
)


class _Writer:
    """Turn an object tree into JSON values, collecting arrays and network weights."""

    def __init__(self, trusted: dict[str, type]) -> None:
        self.names = {cls: name for name, cls in _ALLOWED_ESTIMATORS.items()}
        self.class_names = {
            cls: name for name, cls in _ALLOWED_CLASS_REFERENCES.items()
        }
        for name, cls in trusted.items():
            self.names.setdefault(cls, name)
            self.class_names.setdefault(cls, name)
        self.arrays: dict[str, NDArray[Any]] = {}
        self.networks: dict[str, dict[str, torch.Tensor]] = {}

    def value(self, value: Any, where: str, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise TypeError(
                f"cannot save {_where(where)}: values nest more than {_MAX_DEPTH} "
                "levels deep (a list that contains itself?)."
            )
        if value is None or type(value) in (bool, int, str):
            return value
        if isinstance(value, np.generic):
            return {"__scalar__": self.scalar(value, where)}
        if type(value) is float:
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, History):
            return {"__history__": self.value(value.to_list(), where, depth + 1)}
        if type(value) is tuple:
            return {"__tuple__": [self.value(v, where, depth + 1) for v in value]}
        if type(value) is list:
            return [
                self.value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)
            ]
        if type(value) is dict:
            return self.mapping(value, where, depth)
        if type(value) is np.ndarray:
            return {"__ndarray__": self.array(value, where)}
        if type(value) is np.random.RandomState:
            return {"__random_state__": self.random_state(value)}
        if type(value) is torch.device:
            return {"__torch_device__": str(value)}
        if isinstance(value, PurePath):  # e.g. checkpoint_dir; never opened at load
            return {"__path__": str(value)}
        if isinstance(value, type) and value in self.class_names:
            return {"__class__": self.class_names[value]}
        if isinstance(value, BaseEstimator):
            return {"__estimator__": self.estimator(value, where, depth + 1)}
        raise TypeError(self.refusal(value, where))

    def refusal(self, value: Any, where: str) -> str:
        """Explain why ``value`` cannot be saved, and what to do instead."""
        head = f"cannot save {_where(where)} in the safe format: "
        if isinstance(value, torch.nn.Module):
            return (
                head + f"it is a torch module ({type(value).__name__}), which would "
                "need its code to be stored. Use one of the named options (e.g. "
                "loss='cross_entropy' or 'focal'); the loss plays no part in "
                "prediction. Use joblib.dump for models you will only load yourself."
            )
        if isinstance(value, type):
            return (
                head + f"it is the class {_qualified_name(value)}, which is not on "
                "the allow-list (the torch.optim optimizers). Pass it in trusted=[...] "
                "to save_model and load_model if you trust it."
            )
        if callable(value):
            return (
                head + f"it is a callable ({getattr(value, '__name__', value)!r}), "
                "and the safe format stores data, never code. Use joblib.dump for "
                "models you will only load yourself."
            )
        return (
            head + f"values of type {_qualified_name(type(value))} are not supported "
            "(supported: None, bool, int, float, str, list, tuple, dict, numpy "
            "arrays and scalars, RandomState, torch.device, paths, and estimators "
            "on the allow-list)."
        )

    def mapping(self, value: dict[Any, Any], where: str, depth: int) -> Any:
        if all(type(key) is str and not key.startswith("__") for key in value):
            return {
                key: self.value(item, _child(where, key), depth + 1)
                for key, item in value.items()
            }
        return {
            "__dict__": [
                [self.value(key, where, depth + 1), self.value(item, where, depth + 1)]
                for key, item in value.items()
            ]
        }

    def scalar(self, value: np.generic, where: str) -> dict[str, Any]:
        dtype = value.dtype
        name = "str" if dtype.kind == "U" else dtype.name
        if name not in _SCALAR_DTYPES or dtype.byteorder == ">":
            raise TypeError(
                f"cannot save {_where(where)}: numpy scalars of dtype {dtype} are "
                "not supported."
            )
        item = value.item()
        if isinstance(item, float) and not math.isfinite(item):
            item = {"__float__": repr(item)}
        return {"dtype": name, "value": item}

    def array(self, value: NDArray[Any], where: str) -> dict[str, Any]:
        dtype = value.dtype
        shape = list(value.shape)
        if dtype.kind == "U":
            return {"dtype": dtype.str, "shape": shape, "data": value.ravel().tolist()}
        if dtype.kind == "O":
            items = value.ravel().tolist()
            for item in items:
                if type(item) not in (str, int, float, bool) and item is not None:
                    raise TypeError(
                        f"cannot save {_where(where)}: an object array may hold "
                        f"str, int, float, bool or None; it holds a "
                        f"{type(item).__name__}."
                    )
                if type(item) is float and not math.isfinite(item):
                    raise TypeError(
                        f"cannot save {_where(where)}: an object array holds a "
                        "non-finite float."
                    )
            return {"dtype": "object", "shape": shape, "data": items}
        native = dtype.newbyteorder("=")
        if native.name not in _ARRAY_DTYPES:
            raise TypeError(
                f"cannot save {_where(where)}: arrays of dtype {dtype} are not "
                f"supported (supported: {', '.join(_ARRAY_DTYPES)}, str, object)."
            )
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(value, dtype=native)
        return {"key": key, "dtype": native.name, "shape": shape}

    def random_state(self, value: np.random.RandomState) -> dict[str, Any]:
        _, keys, position, has_gauss, cached = value.get_state(legacy=True)
        return {
            "keys": [int(key) for key in keys],
            "pos": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }

    def estimator(
        self, estimator: BaseEstimator, where: str, depth: int
    ) -> dict[str, Any]:
        cls = type(estimator)
        if cls not in self.names:
            hint = ""
            if cls.__name__ == "FunctionTransformer":
                hint = (
                    " (FunctionTransformer holds Python functions: func, inverse_func)"
                )
            raise TypeError(
                f"cannot save {_where(where)} in the safe format: "
                f"{_qualified_name(cls)} is not on the allow-list{hint}. Allowed: "
                "MedicalCNNClassifier, MedicalCNNRegressor, the transformers of "
                "sk_medcnn.preprocessing and sk_medcnn.augmentation, sklearn's "
                "Pipeline, StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, "
                "Normalizer and Binarizer. A class of your own whose parameters and "
                "fitted attributes are plain data can be passed in trusted=[...] to "
                "save_model and load_model; otherwise use joblib.dump for models you "
                "will only load yourself."
            )
        params = estimator.get_params(deep=False)
        node: dict[str, Any] = {"class": self.names[cls]}
        if isinstance(estimator, _BaseMedicalCNN) and not isinstance(
            estimator.architecture, str
        ):
            raise TypeError(
                f"cannot save {_where(_child(where, 'architecture'))} in the safe "
                "format: it is a callable, and the safe format stores architectures "
                "by their registry name. Register the factory with "
                "sk_medcnn.register_architecture('name') (or ship it as a plugin in "
                f"the {ENTRY_POINT_GROUP!r} entry-point group), fit with "
                "architecture='name', and save again."
            )
        encoded_params = {}
        for name, value in params.items():
            if isinstance(estimator, Pipeline) and name == "steps":
                encoded_params[name] = self.steps(value, where, depth)
            else:
                encoded_params[name] = self.value(value, _child(where, name), depth)
        node["params"] = encoded_params
        attributes = {}
        for name, value in vars(estimator).items():
            if name in params or name.startswith("__"):
                continue
            if name == "net_" and isinstance(estimator, _BaseMedicalCNN):
                continue
            attributes[name] = self.value(value, _attribute(where, name), depth)
        node["attributes"] = attributes
        if isinstance(estimator, _BaseMedicalCNN):
            member = f"network-{len(self.networks)}.safetensors"
            state = estimator.net_.module_.state_dict()
            # contiguous, unshared copies: safetensors refuses views and shared memory
            self.networks[member] = {
                name: tensor.detach().to(
                    "cpu", memory_format=torch.contiguous_format, copy=True
                )
                for name, tensor in state.items()
            }
            node["network"] = member
        return node

    def steps(self, steps: Any, where: str, depth: int) -> Any:
        if type(steps) not in (list, tuple):
            return self.value(steps, _child(where, "steps"), depth)
        encoded = []
        for step in steps:
            if type(step) is not tuple or len(step) != 2 or type(step[0]) is not str:
                return self.value(steps, _child(where, "steps"), depth)
            name, transformer = step
            encoded.append(
                {
                    "__tuple__": [
                        name,
                        self.value(transformer, _child(where, name), depth + 1),
                    ]
                }
            )
        return encoded if type(steps) is list else {"__tuple__": encoded}


def save_model(
    model: BaseEstimator,
    path: str | PathLike[str],
    *,
    trusted: Iterable[type] | None = None,
) -> None:
    """Save a fitted model to a ``.skmed`` file that loads without running code.

    The file is a zip archive holding a versioned JSON document (the class names,
    parameters and fitted attributes) and the network weights and numeric arrays
    as safetensors; see :mod:`sk_medcnn.persistence`. It is written to a temporary
    file beside ``path`` and renamed into place, so a failure leaves a previous
    file at ``path`` as it was. Saving the same fitted model twice gives the same
    bytes.

    Parameters
    ----------
    model : MedicalCNNClassifier, MedicalCNNRegressor or Pipeline
        A fitted estimator, or a fitted Pipeline of sk_medcnn transformers and
        scikit-learn scalers (``StandardScaler``, ``MinMaxScaler``,
        ``MaxAbsScaler``, ``RobustScaler``, ``Normalizer``, ``Binarizer``) that ends
        in one.
    path : str or os.PathLike
        The file to write, by convention with the extension ``.skmed``. Its
        folder must exist; an existing read-only file is not replaced.
    trusted : list of class, default=None
        Your own estimator classes to allow in the model, beyond the allow-list.
        Their parameters and fitted attributes must be plain data; pass the same
        list to :func:`load_model`.

    Raises
    ------
    TypeError
        If the model, or a value in it, cannot be stored as data: a callable
        ``architecture``, a ``torch.nn.Module`` ``loss``, a class off the
        allow-list such as ``FunctionTransformer``. The message names the
        parameter (as in ``set_params``) or the fitted attribute.
    ValueError
        If the document would exceed what :func:`load_model` reads (32 MiB,
        2**20 JSON values; a training history of some 300,000 batches); nothing
        is written then.
    PermissionError
        If ``path`` is a read-only file (no write permission bit; refused, not
        replaced, even for root), or no file can be created in its folder.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.

    See Also
    --------
    load_model : Load the file again.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from sk_medcnn import MedicalCNNClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.persistence import load_model, save_model
    >>> X, y = make_lesion_phantoms(32, image_size=16, random_state=0)
    >>> clf = MedicalCNNClassifier(max_epochs=1, device="cpu", random_state=0)
    >>> clf = clf.fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "model.skmed"
    ...     save_model(clf, path)
    ...     loaded = load_model(path)
    >>> np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    True
    """
    trusted_classes = _check_trusted(trusted)
    _check_saveable(model)
    suffix = PurePath(path).suffix.lower()
    if suffix in (".joblib", ".pkl", ".pickle"):
        warnings.warn(
            f"save_model writes the .skmed format, but {str(path)!r} ends in "
            f"{suffix}, which the command line and readers take for a joblib "
            "pickle: name it .skmed (or use joblib.dump for a pickle).",
            UserWarning,
            stacklevel=2,
        )
    safetensors = _import_safetensors()
    writer = _Writer(trusted_classes)
    tree = {"__estimator__": writer.estimator(model, "", 0)}  # refuses before writing
    _write_archive(path, safetensors, writer.networks, writer.arrays, tree)
