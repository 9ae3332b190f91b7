"""The ``.skmed`` format: members, schema, limits and the versions a file records.

Both sides of the format read these: the writer (``_writer``, ``_archive``)
so that it never writes what the loader would refuse, the loader (``_archive``,
``_reader``, ``_fitted``) to check a file against them.
"""

from __future__ import annotations

import platform
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch

from .._version import __version__

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


# --- places in the object tree, as messages name them ------------------------------


def _where(where: str) -> str:
    return f"{where!r}" if where else "the model"


def _child(where: str, name: str) -> str:
    """Return the scikit-learn path of parameter ``name`` of the estimator ``where``."""
    return f"{where}__{name}" if where else name


def _attribute(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


# --- versions ----------------------------------------------------------------------


def _versions() -> dict[str, str]:
    return {
        "sk_medcnn": str(__version__),
        "torch": str(torch.__version__),
        "sklearn": str(sklearn.__version__),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }


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


def _import_safetensors() -> Any:
    try:
        import safetensors.numpy
        import safetensors.torch
    except ImportError as error:  # pragma: no cover - safetensors is installed in CI
        raise ImportError(
            "the safe model format needs safetensors: pip install safetensors"
        ) from error
    return safetensors
