"""NIfTI reading through nibabel: canonical (RAS+) orientation, slices."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ImageReadError
from ._common import check_decoded_size, float_type_for, one_line

__all__ = ["read_nifti"]

_NIFTI_INSTALL = 'pip install "sk-medcnn[nifti]"'


def _check_size(volume: Any, path: Path) -> None:
    """Refuse a header announcing more data than the file can hold."""
    n_bytes = math.prod(volume.shape) * np.dtype(volume.get_data_dtype()).itemsize
    check_decoded_size(n_bytes, path, f"voxels of shape {volume.shape}")
    if str(path).lower().endswith(".gz"):
        return  # the uncompressed size is unknown without decompressing
    offset = int(volume.dataobj.offset)
    if offset + n_bytes > path.stat().st_size:
        raise ImageReadError(
            f"'{path}' is truncated: its header announces {n_bytes} bytes of "
            f"voxels from byte {offset}, but the file has {path.stat().st_size}.",
            str(path),
        )


def read_nifti(
    path: Path, *, index: int | None, slice_axis: int
) -> tuple[NDArray[Any], bool]:
    """Read a NIfTI volume, reoriented to RAS+, as ``read_image`` documents it.

    Returns
    -------
    image : ndarray
        Slice ``index`` along ``slice_axis`` (2-D), or every slice stacked
        along a first axis.
    is_stack : bool
        True if ``image`` holds every slice.
    """
    try:
        import nibabel
    except ImportError as error:
        raise ImportError(
            f"Reading NIfTI files needs nibabel: {_NIFTI_INSTALL}"
        ) from error
    try:
        volume: Any = nibabel.load(path)
        shape = tuple(int(size) for size in volume.shape)
        # (X, Y, Z, 1, ...) volumes are 3-D; a 4-D series is not one image
        while len(shape) > 3 and shape[-1] == 1:
            shape = shape[:-1]
        if len(shape) != 3:
            raise ImageReadError(
                f"'{path}' is a NIfTI image of shape {tuple(volume.shape)}; "
                "read_image reads 3-D volumes (a 4-D series: select a volume "
                "with nibabel first, e.g. image.slicer[..., t]).",
                str(path),
            )
        _check_size(volume, path)
        canonical = nibabel.as_closest_canonical(volume)
        proxy = canonical.dataobj
        stored = np.dtype(canonical.get_data_dtype())
        # reorienting may permute the axes: count slices on the canonical volume
        n_slices = int(canonical.shape[slice_axis])
        key: list[Any] = [slice(None)] * 3 + [0] * (len(canonical.shape) - 3)
        if index is not None:
            key[slice_axis] = index + n_slices if index < 0 else index
            if not 0 <= key[slice_axis] < n_slices:
                raise ImageReadError(
                    f"index={index} is out of range for '{path}', which holds "
                    f"{n_slices} slices along slice_axis={slice_axis}.",
                    str(path),
                )
        data = np.asarray(proxy[tuple(key)])
        slope = getattr(proxy, "slope", 1.0)
        inter = getattr(proxy, "inter", 0.0)
        if slope == 1 and inter == 0 and data.dtype == stored:
            pass  # no scaling: the stored dtype is kept
        elif data.dtype.kind == "f":
            data = data.astype(float_type_for(stored), copy=False)
        if index is None:
            data = np.moveaxis(data, slice_axis, 0)
    except ImageReadError:
        raise
    except Exception as error:  # any failure of nibabel is a bad file
        raise ImageReadError(
            f"Cannot read '{path}' as NIfTI: {one_line(error, path)}", str(path)
        ) from error
    return data, index is None
