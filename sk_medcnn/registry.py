"""Registry of CNN architectures, extensible by third-party packages.

Built-in architectures register themselves with :func:`register_architecture`.
Other distributions add theirs through the entry-point group
``sk_medcnn.architectures`` in their own ``pyproject.toml``::

    [project.entry-points."sk_medcnn.architectures"]
    mynet = "mypkg.nets:build_mynet"

Entry points are discovered lazily, at the first lookup of a name that is not
registered in-process; a plugin that fails to import breaks only the call that
asks for it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

from torch import nn

from .exceptions import ArchitectureNotFoundError, PluginLoadError

__all__ = [
    "ENTRY_POINT_GROUP",
    "ArchitectureFactory",
    "get_architecture",
    "list_architectures",
    "register_architecture",
]

logger = logging.getLogger(__name__)

#: The entry-point group third-party packages use to provide architectures.
ENTRY_POINT_GROUP = "sk_medcnn.architectures"


#: ``factory(in_channels: int, n_outputs: int, image_shape: tuple[int, int],
#: **params) -> torch.nn.Module``: builds an untrained module mapping a float
#: batch ``(n, in_channels, height, width)`` to ``(n, n_outputs)`` raw scores
#: (logits for a classifier, values for a regressor). A ``Callable[..., ...]``
#: rather than a ``Protocol``, since factories add their own keyword-only
#: parameters, which a Protocol with ``**params`` does not admit.
ArchitectureFactory = Callable[..., nn.Module]


_ARCHITECTURES: dict[str, ArchitectureFactory] = {}
_LOADED_PLUGINS: dict[str, ArchitectureFactory] = {}
_BUILTINS_MODULE = "sk_medcnn.architectures"


def register_architecture(
    name: str,
) -> Callable[[ArchitectureFactory], ArchitectureFactory]:
    """Register an architecture factory under ``name`` (a decorator).

    Parameters
    ----------
    name : str
        The name users pass as ``architecture=``. It must not be registered
        already.

    Returns
    -------
    decorator : callable
        Registers the factory and returns it unchanged.

    Raises
    ------
    ValueError
        If ``name`` is empty or already registered.

    Examples
    --------
    >>> from torch import nn
    >>> from sk_medcnn import register_architecture, list_architectures
    >>> @register_architecture("tiny_linear_doc")
    ... def build_tiny(in_channels, n_outputs, image_shape):
    ...     n_inputs = in_channels * image_shape[0] * image_shape[1]
    ...     return nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, n_outputs))
    >>> "tiny_linear_doc" in list_architectures()
    True
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}.")

    def add(factory: ArchitectureFactory) -> ArchitectureFactory:
        if not callable(factory):
            raise TypeError(
                f"architecture {name!r} must be registered with a callable; "
                f"got {type(factory).__name__}."
            )
        if name in _ARCHITECTURES:
            owner = getattr(_ARCHITECTURES[name], "__module__", "?")
            raise ValueError(f"architecture {name!r} is already registered by {owner}.")
        _ARCHITECTURES[name] = factory
        return factory

    return add


def _ensure_builtins() -> None:
    importlib.import_module(_BUILTINS_MODULE)


def _plugin_entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in found:
            logger.debug("duplicate entry point %s ignored", entry_point)
            continue
        found[entry_point.name] = entry_point
    return found


def _distribution_name(entry_point: EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return getattr(dist, "name", None) or "an unknown distribution"


def list_architectures(pattern: str | None = None) -> list[str]:
    """List the names of the available architectures, built-in and plugin.

    Plugin architectures are listed from their entry points without being
    imported.

    Parameters
    ----------
    pattern : str, default=None
        A shell-style wildcard (``"resnet*"``) that the names must match.

    Returns
    -------
    names : list of str
        Sorted names.

    Examples
    --------
    >>> from sk_medcnn import list_architectures
    >>> list_architectures("resnet*")
    ['resnet18', 'resnet34']
    """
    import fnmatch

    _ensure_builtins()
    names = set(_ARCHITECTURES) | set(_LOADED_PLUGINS) | set(_plugin_entry_points())
    if pattern is not None:
        names = {name for name in names if fnmatch.fnmatchcase(name, pattern)}
    return sorted(names)


def get_architecture(name: str) -> ArchitectureFactory:
    """Return the factory registered under ``name``.

    Parameters
    ----------
    name : str
        A built-in name (see :func:`list_architectures`) or one provided by an
        installed plugin's ``sk_medcnn.architectures`` entry point.

    Returns
    -------
    factory : callable
        ``factory(in_channels, n_outputs, image_shape, **params) -> nn.Module``.

    Raises
    ------
    ArchitectureNotFoundError
        A subclass of ``ValueError``, if no architecture has that name; the
        message lists the available names.
    PluginLoadError
        A subclass of ``ImportError``, if the plugin providing ``name`` fails
        to import; the message names its distribution.

    Examples
    --------
    >>> from sk_medcnn import get_architecture
    >>> net = get_architecture("simple_cnn")(1, 2, (28, 28))
    >>> type(net).__name__
    'SimpleCNN'
    """
    if not isinstance(name, str):
        raise TypeError(f"architecture name must be a str; got {type(name).__name__}.")
    _ensure_builtins()
    if name in _ARCHITECTURES:
        return _ARCHITECTURES[name]
    if name in _LOADED_PLUGINS:
        return _LOADED_PLUGINS[name]
    plugins = _plugin_entry_points()
    if name not in plugins:
        raise ArchitectureNotFoundError(
            f"unknown architecture {name!r}; available: "
            f"{', '.join(list_architectures())}. Register a new one with "
            f"sk_medcnn.register_architecture or the {ENTRY_POINT_GROUP!r} "
            "entry-point group."
        )
    entry_point = plugins[name]
    try:
        factory = entry_point.load()
    except Exception as error:
        raise PluginLoadError(
            f"architecture {name!r} comes from the entry point "
            f"{entry_point.value!r} of {_distribution_name(entry_point)}, which "
            f"failed to import: {type(error).__name__}: {error}"
        ) from error
    if not callable(factory):
        raise PluginLoadError(
            f"entry point {name!r} ({entry_point.value!r}) of "
            f"{_distribution_name(entry_point)} is not callable."
        )
    if name in _ARCHITECTURES:  # the plugin module registered itself on import
        return _ARCHITECTURES[name]
    _LOADED_PLUGINS[name] = factory
    return factory
