"""The registry of architectures: registering, listing and looking up factories.

Names registered in-process come first; others are looked up among the
plugins' entry points (:mod:`._plugins`) and imported at the first lookup.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint
from typing import Any

from ..exceptions import ArchitectureNotFoundError, PluginLoadError
from . import ENTRY_POINT_GROUP, ArchitectureFactory
from ._plugins import _distribution_name, _load_entry_point, _plugin_entry_points

logger = logging.getLogger(__package__)

_ARCHITECTURES: dict[str, ArchitectureFactory] = {}
_LOADED_PLUGINS: dict[str, ArchitectureFactory] = {}
#: The spatial dimensions of every architecture registered or loaded so far.
_SPATIAL_DIMS: dict[str, tuple[int, ...]] = {}
_BUILTINS_MODULE = "sk_medcnn.architectures"
#: The spatial dimensions sk_medcnn knows, and what users call their inputs.
_KNOWN_DIMS = (2, 3)
_DEFAULT_DIMS = (2,)
_INPUT_NAMES = {2: "2-D images", 3: "3-D volumes"}
#: The attribute by which a plugin's factory declares its spatial dimensions.
SPATIAL_DIMS_ATTRIBUTE = "spatial_dims"


def _as_spatial_dims(value: Any, what: str) -> tuple[int, ...]:
    """Validate a ``spatial_dims`` declaration and return it as a sorted tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or not value
        or not all(
            isinstance(dim, int) and not isinstance(dim, bool) and dim in _KNOWN_DIMS
            for dim in value
        )
        or len(set(value)) != len(value)
    ):
        raise ValueError(
            f"spatial_dims of {what} must be a non-empty tuple of distinct values "
            f"from {_KNOWN_DIMS} (2 for images, 3 for volumes), e.g. (2,) or "
            f"(2, 3); got {value!r}."
        )
    return tuple(sorted(value))


def register_architecture(
    name: str,
    *,
    spatial_dims: Sequence[int] | None = None,
) -> Callable[[ArchitectureFactory], ArchitectureFactory]:
    """Register an architecture factory under ``name`` (a decorator).

    Parameters
    ----------
    name : str
        The name users pass as ``architecture=``. It must not be registered
        already.
    spatial_dims : tuple of int, default=None
        The spatial dimensions the factory builds networks for: ``(2,)`` for
        images ``(n, C, H, W)`` only, ``(3,)`` for volumes ``(n, C, D, H, W)``
        only, ``(2, 3)`` for both (the factory then reads
        ``len(image_shape)``). None takes the factory's own ``spatial_dims``
        attribute, as plugins declare it, and ``(2,)`` without one: factories
        written before volumes were supported stay 2-D.

    Returns
    -------
    decorator : callable
        Registers the factory and returns it, with the dimensions recorded in
        its ``spatial_dims`` attribute (what plugins set by hand), so that
        code holding the factory reads them too.

    Raises
    ------
    ValueError
        If ``name`` is empty or already registered, ``spatial_dims`` is not a
        non-empty tuple of 2 and/or 3, or the factory already declares other
        dimensions in its attribute.

    Examples
    --------
    >>> import math
    >>> from torch import nn
    >>> from sk_medcnn import (
    ...     architecture_spatial_dims, list_architectures, register_architecture)
    >>> @register_architecture("tiny_linear_doc", spatial_dims=(2, 3))
    ... def build_tiny(in_channels, n_outputs, image_shape):
    ...     n_inputs = in_channels * math.prod(image_shape)
    ...     return nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, n_outputs))
    >>> "tiny_linear_doc" in list_architectures(spatial_dims=3)
    True
    >>> architecture_spatial_dims("tiny_linear_doc")
    (2, 3)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}.")
    what = f"architecture {name!r}"
    given = None if spatial_dims is None else _as_spatial_dims(spatial_dims, what)

    def add(factory: ArchitectureFactory) -> ArchitectureFactory:
        if not callable(factory):
            raise TypeError(
                f"architecture {name!r} must be registered with a callable; "
                f"got {type(factory).__name__}."
            )
        if name in _ARCHITECTURES:
            owner = getattr(_ARCHITECTURES[name], "__module__", "?")
            raise ValueError(f"architecture {name!r} is already registered by {owner}.")
        attribute = getattr(factory, SPATIAL_DIMS_ATTRIBUTE, None)
        declared = None if attribute is None else _as_spatial_dims(attribute, what)
        if given is not None and declared is not None and given != declared:
            raise ValueError(
                f"architecture {name!r}: the factory already declares "
                f"{SPATIAL_DIMS_ATTRIBUTE}={declared}, not {given}."
            )
        dims = given or declared or _DEFAULT_DIMS
        _ARCHITECTURES[name] = factory
        _SPATIAL_DIMS[name] = dims
        try:  # the attribute plugins set, for code that holds the factory
            setattr(factory, SPATIAL_DIMS_ATTRIBUTE, dims)
        except (AttributeError, TypeError):  # e.g. a builtin; the registry knows
            logger.debug("cannot record spatial_dims on %r", factory)
        return factory

    return add


def _ensure_builtins() -> None:
    importlib.import_module(_BUILTINS_MODULE)


def _check_requested_dims(spatial_dims: Any) -> int:
    if (
        isinstance(spatial_dims, bool)
        or not isinstance(spatial_dims, int)
        or spatial_dims not in _KNOWN_DIMS
    ):
        raise ValueError(
            f"spatial_dims must be 2 (images) or 3 (volumes); got {spatial_dims!r}."
        )
    return spatial_dims


def list_architectures(
    pattern: str | None = None, *, spatial_dims: int | None = None
) -> list[str]:
    """List the names of the available architectures, built-in and plugin.

    Without ``spatial_dims``, plugin architectures are listed from their entry
    points without being imported. With it, each plugin is imported to read
    its factory's ``spatial_dims`` declaration; a plugin that fails to import
    is left out (and logged), as it cannot be used either.

    Parameters
    ----------
    pattern : str, default=None
        A shell-style wildcard (``"resnet*"``) that the names must match.
    spatial_dims : {2, 3}, default=None
        Keep only the architectures that build networks for images (2) or
        volumes (3); None keeps all.

    Returns
    -------
    names : list of str
        Sorted names.

    Raises
    ------
    ValueError
        If ``spatial_dims`` is not None, 2 or 3.

    See Also
    --------
    architecture_spatial_dims : The spatial dimensions one architecture supports.

    Examples
    --------
    >>> from sk_medcnn import list_architectures
    >>> list_architectures("resnet*")
    ['resnet18', 'resnet34']
    >>> list_architectures("*resnet18", spatial_dims=3)
    ['acs_resnet18', 'resnet18']
    """
    import fnmatch

    if spatial_dims is not None:
        spatial_dims = _check_requested_dims(spatial_dims)
    _ensure_builtins()
    names = set(_ARCHITECTURES) | set(_LOADED_PLUGINS) | set(_plugin_entry_points())
    if pattern is not None:
        names = {name for name in names if fnmatch.fnmatchcase(name, pattern)}
    if spatial_dims is not None:
        supporting = set()
        for name in names:
            try:
                dims = architecture_spatial_dims(name)
            except PluginLoadError as error:
                logger.warning("architecture %r left out of the list: %s", name, error)
                continue
            if spatial_dims in dims:
                supporting.add(name)
        names = supporting
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
    return _load_plugin(name, plugins[name])


def _load_plugin(name: str, entry_point: EntryPoint) -> ArchitectureFactory:
    """Import the factory of the plugin ``name`` and record its dimensions."""
    factory = _load_entry_point(entry_point, f"architecture {name!r}")
    if not callable(factory):
        raise PluginLoadError(
            f"entry point {name!r} ({entry_point.value!r}) of "
            f"{_distribution_name(entry_point)} is not callable."
        )
    if name in _ARCHITECTURES:  # the plugin module registered itself on import
        return _ARCHITECTURES[name]
    declared = getattr(factory, SPATIAL_DIMS_ATTRIBUTE, _DEFAULT_DIMS)
    try:
        dims = _as_spatial_dims(declared, f"architecture {name!r}")
    except ValueError as error:
        raise PluginLoadError(
            f"the factory of entry point {name!r} ({entry_point.value!r}) of "
            f"{_distribution_name(entry_point)} declares invalid spatial "
            f"dimensions: {error}"
        ) from error
    _LOADED_PLUGINS[name] = factory
    _SPATIAL_DIMS[name] = dims
    return factory


def architecture_spatial_dims(
    architecture: str | ArchitectureFactory,
) -> tuple[int, ...]:
    """Return the spatial dimensions an architecture builds networks for.

    Parameters
    ----------
    architecture : str or callable
        A registered name (built in or from a plugin, which is then imported),
        or a factory. A factory declares its dimensions with a
        ``spatial_dims`` attribute (which :func:`register_architecture` sets);
        without one it supports 2-D images only.

    Returns
    -------
    spatial_dims : tuple of int
        Sorted, from ``(2,)`` (images ``(n, C, H, W)``), ``(3,)`` (volumes
        ``(n, C, D, H, W)``) and ``(2, 3)``.

    Raises
    ------
    ArchitectureNotFoundError
        If no architecture has that name.
    PluginLoadError
        If the plugin providing it fails to import or declares invalid
        dimensions.
    ValueError
        If a callable's ``spatial_dims`` attribute is invalid.
    TypeError
        If ``architecture`` is neither a str nor callable.

    Examples
    --------
    >>> from sk_medcnn import architecture_spatial_dims
    >>> architecture_spatial_dims("resnet18")
    (2, 3)
    >>> architecture_spatial_dims("acs_resnet18")
    (3,)
    """
    if isinstance(architecture, str):
        factory = get_architecture(architecture)
        attribute = getattr(factory, SPATIAL_DIMS_ATTRIBUTE, None)
        if attribute is None:
            return _SPATIAL_DIMS.get(architecture, _DEFAULT_DIMS)
        return _as_spatial_dims(attribute, f"architecture {architecture!r}")
    if not callable(architecture):
        raise TypeError(
            "architecture must be a registered name or a factory callable; got "
            f"{type(architecture).__name__}."
        )
    declared = getattr(architecture, SPATIAL_DIMS_ATTRIBUTE, None)
    if declared is None:
        _ensure_builtins()
        for name, factory in (*_ARCHITECTURES.items(), *_LOADED_PLUGINS.items()):
            if factory is architecture:
                return _SPATIAL_DIMS.get(name, _DEFAULT_DIMS)
        declared = _DEFAULT_DIMS
    return _as_spatial_dims(
        declared, f"the architecture factory {_label(architecture)}"
    )


def _label(factory: Any) -> str:
    return getattr(factory, "__qualname__", None) or type(factory).__name__


def _describe(dims: Sequence[int]) -> str:
    return " and ".join(_INPUT_NAMES[dim] for dim in dims)


def check_architecture_dims(
    architecture: str | ArchitectureFactory, spatial_dims: int
) -> None:
    """Check that an architecture builds networks of ``spatial_dims`` dimensions.

    Estimators call it before building the network, so that a 2-D-only
    architecture given volumes (or the reverse) fails with the choices that
    would work, not with a shape error deep inside torch.

    Parameters
    ----------
    architecture : str or callable
        A registered name or a factory (see :func:`architecture_spatial_dims`).
    spatial_dims : {2, 3}
        The spatial dimensions of the input: 2 for images, 3 for volumes.

    Raises
    ------
    ValueError
        If the architecture does not support ``spatial_dims``; the message
        names it, what it supports and the architectures that support
        ``spatial_dims``. Also if ``spatial_dims`` is not 2 or 3.
    ArchitectureNotFoundError, PluginLoadError, TypeError
        As :func:`architecture_spatial_dims`.

    Examples
    --------
    >>> from sk_medcnn import check_architecture_dims
    >>> check_architecture_dims("resnet18", 3)  # 2-D and 3-D: fine
    >>> check_architecture_dims("acs_resnet18", 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: architecture 'acs_resnet18' supports 3-D volumes only; for 2-D ...
    """
    requested = _check_requested_dims(spatial_dims)
    supported = architecture_spatial_dims(architecture)
    if requested in supported:
        return
    choices = list_architectures(spatial_dims=requested)
    if isinstance(architecture, str):
        subject = f"architecture {architecture!r}"
        hint = ""
    else:
        subject = f"the architecture factory {_label(architecture)}"
        hint = (
            f" (a factory that builds {_INPUT_NAMES[requested]} networks too "
            f"declares it with the attribute {SPATIAL_DIMS_ATTRIBUTE} = "
            f"{tuple(sorted({*supported, requested}))})"
        )
    raise ValueError(
        f"{subject} supports {_describe(supported)} only{hint}; for "
        f"{_INPUT_NAMES[requested]} choose one of {choices}."
    )
