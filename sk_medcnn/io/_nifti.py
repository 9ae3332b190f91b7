"""NIfTI reading through nibabel: canonical (RAS+) orientation, slices, volumes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ImageReadError
from ._common import (
    check_decoded_size,
    float_type_for,
    read_errors,
    stack_position,
)

__all__ = [
    "MAX_NIFTI_CHANNELS",
    "nifti_spatial_dims",
    "read_nifti",
    "read_nifti_volume",
]

_NIFTI_INSTALL = 'pip install "sk-medcnn[nifti]"'

#: Largest 4th axis of a 4-D NIfTI file read as channels by ``read_volume``
#: (four MRI contrasts, as in BraTS); a longer one is a series (fMRI, DWI).
MAX_NIFTI_CHANNELS = 4


def _import_nibabel() -> Any:
    try:
        import nibabel
    except ImportError as error:
        raise ImportError(
            f"Reading NIfTI files needs nibabel: {_NIFTI_INSTALL}"
        ) from error
    return nibabel


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


def _load(nibabel: Any, path: Path) -> tuple[Any, tuple[int, ...]]:
    """Open ``path`` (the header only) and return it with its meaningful shape.

    The shape drops the size-1 axes after the third: ``(X, Y, Z, 1)`` is 3-D.
    """
    volume: Any = nibabel.load(path)
    shape = tuple(int(size) for size in volume.shape)
    shape = shape[:3] + tuple(size for size in shape[3:] if size != 1)
    return volume, shape


def _values(canonical: Any, key: Any) -> NDArray[Any]:
    """Read ``key`` of a canonical image, in the stored dtype unless scaled.

    Scaled data (``scl_slope``, ``scl_inter``) become float32, or float64 for
    32 and 64-bit stored integers (:func:`~._common.float_type_for`).
    """
    proxy = canonical.dataobj
    stored = np.dtype(canonical.get_data_dtype())
    data = np.asarray(proxy[key])
    slope = getattr(proxy, "slope", 1.0)
    inter = getattr(proxy, "inter", 0.0)
    if slope == 1 and inter == 0 and data.dtype == stored:
        return data  # no scaling: the stored dtype is kept
    if data.dtype.kind == "f":
        data = data.astype(float_type_for(stored), copy=False)
    return data


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
    nibabel = _import_nibabel()
    with read_errors(path, "NIfTI"):
        volume, shape = _load(nibabel, path)
        # a 4-D series is not one image
        if len(shape) != 3:
            raise ImageReadError(
                f"'{path}' is a NIfTI image of shape {tuple(volume.shape)}; "
                "read_image reads 3-D volumes (a 4-D series: select a volume "
                "with nibabel first, e.g. image.slicer[..., t]).",
                str(path),
            )
        _check_size(volume, path)
        canonical = nibabel.as_closest_canonical(volume)
        # reorienting may permute the axes: count slices on the canonical volume
        n_slices = int(canonical.shape[slice_axis])
        key: list[Any] = [slice(None)] * 3 + [0] * (len(canonical.shape) - 3)
        if index is not None:
            key[slice_axis] = stack_position(
                index, n_slices, path, f"slices along slice_axis={slice_axis}"
            )
        data = _values(canonical, tuple(key))
        if index is None:
            data = np.moveaxis(data, slice_axis, 0)
    return data, index is None


def nifti_spatial_dims(path: Path) -> int:
    """Return 3 for a NIfTI volume, 2 for an image (one voxel thick on an axis).

    Reads the header only.
    """
    nibabel = _import_nibabel()
    with read_errors(path, "NIfTI"):
        _, shape = _load(nibabel, path)
    return 3 if len(shape) >= 3 and min(shape[:3]) > 1 else 2


def read_nifti_volume(
    path: Path,
) -> tuple[NDArray[Any], tuple[float, float, float]]:
    """Read a NIfTI file as a canonical volume, depth (inferior to superior) first.

    Returns
    -------
    volume : ndarray of shape (depth, height, width) or \
            (depth, height, width, channels)
        ``canonical_data.transpose(2, 1, 0[, 3])``: axial slices, from
        inferior to superior; rows from posterior to anterior, columns from
        left to right. A 4th axis of at most :data:`MAX_NIFTI_CHANNELS`
        entries is channels.
    spacing : tuple of 3 float
        The header's zooms of the canonical volume, in the same order (the
        shortest decimal of each float32 zoom: 0.8, not 0.800000011920929).
    """
    nibabel = _import_nibabel()
    with read_errors(path, "NIfTI"):
        volume, shape = _load(nibabel, path)
        if len(shape) < 3:
            raise ImageReadError(
                f"'{path}' is a 2-D NIfTI image of shape {tuple(volume.shape)}, "
                "not a volume; read it with read_image.",
                str(path),
            )
        if len(shape) > 4 or (len(shape) == 4 and shape[3] > MAX_NIFTI_CHANNELS):
            raise ImageReadError(
                f"'{path}' is a NIfTI image of shape {tuple(volume.shape)}: a "
                f"series of {math.prod(shape[3:])} volumes (fMRI, diffusion ...), "
                f"not one volume with at most {MAX_NIFTI_CHANNELS} channels; "
                "select a volume with nibabel first, e.g. image.slicer[..., t].",
                str(path),
            )
        _check_size(volume, path)
        canonical = nibabel.as_closest_canonical(volume)
        # the canonical image may permute the stored axes: take its own shape
        # (dropping size-1 axes after the third), not the stored one
        data = _values(canonical, (Ellipsis,))
        data = data.reshape(data.shape[:3] + shape[3:])
        axes = (2, 1, 0, 3) if len(shape) == 4 else (2, 1, 0)
        data = np.ascontiguousarray(data.transpose(axes))
        # nibabel's dtypes carry an explicit byte order ('<i2'): a plain one
        data = data.view(np.dtype(data.dtype.str))
        # zooms are float32 in NIfTI-1: their shortest decimal (0.8, not
        # 0.800000011920929) is what was written
        zooms = [float(str(zoom)) for zoom in canonical.header.get_zooms()[:3]]
        spacing = (zooms[2], zooms[1], zooms[0])
    return data, spacing
