"""Save and load fitted models in the safe ``.skmed`` format, which holds no code.

A ``.skmed`` file is a zip archive of

- ``model.json``: a versioned JSON document with the versions of sk_medcnn, torch,
  scikit-learn and numpy that wrote it, the SHA-256 of every other member, and the
  object tree: for each estimator its class name (from an allow-list), its
  parameters and its fitted attributes, with numeric arrays referenced into
- ``arrays.safetensors``: the fitted numeric arrays (``classes_``, statistics, ...);
- ``network-<n>.safetensors``: the weights of each network, as plain tensors.

Loading parses JSON and safetensors only. It never unpickles, never imports a
module named by the file, and looks every class up in a fixed allow-list of
sk_medcnn and scikit-learn classes (extended only by classes the caller passes in
``trusted``); networks are rebuilt from the architecture registry by name and the
weights loaded into them strictly. Every problem with a file raises one
:class:`~sk_medcnn.exceptions.ModelFileError` (a ``ValueError``) naming it.

Why not ``skops.io``: it stores a fitted estimator's ``__dict__`` recursively, and
skorch's ``NeuralNet`` keeps its module, optimizer and criterion as a *pickled*
byte string (``__cuda_dependent_attributes__``) which skorch's ``__setstate__``
unpickles. Loading an sk_medcnn model with ``skops.io.load`` therefore runs
``pickle`` on bytes from the file, whatever types are trusted; a file that
replaces those bytes runs arbitrary code. Its ``trusted=`` list also names 17
internal types (``functools.partial``, ``builtins.print``, skorch callbacks, ...)
that change with any refactoring. We keep skops' rule instead: an explicit list of
trusted classes, never ``trusted=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import math
import os
import platform
import re
import signal
import threading
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from os import PathLike
from pathlib import Path, PurePath
from typing import Any, TypeGuard, cast

import numpy as np
import sklearn
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    Binarizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    RobustScaler,
    StandardScaler,
)
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from .. import augmentation as _augmentation
from .. import io as _io
from .. import preprocessing as _preprocessing
from .._ood import OOD_MAX_FEATURES
from .._version import __version__
from ..classifier import (
    MedicalCNNClassifier,
    MedicalCNNRegressor,
    _BaseMedicalCNN,
    _tta_like,
)
from ..exceptions import ArchitectureNotFoundError, ModelFileError, PluginLoadError
from ..registry import ENTRY_POINT_GROUP, get_architecture
from ..utils._files import atomic_path
from ..utils._torch import resolve_device
from ..utils._validation import check_params

__all__ = [
    "FORMAT_VERSION",
    "ModelVersionWarning",
    "load_model",
    "save_model",
]

#: Version of the file layout and JSON schema; a file of a newer version is refused.
FORMAT_VERSION = 1
_FORMAT_NAME = "sk_medcnn.skmed"
_DOCUMENT = "model.json"
_ARRAYS = "arrays.safetensors"
_NETWORK_MEMBER = re.compile(r"network-[0-9]{1,4}\.safetensors")

# --- limits on what a file may hold (zip bombs, parameter bombs) ------------------
#: Most members a file may hold (ours hold 2 or 3).
_MAX_MEMBERS = 64
#: Largest total uncompressed size of all members, in bytes.
_MAX_TOTAL_BYTES = 4 * 2**30
#: Largest uncompressed size of ``model.json``, in bytes, and most JSON values
#: in it (counted before parsing, as commas, brackets and braces): parsing 64 MiB
#: of ``[{}, {}, ...]`` took 1.4 GiB; these two bound it to about 250 MB. A
#: training history of 300,000 batches fits.
_MAX_DOCUMENT_BYTES = 32 * 2**20
_MAX_DOCUMENT_VALUES = 2**20
#: Largest ratio of uncompressed to compressed size, for members above 1 MiB.
_MAX_COMPRESSION_RATIO = 100
_RATIO_CHECK_BYTES = 2**20
#: Deepest nesting of values in the object tree.
_MAX_DEPTH = 64
#: Most values (height x width x channels) in one image of a network's input.
_MAX_IMAGE_VALUES = 2**26
#: Largest image (in values) that the load-time check predicts for real; larger
#: networks are checked with a forward pass on the meta device, which allocates
#: and computes nothing (a ResNet-18 on 8192 x 8192 images took 248 s and 8.6 GiB
#: to predict one blank image).
_MAX_CHECKED_VALUES = 2**20

#: The most class means an out-of-distribution score may hold.
_MAX_OOD_GROUPS = 2**16
#: The range of fitted temperatures (see ``fit_temperature``), with rounding.
_TEMPERATURE_RANGE = (0.05 * (1 - 1e-9), 20.0 * (1 + 1e-9))
#: Settings a file may not choose for a later refit: they name places on the
#: loading machine. ``load_model`` resets them to these values.
_LOCAL_PARAMS = {"checkpoint_dir": None, "resume": False}

_DOCUMENT_KEYS = {"format", "format_version", "versions", "members", "model"}
_ESTIMATOR_KEYS = {"class", "params", "attributes"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
# numeric dtypes stored in safetensors, by their numpy names
_ARRAY_DTYPES = {
    name: np.dtype(name)
    for name in (
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
    )
}
_SCALAR_DTYPES = {**_ARRAY_DTYPES, "str": np.dtype(np.str_)}
_TEXT_DTYPE = re.compile(r"<U[0-9]{1,7}")


class ModelVersionWarning(UserWarning):
    """A model file written by versions of sk_medcnn, torch or sklearn that differ.

    Raised by :func:`load_model` when the major or minor version of sk_medcnn or
    scikit-learn, or the major version of torch, differs from the one that wrote
    the file. The model loads; check its predictions on data you know.
    """


# --- the allow-list -----------------------------------------------------------------


def _public_estimators(module: Any) -> dict[str, type]:
    classes = {}
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, type) and issubclass(value, BaseEstimator):
            classes[f"{module.__name__}.{name}"] = value
    return classes


#: Estimator classes a file may name, by the name it uses.
_ALLOWED_ESTIMATORS: dict[str, type] = {
    "sk_medcnn.MedicalCNNClassifier": MedicalCNNClassifier,
    "sk_medcnn.MedicalCNNRegressor": MedicalCNNRegressor,
    **_public_estimators(_preprocessing),
    **_public_estimators(_augmentation),
    **_public_estimators(_io),  # ImageLoader: a saved pipeline predicts from files
    "sklearn.pipeline.Pipeline": Pipeline,
    **{
        f"sklearn.preprocessing.{cls.__name__}": cls
        for cls in (
            Binarizer,
            MaxAbsScaler,
            MinMaxScaler,
            Normalizer,
            RobustScaler,
            StandardScaler,
        )
    },
}
#: Classes a file may hold as parameter values (the ``optimizer`` class).
_ALLOWED_CLASS_REFERENCES: dict[str, type] = {
    f"torch.optim.{name}": getattr(torch.optim, name)
    for name in (
        "ASGD",
        "Adadelta",
        "Adagrad",
        "Adam",
        "AdamW",
        "Adamax",
        "NAdam",
        "RAdam",
        "RMSprop",
        "Rprop",
        "SGD",
    )
    if hasattr(torch.optim, name)
}


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_trusted(trusted: Any) -> dict[str, type]:
    """Return the trusted classes by name; refuse ``True`` and names as strings."""
    if trusted is True:
        raise TypeError(
            "trusted=True is not supported: it would let a model file name any "
            "class, the hole behind skops' CVE-2024-37065. Pass the classes "
            "themselves, e.g. trusted=[MyTransformer]."
        )
    if trusted is None or trusted is False:
        return {}
    if isinstance(trusted, str | bytes) or not isinstance(trusted, Iterable):
        raise TypeError(
            f"trusted must be a list of classes; got {type(trusted).__name__}."
        )
    classes: dict[str, type] = {}
    for cls in trusted:
        if not isinstance(cls, type):
            raise TypeError(
                "trusted must hold classes, not their names: import the class "
                f"and pass it (load_model never imports a module); got {cls!r}."
            )
        classes[_qualified_name(cls)] = cls
    return classes


# --- errors -------------------------------------------------------------------------


class _ArchitectureUnavailableError(ModelFileError, ArchitectureNotFoundError):
    """A model file naming an architecture that is not installed.

    Both ``except ModelFileError`` and ``except ArchitectureNotFoundError`` catch it.
    """


def _where(where: str) -> str:
    return f"{where!r}" if where else "the model"


def _child(where: str, name: str) -> str:
    """Return the scikit-learn path of parameter ``name`` of the estimator ``where``."""
    return f"{where}__{name}" if where else name


def _attribute(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


# --- writing --------------------------------------------------------------------------


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


def _import_safetensors() -> Any:
    try:
        import safetensors.numpy
        import safetensors.torch
    except ImportError as error:  # pragma: no cover - safetensors is installed in CI
        raise ImportError(
            "the safe model format needs safetensors: pip install safetensors"
        ) from error
    return safetensors


def _versions() -> dict[str, str]:
    return {
        "sk_medcnn": str(__version__),
        "torch": str(torch.__version__),
        "sklearn": str(sklearn.__version__),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }


def _zip_info(name: str, compress_type: int) -> zipfile.ZipInfo:
    # a fixed timestamp and mode: the same model gives the same bytes
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compress_type
    info.external_attr = 0o644 << 16
    return info


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
    members: dict[str, dict[str, Any]] = {}
    with atomic_path(path) as temporary:
        with zipfile.ZipFile(temporary, "w") as archive:

            def write(name: str, data: bytes) -> None:
                archive.writestr(_zip_info(name, zipfile.ZIP_STORED), data)
                members[name] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }

            for name, tensors in writer.networks.items():
                write(name, safetensors.torch.save(tensors))
            if writer.arrays:
                write(_ARRAYS, safetensors.numpy.save(writer.arrays))
            document = {
                "format": _FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "versions": _versions(),
                "members": members,
                "model": tree,
            }
            text = json.dumps(document, allow_nan=False, indent=1)
            _check_document_size(text.encode("utf-8"))
            archive.writestr(
                _zip_info(_DOCUMENT, zipfile.ZIP_DEFLATED), text.encode("utf-8")
            )


def _check_document_size(content: bytes) -> None:
    """Refuse to write a document that :func:`load_model` would refuse."""
    values = _count_values(content)
    if len(content) > _MAX_DOCUMENT_BYTES or values > _MAX_DOCUMENT_VALUES:
        raise ValueError(
            f"cannot save the model: its {_DOCUMENT} would take {len(content):,} "
            f"bytes and up to {values:,} JSON values, more than a .skmed file may "
            f"hold ({_MAX_DOCUMENT_BYTES:,} bytes, {_MAX_DOCUMENT_VALUES:,} values). "
            "The training history (history_, one entry per batch) is the usual "
            "cause: train with a larger batch_size or fewer epochs, or save it "
            "with joblib."
        )


# --- reading ------------------------------------------------------------------------


def _read_archive(path: Path, data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Check the zip's structure and limits; return the document and the members."""
    if not data.startswith(b"PK\x03\x04"):
        hint = ""
        if data[:1] == b"\x80" or data[:2] in (b"x\x9c", b"x\x01", b"x\xda"):
            hint = (
                " It looks like a pickle or a joblib file: load_model never "
                "unpickles; use joblib.load only on files from a source you trust."
            )
        raise ModelFileError(f"{path} is not a .skmed model file (not a zip).{hint}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception as error:  # BadZipFile, NotImplementedError, EOFError, ...
        raise ModelFileError(
            f"{path} is not a valid .skmed file (truncated or corrupt zip): {error}"
        ) from error
    if len(infos) > _MAX_MEMBERS:
        raise ModelFileError(
            f"{path} holds {len(infos)} members; a .skmed file holds at most "
            f"{_MAX_MEMBERS}."
        )
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise ModelFileError(f"{path} holds duplicate members: {duplicates}.")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{path}: member {info.filename!r} is encrypted.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(
                f"{path}: member {info.filename!r} uses compression method "
                f"{info.compress_type}; a .skmed file uses only stored or deflated "
                "members."
            )
        limit = _MAX_DOCUMENT_BYTES if info.filename == _DOCUMENT else _MAX_TOTAL_BYTES
        if info.file_size > limit:
            raise ModelFileError(
                f"{path}: member {info.filename!r} would decompress to "
                f"{info.file_size:,} bytes, more than the limit of {limit:,}."
            )
        if (
            info.file_size > _RATIO_CHECK_BYTES
            and info.file_size > _MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        ):
            raise ModelFileError(
                f"{path}: member {info.filename!r} compresses {info.file_size:,} "
                f"bytes into {info.compress_size:,} (a ratio above "
                f"{_MAX_COMPRESSION_RATIO}): a zip bomb?"
            )
        total += info.file_size
    if total > _MAX_TOTAL_BYTES:
        raise ModelFileError(
            f"{path}: members would decompress to {total:,} bytes in all, more than "
            f"the limit of {_MAX_TOTAL_BYTES:,}."
        )
    if _DOCUMENT not in names:
        raise ModelFileError(f"{path} has no {_DOCUMENT}: not a .skmed model file.")

    def read(info: zipfile.ZipInfo) -> bytes:
        try:
            with archive.open(info) as member:
                content = member.read(info.file_size + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
            raise ModelFileError(
                f"{path}: member {info.filename!r} is corrupt: {error}"
            ) from error
        except Exception as error:  # e.g. zlib.error, NotImplementedError
            raise ModelFileError(
                f"{path}: member {info.filename!r} cannot be read: "
                f"{type(error).__name__}: {error}"
            ) from error
        if len(content) != info.file_size:
            raise ModelFileError(
                f"{path}: member {info.filename!r} holds {len(content):,} bytes, "
                f"not the {info.file_size:,} its header declares."
            )
        return content

    contents = {info.filename: read(info) for info in infos}
    document = _parse_document(path, contents.pop(_DOCUMENT))
    declared = document["members"]
    unexpected = sorted(set(contents) - set(declared))
    if unexpected:
        raise ModelFileError(
            f"{path} holds unexpected members {unexpected}; a .skmed file holds only "
            f"{_DOCUMENT} and the safetensors members it lists. Nothing was read "
            "from them."
        )
    missing = sorted(set(declared) - set(contents))
    if missing:
        raise ModelFileError(f"{path} lacks the members {missing} its document lists.")
    for name, content in contents.items():
        record = declared[name]
        if len(content) != record["size"] or (
            hashlib.sha256(content).hexdigest() != record["sha256"]
        ):
            raise ModelFileError(
                f"{path}: member {name!r} does not match the SHA-256 checksum "
                "recorded in model.json: the file is corrupt or was altered."
            )
    return document, contents


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"duplicate keys {duplicates}")
    return result


def _count_values(content: bytes) -> int:
    """Bound the JSON values in ``content`` from above, without parsing it."""
    return sum(content.count(char) for char in (b",", b"[", b"{")) + 1


def _parse_document(path: Path, content: bytes) -> dict[str, Any]:
    values = _count_values(content)
    if values > _MAX_DOCUMENT_VALUES:
        raise ModelFileError(
            f"{path}: {_DOCUMENT} holds up to {values:,} JSON values, more than the "
            f"limit of {_MAX_DOCUMENT_VALUES:,}."
        )
    try:
        document = json.loads(
            content.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeError
        raise ModelFileError(
            f"{path}: {_DOCUMENT} is not valid JSON: {error}"
        ) from error
    if not isinstance(document, dict):
        raise ModelFileError(
            f"{path}: {_DOCUMENT} must hold a JSON object; got "
            f"{type(document).__name__}."
        )
    if document.get("format") != _FORMAT_NAME:
        raise ModelFileError(
            f"{path}: {_DOCUMENT} does not declare format {_FORMAT_NAME!r}; got "
            f"{document.get('format')!r}."
        )
    version = document.get("format_version")
    if type(version) is not int or version < 1:
        raise ModelFileError(
            f"{path}: format_version must be an int >= 1; got {version!r}."
        )
    if version > FORMAT_VERSION:
        versions = document.get("versions")
        writer = versions.get("sk_medcnn") if isinstance(versions, dict) else None
        raise ModelFileError(
            f"{path} uses format version {version}, newer than the version "
            f"{FORMAT_VERSION} this sk_medcnn ({__version__}) reads; it was written "
            f"by sk_medcnn {writer!r}. Upgrade sk_medcnn to load it."
        )
    keys = set(document)
    if keys != _DOCUMENT_KEYS:
        raise ModelFileError(
            f"{path}: {_DOCUMENT} must hold exactly the keys "
            f"{sorted(_DOCUMENT_KEYS)}; missing {sorted(_DOCUMENT_KEYS - keys)}, "
            f"unexpected {sorted(keys - _DOCUMENT_KEYS)}."
        )
    versions = document["versions"]
    if not isinstance(versions, dict) or not all(
        isinstance(value, str) and len(value) <= 64 for value in versions.values()
    ):
        raise ModelFileError(
            f"{path}: versions must be an object of version strings; got {versions!r}."
        )
    members = document["members"]
    if not isinstance(members, dict):
        raise ModelFileError(f"{path}: members must be an object; got {members!r}.")
    for name, record in members.items():
        if name != _ARRAYS and not _NETWORK_MEMBER.fullmatch(name):
            raise ModelFileError(f"{path}: unexpected member name {name!r}.")
        if (
            not isinstance(record, dict)
            or set(record) != {"size", "sha256"}
            or type(record["size"]) is not int
            or not isinstance(record["sha256"], str)
        ):
            raise ModelFileError(
                f"{path}: the record of member {name!r} must be an object with an "
                f"int size and a sha256 string; got {record!r}."
            )
    return document


def _version_key(version: str, parts: int) -> tuple[int, ...] | None:
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    if match is None:
        return None
    numbers = tuple(int(group or 0) for group in match.groups())
    return numbers[:parts]


def _check_versions(path: Path, versions: dict[str, str], sklearn_steps: bool) -> None:
    """Warn when the file was written by versions that may change its meaning."""
    current = _versions()
    checks = [("sk_medcnn", 2), ("torch", 1)]
    if sklearn_steps:
        checks.append(("sklearn", 2))
    differences = []
    for package, parts in checks:
        written = versions.get(package)
        if written is None:
            differences.append(f"{package} (not recorded; here {current[package]})")
        elif _version_key(written, parts) != _version_key(current[package], parts):
            differences.append(f"{package} {written} (here {current[package]})")
    if differences:
        warnings.warn(
            f"{path} was written with {', '.join(differences)}. The model loaded; "
            "check its predictions on data you know before relying on them.",
            ModelVersionWarning,
            stacklevel=4,  # _check_versions, _load, load_model, the caller
        )


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
        if tag == "__tuple__":
            items = self.expect(payload, list, where, tag)
            return tuple(self.value(item, where, depth + 1) for item in items)
        if tag == "__dict__":
            pairs = self.expect(payload, list, where, tag)
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
        if tag == "__float__":
            if payload not in ("nan", "inf", "-inf"):
                raise self.error(where, f"invalid __float__ {payload!r}.")
            return float(payload)
        if tag == "__scalar__":
            return self.scalar(payload, where)
        if tag == "__ndarray__":
            return self.array(payload, where)
        if tag == "__history__":
            epochs = self.value(
                self.expect(payload, list, where, tag), where, depth + 1
            )
            if not all(
                type(epoch) is dict and all(type(key) is str for key in epoch)
                for epoch in epochs
            ):
                raise self.error(where, "a history must be a list of objects.")
            return History(epochs)
        if tag == "__random_state__":
            return self.random_state(payload, where)
        if tag == "__torch_device__":
            text = self.expect(payload, str, where, tag)
            if not re.fullmatch(r"[a-z]{1,16}(:[0-9]{1,3})?", text):
                raise self.error(where, f"invalid torch device {text!r}.")
            try:
                return torch.device(text)
            except RuntimeError as error:
                raise self.error(where, f"invalid torch device {text!r}.") from error
        if tag == "__path__":
            return Path(self.expect(payload, str, where, tag))
        if tag == "__class__":
            name = self.expect(payload, str, where, tag)
            if name not in self.class_references:
                raise self.error(
                    where,
                    f"names the class {name!r}, which is not on the allow-list (the "
                    "torch.optim optimizers and trusted classes); nothing was "
                    "imported. Pass the class in trusted=[...] if you trust it.",
                )
            return self.class_references[name]
        if tag == "__estimator__":
            return self.estimator(payload, where, depth + 1)
        raise self.error(where, f"unknown tag {tag!r}.")

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
        if name.startswith("sklearn.") and cls is not Pipeline:
            self.sklearn_steps = True
        params = self.names(payload["params"], where, "params")
        attributes = self.names(payload["attributes"], where, "attributes")
        accepted = [
            parameter.name
            for parameter in inspect.signature(cls).parameters.values()
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]
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
        for attribute, node in attributes.items():
            here = _attribute(where, attribute)
            if attribute in accepted or hasattr(cls, attribute):
                raise self.error(
                    here,
                    f"{attribute!r} is a parameter, method or class attribute of "
                    f"{cls.__name__}, not a fitted attribute.",
                )
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
        self.check_fitted_state(estimator, where)
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

    def check_fitted_state(self, estimator: _BaseMedicalCNN, where: str) -> None:
        """Check the fitted attributes ``_restore_net`` and ``predict`` rely on."""
        state = vars(estimator)

        def require(name: str, valid: bool, expected: str) -> None:
            if not valid:
                raise self.error(
                    _attribute(where, name),
                    f"fitted attribute {name} must be {expected}; got "
                    f"{state.get(name, '<missing>')!r}.",
                )

        if not isinstance(estimator.architecture, str):
            raise self.error(
                _child(where, "architecture"), "architecture must be a registry name."
            )
        shape = state.get("image_shape_")
        require(
            "image_shape_",
            type(shape) is tuple
            and len(shape) in (3, 4)
            and all(type(size) is int and size >= 1 for size in shape)
            and math.prod(shape) <= _MAX_IMAGE_VALUES,
            "a tuple ([depth,] height, width, channels) of at most "
            f"{_MAX_IMAGE_VALUES:,} values",
        )
        shape = cast(tuple[int, ...], shape)
        if "spatial_dims_" not in state:  # files written before volumes existed
            estimator.spatial_dims_ = len(shape) - 1
        require(
            "spatial_dims_",
            estimator.spatial_dims_ == len(shape) - 1,
            f"{len(shape) - 1}, the spatial axes of image_shape_ {shape}",
        )
        require(
            "n_features_in_",
            state.get("n_features_in_") == math.prod(shape),
            f"{math.prod(shape)} ([depth x] height x width x channels)",
        )
        for name in ("input_mean_", "input_std_"):
            value = state.get(name)
            require(
                name,
                isinstance(value, np.ndarray)
                and value.dtype.kind == "f"
                and value.shape == (shape[-1],)
                and bool(np.all(np.isfinite(value))),
                f"a finite float array of shape ({shape[-1]},)",
            )
        if "input_normalization_" in state:  # files written before 0.2 lack it
            require(
                "input_normalization_",
                state["input_normalization_"]
                in ("data", "imagenet", "pretrained", "given"),
                "'data', 'imagenet', 'pretrained' or 'given'",
            )
        if "architecture_params_" in state:  # the factory's arguments as fitted
            params = state["architecture_params_"]
            given = estimator.architecture_params or {}
            require(
                "architecture_params_",
                type(params) is dict
                and all(type(key) is str for key in params)
                and all(key in params and params[key] == given[key] for key in given),
                "a dict with str keys holding architecture_params",
            )
        self.check_ood_state(estimator, where)
        if "model_card_" in state and not _json_like(state["model_card_"]):
            raise self.error(
                _attribute(where, "model_card_"),
                "fitted attribute model_card_ must be a dict of str keys holding "
                "str, int, finite float, bool, None, lists and such dicts.",
            )
        if isinstance(estimator, MedicalCNNClassifier):
            classes = state.get("classes_")
            require(
                "classes_",
                isinstance(classes, np.ndarray)
                and classes.ndim == 1
                and len(classes) >= 2
                and len(set(classes.tolist())) == len(classes),
                "a 1-D array of at least 2 distinct labels",
            )
            temperature = state.get("temperature_", 1.0)
            low, high = _TEMPERATURE_RANGE
            require(
                "temperature_",
                isinstance(temperature, float) and low <= temperature <= high,
                "a float in [0.05, 20], as fit_temperature finds",
            )
            # files written before tta="auto" have no tta_: their tta was used
            if "tta_" not in state:
                estimator.tta_ = estimator.tta
            if "tta_scores_" not in state:
                estimator.tta_scores_ = None
            tta = estimator.tta_
            require(
                "tta_",
                tta is None or (isinstance(tta, str) and tta != "auto"),
                "None or a test-time augmentation such as 'shifts'",
            )
            if tta is not None:
                try:
                    _tta_like(tta, "tta_")
                except (TypeError, ValueError) as error:
                    raise self.error(_attribute(where, "tta_"), str(error)) from error
        else:
            mean, scale = state.get("target_mean_"), state.get("target_scale_")
            for name, value in (("target_mean_", mean), ("target_scale_", scale)):
                require(
                    name,
                    isinstance(value, np.ndarray)
                    and value.dtype.kind == "f"
                    and value.ndim == 1
                    and len(value) >= 1
                    and bool(np.all(np.isfinite(value))),
                    "a finite 1-D float array",
                )
            mean, scale = cast(NDArray[Any], mean), cast(NDArray[Any], scale)
            require(
                "target_scale_", scale.shape == mean.shape, "shaped like target_mean_"
            )
            y_ndim = state.get("_y_ndim")
            require(
                "_y_ndim",
                type(y_ndim) is int
                and (y_ndim == 2 or (y_ndim == 1 and len(mean) == 1)),
                "1 (one target) or 2",
            )

    def check_ood_state(self, estimator: _BaseMedicalCNN, where: str) -> None:
        """Check the out-of-distribution score's attributes, if the file has them.

        Files written before the score existed have none: the model loads
        without it. The feature size is checked against the network when the
        blank image is predicted (the score runs in ``predict``).
        """
        state = vars(estimator)
        names = (
            "ood_location_",
            "ood_precision_",
            "ood_threshold_",
            "ood_false_alarm_rate_",
            "ood_n_held_out_",
        )
        if not any(name in state for name in names):
            for name in names:
                setattr(estimator, name, 0 if name == "ood_n_held_out_" else None)
            return

        def require(name: str, valid: bool, expected: str) -> None:
            if not valid:
                raise self.error(
                    _attribute(where, name),
                    f"fitted attribute {name} must be {expected}; got "
                    f"{state.get(name, '<missing>')!r}.",
                )

        held_out = state.get("ood_n_held_out_")
        require(
            "ood_n_held_out_",
            type(held_out) is int and 0 <= held_out <= 2**40,
            "an int >= 0",
        )
        threshold = state.get("ood_threshold_")
        if threshold is None:
            for name in ("ood_location_", "ood_precision_", "ood_false_alarm_rate_"):
                require(name, state.get(name) is None, "None, as ood_threshold_ is")
            return
        require(
            "ood_threshold_",
            type(threshold) is float and math.isfinite(threshold) and threshold >= 0,
            "None or a finite float >= 0",
        )
        rate = state.get("ood_false_alarm_rate_")
        require(
            "ood_false_alarm_rate_",
            type(rate) is float and 0 < rate < 1,
            "a float in (0, 1)",
        )
        location = state.get("ood_location_")
        require(
            "ood_location_",
            isinstance(location, np.ndarray)
            and location.dtype.kind == "f"
            and location.ndim == 2
            and 1 <= location.shape[0] <= _MAX_OOD_GROUPS
            and 1 <= location.shape[1] <= OOD_MAX_FEATURES
            and bool(np.all(np.isfinite(location))),
            "a finite float array of shape (n_groups, n_features), n_features <= "
            f"{OOD_MAX_FEATURES}",
        )
        location = cast(NDArray[Any], location)
        size = location.shape[1]
        precision = state.get("ood_precision_")
        require(
            "ood_precision_",
            isinstance(precision, np.ndarray)
            and precision.dtype.kind == "f"
            and precision.shape == (size, size)
            and bool(np.all(np.isfinite(precision)))
            and bool(np.allclose(precision, precision.T)),
            f"a finite symmetric float array of shape ({size}, {size})",
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


def _is_passthrough(step: Any) -> bool:
    return step is None or (type(step) is str and step == "passthrough")


def _is_image_shape(value: Any) -> TypeGuard[tuple[int, ...]]:
    return (
        type(value) is tuple
        and 1 <= len(value) <= 4
        and all(type(size) is int and size >= 1 for size in value)
        and math.prod(value) <= _MAX_IMAGE_VALUES
    )


def _blank_input(step: Any) -> NDArray[np.float32] | None:
    """Return one blank input of the shape ``step`` was fitted on, if it says."""
    shape = getattr(step, "image_shape_", None)
    if _is_image_shape(shape):
        return np.zeros((1, *shape), dtype=np.float32)
    n_features = getattr(step, "n_features_in_", None)
    if type(n_features) is int and 0 < n_features <= _MAX_IMAGE_VALUES:
        return np.zeros((1, n_features), dtype=np.float32)
    return None


def _check_network_on_meta(path: Path, estimator: _BaseMedicalCNN) -> bool:
    """Run the architecture on a blank input on the meta device, at no cost.

    Returns False when the architecture cannot be built or run there (a plugin
    may not support it); the caller then predicts for real.
    """
    *spatial, channels = estimator.image_shape_
    n_outputs = estimator._fitted_n_outputs()
    try:
        factory = get_architecture(estimator.architecture)
        with torch.device("meta"):
            body = factory(
                channels,
                n_outputs,
                tuple(spatial),
                **estimator._fitted_architecture_params(),
            )
            output = body(torch.empty((1, channels, *spatial)))
    except Exception:
        return False
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (1, n_outputs):
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else output
        raise ModelFileError(
            f"{path}: the network maps a blank input of shape {(1, *spatial)} "
            f"to {got!r}, not to {n_outputs} outputs."
        )
    return True


def _json_like(value: Any, depth: int = 0) -> bool:
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
        return all(_json_like(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(
            type(key) is str and _json_like(item, depth + 1)
            for key, item in value.items()
        )
    return False


def _check_predicts(path: Path, model: BaseEstimator) -> None:
    """Predict one blank image, so that a model that loads is a model that works.

    Leading steps that record no input shape (an ``ImageLoader``, which reads
    files) are skipped: the check starts at the first step that records one.
    A network whose images hold more than ``_MAX_CHECKED_VALUES`` values is
    checked on the meta device instead, so that the check costs what the file's
    size justifies; its preprocessing steps were checked with their parameters.
    The outputs must be finite.
    """
    network = _check_saveable(model)
    if math.prod(network.image_shape_) > _MAX_CHECKED_VALUES and (
        _check_network_on_meta(path, network)
    ):
        return
    target: Any = model
    X = None
    if isinstance(model, Pipeline):
        for index, (_, step) in enumerate(model.steps):
            X = None if _is_passthrough(step) else _blank_input(step)
            if X is not None:
                target = model[index:]
                break
    else:
        X = _blank_input(model)
    if X is None:  # e.g. a nested Pipeline that starts with an ImageLoader
        target = _check_saveable(model)
        X = _blank_input(target)
    if X is None:  # pragma: no cover - check_fitted_state guarantees image_shape_
        raise ModelFileError(f"{path}: the model records no input shape.")
    method = "predict_proba" if hasattr(target, "predict_proba") else "predict"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            output = getattr(target, method)(X)
    except Exception as error:
        raise ModelFileError(
            f"{path}: the model loads but cannot predict a blank input of shape "
            f"{X.shape}: {type(error).__name__}: {error}"
        ) from error
    numeric = np.asarray(output)
    if numeric.dtype.kind in "fc" and not np.all(np.isfinite(numeric)):
        raise ModelFileError(
            f"{path}: the model loads but predicts {output!r} for a blank input of "
            f"shape {X.shape}: not finite numbers."
        )


def load_model(
    path: str | PathLike[str],
    *,
    device: str | torch.device = "cpu",
    trusted: Iterable[type] | None = None,
) -> BaseEstimator:
    """Load a model saved by :func:`save_model`, without running code from the file.

    The file is parsed as JSON and safetensors only: nothing is unpickled, no
    module named by the file is imported, and every class must be on the
    allow-list (or in ``trusted``). The network is rebuilt from the architecture
    registry by name; a plugin architecture loads when the package providing it
    is installed. Before returning, the model predicts one blank image, so a
    model that loads is a model that predicts.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.skmed`` file.
    device : str or torch.device, default="cpu"
        Where to place the network: ``"cpu"``, ``"cuda"``, ``"auto"``, ...
        The estimator's ``device`` parameter keeps the value it was fitted with.
    trusted : list of class, default=None
        Your own estimator classes that the file may name, as passed to
        :func:`save_model`. Pass the classes themselves: names as strings and
        ``trusted=True`` are refused.

    Returns
    -------
    model : MedicalCNNClassifier, MedicalCNNRegressor or Pipeline
        The fitted model; on the CPU, its predictions equal those of the model
        that was saved.

    Raises
    ------
    sk_medcnn.exceptions.ModelFileError
        A ``ValueError``, for every problem with the file: not a zip, truncated,
        corrupt (checksums), too large or too compressed, unexpected members,
        invalid JSON or wrong types in it, a class off the allow-list, weights of
        the wrong shape or dtype, a newer format version. When the architecture
        is not installed, the error is also an
        :class:`~sk_medcnn.exceptions.ArchitectureNotFoundError` and names the
        architecture and the entry-point group.
    FileNotFoundError
        If ``path`` does not exist.

    Warns
    -----
    ModelVersionWarning
        If the file was written with another major or minor version of sk_medcnn
        (or of scikit-learn, for pipelines with scikit-learn steps), or another
        major version of torch.

    See Also
    --------
    save_model : Write such a file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sk_medcnn import MedicalCNNRegressor
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.persistence import load_model, save_model
    >>> X, _ = make_lesion_phantoms(32, image_size=16, random_state=0)
    >>> reg = MedicalCNNRegressor(max_epochs=1, device="cpu", random_state=0)
    >>> reg = reg.fit(X, X.mean(axis=(1, 2)))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_model(reg, Path(folder) / "regressor.skmed")
    ...     loaded = load_model(Path(folder) / "regressor.skmed")
    >>> loaded.predict(X[:2]).shape
    (2,)
    """
    trusted_classes = _check_trusted(trusted)
    resolved = resolve_device(device)
    path = Path(path)
    size = path.stat().st_size  # FileNotFoundError for a missing file
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a .skmed model file.")
    if size > _MAX_TOTAL_BYTES + _MAX_DOCUMENT_BYTES:
        raise ModelFileError(f"{path} holds {size:,} bytes, more than the limit.")
    data = path.read_bytes()
    with _watch_interrupts() as interrupted:
        try:
            return _load(path, data, trusted_classes, resolved)
        except (ModelFileError, Warning):  # a warning filtered into an error stays
            raise
        except (SystemExit, KeyboardInterrupt) as error:
            if isinstance(error, KeyboardInterrupt) and interrupted():
                raise  # Ctrl-C: the user's, not the file's
            # plugin code (an architecture's factory or forward) tried to end
            # the program: a broken plugin must not end the caller's
            raise ModelFileError(
                f"{path} cannot be loaded: code run while loading it (the "
                "architecture's factory or network, from a plugin?) raised "
                f"{type(error).__name__}({error})."
            ) from error
        except Exception as error:
            # the backstop: whatever a hostile file triggers, the caller gets one
            raise ModelFileError(
                f"{path} cannot be loaded: {type(error).__name__}: {error}"
            ) from error


@contextlib.contextmanager
def _watch_interrupts() -> Iterator[Any]:
    """Tell a real Ctrl-C from a ``KeyboardInterrupt`` raised by code.

    In the main thread, SIGINT is routed through a handler that records it and
    then does what the previous handler did; the block yields a function that
    says whether one arrived. Elsewhere no signal can raise, so it says False.
    """
    received = False

    def interrupted() -> bool:
        return received

    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        nonlocal received
        received = True
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:  # end the process, as it would have
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)

    try:
        signal.signal(signal.SIGINT, handler)
    except (ValueError, TypeError, OSError):  # e.g. an embedding interpreter
        yield interrupted
        return
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _load(
    path: Path, data: bytes, trusted: dict[str, type], device: torch.device
) -> BaseEstimator:
    document, members = _read_archive(path, data)
    safetensors = _import_safetensors()
    arrays: dict[str, NDArray[Any]] = {}
    if _ARRAYS in members:
        try:
            arrays = safetensors.numpy.load(members[_ARRAYS])
        except Exception as error:
            raise ModelFileError(
                f"{path}: {_ARRAYS} is not a valid safetensors file: {error}"
            ) from error
    networks = {name: content for name, content in members.items() if name != _ARRAYS}
    reader = _Reader(path, arrays, networks, trusted, device)
    tree = document["model"]
    if type(tree) is not dict or set(tree) != {"__estimator__"}:
        raise ModelFileError(f"{path}: model must be an estimator node.")
    try:
        model = reader.value(tree, "")
    except ModelFileError as error:
        written = document["versions"].get("sk_medcnn", "?")
        if _version_key(written, 2) == _version_key(__version__, 2):
            raise
        # a file from another release may use what this one does not know
        raise ModelFileError(
            f"{error} (the file was written by sk_medcnn {written}; this is "
            f"{__version__})"
        ) from error
    unused = sorted(set(arrays) - reader.used_arrays) + sorted(
        set(networks) - reader.used_networks
    )
    if unused:
        raise ModelFileError(f"{path}: holds data that nothing refers to: {unused}.")
    try:
        _check_saveable(model)
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: {error}") from error
    _check_versions(path, document["versions"], reader.sklearn_steps)
    _check_predicts(path, model)
    return model
