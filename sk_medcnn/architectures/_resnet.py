"""ResNet-18 and ResNet-34 for images and volumes, and their ACS forms.

A small-image stem serves MedMNIST-sized inputs (28 pixels or voxels a side).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..registry import register_architecture, register_weight_loader
from ._acs import acs_convert
from ._layers import layers_for, spatial_dims_of

__all__ = [
    "ResNet",
    "build_acs_resnet18",
    "build_acs_resnet34",
    "build_resnet18",
    "build_resnet34",
]

_STEMS = ("small", "imagenet")
_AUTO_STEM_MIN_SIDE = 64  # images with a smaller side below this get the small stem


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch normalisation and an identity shortcut.

    The building block of ResNet-18 and ResNet-34: ``relu(bn2(conv2(relu(bn1(
    conv1(x))))) + shortcut(x))``. When the block changes the resolution or
    the number of channels, the shortcut is a strided 1x1 convolution followed
    by batch normalisation (projection shortcut, option B of He et al.).

    Parameters
    ----------
    in_channels : int
        Channels of the block's input.
    out_channels : int
        Channels of the block's output.
    stride : int, default=1
        Stride of the first convolution and of the projection shortcut; 2
        halves the height and width (and depth).
    spatial_dims : {2, 3}, default=2
        2 for images (``Conv2d``, 3x3 kernels), 3 for volumes (``Conv3d``,
        3x3x3 kernels).

    Attributes
    ----------
    conv1, conv2 : torch.nn.Conv2d or torch.nn.Conv3d
        The 3x3 (3x3x3) convolutions, without bias.
    bn1, bn2 : torch.nn.BatchNorm2d or torch.nn.BatchNorm3d
        Batch normalisation after each convolution.
    relu : torch.nn.ReLU
        The activation.
    downsample : torch.nn.Sequential or None
        The projection shortcut (1x1 convolution and batch normalisation), or
        ``None`` for the identity.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        conv, batch_norm, _ = layers_for(spatial_dims)
        self.conv1 = conv(
            in_channels, out_channels, 3, stride=stride, padding=1, bias=False
        )
        self.bn1 = batch_norm(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = batch_norm(out_channels)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                conv(in_channels, out_channels, 1, stride=stride, bias=False),
                batch_norm(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(n, in_channels, *spatial)`` to ``(n, out_channels, *spatial')``."""
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    """A residual network of :class:`BasicBlock` stages (ResNet-18/34 family).

    A stem, four stages of residual blocks with ``width``, 2x, 4x and 8x
    channels (each stage after the first halves the resolution), global
    average pooling, dropout and a linear output layer returning raw scores.
    Global average pooling makes the network accept any image of at least
    1x1 pixel, whatever size it was built for. With ``spatial_dims=3`` every
    layer is its 3-D form (3x3x3 convolutions, a 7x7x7 or 3x3x3 stem), for
    volumes ``(n, C, depth, height, width)``.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (1 for grayscale, 3 for RGB).
    n_outputs : int
        Size of the output layer.
    layers : sequence of int
        Number of blocks in each of the four stages: ``(2, 2, 2, 2)`` for
        ResNet-18, ``(3, 4, 6, 3)`` for ResNet-34.
    stem : {"imagenet", "small"}, default="imagenet"
        ``"imagenet"`` is a 7x7 convolution with stride 2 followed by a 3x3
        max-pool with stride 2 (the input shrinks 4x before the first stage).
        ``"small"`` is a 3x3 convolution with stride 1 and no max-pool, as the
        CIFAR and MedMNIST ResNets use for images of about 32 pixels.
    width : int, default=64
        Channels of the stem and the first stage.
    dropout : float, default=0.0
        Dropout probability before the output layer.
    zero_init_residual : bool, default=True
        Start the last batch normalisation of each block with a zero scale, so
        that each residual branch starts as zero and each block as the identity
        (Goyal et al., 2017).
    spatial_dims : {2, 3}, default=2
        2 for images, 3 for volumes (every layer in its 3-D form).

    Attributes
    ----------
    stem : str
        The stem used, ``"imagenet"`` or ``"small"``.
    spatial_dims : int
        2 for images, 3 for volumes (also after :func:`acs_convert`, which
        sets it to 3).
    conv1 : torch.nn.Conv2d, torch.nn.Conv3d or ACSConv
        The stem's convolution.
    bn1 : torch.nn.BatchNorm2d or torch.nn.BatchNorm3d
        The stem's batch normalisation.
    relu : torch.nn.ReLU
        The stem's activation.
    maxpool : torch.nn.MaxPool2d, torch.nn.MaxPool3d or torch.nn.Identity
        The stem's max-pool; ``Identity`` for the small stem.
    layer1, layer2, layer3, layer4 : torch.nn.Sequential
        The four stages of :class:`BasicBlock`; the last convolution of
        ``layer4`` is the usual Grad-CAM target layer.
    avgpool : torch.nn.AdaptiveAvgPool2d or torch.nn.AdaptiveAvgPool3d
        Global average pooling.
    dropout : torch.nn.Dropout
        Dropout before the output layer.
    fc : torch.nn.Linear
        The output layer.

    See Also
    --------
    build_resnet18 : ResNet-18, choosing the stem from the image size.
    build_resnet34 : ResNet-34, choosing the stem from the image size.
    build_acs_resnet18 : ResNet-18 with ACS convolutions, for volumes.

    Notes
    -----
    The architecture is that of He et al. [1]_: basic blocks with projection
    shortcuts where the shape changes, batch normalisation after every
    convolution and Kaiming-normal initialisation (``fan_out`` mode) of the
    convolutions. The small stem follows the CIFAR-10 networks of the same
    paper and the MedMNIST benchmarks [2]_, which keep the full resolution of
    28x28 images into the first stage. Module names follow torchvision's
    ``ResNet``, so with the ImageNet stem, ``width=64`` and ``in_channels=3``
    the state dict has torchvision's keys and shapes.

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren and J. Sun, "Deep Residual Learning for Image
       Recognition", CVPR 2016, pp. 770-778.
    .. [2] J. Yang et al., "MedMNIST v2 - A large-scale lightweight benchmark for
       2D and 3D biomedical image classification", Scientific Data 10, 41 (2023).

    Examples
    --------
    >>> import torch
    >>> net = ResNet(1, 3, (1, 1, 1, 1), stem="small", width=8)
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 3])
    >>> net = ResNet(1, 3, (1, 1, 1, 1), stem="small", width=4, spatial_dims=3)
    >>> net(torch.zeros(2, 1, 16, 16, 16)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        in_channels: int,
        n_outputs: int,
        layers: Sequence[int],
        *,
        stem: str = "imagenet",
        width: int = 64,
        dropout: float = 0.0,
        zero_init_residual: bool = True,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
            raise ValueError(f"spatial_dims must be 2 or 3; got {spatial_dims!r}.")
        if stem not in _STEMS:
            raise ValueError(f"stem must be 'imagenet' or 'small'; got {stem!r}.")
        if len(layers) != 4 or any(n_blocks < 1 for n_blocks in layers):
            raise ValueError(
                f"layers must hold four block counts >= 1; got {tuple(layers)}."
            )
        if width < 1:
            raise ValueError(f"width must be >= 1; got {width}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}.")
        self.stem = stem
        self.spatial_dims = spatial_dims
        conv, batch_norm, max_pool = layers_for(spatial_dims)
        if stem == "imagenet":
            self.conv1 = conv(in_channels, width, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = conv(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = batch_norm(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = (
            max_pool(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        )
        stages = []
        channels = width
        for index, n_blocks in enumerate(layers):
            out_channels = width * 2**index
            stride = 1 if index == 0 else 2
            blocks = [
                BasicBlock(
                    channels, out_channels, stride=stride, spatial_dims=spatial_dims
                )
            ]
            blocks += [
                BasicBlock(out_channels, out_channels, spatial_dims=spatial_dims)
                for _ in range(n_blocks - 1)
            ]
            stages.append(nn.Sequential(*blocks))
            channels = out_channels
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool: nn.Module = (
            nn.AdaptiveAvgPool2d(1) if spatial_dims == 2 else nn.AdaptiveAvgPool3d(1)
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, n_outputs)
        self._init_weights(zero_init_residual=zero_init_residual)

    def _init_weights(self, *, zero_init_residual: bool) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu"
                )
            elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, BasicBlock):
                    nn.init.zeros_(module.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(n, in_channels, *image_shape)`` to ``(n, n_outputs)`` raw scores."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))

    def extra_repr(self) -> str:
        """Show the stem (and the dimensions of a 3-D network) in the ``repr``."""
        text = f"stem={self.stem!r}"
        return text if self.spatial_dims == 2 else f"{text}, spatial_dims=3"


def _create_resnet(
    layers: tuple[int, int, int, int],
    in_channels: int,
    n_outputs: int,
    image_shape: tuple[int, ...],
    *,
    stem: str,
    width: int,
    dropout: float,
    zero_init_residual: bool,
    name: str,
    acs: bool = False,
) -> ResNet:
    if stem not in ("auto", *_STEMS):
        raise ValueError(f"stem must be 'auto', 'small' or 'imagenet'; got {stem!r}.")
    spatial_dims = spatial_dims_of(image_shape, name, supported=(3,) if acs else (2, 3))
    if stem == "auto":
        small = min(image_shape) < _AUTO_STEM_MIN_SIDE
        stem = "small" if small else "imagenet"
    net = ResNet(
        in_channels,
        n_outputs,
        layers,
        stem=stem,
        width=width,
        dropout=dropout,
        zero_init_residual=zero_init_residual,
        spatial_dims=2 if acs else spatial_dims,
    )
    if acs:
        acs_convert(net)  # in place: only a converted layer itself is replaced
        net.spatial_dims = 3
    return net


@register_architecture("resnet18", spatial_dims=(2, 3))
def build_resnet18(
    in_channels: int,
    n_outputs: int,
    image_shape: tuple[int, ...],
    *,
    stem: str = "auto",
    width: int = 64,
    dropout: float = 0.0,
    zero_init_residual: bool = True,
) -> nn.Module:
    """Build ResNet-18 (see :class:`ResNet`), two blocks per stage.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    n_outputs : int
        Size of the output layer.
    image_shape : tuple of int
        ``(height, width)`` of the input images, or ``(depth, height, width)``
        of volumes for a 3-D network (``Conv3d`` throughout); used to choose
        the stem and the dimensions.
    stem : {"auto", "small", "imagenet"}, default="auto"
        ``"auto"`` picks the small stem (3x3 convolution, stride 1, no
        max-pool) when the smallest side of ``image_shape`` is under 64 pixels
        and the ImageNet stem (7x7 convolution, stride 2, max-pool) otherwise;
        the same rule and kernels in 3-D (3x3x3 at 28 voxels a side,
        7x7x7 and a 3x3x3 max-pool from 64).
    width, dropout, zero_init_residual
        See :class:`ResNet`.

    Returns
    -------
    module : ResNet

    Raises
    ------
    ValueError
        If ``stem`` is not one of the accepted values.

    See Also
    --------
    build_resnet34 : The deeper ResNet-34.

    Notes
    -----
    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016. With
    the ImageNet stem, 3 input channels and 1000 outputs it has 11,689,512
    parameters, as torchvision's ``resnet18``.

    Examples
    --------
    >>> import torch
    >>> net = build_resnet18(1, 2, (28, 28), width=16)
    >>> net.stem
    'small'
    >>> net(torch.zeros(4, 1, 28, 28)).shape
    torch.Size([4, 2])
    >>> net = build_resnet18(1, 2, (28, 28, 28), width=4)
    >>> type(net.conv1).__name__, net.stem
    ('Conv3d', 'small')
    >>> net(torch.zeros(2, 1, 28, 28, 28)).shape
    torch.Size([2, 2])
    """
    return _create_resnet(
        (2, 2, 2, 2),
        in_channels,
        n_outputs,
        image_shape,
        stem=stem,
        width=width,
        dropout=dropout,
        zero_init_residual=zero_init_residual,
        name="resnet18",
    )


@register_architecture("resnet34", spatial_dims=(2, 3))
def build_resnet34(
    in_channels: int,
    n_outputs: int,
    image_shape: tuple[int, ...],
    *,
    stem: str = "auto",
    width: int = 64,
    dropout: float = 0.0,
    zero_init_residual: bool = True,
) -> nn.Module:
    """Build ResNet-34 (see :class:`ResNet`), with 3, 4, 6 and 3 blocks per stage.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    n_outputs : int
        Size of the output layer.
    image_shape : tuple of int
        ``(height, width)`` of the input images, or ``(depth, height, width)``
        of volumes for a 3-D network (``Conv3d`` throughout); used to choose
        the stem and the dimensions.
    stem : {"auto", "small", "imagenet"}, default="auto"
        ``"auto"`` picks the small stem (3x3 convolution, stride 1, no
        max-pool) when the smallest side of ``image_shape`` is under 64 pixels
        and the ImageNet stem (7x7 convolution, stride 2, max-pool) otherwise;
        the same rule and kernels in 3-D (3x3x3 at 28 voxels a side,
        7x7x7 and a 3x3x3 max-pool from 64).
    width, dropout, zero_init_residual
        See :class:`ResNet`.

    Returns
    -------
    module : ResNet

    Raises
    ------
    ValueError
        If ``stem`` is not one of the accepted values.

    See Also
    --------
    build_resnet18 : The shallower ResNet-18.

    Notes
    -----
    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016. With
    the ImageNet stem, 3 input channels and 1000 outputs it has 21,797,672
    parameters, as torchvision's ``resnet34``.

    Examples
    --------
    >>> import torch
    >>> net = build_resnet34(3, 5, (224, 224), width=8)
    >>> net.stem
    'imagenet'
    >>> net(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 5])
    """
    return _create_resnet(
        (3, 4, 6, 3),
        in_channels,
        n_outputs,
        image_shape,
        stem=stem,
        width=width,
        dropout=dropout,
        zero_init_residual=zero_init_residual,
        name="resnet34",
    )


@register_architecture("acs_resnet18", spatial_dims=(3,))
def build_acs_resnet18(
    in_channels: int,
    n_outputs: int,
    image_shape: tuple[int, int, int],
    *,
    stem: str = "auto",
    width: int = 64,
    dropout: float = 0.0,
    zero_init_residual: bool = True,
) -> nn.Module:
    """Build ResNet-18 with ACS convolutions, for volumes.

    Parameters
    ----------
    in_channels : int
        Channels of the input volumes.
    n_outputs : int
        Size of the output layer.
    image_shape : tuple of int
        ``(depth, height, width)`` of the input volumes; used to choose the
        stem.
    stem : {"auto", "small", "imagenet"}, default="auto"
        As for :func:`build_resnet18`: ``"auto"`` picks the small stem when
        the smallest side is under 64 voxels. The stem's 2-D kernel (3x3 or
        7x7) becomes an ACS convolution, its max-pool a 3x3x3 max-pool.
    width, dropout, zero_init_residual
        See :class:`ResNet`.

    Returns
    -------
    module : ResNet
        With :class:`~sk_medcnn.architectures.ACSConv` layers and
        ``spatial_dims == 3``.

    Raises
    ------
    ValueError
        If ``image_shape`` is not ``(depth, height, width)``, or ``stem`` is
        not one of the accepted values.

    See Also
    --------
    build_resnet18 : The 2-D and the plain 3-D ResNet-18.
    build_acs_resnet34 : The deeper ACS ResNet-34.

    Notes
    -----
    The network is the 2-D :class:`ResNet` passed through
    :func:`~sk_medcnn.architectures.acs_convert`: each 2-D kernel acts on
    axial, coronal or sagittal planes (one third of each layer's output
    channels each), at the cost of a 2-D convolution per voxel rather than a
    3-D one. Its ``state_dict`` has the 2-D ResNet's keys and shapes, so
    torchvision's and timm's ImageNet checkpoints load through
    ``pretrained=``, as for ``resnet18``. Yang et al., "Reinventing 2D
    Convolutions for 3D Images", IEEE JBHI 25(8), 2021; ResNet-18 with ACS
    convolutions is the best MedMNIST v2 baseline on VesselMNIST3D (test AUC
    0.930).

    Examples
    --------
    >>> import torch
    >>> net = build_acs_resnet18(1, 2, (28, 28, 28), width=8)
    >>> type(net.conv1).__name__, tuple(net.conv1.weight.shape)
    ('ACSConv', (8, 1, 3, 3))
    >>> net(torch.zeros(2, 1, 28, 28, 28)).shape
    torch.Size([2, 2])
    """
    return _create_resnet(
        (2, 2, 2, 2),
        in_channels,
        n_outputs,
        image_shape,
        stem=stem,
        width=width,
        dropout=dropout,
        zero_init_residual=zero_init_residual,
        name="acs_resnet18",
        acs=True,
    )


@register_architecture("acs_resnet34", spatial_dims=(3,))
def build_acs_resnet34(
    in_channels: int,
    n_outputs: int,
    image_shape: tuple[int, int, int],
    *,
    stem: str = "auto",
    width: int = 64,
    dropout: float = 0.0,
    zero_init_residual: bool = True,
) -> nn.Module:
    """Build ResNet-34 with ACS convolutions, for volumes.

    Parameters
    ----------
    in_channels : int
        Channels of the input volumes.
    n_outputs : int
        Size of the output layer.
    image_shape : tuple of int
        ``(depth, height, width)`` of the input volumes; used to choose the
        stem.
    stem : {"auto", "small", "imagenet"}, default="auto"
        As for :func:`build_acs_resnet18`.
    width, dropout, zero_init_residual
        See :class:`ResNet`.

    Returns
    -------
    module : ResNet
        With :class:`~sk_medcnn.architectures.ACSConv` layers and
        ``spatial_dims == 3``.

    Raises
    ------
    ValueError
        If ``image_shape`` is not ``(depth, height, width)``, or ``stem`` is
        not one of the accepted values.

    See Also
    --------
    build_acs_resnet18 : The shallower ACS ResNet-18.

    Notes
    -----
    The network is the 2-D :class:`ResNet` passed through
    :func:`~sk_medcnn.architectures.acs_convert`: each 2-D kernel acts on
    axial, coronal or sagittal planes (one third of each layer's output
    channels each), at the cost of a 2-D convolution per voxel rather than a
    3-D one. Its ``state_dict`` has the 2-D ResNet's keys and shapes, so
    torchvision's and timm's ImageNet checkpoints load through
    ``pretrained=``, as for ``resnet18``. Yang et al., "Reinventing 2D
    Convolutions for 3D Images", IEEE JBHI 25(8), 2021; ResNet-18 with ACS
    convolutions is the best MedMNIST v2 baseline on VesselMNIST3D (test AUC
    0.930).

    Examples
    --------
    >>> import torch
    >>> net = build_acs_resnet34(1, 2, (64, 64, 64), width=4)
    >>> net.stem
    'imagenet'
    >>> net(torch.zeros(1, 1, 64, 64, 64)).shape
    torch.Size([1, 2])
    """
    return _create_resnet(
        (3, 4, 6, 3),
        in_channels,
        n_outputs,
        image_shape,
        stem=stem,
        width=width,
        dropout=dropout,
        zero_init_residual=zero_init_residual,
        name="acs_resnet34",
        acs=True,
    )


def _resnet_checkpoint_params(state_dict: dict[str, torch.Tensor]) -> dict[str, object]:
    """Return the stem and width of a ResNet checkpoint, from its first conv."""
    weight = state_dict.get("conv1.weight")  # 2-D and ACS: 4 dims; 3-D: 5
    if weight is None or weight.ndim not in (4, 5):
        return {}
    stem = {7: "imagenet", 3: "small"}.get(int(weight.shape[-1]))
    params: dict[str, object] = {"width": int(weight.shape[0])}
    if stem is not None:
        params["stem"] = stem
    return params


def map_resnet_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a torchvision or timm ResNet-18/34 state dict onto :class:`ResNet`.

    Our module names follow torchvision's ``ResNet`` (``conv1``, ``bn1``,
    ``layer1.0.conv1``, ``layer1.0.downsample.0``, ..., ``fc``), and timm's
    ``resnet18``/``resnet34`` use the same names, so the keys carry over
    unchanged; the parameter-free modules that differ (timm's ``act1``,
    ``global_pool``; our ``dropout``) hold no weights. Checkpoints of other
    layouts (timm's deep-stem ``resnet18d``: ``conv1.0``, ...) are refused by
    the loader with the keys that do not match.

    Parameters
    ----------
    state_dict : dict of str to torch.Tensor

    Returns
    -------
    state_dict : dict of str to torch.Tensor
    """
    return dict(state_dict)


# The ACS ResNets have the 2-D ResNets' keys and shapes: the same loader serves them.
for _name in ("resnet18", "resnet34", "acs_resnet18", "acs_resnet34"):
    register_weight_loader(
        _name,
        head=("fc",),
        input_convolution="conv1.weight",
        normalization="imagenet",
        architecture_params=_resnet_checkpoint_params,
    )(map_resnet_keys)
