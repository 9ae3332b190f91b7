"""The layer classes of a network with 2 or 3 spatial dimensions."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import torch
from torch import nn

__all__ = ["GlobalPool", "layers_for", "spatial_dims_of"]

#: The convolution, batch-norm and max-pool classes of 2-D or 3-D networks.
Layers = tuple[
    type[nn.Conv2d] | type[nn.Conv3d],
    type[nn.BatchNorm2d] | type[nn.BatchNorm3d],
    type[nn.MaxPool2d] | type[nn.MaxPool3d],
]

_LAYERS: dict[int, Layers] = {
    2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d),
    3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d),
}


def spatial_dims_of(
    image_shape: Any, architecture: str, *, supported: Sequence[int] = (2, 3)
) -> int:
    """Return ``len(image_shape)`` after checking it is a supported spatial shape.

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width)`` or ``(depth, height, width)``, each >= 1.
    architecture : str
        The architecture's name, for messages.
    supported : sequence of int, default=(2, 3)
        The spatial dimensions the architecture builds.

    Returns
    -------
    spatial_dims : int

    Raises
    ------
    ValueError
        If ``image_shape`` has another length, or a size below 1.
    """
    shapes = {2: "(height, width) for images", 3: "(depth, height, width) for volumes"}
    expected = " or ".join(shapes[dims] for dims in supported)
    if (
        isinstance(image_shape, (str, bytes))
        or not isinstance(image_shape, Sequence)
        or len(image_shape) not in supported
        or not all(
            isinstance(size, Integral) and not isinstance(size, bool) and int(size) >= 1
            for size in image_shape
        )
    ):
        raise ValueError(
            f"image_shape of {architecture} must be {expected}, sizes >= 1; got "
            f"{image_shape!r}."
        )
    return len(image_shape)


def layers_for(spatial_dims: int) -> Layers:
    """Return the convolution, batch-norm and max-pool classes for 2 or 3 dims.

    Parameters
    ----------
    spatial_dims : {2, 3}

    Returns
    -------
    convolution, batch_norm, max_pool : type
        ``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.MaxPool2d`` or their 3-D forms.
    """
    return _LAYERS[spatial_dims]


class GlobalPool(nn.Module):
    """Pool each channel over all its spatial positions: ``(n, C, ...)`` to ``(n, C)``.

    The global max or mean of every feature map, for images ``(n, C, H, W)``
    and volumes ``(n, C, D, H, W)`` alike (Keras's ``GlobalMaxPooling3D`` and
    ``GlobalAveragePooling3D``; ``nn.AdaptiveMaxPool3d(1)`` followed by
    ``nn.Flatten()``). A head on it sees where a feature fired most (``"max"``)
    or how much of it there is (``"avg"``), not where: a lesion anywhere in the
    field of view gives the same input.

    Parameters
    ----------
    mode : {"max", "avg"}, default="max"
        The global maximum or the mean.

    Examples
    --------
    >>> import torch
    >>> from sk_medcnn.architectures import GlobalPool
    >>> x = torch.arange(16.0).reshape(1, 2, 2, 2, 2)
    >>> GlobalPool("max")(x)
    tensor([[ 7., 15.]])
    >>> GlobalPool("avg")(x)
    tensor([[ 3.5000, 11.5000]])
    """

    def __init__(self, mode: str = "max") -> None:
        super().__init__()
        if mode not in ("max", "avg"):
            raise ValueError(f"mode must be 'max' or 'avg'; got {mode!r}.")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the ``(n, C)`` global max or mean of ``(n, C, *spatial)``."""
        if x.ndim < 3:  # ``dim=()`` would reduce over every axis
            raise ValueError(
                "GlobalPool takes feature maps (n, channels, *spatial); got a "
                f"tensor of shape {tuple(x.shape)}."
            )
        dims = tuple(range(2, x.ndim))
        if self.mode == "max":
            return x.amax(dim=dims)
        return x.mean(dim=dims)

    def extra_repr(self) -> str:
        """Return the mode, for the module's printed form."""
        return f"mode={self.mode!r}"
