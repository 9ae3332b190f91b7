"""Image sizes and dtypes shared by the readers and the transformers.

Both :mod:`sk_medcnn.io` and :mod:`sk_medcnn.preprocessing` resize images and
compute on them in float before casting back; these helpers live here, below
both, so that neither imports the other's private modules.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["cast_like", "float_dtype_for", "size_pair"]


def size_pair(value: Any) -> tuple[int, int]:
    """Return ``(height, width)`` from an int (a square) or a pair of ints."""
    if isinstance(value, Integral):
        return int(value), int(value)
    height, width = value
    return int(height), int(width)


def float_dtype_for(dtype: np.dtype[Any]) -> type[np.floating[Any]]:
    """Return the float type that computes on ``dtype`` without losing precision.

    float64 stays float64 (the user chose it); integers of 32 bits or more
    need float64 to keep every value exact; everything else (uint8, uint16,
    int16, float16, float32) computes in float32.
    """
    if dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4):
        return np.float64
    return np.float32


def cast_like(values: NDArray[np.floating[Any]], dtype: np.dtype[Any]) -> NDArray[Any]:
    """Cast computed float values back to an image dtype, rounding integers.

    Integer outputs are rounded to the nearest integer and clipped to the
    dtype's range, so interpolation never wraps around (255.6 -> 255, not 0).
    """
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = np.rint(values, out=values)
        np.clip(values, info.min, info.max, out=values)
    return values.astype(dtype, copy=False)
