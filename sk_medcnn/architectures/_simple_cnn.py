"""The reference CNN of the project's design document."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import register_architecture, register_weight_loader

__all__ = ["SimpleCNN", "build_simple_cnn"]


class SimpleCNN(nn.Module):
    """Three conv-ReLU-max-pool blocks, a dense layer and a linear output layer.

    The PyTorch form of the Keras ``Sequential`` model the project grew from
    (``Conv2D(32) -> MaxPool -> Conv2D(64) -> MaxPool -> Conv2D(128) -> MaxPool
    -> Flatten -> Dense(128) -> Dense(n_outputs)``); the output layer returns
    raw scores, the loss applies the softmax or sigmoid.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (1 for grayscale, 3 for RGB).
    n_outputs : int
        Size of the output layer.
    image_shape : tuple of int
        ``(height, width)`` of the input images; fixes the dense layer's size.
    width : int, default=32
        Filters of the first block; the second and third have 2x and 4x.
    hidden_units : int, default=128
        Units of the dense layer.
    dropout : float, default=0.0
        Dropout probability before the output layer.
    padding : {"same", "valid"}, default="same"
        ``"same"`` keeps the size through each 3x3 convolution and pools with
        ``ceil_mode``, so any image of at least 1x1 pixel works. ``"valid"`` is
        the Keras model exactly and needs images of at least 22x22 pixels.
    batch_norm : bool, default=False
        Add batch normalisation after each convolution.

    Attributes
    ----------
    features : torch.nn.Sequential
        The convolutional blocks; the last ``Conv2d`` is Grad-CAM's default layer.
    classifier : torch.nn.Sequential
        Flatten, dense layer, dropout and output layer.
    """

    def __init__(
        self,
        in_channels: int,
        n_outputs: int,
        image_shape: tuple[int, int],
        *,
        width: int = 32,
        hidden_units: int = 128,
        dropout: float = 0.0,
        padding: str = "same",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid'; got {padding!r}.")
        if width < 1 or hidden_units < 1:
            raise ValueError(
                f"width and hidden_units must be >= 1; got {width} and {hidden_units}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}.")
        layers: list[nn.Module] = []
        channels = in_channels
        height, width_px = image_shape
        for multiplier in (1, 2, 4):
            out = width * multiplier
            layers.append(
                nn.Conv2d(
                    channels,
                    out,
                    3,
                    padding=1 if padding == "same" else 0,
                    bias=not batch_norm,
                )
            )
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers += [
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=padding == "same"),
            ]
            channels = out
            if padding == "same":
                height, width_px = -(-height // 2), -(-width_px // 2)
            else:
                height, width_px = (height - 2) // 2, (width_px - 2) // 2
            if height < 1 or width_px < 1:
                # "same" keeps every size >= 1 from 1 on; "valid" needs
                # (h - 2) // 2 >= 1 after the third block: 4, 10, then 22 pixels
                minimum = 1 if padding == "same" else 22
                raise ValueError(
                    f"image_shape {tuple(image_shape)} is too small for simple_cnn "
                    f"with padding={padding!r}; it needs images of at least "
                    f"{minimum}x{minimum} pixels."
                )
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width_px, hidden_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_units, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a batch ``(n, in_channels, height, width)`` to ``(n, n_outputs)``."""
        return self.classifier(self.features(x))


@register_architecture("simple_cnn")
def build_simple_cnn(
    in_channels: int,
    n_outputs: int,
    image_shape: tuple[int, int],
    *,
    width: int = 32,
    hidden_units: int = 128,
    dropout: float = 0.0,
    padding: str = "same",
    batch_norm: bool = False,
) -> nn.Module:
    """Build the reference 3-block CNN (see :class:`SimpleCNN`).

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    n_outputs : int
        Size of the output layer.
    image_shape : tuple of int
        ``(height, width)`` of the input images.
    width, hidden_units, dropout, padding, batch_norm
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
    )


# No public checkpoints exist in this layout: the loader serves fine-tuning from a
# fitted sk_medcnn model, whose normalisation comes with it.
register_weight_loader(
    "simple_cnn",
    head=("classifier.4",),
    input_convolution="features.0.weight",
    normalization=None,
)(None)
