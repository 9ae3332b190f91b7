"""Registry of CNN architectures, extensible by third-party packages.

Built-in architectures register themselves with :func:`register_architecture`.
Other distributions add theirs through the entry-point group
``sk_medcnn.architectures`` in their own ``pyproject.toml``::

    [project.entry-points."sk_medcnn.architectures"]
    mynet = "mypkg.nets:build_mynet"

Entry points are discovered lazily, at the first lookup of a name that is not
registered in-process; a plugin that fails to import breaks only the call that
asks for it.

Each architecture declares the spatial dimensions it builds networks for: 2 for
images ``(n, C, H, W)``, 3 for volumes ``(n, C, D, H, W)``. In-process
registrations pass ``spatial_dims=`` to :func:`register_architecture`; a plugin
sets the attribute ``spatial_dims`` on its factory (``build_x.spatial_dims =
(2, 3)``). Absent, it means 2-D images only.

A family also tells sk_medcnn how pretrained checkpoints map onto its modules
(:func:`register_weight_loader`, or the entry-point group
``sk_medcnn.weight_loaders``): which module is the output layer, which weight is
the first convolution, and how checkpoint keys are renamed.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import torch
from torch import nn

from .exceptions import ArchitectureNotFoundError, PluginLoadError

__all__ = [
    "ENTRY_POINT_GROUP",
    "WEIGHT_LOADER_GROUP",
    "ArchitectureFactory",
    "WeightLoader",
    "architecture_spatial_dims",
    "check_architecture_dims",
    "get_architecture",
    "get_weight_loader",
    "list_architectures",
    "register_architecture",
    "register_weight_loader",
]

logger = logging.getLogger(__name__)

#: The entry-point group third-party packages use to provide architectures.
ENTRY_POINT_GROUP = "sk_medcnn.architectures"
#: The entry-point group third-party packages use to declare weight loaders.
WEIGHT_LOADER_GROUP = "sk_medcnn.weight_loaders"


#: ``factory(in_channels: int, n_outputs: int, image_shape: tuple[int, ...],
#: **params) -> torch.nn.Module``: builds an untrained module mapping a float
#: batch ``(n, in_channels, *image_shape)`` to ``(n, n_outputs)`` raw scores
#: (logits for a classifier, values for a regressor); ``image_shape`` is
#: ``(height, width)`` for images and ``(depth, height, width)`` for volumes,
#: so ``len(image_shape)`` is the number of spatial dimensions. A
#: ``Callable[..., ...]``
#: rather than a ``Protocol``, since factories add their own keyword-only
#: parameters, which a Protocol with ``**params`` does not admit.
ArchitectureFactory = Callable[..., nn.Module]


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


#: ``map_keys(state_dict) -> state_dict``: renames (and may reshape) the tensors
#: of a checkpoint into the module's own ``state_dict`` layout.
KeyMapping = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
_NORMALIZATIONS = ("imagenet", None)


def _identity(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(state_dict)


@dataclass(frozen=True)
class WeightLoader:
    """How pretrained checkpoints map onto the modules of an architecture family.

    Made by :func:`register_weight_loader`; read by the estimators'
    ``pretrained`` parameter and by :class:`sk_medcnn.ImageEmbedder`.

    Parameters
    ----------
    head : tuple of str
        Names of the output-layer modules (``("fc",)`` for the ResNets): their
        weights are replaced for a new number of outputs, their input is the
        embedding, and they form the "head" that ``freeze_epochs`` and
        ``body_lr_factor`` leave at full speed.
    input_convolution : str or None
        The ``state_dict`` key of the first convolution's weight, adapted to
        the input's channels; None if the family has none to adapt.
    map_keys : callable
        ``map_keys(state_dict) -> state_dict`` renaming a checkpoint's tensors
        into the module's layout (the identity by default).
    normalization : {"imagenet", None}
        The input normalisation checkpoint files of this family expect by
        default: ImageNet's mean and standard deviation of pixels in [0, 1],
        or None for the training images' own statistics.
    architecture_params : callable or None
        ``architecture_params(state_dict) -> dict``: factory parameters a
        checkpoint implies (e.g. the ResNets' ``stem`` from the first
        convolution's kernel size), used where ``architecture_params`` does
        not set them.
    """

    head: tuple[str, ...]
    input_convolution: str | None = None
    map_keys: KeyMapping = _identity
    normalization: str | None = "imagenet"
    architecture_params: Callable[[dict[str, torch.Tensor]], dict[str, Any]] | None = (
        None
    )


_WEIGHT_LOADERS: dict[str, WeightLoader] = {}


def _make_weight_loader(
    name: str,
    *,
    head: Sequence[str],
    input_convolution: str | None,
    map_keys: KeyMapping | None,
    normalization: str | None,
    architecture_params: Callable[[dict[str, torch.Tensor]], dict[str, Any]] | None,
) -> WeightLoader:
    if isinstance(head, str):
        head = (head,)
    if (
        not isinstance(head, Sequence)
        or not head
        or not all(isinstance(part, str) and part for part in head)
    ):
        raise ValueError(
            f"head of weight loader {name!r} must name one or more modules "
            f"(e.g. ('fc',)); got {head!r}."
        )
    if input_convolution is not None and not isinstance(input_convolution, str):
        raise TypeError(
            f"input_convolution of weight loader {name!r} must be a state_dict "
            f"key or None; got {input_convolution!r}."
        )
    if normalization not in _NORMALIZATIONS:
        raise ValueError(
            f"normalization of weight loader {name!r} must be 'imagenet' or None; "
            f"got {normalization!r}."
        )
    for label, function in (
        ("map_keys", map_keys),
        ("architecture_params", architecture_params),
    ):
        if function is not None and not callable(function):
            raise TypeError(
                f"{label} of weight loader {name!r} must be callable; got {function!r}."
            )
    return WeightLoader(
        head=tuple(head),
        input_convolution=input_convolution,
        map_keys=map_keys or _identity,
        normalization=normalization,
        architecture_params=architecture_params,
    )


def register_weight_loader(
    name: str,
    *,
    head: Sequence[str],
    input_convolution: str | None = None,
    normalization: str | None = "imagenet",
    architecture_params: Callable[[dict[str, torch.Tensor]], dict[str, Any]]
    | None = None,
) -> Callable[[KeyMapping | None], KeyMapping | None]:
    """Declare how checkpoints load into architecture ``name`` (a decorator).

    Decorate the function renaming a checkpoint's keys into the module's
    ``state_dict`` layout, or call the result with None when the layouts
    agree: ``register_weight_loader("mynet", head=("fc",))(None)``. Plugin
    packages that do not import sk_medcnn declare the same keywords as a
    dict in the ``sk_medcnn.weight_loaders`` entry-point group (see the plugin
    template, ``examples/plugin_package``).

    Parameters
    ----------
    name : str
        The architecture's registry name.
    head : sequence of str
        Names of the output-layer modules, e.g. ``("fc",)``.
    input_convolution : str, default=None
        The ``state_dict`` key of the first convolution's weight, adapted to
        the input's channels (see :func:`sk_medcnn.pretrained.adapt_input_conv`).
    normalization : {"imagenet", None}, default="imagenet"
        The input normalisation the family's checkpoint files expect.
    architecture_params : callable, default=None
        ``architecture_params(state_dict) -> dict`` of factory parameters a
        checkpoint implies.

    Returns
    -------
    decorator : callable
        Registers the key mapping (or the identity, for None) and returns it
        unchanged.

    Raises
    ------
    ValueError
        If ``name`` already has a weight loader, or ``head`` is empty.

    Examples
    --------
    >>> from torch import nn
    >>> from sk_medcnn import (
    ...     get_weight_loader, register_architecture, register_weight_loader)
    >>> @register_architecture("tiny_weights_doc")
    ... def build_tiny(in_channels, n_outputs, image_shape):
    ...     return nn.Sequential(nn.Flatten(), nn.Linear(
    ...         in_channels * image_shape[0] * image_shape[1], n_outputs))
    >>> @register_weight_loader("tiny_weights_doc", head=("1",))
    ... def strip_prefix(state_dict):
    ...     return {key.removeprefix("net."): v for key, v in state_dict.items()}
    >>> get_weight_loader("tiny_weights_doc").head
    ('1',)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}.")

    def add(map_keys: KeyMapping | None) -> KeyMapping | None:
        if name in _WEIGHT_LOADERS:
            raise ValueError(f"architecture {name!r} already has a weight loader.")
        _WEIGHT_LOADERS[name] = _make_weight_loader(
            name,
            head=head,
            input_convolution=input_convolution,
            map_keys=map_keys,
            normalization=normalization,
            architecture_params=architecture_params,
        )
        return map_keys

    return add


def _weight_loader_entry_point(name: str) -> EntryPoint | None:
    for entry_point in entry_points(group=WEIGHT_LOADER_GROUP):
        if entry_point.name == name:
            return entry_point
    return None


def get_weight_loader(name: str) -> WeightLoader:
    """Return how checkpoints load into architecture ``name``.

    The architecture is looked up first (which imports its plugin, where a
    plugin may register its loader); then the loaders registered in-process,
    then the ``sk_medcnn.weight_loaders`` entry points, whose objects are dicts
    of :func:`register_weight_loader`'s keywords.

    Parameters
    ----------
    name : str
        The architecture's registry name.

    Returns
    -------
    loader : WeightLoader

    Raises
    ------
    ValueError
        If the architecture declares no weight loader.
    PluginLoadError
        If the entry point declaring it fails to import.

    Examples
    --------
    >>> from sk_medcnn import get_weight_loader
    >>> get_weight_loader("resnet18").input_convolution
    'conv1.weight'
    """
    get_architecture(name)
    if name in _WEIGHT_LOADERS:
        return _WEIGHT_LOADERS[name]
    entry_point = _weight_loader_entry_point(name)
    if entry_point is None:
        with_loaders = sorted(_WEIGHT_LOADERS)
        raise ValueError(
            f"architecture {name!r} declares no weight loader, so pretrained "
            f"weights cannot be mapped onto it (architectures with one: "
            f"{', '.join(with_loaders)}). Declare one with "
            f"sk_medcnn.register_weight_loader or the {WEIGHT_LOADER_GROUP!r} "
            "entry-point group."
        )
    try:
        declared = entry_point.load()
    except Exception as error:
        raise PluginLoadError(
            f"the weight loader of {name!r} comes from the entry point "
            f"{entry_point.value!r} of {_distribution_name(entry_point)}, which "
            f"failed to import: {type(error).__name__}: {error}"
        ) from error
    if isinstance(declared, WeightLoader):
        loader = declared
    elif isinstance(declared, Mapping):
        allowed = {
            "head",
            "input_convolution",
            "map_keys",
            "normalization",
            "architecture_params",
        }
        unknown = sorted(set(declared) - allowed)
        if unknown or "head" not in declared:
            raise PluginLoadError(
                f"the weight loader of {name!r} ({entry_point.value!r} of "
                f"{_distribution_name(entry_point)}) must be a dict with 'head' "
                f"and optionally {sorted(allowed - {'head'})}; got keys "
                f"{sorted(declared)}."
            )
        try:
            loader = _make_weight_loader(
                name,
                head=declared["head"],
                input_convolution=declared.get("input_convolution"),
                map_keys=declared.get("map_keys"),
                normalization=declared.get("normalization", "imagenet"),
                architecture_params=declared.get("architecture_params"),
            )
        except (TypeError, ValueError) as error:
            raise PluginLoadError(
                f"the weight loader of {name!r} ({entry_point.value!r} of "
                f"{_distribution_name(entry_point)}) is invalid: {error}"
            ) from error
    else:
        raise PluginLoadError(
            f"the weight loader of {name!r} ({entry_point.value!r} of "
            f"{_distribution_name(entry_point)}) must be a dict or a WeightLoader; "
            f"got {type(declared).__name__}."
        )
    _WEIGHT_LOADERS[name] = loader
    return loader
