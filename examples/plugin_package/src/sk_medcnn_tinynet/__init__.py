"""A tiny CNN for sk_medcnn, and the template of an architecture plugin.

sk_medcnn finds :func:`build_tinynet` through the entry point declared in this
package's ``pyproject.toml``::

    [project.entry-points."sk_medcnn.architectures"]
    tinynet = "sk_medcnn_tinynet:build_tinynet"

so that ``MedicalCNNClassifier("tinynet")`` works once the package is installed.
The module does not import sk_medcnn: a factory only has to build a
``torch.nn.Module``.

The factory declares the spatial dimensions it builds networks for with an
attribute, ``build_tinynet.spatial_dims = (2, 3)``: 2-D images ``(n, C, H, W)``
and 3-D volumes ``(n, C, D, H, W)``. Without it, sk_medcnn takes a factory to be
2-D only and refuses volumes for it with a message naming the architectures
that take them.

A second entry point declares how pretrained checkpoints map onto the network
(for ``pretrained=`` and ``ImageEmbedder``), as the dict :data:`WEIGHTS`::

    [project.entry-points."sk_medcnn.weight_loaders"]
    tinynet = "sk_medcnn_tinynet:WEIGHTS"
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["WEIGHTS", "TinyNet", "build_tinynet", "map_checkpoint_keys"]
__version__ = "0.1.0"


class TinyNet(nn.Module):
    """Two convolution blocks, global average pooling and a linear output layer.

    Global average pooling makes the network independent of the image size.
    With ``spatial_dims=3`` the layers are their 3-D forms, for volumes.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (1 for grayscale, 3 for RGB).
    n_outputs : int
        Size of the output layer (the number of classes for a classifier).
    width : int, default=8
        Filters of the first block; the second has twice as many.
    dropout : float, default=0.0
        Dropout probability before the output layer.
    spatial_dims : {2, 3}, default=2
        2 for images, 3 for volumes.
    """

    def __init__(
        self,
        in_channels: int,
        n_outputs: int,
        *,
        width: int = 8,
        dropout: float = 0.0,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        conv, batch_norm, max_pool, pool = {
            2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d),
            3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d),
        }[spatial_dims]
        self.features = nn.Sequential(
            conv(in_channels, width, 3, padding=1, bias=False),
            batch_norm(width),
            nn.ReLU(inplace=True),
            max_pool(2, ceil_mode=True),
            conv(width, 2 * width, 3, padding=1, bias=False),
            batch_norm(2 * width),
            nn.ReLU(inplace=True),
        )
        self.pool = pool(1)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * width, n_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch ``(n, in_channels, *image_shape)`` to ``(n, n_outputs)``."""
        return self.classifier(self.pool(self.features(x)))


def build_tinynet(
    in_channels: int,
    n_outputs: int,
    image_shape: tuple[int, ...],
    *,
    width: int = 8,
    dropout: float = 0.0,
) -> nn.Module:
    """Build an untrained :class:`TinyNet`: the factory sk_medcnn calls.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    n_outputs : int
        Size of the output layer.
    image_shape : tuple of int
        ``(height, width)`` of images or ``(depth, height, width)`` of volumes:
        its length chooses a 2-D or a 3-D network (the sizes are unused, since
        the network pools globally).
    width : int, default=8
        Filters of the first block (``architecture_params={"width": ...}``).
    dropout : float, default=0.0
        Dropout probability before the output layer, in [0, 1).

    Returns
    -------
    module : TinyNet

    Raises
    ------
    ValueError
        If ``image_shape`` has neither 2 nor 3 sizes, ``width`` is below 1 or
        ``dropout`` is outside [0, 1).
    """
    if len(image_shape) not in (2, 3):
        raise ValueError(
            "image_shape must be (height, width) or (depth, height, width); got "
            f"{tuple(image_shape)}."
        )
    if width < 1:
        raise ValueError(f"width must be >= 1; got {width}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1); got {dropout}.")
    return TinyNet(
        in_channels,
        n_outputs,
        width=width,
        dropout=dropout,
        spatial_dims=len(image_shape),
    )


#: The spatial dimensions the factory builds networks for, read by sk_medcnn
#: (``sk_medcnn.architecture_spatial_dims("tinynet")``); absent means ``(2,)``.
build_tinynet.spatial_dims = (2, 3)  # type: ignore[attr-defined]


def map_checkpoint_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a checkpoint's keys into :class:`TinyNet`'s ``state_dict`` layout.

    An example of the mapping a weight loader may declare: here, checkpoints
    saved from a model that held the network as ``self.backbone`` carry a
    ``backbone.`` prefix, which is removed. Tensors may be reshaped here too.

    Parameters
    ----------
    state_dict : dict of str to torch.Tensor
        The checkpoint, as read from the file.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        The same tensors under :class:`TinyNet`'s names.
    """
    return {key.removeprefix("backbone."): value for key, value in state_dict.items()}


#: How checkpoints load into TinyNet (the ``sk_medcnn.weight_loaders`` entry point):
#: ``head`` names the output layer (replaced for a new number of outputs; its input
#: is what ``ImageEmbedder`` returns; ``freeze_epochs`` and ``body_lr_factor``
#: treat everything else as the body), ``input_convolution`` the first
#: convolution's weight (adapted to the images' channels), ``map_keys`` the key
#: mapping, and ``normalization`` what checkpoint files expect ("imagenet", or None
#: for the training images' own statistics).
WEIGHTS = {
    "head": ["classifier.2"],
    "input_convolution": "features.0.weight",
    "map_keys": map_checkpoint_keys,
    "normalization": None,
}
