"""The layer classes of a network with 2 or 3 spatial dimensions."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

from torch import nn

__all__ = ["layers_for", "spatial_dims_of"]

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
