"""Registry of CNN architectures, extensible by third-party packages.

Built-in architectures register themselves with :func:`register_architecture`.
Other distributions add theirs through the entry-point group
``sk_medcnn.architectures`` in their own ``pyproject.toml``::

    [project.entry-points."sk_medcnn.architectures"]
    mynet = "mypkg.nets:build_mynet"

Entry points are discovered lazily, at the first lookup of a name that is not
registered in-process; a plugin that fails to import breaks only the call that
asks for it.

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
