"""Loading: :func:`load_model`, its safety net, and the check that a model predicts.

:func:`load_model` reads the archive (``_archive``), rebuilds the object tree
(``_reader``), warns about versions (``_format``) and predicts one blank image,
so that a model that loads is a model that works. Whatever a hostile file
triggers on the way, the caller gets one :class:`ModelFileError`; a real Ctrl-C
is told from a ``KeyboardInterrupt`` raised by plugin code.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import warnings
from collections.abc import Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from .._version import __version__
from ..estimators._base import _BaseMedicalCNN
from ..exceptions import ModelFileError
from ..registry import get_architecture
from ..utils._runtime import resolve_device
from ._allowlist import _check_trusted
from ._archive import _read_archive
from ._fitted import _check_saveable, _is_image_shape, _is_passthrough
from ._format import (
    _ARRAYS,
    _MAX_CHECKED_VALUES,
    _MAX_DOCUMENT_BYTES,
    _MAX_IMAGE_VALUES,
    _MAX_TOTAL_BYTES,
    _check_versions,
    _import_safetensors,
    _version_key,
)
from ._reader import _Reader


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


# --- a model that loads is a model that predicts -------------------------------------


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
