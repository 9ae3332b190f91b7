"""The training layout: which networks ``memory_format="auto"`` trains channels-last.

Channels-last trains the reference CNN in 0.8-0.9 of the time of torch's usual
NCHW on this project's CPUs (oneDNN), but torch 2.13's CPU backward of one
channels-last kernel corrupts the heap (a strided 1x1 convolution with few
channels; ``docs/benchmarks.md``). ``"auto"`` therefore trains channels-last
only networks built entirely of the module types and convolution settings
that ``benchmarks/check_channels_last.py`` scanned (forward and backward
against NCHW, under glibc's heap checks, in float32 and bfloat16, one and two
threads; images and volumes); any other network trains NCHW, as before.
"""

from __future__ import annotations

import torch
from torch import nn

from ..architectures._layers import GlobalPool
from ..architectures._simple_cnn import SimpleCNN

__all__ = ["resolve_memory_format", "scanned_for_channels_last"]

#: Module types whose forward calls only the scanned kernels (besides their
#: children, which are checked in turn).
_SCANNED_TYPES: tuple[type[nn.Module], ...] = (
    SimpleCNN,
    nn.Sequential,
    nn.Conv2d,
    nn.Conv3d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.ReLU,
    GlobalPool,
    nn.Flatten,
    nn.Linear,
    nn.Dropout,
    nn.Identity,
)
#: Convolution kernel sizes the scan covered (stride 1, dilation 1, groups 1).
_SCANNED_KERNELS = (2, 3, 4, 5)


def _sizes(value: int | tuple[int, ...]) -> tuple[int, ...]:
    """Return a pooling layer's size as a tuple (pooling keeps an int as given)."""
    return value if isinstance(value, tuple) else (value,)


def _scanned_module(module: nn.Module) -> bool:
    """Whether ``module``'s own kernels are among those scanned."""
    if type(module) not in _SCANNED_TYPES:  # not isinstance: a subclass may
        return False  # override forward with other kernels
    if isinstance(module, (nn.Conv2d, nn.Conv3d)):
        return (
            all(step == 1 for step in module.stride)
            and all(step == 1 for step in module.dilation)
            and module.groups == 1
            and module.padding_mode == "zeros"
            and all(size in _SCANNED_KERNELS for size in module.kernel_size)
        )
    if isinstance(module, (nn.MaxPool2d, nn.MaxPool3d)):
        return all(step == 1 for step in _sizes(module.dilation)) and all(
            size in (2, 3) for size in _sizes(module.kernel_size)
        )
    return True


def scanned_for_channels_last(body: nn.Module) -> bool:
    """Whether every module of ``body`` is of a type and setting scanned channels-last.

    Parameters
    ----------
    body : torch.nn.Module
        An architecture's network.

    Returns
    -------
    scanned : bool
        True when ``body`` and all its submodules are of the module types
        ``benchmarks/check_channels_last.py`` scanned (the reference CNN's:
        :class:`~sk_medcnn.architectures.SimpleCNN`, ``Sequential``,
        ``Conv2d`` and ``Conv3d`` at stride 1 with kernels of 2 to 5,
        ``BatchNorm2d`` and ``BatchNorm3d``, ``MaxPool2d`` and ``MaxPool3d``
        with windows of 2 or 3, ``ReLU``,
        :class:`~sk_medcnn.architectures.GlobalPool`, ``Flatten``, ``Linear``,
        ``Dropout``, ``Identity``); subclasses do not count, as they may
        compute otherwise.

    Examples
    --------
    >>> from sk_medcnn.architectures import build_simple_cnn, build_resnet18
    >>> scanned_for_channels_last(build_simple_cnn(1, 2, (28, 28)))
    True
    >>> scanned_for_channels_last(build_simple_cnn(1, 2, (28, 28, 28)))
    True
    >>> scanned_for_channels_last(build_resnet18(1, 2, (28, 28)))
    False
    """
    return all(_scanned_module(module) for module in body.modules())


def resolve_memory_format(
    memory_format: str,
    body: nn.Module,
    device: torch.device,
    *,
    spatial_dims: int = 2,
    precision: str = "fp32",
    distributed: bool = False,
) -> str:
    """Return the layout a network trains in: ``"contiguous"`` or ``"channels_last"``.

    Parameters
    ----------
    memory_format : {"auto", "contiguous", "channels_last"}
        The estimator's parameter. An explicit layout is returned as given.
    body : torch.nn.Module
        The architecture's network, before it is put in a layout.
    device : torch.device
        The training device.
    spatial_dims : {2, 3}, default=2
        2 for images, 3 for volumes.
    precision : {"fp32", "bf16"}, default="fp32"
        The estimator's ``precision``.
    distributed : bool, default=False
        Whether the network trains data-parallel.

    Returns
    -------
    layout : {"contiguous", "channels_last"}
        For ``"auto"``: ``"channels_last"`` for networks of images or
        volumes trained on the CPU, not data-parallel, that
        :func:`scanned_for_channels_last` admits; ``"contiguous"`` otherwise
        (GPUs and other devices, where the layouts were not compared, and
        every other network). Volumes train channels-last in float32 only.

    Raises
    ------
    ValueError
        For ``"channels_last"`` with ``precision="bf16"`` and volumes on the
        CPU: the scan found torch 2.13's bfloat16 ``channels_last_3d``
        convolutions returning wrong values (gradients of 1e16) for small
        volumes.
    """
    broken = device.type == "cpu" and spatial_dims == 3 and precision == "bf16"
    if memory_format == "channels_last" and broken:
        raise ValueError(
            "memory_format='channels_last' with precision='bf16' is not supported "
            "for volumes on the CPU: torch 2.13's bfloat16 channels_last_3d "
            "convolutions return wrong values for small volumes "
            "(benchmarks/check_channels_last.py); use memory_format='auto' or "
            "'contiguous', or precision='fp32'."
        )
    if memory_format != "auto":
        return memory_format
    if (
        device.type == "cpu"
        and not distributed
        and not broken
        and scanned_for_channels_last(body)
    ):
        return "channels_last"
    return "contiguous"
