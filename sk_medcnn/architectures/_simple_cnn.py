"""The reference CNN of the project's design document, for images and volumes."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import register_architecture, register_weight_loader
from ._layers import GlobalPool, layers_for, spatial_dims_of

__all__ = ["SimpleCNN", "build_simple_cnn"]


class SimpleCNN(nn.Module):
    """Three conv-ReLU-max-pool blocks, a dense layer and a linear output layer.

    The PyTorch form of the Keras ``Sequential`` model the project grew from
    (``Conv2D(32) -> MaxPool -> Conv2D(64) -> MaxPool -> Conv2D(128) -> MaxPool
    -> Flatten -> Dense(128) -> Dense(n_outputs)``); the output layer returns
    raw scores, the loss applies the softmax or sigmoid. Given a volume's
    ``(depth, height, width)`` it is the same design in 3-D: 3x3x3
    convolutions, 2x2x2 max-pools and 3-D batch normalisation, every parameter
    meaning the same.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (1 for grayscale, 3 for RGB).
    n_outputs : int
        Size of the output layer.
    image_shape : tuple of int
        ``(height, width)`` of the input images, or ``(depth, height, width)``
        of volumes; fixes the dense layer's size and whether the network is
        2-D or 3-D.
    width : int, default=32
        Filters of the first block; the second and third have 2x and 4x.
    hidden_units : int, default=128
        Units of the dense layer.
    dropout : float, default=0.0
        Dropout probability before the output layer.
    padding : {"same", "valid"}, default="same"
        ``"same"`` keeps the size through each 3x3 convolution and pools with
        ``ceil_mode``, so any image of at least 1x1 pixel works. ``"valid"`` is
        the Keras model exactly and needs images of at least 22x22 pixels
        (volumes of at least 22x22x22 voxels).
    batch_norm : bool, default=False
        Add batch normalisation after each convolution.
    global_pool : {None, "max", "avg"}, default=None
        What feeds the dense layer. None flattens the last block's feature
        maps, as the Keras model does: the dense layer then has a weight for
        every position, and its size depends on ``image_shape``. ``"max"`` or
        ``"avg"`` first pools each of the ``4 * width`` channels over all
        positions (:class:`GlobalPool`), so the head sees what the features
        found, not where, with far fewer weights. The estimators use
        ``"max"`` for volumes by default (``MedicalCNNClassifier``'s
        ``architecture_params``).

    Attributes
    ----------
    spatial_dims : int
        2 for images, 3 for volumes.
    features : torch.nn.Sequential
        The convolutional blocks (``Conv2d`` or ``Conv3d``); the last
        convolution is Grad-CAM's default layer.
    classifier : torch.nn.Sequential
        Flatten (or :class:`GlobalPool`), dense layer, ReLU, dropout and
        output layer.

    Examples
    --------
    >>> import torch
    >>> net = SimpleCNN(1, 2, (16, 28, 28), width=4)
    >>> net.spatial_dims, type(net.features[0]).__name__
    (3, 'Conv3d')
    >>> net(torch.zeros(2, 1, 16, 28, 28)).shape
    torch.Size([2, 2])
    """

    def __init__(
        self,
        in_channels: int,
        n_outputs: int,
        image_shape: tuple[int, ...],
        *,
        width: int = 32,
        hidden_units: int = 128,
        dropout: float = 0.0,
        padding: str = "same",
        batch_norm: bool = False,
        global_pool: str | None = None,
    ) -> None:
        super().__init__()
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid'; got {padding!r}.")
        if global_pool not in (None, "max", "avg"):
            raise ValueError(
                f"global_pool must be None, 'max' or 'avg'; got {global_pool!r}."
            )
        if width < 1 or hidden_units < 1:
            raise ValueError(
                f"width and hidden_units must be >= 1; got {width} and {hidden_units}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}.")
        self.spatial_dims = spatial_dims_of(image_shape, "simple_cnn")
        conv, batch_norm_layer, max_pool = layers_for(self.spatial_dims)
        layers: list[nn.Module] = []
        channels = in_channels
        sizes = [int(size) for size in image_shape]
        for multiplier in (1, 2, 4):
            out = width * multiplier
            layers.append(
                conv(
                    channels,
                    out,
                    3,
                    padding=1 if padding == "same" else 0,
                    bias=not batch_norm,
                )
            )
            if batch_norm:
                layers.append(batch_norm_layer(out))
            layers += [
                nn.ReLU(inplace=True),
                max_pool(2, ceil_mode=padding == "same"),
            ]
            channels = out
            if padding == "same":
                sizes = [-(-size // 2) for size in sizes]
            else:
                sizes = [(size - 2) // 2 for size in sizes]
            if min(sizes) < 1:
                # "same" keeps every size >= 1 from 1 on; "valid" needs
                # (h - 2) // 2 >= 1 after the third block: 4, 10, then 22 pixels
                minimum = 1 if padding == "same" else 22
                what = "images" if self.spatial_dims == 2 else "volumes"
                unit = "pixels" if self.spatial_dims == 2 else "voxels"
                raise ValueError(
                    f"image_shape {tuple(image_shape)} is too small for simple_cnn "
                    f"with padding={padding!r}; it needs {what} of at least "
                    f"{'x'.join([str(minimum)] * self.spatial_dims)} {unit}."
                )
        self.features = nn.Sequential(*layers)
        if global_pool is None:
            head: nn.Module = nn.Flatten()
            n_features = channels * math.prod(sizes)
        else:
            head, n_features = GlobalPool(global_pool), channels
        self.classifier = nn.Sequential(
            head,
            nn.Linear(n_features, hidden_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_units, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(n, in_channels, *image_shape)`` to ``(n, n_outputs)`` raw scores."""
        return self.classifier(self.features(x))


@register_architecture("simple_cnn", spatial_dims=(2, 3))
def build_simple_cnn(
    in_channels: int,
    n_outputs: int,
    image_shape: tuple[int, ...],
    *,
    width: int = 32,
    hidden_units: int = 128,
    dropout: float = 0.0,
    padding: str = "same",
    batch_norm: bool = False,
    global_pool: str | None = None,
) -> nn.Module:
    """Build the reference 3-block CNN (see :class:`SimpleCNN`), 2-D or 3-D.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    n_outputs : int
        Size of the output layer.
    image_shape : tuple of int
        ``(height, width)`` of the input images, or ``(depth, height, width)``
        of volumes (a 3-D network).
    width, hidden_units, dropout, padding, batch_norm, global_pool
        See :class:`SimpleCNN`.

    Returns
    -------
    module : SimpleCNN

    Examples
    --------
    >>> import torch
    >>> net = build_simple_cnn(1, 2, (28, 28))
    >>> net(torch.zeros(4, 1, 28, 28)).shape
    torch.Size([4, 2])
    >>> net = build_simple_cnn(1, 2, (28, 28, 28), width=4)
    >>> net(torch.zeros(2, 1, 28, 28, 28)).shape
    torch.Size([2, 2])
    """
    return SimpleCNN(
        in_channels,
        n_outputs,
        image_shape,
        width=width,
        hidden_units=hidden_units,
        dropout=dropout,
        padding=padding,
        batch_norm=batch_norm,
        global_pool=global_pool,
    )


# No public checkpoints exist in this layout: the loader serves fine-tuning from a
# fitted sk_medcnn model, whose normalisation comes with it.
register_weight_loader(
    "simple_cnn",
    head=("classifier.4",),
    input_convolution="features.0.weight",
    normalization=None,
)(None)
