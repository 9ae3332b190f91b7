"""Weight loaders: how pretrained checkpoints map onto an architecture's modules.

Declared in-process with :func:`register_weight_loader`, or by plugins as a
dict in the ``sk_medcnn.weight_loaders`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Any

import torch

from ..exceptions import PluginLoadError
from . import WEIGHT_LOADER_GROUP
from ._architectures import get_architecture
from ._plugins import (
    _distribution_name,
    _load_entry_point,
    _weight_loader_entry_point,
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
    declared = _load_entry_point(entry_point, f"the weight loader of {name!r}")
    loader = _declared_weight_loader(name, entry_point, declared)
    _WEIGHT_LOADERS[name] = loader
    return loader


def _declared_weight_loader(
    name: str, entry_point: EntryPoint, declared: Any
) -> WeightLoader:
    """Return the loader an entry point declares: a WeightLoader or its keywords."""
    if isinstance(declared, WeightLoader):
        return declared
    if not isinstance(declared, Mapping):
        raise PluginLoadError(
            f"the weight loader of {name!r} ({entry_point.value!r} of "
            f"{_distribution_name(entry_point)}) must be a dict or a WeightLoader; "
            f"got {type(declared).__name__}."
        )
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
        return _make_weight_loader(
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
