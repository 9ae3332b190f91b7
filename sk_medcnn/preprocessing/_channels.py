"""Channel conversion: ToGrayscale and ToRGB."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..utils._arrays import cast_like, float_dtype_for
from ..utils._validation import Checker, spatial_dims_like
from ._base import _ImageTransformer, iter_chunks

__all__ = ["ToGrayscale", "ToRGB"]

#: Luminance weights of ITU-R BT.709, as in ``skimage.color.rgb2gray``.
LUMINANCE_WEIGHTS = (0.2125, 0.7154, 0.0721)


class ToGrayscale(_ImageTransformer):
    """Convert RGB images to one luminance channel, keeping range and dtype.

    The luminance is ``0.2125 R + 0.7154 G + 0.0721 B``, the weights of
    :func:`skimage.color.rgb2gray` (ITU-R BT.709). Single-channel images pass
    through unchanged (copied), so the transformer can open any pipeline.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen in ``fit`` (``height * width * channels``).
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame of flat pixels given to ``fit``.

    See Also
    --------
    ToRGB : The reverse: repeat one channel three times.

    Notes
    -----
    The output keeps the channel axis: ``(n, H, W, 3)`` becomes
    ``(n, H, W, 1)``, so 4-D in is 4-D out (the estimators accept both
    layouts; take ``X[..., 0]`` for ``(n, H, W)``). Unlike ``rgb2gray``,
    which converts to float in [0, 1], the input's range and dtype are kept:
    uint8 RGB gives rounded uint8 luminance. Only 1 or 3 channels are
    accepted; drop an alpha channel first (``X[..., :3]``).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.preprocessing import ToGrayscale
    >>> X = np.zeros((1, 1, 2, 3), dtype=np.uint8)
    >>> X[0, 0, 1] = [255, 255, 0]  # yellow
    >>> ToGrayscale().fit_transform(X)[..., 0]
    array([[[  0, 237]]], dtype=uint8)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "spatial_dims": spatial_dims_like,
    }

    def __init__(self, *, spatial_dims: int | str = "auto") -> None:
        self.spatial_dims = spatial_dims

    def _transform_images(self, images: NDArray[Any]) -> NDArray[Any]:
        n_samples, channels = images.shape[0], images.shape[-1]
        if channels == 1:
            return images.copy()
        if channels != 3:
            raise ValueError(
                f"ToGrayscale takes RGB images (3 channels) or grey ones (1); X has "
                f"{channels} channels. Drop an alpha channel with X[..., :3]."
            )
        compute = float_dtype_for(images.dtype)
        weights = np.asarray(LUMINANCE_WEIGHTS, dtype=compute)
        out = np.empty((*images.shape[:-1], 1), dtype=images.dtype)
        itemsize = np.dtype(compute).itemsize
        n_values = math.prod(images.shape[1:-1])
        for chunk in iter_chunks(n_samples, 4 * n_values * itemsize):
            luminance = images[chunk].astype(compute) @ weights
            out[chunk, ..., 0] = cast_like(luminance, images.dtype)
        return out


class ToRGB(_ImageTransformer):
    """Repeat a single channel three times, for networks that expect RGB.

    Three-channel images pass through unchanged (copied).

    Parameters
    ----------
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen in ``fit`` (``height * width * channels``).
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame of flat pixels given to ``fit``.

    See Also
    --------
    ToGrayscale : The reverse: luminance of RGB images.

    Notes
    -----
    ``(n, H, W)`` and ``(n, H, W, 1)`` both become ``(n, H, W, 3)``; flat
    rows become flat rows of ``height * width * 3`` channels-last values. The
    dtype is kept. The result is a new array three times the input's size.
    Volumes ``(n, D, H, W)`` become ``(n, D, H, W, 3)`` likewise.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.preprocessing import ToRGB
    >>> X = np.array([[[10, 20]]], dtype=np.uint8)
    >>> ToRGB().fit_transform(X)
    array([[[[10, 10, 10],
             [20, 20, 20]]]], dtype=uint8)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "spatial_dims": spatial_dims_like,
    }

    def __init__(self, *, spatial_dims: int | str = "auto") -> None:
        self.spatial_dims = spatial_dims

    def _transform_images(self, images: NDArray[Any]) -> NDArray[Any]:
        channels = images.shape[-1]
        if channels == 3:
            return images.copy()
        if channels != 1:
            raise ValueError(
                f"ToRGB takes single-channel images; X has {channels} channels."
            )
        return np.repeat(images, 3, axis=-1)
