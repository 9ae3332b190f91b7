"""ACS convolutions: 2-D kernels applied to volumes along three orientations.

:class:`ACSConv` keeps a 2-D convolution's weight and applies one third of its
output channels to axial, one third to coronal and one third to sagittal
planes of a volume; :func:`acs_convert` turns a 2-D network into a 3-D one by
replacing its layers, keeping every ``state_dict`` key and shape, so weights
trained on 2-D images load as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ACSConv", "acs_convert"]

#: The orientations in the order of the output channels, with the axis of a
#: ``(n, C, depth, height, width)`` volume each leaves out: axial planes are
#: ``(height, width)`` at one depth, coronal ``(depth, width)`` at one height,
#: sagittal ``(depth, height)`` at one width.
ORIENTATIONS = (("axial", 2), ("coronal", 3), ("sagittal", 4))


def _square(value: Any, name: str, where: str) -> int:
    """Return ``a`` for ``a`` or ``(a, a)``; refuse different values per axis."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    values = tuple(value)
    if len(values) == 2 and values[0] == values[1] and isinstance(values[0], int):
        return int(values[0])
    raise ValueError(
        f"{where} has {name}={value!r}; ACS convolutions and 3-D pools need the "
        f"same {name} on both axes (as do the 2-D kernels they reuse on three "
        "orientations), e.g. 3 or (3, 3)."
    )


def _split(out_channels: int) -> tuple[int, int, int]:
    """Split output channels into axial, coronal, sagittal groups (larger first)."""
    base, extra = divmod(out_channels, 3)
    return (base + (extra > 0), base + (extra > 1), base)


class ACSConv(nn.Module):
    """A 2-D convolution applied to volumes on axial, coronal and sagittal planes.

    The module holds the weight of a ``Conv2d``, of shape ``(out_channels,
    in_channels, k, k)``, and maps volumes ``(n, in_channels, depth, height,
    width)`` to ``(n, out_channels, depth', height', width')``. Its output
    channels are split into three consecutive groups (sizes
    ``ceil``-first, e.g. 22, 21, 21 of 64): the first group's kernels act on
    axial planes as 3-D kernels of shape ``(1, k, k)`` (over height and
    width), the second on coronal planes ``(k, 1, k)`` (depth and width), the
    third on sagittal planes ``(k, k, 1)`` (depth and height); the kernel's
    rows run along the first of the two axes. The output has the shape a
    ``Conv3d`` with a ``(k, k, k)`` kernel and the same stride, padding and
    dilation would give; along the axis a group's kernel leaves out, it reads
    the voxel a ``(k, k, k)`` kernel would have at its centre.

    Parameters
    ----------
    in_channels : int
        Channels of the input volumes.
    out_channels : int
        Channels of the output, split over the three orientations.
    kernel_size : int or (int, int)
        The 2-D kernel's size ``k`` (a square kernel).
    stride : int or (int, int), default=1
        Stride along each of the three axes.
    padding : int, (int, int), "same" or "valid", default=0
        Zero padding, as for ``Conv2d``, applied to the axes each kernel spans.
    dilation : int or (int, int), default=1
        Dilation of the kernel.
    bias : bool, default=True
        Add a learnable bias per output channel.

    Attributes
    ----------
    weight : torch.nn.Parameter of shape (out_channels, in_channels, k, k)
        The 2-D kernels, as in ``Conv2d`` (``state_dict`` key ``weight``).
    bias : torch.nn.Parameter of shape (out_channels,) or None
        The bias, as in ``Conv2d``.
    kernel_size, stride, dilation : tuple of (int, int)
        As in ``Conv2d``.
    padding : tuple of (int, int) or str
        As in ``Conv2d``.
    split : tuple of int
        Output channels of the axial, coronal and sagittal groups.

    See Also
    --------
    acs_convert : Turn a 2-D network into a 3-D one with ACS convolutions.

    Notes
    -----
    Yang et al. [1]_ propose ACS convolutions to reuse 2-D networks, and their
    ImageNet weights, on 3-D medical images at the cost of a 2-D convolution
    per voxel; ResNet-18 with ACS convolutions is the best baseline of
    MedMNIST v2 on VesselMNIST3D [2]_. Only ``groups=1`` and zero padding are
    supported, as in the reference implementation.

    References
    ----------
    .. [1] J. Yang, X. Huang, Y. He, J. Xu, C. Yang, G. Xu and B. Ni,
       "Reinventing 2D Convolutions for 3D Images", IEEE Journal of Biomedical
       and Health Informatics 25(8), 3009-3018 (2021).
    .. [2] J. Yang et al., "MedMNIST v2 - A large-scale lightweight benchmark
       for 2D and 3D biomedical image classification", Scientific Data 10, 41
       (2023).

    Examples
    --------
    >>> import torch
    >>> conv = ACSConv(1, 8, 3, padding=1)
    >>> conv.weight.shape, conv.split
    (torch.Size([8, 1, 3, 3]), (3, 3, 2))
    >>> conv(torch.zeros(2, 1, 10, 12, 14)).shape
    torch.Size([2, 8, 10, 12, 14])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        where = "ACSConv"
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
        size = _square(kernel_size, "kernel_size", where)
        step = _square(stride, "stride", where)
        spread = _square(dilation, "dilation", where)
        if min(size, step, spread) < 1:
            raise ValueError(
                f"kernel_size, stride and dilation must be >= 1; got {kernel_size!r}, "
                f"{stride!r} and {dilation!r}."
            )
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    "padding must be an int, a pair, 'same' or 'valid'; got "
                    f"{padding!r}."
                )
            if padding == "same" and step != 1:
                raise ValueError("padding='same' needs stride=1, as for Conv2d.")
            margin: tuple[int, int] | str = padding if padding == "same" else (0, 0)
        else:
            amount = _square(padding, "padding", where)
            if amount < 0:
                raise ValueError(f"padding must be >= 0; got {padding!r}.")
            margin = (amount, amount)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (size, size)
        self.stride = (step, step)
        self.padding = margin
        self.dilation = (spread, spread)
        self.split = _split(out_channels)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, size, size))
        if bias:
            self.bias: nn.Parameter | None = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the weight and bias as ``Conv2d`` does."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.weight.shape[2] * self.weight.shape[3]
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    @classmethod
    def from_conv2d(cls, conv: nn.Conv2d, *, name: str = "the convolution") -> ACSConv:
        """Return an ACSConv sharing ``conv``'s weight and bias (not copies).

        Parameters
        ----------
        conv : torch.nn.Conv2d
            A convolution with ``groups=1``, zero padding and the same kernel
            size, stride, padding and dilation on both axes.
        name : str, default="the convolution"
            The convolution's name in its network, for messages.

        Returns
        -------
        acs : ACSConv
            Its parameters are ``conv``'s own, on their device and in their
            dtype; training mode is ``conv``'s.

        Raises
        ------
        ValueError
            If ``conv`` uses groups, a padding mode other than zeros, or
            different settings per axis; the message names it.
        """
        where = f"convolution {name!r}"
        if conv.groups != 1:
            raise ValueError(
                f"{where} has groups={conv.groups}; ACS convolutions support "
                "groups=1 only."
            )
        if conv.padding_mode != "zeros":
            raise ValueError(
                f"{where} has padding_mode={conv.padding_mode!r}; ACS convolutions "
                "support zero padding only."
            )
        padding = (
            conv.padding
            if isinstance(conv.padding, str)
            else _square(conv.padding, "padding", where)
        )
        with torch.device("meta"):  # no memory and no random draws: replaced below
            acs = cls(
                conv.in_channels,
                conv.out_channels,
                _square(conv.kernel_size, "kernel_size", where),
                stride=_square(conv.stride, "stride", where),
                padding=padding,
                dilation=_square(conv.dilation, "dilation", where),
                bias=conv.bias is not None,
            )
        # a module's registered parameters are Parameters (Module.__setattr__
        # enforces it); torch types Conv2d's as plain tensors
        acs.weight = cast(nn.Parameter, conv.weight)
        if conv.bias is not None:
            acs.bias = cast(nn.Parameter, conv.bias)
        acs.train(conv.training)
        return acs

    def _apply(self, fn: Any, recurse: bool = True) -> ACSConv:
        """Apply ``fn`` to the tensors, letting the 2-D weight take 3-D layouts.

        ``Module.to(memory_format=torch.channels_last_3d)``, which a 3-D
        network is given for speed, converts every 4- and 5-dim parameter and
        fails on a 4-dim one; the weight then takes the layout as a 5-dim view
        ``(out, in, 1, k, k)`` and keeps its shape.
        """

        def any_rank(tensor: torch.Tensor) -> torch.Tensor:
            if tensor.ndim != 4:
                return fn(tensor)
            try:
                return fn(tensor)
            except RuntimeError as error:
                if "rank 5" not in str(error):
                    raise
                return fn(tensor.unsqueeze(2)).squeeze(2)

        return super()._apply(any_rank, recurse)

    def _thin_margins(self, size: int) -> tuple[int, int]:
        """Return the (before, after) padding of the axis a kernel leaves out.

        A ``(k, k, k)`` kernel at output position ``o`` has its centre tap at
        input ``o * stride - padding + dilation * ((k - 1) // 2)``; padding (or,
        when negative, cropping) the left-out axis by ``before`` and ``after``
        makes a size-1 kernel read that voxel, with the same output length.
        """
        if isinstance(self.padding, str):  # "same": "valid" is kept as (0, 0)
            return 0, 0
        padding = self.padding[0]
        total = 2 * padding - self.dilation[0] * (size - 1)
        before = padding - self.dilation[0] * ((size - 1) // 2)
        return before, total - before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(n, in_channels, D, H, W)`` to ``(n, out_channels, D', H', W')``."""
        if x.ndim != 5:
            raise ValueError(
                "ACSConv takes volumes (n, channels, depth, height, width); got a "
                f"tensor of shape {tuple(x.shape)}."
            )
        size = self.kernel_size[0]
        step, spread = self.stride[0], self.dilation[0]
        if size == 1:  # the three orientations are the same 1x1x1 kernel
            padding: Any = (
                self.padding if isinstance(self.padding, str) else self.padding[0]
            )
            if step > 1 and padding == 0:
                # the same as stride ``step`` on every ``step``-th voxel; the
                # estimators avoid oneDNN's strided pointwise backward in
                # channels-last layouts (heap corruption with torch 2.13 in 2-D)
                x, step = x[:, :, ::step, ::step, ::step], 1
            return F.conv3d(
                x, self.weight[:, :, :, :, None], self.bias, step, padding, spread
            )
        before, after = self._thin_margins(size)
        outputs = []
        start = 0
        for (_, axis), channels in zip(ORIENTATIONS, self.split, strict=True):
            if channels == 0:
                continue
            stop = start + channels
            weight = self.weight[start:stop].unsqueeze(axis)
            bias = None if self.bias is None else self.bias[start:stop]
            start = stop
            volume = x
            dilation = [spread] * 3
            dilation[axis - 2] = 1
            if self.padding == "same":
                padding = "same"
            else:
                padding = [self.padding[0]] * 3
                if before == after >= 0:
                    padding[axis - 2] = before
                else:
                    padding[axis - 2] = 0
                    margins = [0] * 6  # F.pad: (W before, W after, H ..., D ...)
                    margins[2 * (4 - axis)] = before
                    margins[2 * (4 - axis) + 1] = after
                    volume = F.pad(x, margins)
            outputs.append(F.conv3d(volume, weight, bias, step, padding, dilation))
        return torch.cat(outputs, dim=1)

    def extra_repr(self) -> str:
        """Describe the convolution as ``Conv2d`` does, with the split."""
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text + f", split={self.split}"


def _batch_norm_3d(
    layer: nn.BatchNorm2d | nn.InstanceNorm2d, cls: type[nn.Module]
) -> nn.Module:
    with torch.device("meta"):
        new = cls(
            layer.num_features,
            eps=layer.eps,
            momentum=layer.momentum,
            affine=layer.affine,
            track_running_stats=layer.track_running_stats,
        )
    # the 2-D layer's own parameters and buffers: same keys, shapes and values
    for name, parameter in layer.named_parameters(recurse=False):
        setattr(new, name, parameter)
    for name, buffer in layer.named_buffers(recurse=False):
        setattr(new, name, buffer)
    new.train(layer.training)
    return new


def _pool_3d(
    layer: nn.MaxPool2d | nn.AvgPool2d | nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d,
    name: str,
) -> nn.Module:
    where = f"pool {name!r}"
    if isinstance(layer, nn.MaxPool2d):
        new: nn.Module = nn.MaxPool3d(
            _square(layer.kernel_size, "kernel_size", where),
            stride=_square(layer.stride, "stride", where),
            padding=_square(layer.padding, "padding", where),
            dilation=_square(layer.dilation, "dilation", where),
            return_indices=layer.return_indices,
            ceil_mode=layer.ceil_mode,
        )
    elif isinstance(layer, nn.AvgPool2d):
        new = nn.AvgPool3d(
            _square(layer.kernel_size, "kernel_size", where),
            stride=_square(layer.stride, "stride", where),
            padding=_square(layer.padding, "padding", where),
            ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
            divisor_override=layer.divisor_override,
        )
    else:
        output_size = layer.output_size
        if not isinstance(output_size, int) and output_size is not None:
            sizes = tuple(output_size)
            if len(set(sizes)) != 1:
                raise ValueError(
                    f"{where} has output_size={output_size!r}; ACS conversion "
                    "needs the same size on both axes (the 3-D pool takes it on "
                    "all three)."
                )
            output_size = sizes[0]
        if isinstance(layer, nn.AdaptiveMaxPool2d):
            new = nn.AdaptiveMaxPool3d(output_size, return_indices=layer.return_indices)
        else:
            new = nn.AdaptiveAvgPool3d(output_size)
    new.train(layer.training)
    return new


def _dropout_3d(layer: nn.Dropout2d, name: str) -> nn.Module:
    new = nn.Dropout3d(layer.p, inplace=layer.inplace)
    new.train(layer.training)
    return new


_CONVERTERS: dict[type[nn.Module], Any] = {
    nn.Conv2d: lambda layer, name: ACSConv.from_conv2d(layer, name=name),
    nn.BatchNorm2d: lambda layer, name: _batch_norm_3d(layer, nn.BatchNorm3d),
    nn.InstanceNorm2d: lambda layer, name: _batch_norm_3d(layer, nn.InstanceNorm3d),
    nn.MaxPool2d: _pool_3d,
    nn.AvgPool2d: _pool_3d,
    nn.AdaptiveAvgPool2d: _pool_3d,
    nn.AdaptiveMaxPool2d: _pool_3d,
    nn.Dropout2d: _dropout_3d,
}


def _unconvertible(module: nn.Module) -> Iterator[str]:
    """Name the submodules that are 2-D but that acs_convert cannot convert."""
    bases = tuple(_CONVERTERS)
    for name, layer in module.named_modules():
        kind = type(layer)
        if kind in _CONVERTERS:
            continue
        if isinstance(layer, bases) or kind.__name__.lower().endswith("2d"):
            yield f"{name or 'the module'} ({kind.__name__})"


def _convert(module: nn.Module, name: str) -> nn.Module:
    converter = _CONVERTERS.get(type(module))
    if converter is not None:
        return converter(module, name)
    for child_name, child in list(module.named_children()):
        path = f"{name}.{child_name}" if name else child_name
        new = _convert(child, path)
        if new is not child:
            setattr(module, child_name, new)
    return module


def acs_convert(module: nn.Module) -> nn.Module:
    """Turn a 2-D network into a 3-D one with ACS convolutions, in place.

    Each ``Conv2d`` becomes an :class:`ACSConv` holding the same weight and
    bias; ``BatchNorm2d`` and ``InstanceNorm2d`` become their 3-D forms with
    the same parameters and running statistics; ``MaxPool2d``, ``AvgPool2d``,
    the adaptive pools and ``Dropout2d`` become their 3-D forms with the same
    settings on every axis. Every ``state_dict`` key and shape stays as it
    was, so weights of the 2-D network (ImageNet checkpoints, say) load into
    the converted one, and its output layer is unchanged.

    Parameters
    ----------
    module : torch.nn.Module
        A 2-D network mapping ``(n, C, H, W)`` to outputs. Its ``forward``
        must not assume 2-D inputs beyond its layers (``torch.flatten`` after
        a global pool is fine; ``F.max_pool2d`` calls are not).

    Returns
    -------
    module : torch.nn.Module
        The same module with its layers replaced, which maps ``(n, C, D, H,
        W)`` volumes to the same outputs; a new module if ``module`` itself is
        one of the converted layers.

    Raises
    ------
    TypeError
        If ``module`` is not a ``torch.nn.Module``.
    ValueError
        If it holds 2-D layers that cannot be converted (transposed
        convolutions, 2-D padding layers, subclasses of the converted layers,
        grouped convolutions, different settings per axis); the message names
        them, and the module is left unchanged.

    See Also
    --------
    ACSConv : The convolution the 2-D kernels become.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6),
    ...                     nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    ...                     nn.Linear(6, 2))
    >>> keys = {k: v.shape for k, v in net.state_dict().items()}
    >>> net = acs_convert(net)
    >>> [type(layer).__name__ for layer in net[:4]]
    ['ACSConv', 'BatchNorm3d', 'ReLU', 'AdaptiveAvgPool3d']
    >>> keys == {k: v.shape for k, v in net.state_dict().items()}
    True
    >>> net(torch.zeros(2, 1, 8, 8, 8)).shape
    torch.Size([2, 2])
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module; got {type(module).__name__}."
        )
    refused = list(_unconvertible(module))
    if refused:
        raise ValueError(
            "acs_convert cannot convert these 2-D layers to 3-D: "
            f"{', '.join(refused)}. Replace them with layers it converts (Conv2d, "
            "BatchNorm2d, InstanceNorm2d, MaxPool2d, AvgPool2d, the adaptive "
            "pools, Dropout2d) or with dimension-free ones."
        )
    # check every layer's settings before changing any, so nothing is half-converted
    for name, layer in module.named_modules():
        if type(layer) is nn.Conv2d:
            ACSConv.from_conv2d(layer, name=name or "the module")
        elif type(layer) in _CONVERTERS and type(layer) is not nn.Dropout2d:
            if "Pool" in type(layer).__name__:
                _pool_3d(layer, name or "the module")
    return _convert(module, "")
