"""A tiny CNN for sk_medcnn, and the template of an architecture plugin.

sk_medcnn finds :func:`build_tinynet` through the entry point declared in this
package's ``pyproject.toml``::

    [project.entry-points."sk_medcnn.architectures"]
    tinynet = "sk_medcnn_tinynet:build_tinynet"

so that ``MedicalCNNClassifier("tinynet")`` works once the package is installed.
The module does not import sk_medcnn: a factory only has to build a
``torch.nn.Module``.

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
    """

    def __init__(
        self,
        in_channels: int,
        n_outputs: int,
        *,
        width: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * width, n_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch ``(n, in_channels, height, width)`` to ``(n, n_outputs)``."""
        return self.classifier(self.pool(self.features(x)))


def build_tinynet(
    in_channels: int,
    n_outputs: int,
    image_shape: tuple[int, int],
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
        ``(height, width)`` of the input images; unused, since the network pools
        globally, but every factory receives it.
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
        If ``width`` is below 1 or ``dropout`` is outside [0, 1).
    """
    if width < 1:
        raise ValueError(f"width must be >= 1; got {width}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1); got {dropout}.")
    return TinyNet(in_channels, n_outputs, width=width, dropout=dropout)


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
