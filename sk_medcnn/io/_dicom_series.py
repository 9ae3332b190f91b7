"""DICOM series: the files of one folder read as one volume, sorted in space.

Each file is parsed twice: first its header only (``stop_before_pixels``), to
check that the folder holds one consistent series and to sort the slices; then
in sorted order with its pixel data, decoded straight into the preallocated
volume. A folder that is not one complete series fails before any pixel data
is decoded.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ImageReadError
from ..utils._memory import check_memory
from ._common import float_type_for, is_dicom_file, is_ignored, one_line
from ._dicom import (
    decode_error,
    has_rescale,
    import_pydicom,
    invert_monochrome1,
    modality,
    read_dataset,
    stored_range,
)

__all__ = ["GAP_FACTOR", "list_series_files", "read_dicom_series"]

#: A step between neighbouring slices larger than this many median steps is a
#: gap (missing slices).
GAP_FACTOR = 1.5

#: Slices closer than this (mm, along the normal) are at the same position.
_SAME_POSITION_MM = 1e-3

#: Tolerances on Image Orientation (Patient) (direction cosines) and on Pixel
#: Spacing (relative), for values written with a few decimals.
_ORIENTATION_TOLERANCE = 1e-4
_SPACING_TOLERANCE = 1e-4

#: Files named in an error message; the rest are counted.
_LISTED = 5

#: Integer types tried, smallest first, for integer-rescaled values.
_INTEGER_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64")


def list_series_files(folder: Path) -> list[Path]:
    """Return the DICOM files directly in ``folder``, sorted by name.

    A file is DICOM by its content (``"DICM"`` at byte 128) or by its
    extension (``.dcm``, ``.dicom``: files written without preamble). Hidden
    files, ``DICOMDIR``, ``Thumbs.db`` and ``desktop.ini`` are left out, and
    subfolders are not searched.
    """
    files = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or is_ignored(path):
            continue
        if path.suffix.lower() in (".dcm", ".dicom") or is_dicom_file(path):
            files.append(path)
    return files


def _names(paths: Sequence[Path]) -> str:
    """Name the first few of ``paths`` and count the rest."""
    shown = ", ".join(repr(path.name) for path in paths[:_LISTED])
    if len(paths) > _LISTED:
        shown += f" and {len(paths) - _LISTED} more"
    return shown


def _error(folder: Path, message: str) -> ImageReadError:
    return ImageReadError(f"'{folder}' is not one DICOM series: {message}", str(folder))


def _numbers(dataset: Any, keyword: str, count: int, path: Path) -> NDArray[Any] | None:
    """Return the ``count`` numbers of ``keyword``, None if absent."""
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    items = (
        value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    )
    try:
        numbers = np.asarray([float(item) for item in items], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ImageReadError(
            f"'{path}' has an unreadable {keyword} ({value!r}).", str(path)
        ) from error
    if numbers.shape != (count,) or not np.isfinite(numbers).all():
        raise ImageReadError(
            f"'{path}' has an invalid {keyword} ({value!r}): expected {count} "
            "finite numbers.",
            str(path),
        )
    return numbers


def _check_same(
    folder: Path,
    paths: Sequence[Path],
    values: Sequence[Any],
    same: Callable[[Any, Any], bool],
    what: str,
) -> None:
    """Raise naming the files whose ``values`` differ from the first file's."""
    differing = [
        path
        for path, value in zip(paths, values, strict=True)
        if not same(value, values[0])
    ]
    if differing:
        example = values[paths.index(differing[0])]
        raise _error(
            folder,
            f"{what} differs between its files: {values[0]} in "
            f"'{paths[0].name}' but {example} in {_names(differing)}.",
        )


def _integer_type(low: float, high: float) -> np.dtype[Any]:
    for name in _INTEGER_TYPES:
        info = np.iinfo(name)
        if info.min <= low and high <= info.max:
            return np.dtype(name)
    return np.dtype(np.float64)


def _stored_type(dataset: Any) -> np.dtype[Any]:
    """Return the dtype pydicom decodes the pixel data of ``dataset`` to."""
    n_bytes = max(1, math.ceil(int(dataset.BitsAllocated) / 8))
    n_bytes = 1 << (n_bytes - 1).bit_length()  # 3 bytes are decoded as 4
    signed = int(dataset.get("PixelRepresentation", 0)) == 1
    return np.dtype(f"{'i' if signed else 'u'}{n_bytes}")


def _value_type(dataset: Any) -> np.dtype[Any]:
    """Return the dtype of the modality values of ``dataset`` (HU for CT).

    The stored dtype without rescaling; the smallest integer type holding
    every rescaled value Bits Stored allows when slope and intercept are
    integers; else float32 (float64 for 32-bit stored integers).
    """
    stored = _stored_type(dataset)
    if int(dataset.get("SamplesPerPixel") or 1) > 1:
        return stored
    lut = dataset.get("ModalityLUTSequence")
    if lut:
        return _integer_type(0, 2 ** int(lut[0].LUTDescriptor[2]) - 1)
    if not has_rescale(dataset):
        return stored
    slope = float(dataset.RescaleSlope)
    intercept = float(dataset.RescaleIntercept)
    if slope.is_integer() and intercept.is_integer():
        ends = [end * slope + intercept for end in stored_range(dataset)]
        return _integer_type(min(ends), max(ends))
    return np.dtype(float_type_for(stored))


def _modality_values(
    image: NDArray[Any], dataset: Any, dtype: np.dtype[Any]
) -> NDArray[Any]:
    """Rescale one decoded slice to modality values (HU), in ``dtype`` if integer."""
    if image.ndim == 3:  # colour: no modality transform
        return image
    if dataset.get("ModalityLUTSequence"):
        return modality(image, dataset)
    if not has_rescale(dataset):
        return image
    slope = float(dataset.RescaleSlope)
    intercept = float(dataset.RescaleIntercept)
    if dtype.kind in "iu" and slope.is_integer() and intercept.is_integer():
        values = image.astype(dtype)
        if slope != 1:
            values *= dtype.type(slope)
        values += dtype.type(intercept)
        return values
    return modality(image, dataset)


@dataclass(frozen=True)
class _SliceHeader:
    """What the series checks need of one file's header.

    The dataset itself is let go: pydicom keeps some 90 KB per CT header in
    memory, 17 MiB for a series of 200 slices of ``CT_small.dcm``.
    """

    series: str
    n_frames: int
    layout: tuple[int, int, int]
    orientation: NDArray[Any] | None
    position: NDArray[Any] | None
    pixel_spacing: NDArray[Any] | None
    thickness: float | None
    value_type: np.dtype[Any]


def _slice_header(pydicom: Any, path: Path) -> _SliceHeader:
    """Read the header of ``path`` and keep what the series checks need."""
    header = read_dataset(pydicom, path, header_only=True)
    try:
        layout = (
            int(header.Rows),
            int(header.Columns),
            int(header.get("SamplesPerPixel") or 1),
        )
        value_type = _value_type(header)
        n_frames = int(header.get("NumberOfFrames") or 1)
    except (AttributeError, TypeError, ValueError, IndexError) as error:
        raise ImageReadError(
            f"'{path}' has an unreadable pixel description (Rows, Columns, Bits "
            "Allocated, Bits Stored, Pixel Representation, Rescale Slope / "
            f"Intercept, Number of Frames): {one_line(error)}",
            str(path),
        ) from error
    thickness = None
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = _numbers(header, keyword, 1, path) if keyword in header else None
        if value is not None and value[0] > 0:
            thickness = float(value[0])
            break
    return _SliceHeader(
        series=str(header.get("SeriesInstanceUID", "(none)")),
        n_frames=n_frames,
        layout=layout,
        orientation=_numbers(header, "ImageOrientationPatient", 6, path),
        position=_numbers(header, "ImagePositionPatient", 3, path),
        pixel_spacing=_numbers(header, "PixelSpacing", 2, path),
        thickness=thickness,
        value_type=value_type,
    )


def _sort(
    folder: Path, paths: list[Path], headers: list[_SliceHeader]
) -> tuple[list[int], float]:
    """Order the slices along their normal; return the order and the slice step."""
    if len(paths) == 1:
        return [0], headers[0].thickness or 1.0
    lacking = [
        path
        for path, header in zip(paths, headers, strict=True)
        if header.orientation is None or header.position is None
    ]
    if lacking:
        raise _error(
            folder,
            "its slices cannot be placed in space: no Image Position (Patient) "
            f"or Image Orientation (Patient) in {_names(lacking)}.",
        )
    _check_same(
        folder,
        paths,
        [np.round(np.asarray(header.orientation), 6).tolist() for header in headers],
        lambda a, b: np.allclose(a, b, rtol=0, atol=_ORIENTATION_TOLERANCE),
        "Image Orientation (Patient)",
    )
    first = np.asarray(headers[0].orientation)
    normal = np.cross(first[:3], first[3:])
    distances = np.asarray([float(normal @ header.position) for header in headers])
    order = np.argsort(distances, kind="stable")
    ordered = distances[order]
    steps = np.diff(ordered)
    same = np.flatnonzero(steps < _SAME_POSITION_MM)
    if same.size:
        pairs = "; ".join(
            f"'{paths[order[k]].name}' and '{paths[order[k + 1]].name}' at "
            f"{ordered[k]:.3f} mm"
            for k in same[:_LISTED]
        )
        raise _error(
            folder,
            f"{same.size} duplicate slice position{'s' if same.size > 1 else ''} "
            f"along the slice normal: {pairs}. Remove the duplicate files (or "
            "separate the acquisitions into folders).",
        )
    step = float(np.median(steps))
    gaps = np.flatnonzero(steps > GAP_FACTOR * step)
    if gaps.size:
        described = "; ".join(
            f"{steps[k]:.3f} mm between '{paths[order[k]].name}' ({ordered[k]:.3f}) "
            f"and '{paths[order[k + 1]].name}' ({ordered[k + 1]:.3f}), about "
            f"{round(steps[k] / step) - 1} slice(s) missing"
            for k in gaps[:_LISTED]
        )
        raise _error(
            folder,
            f"slices are missing: the median step is {step:.3f} mm, but there "
            f"{'are gaps' if gaps.size > 1 else 'is a gap'} of {described}.",
        )
    return order.tolist(), step


def _canonical_axes(
    directions: NDArray[Any],
) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """Map the array axes to the canonical ``(S, A, R)`` order of :func:`read_volume`.

    Parameters
    ----------
    directions : ndarray of shape (3, 3)
        Row ``k``: the unit vector, in DICOM's patient coordinates (LPS: x to
        the patient's left, y posterior, z superior), along which array axis
        ``k`` (depth, rows, columns) runs.

    Returns
    -------
    order : tuple of 3 int
        The array axis to put first (along superior), second (anterior) and
        third (right): ``volume.transpose(order)``.
    flips : tuple of 3 bool
        Whether each axis of the transposed volume must then be reversed.

    Notes
    -----
    The closest canonical orientation, as :func:`nibabel.as_closest_canonical`
    finds it for NIfTI files: each array axis is paired greedily with the
    patient axis it is most parallel to, the largest cosine first, so an
    oblique series is not resampled, only permuted and flipped.
    """
    # RAS+ components of each axis direction, in the order (S, A, R)
    ras = directions * np.array([-1.0, -1.0, 1.0])  # LPS -> RAS
    cosines = ras[:, [2, 1, 0]]
    order = [0, 0, 0]
    flips = [False, False, False]
    free_axes, free_targets = {0, 1, 2}, {0, 1, 2}
    for _ in range(3):
        axis, target = max(
            ((a, t) for a in free_axes for t in free_targets),
            key=lambda pair: abs(cosines[pair]),
        )
        order[target] = axis
        flips[target] = bool(cosines[axis, target] < 0)
        free_axes.discard(axis)
        free_targets.discard(target)
    return (order[0], order[1], order[2]), (flips[0], flips[1], flips[2])


def _to_canonical(
    volume: NDArray[Any],
    spacing: tuple[float, float, float],
    orientation: NDArray[Any] | None,
) -> tuple[NDArray[Any], tuple[float, float, float]]:
    """Permute and flip a series sorted along its normal into ``(S, A, R)``."""
    if orientation is None:  # a single slice without orientation: as stored
        return volume, spacing
    row, column = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    # depth runs along the normal (sorted increasing); rows down the column
    # direction; columns along the row direction
    directions = np.stack([np.cross(row, column), column, row])
    order, flips = _canonical_axes(directions)
    volume = volume.transpose(*order, *range(3, volume.ndim))
    flipped = tuple(axis for axis in range(3) if flips[axis])
    if flipped:
        volume = np.flip(volume, axis=flipped)
    step = (spacing[order[0]], spacing[order[1]], spacing[order[2]])
    return np.ascontiguousarray(volume), step


def _series_headers(
    pydicom: Any, folder: Path
) -> tuple[list[Path], list[_SliceHeader]]:
    """List the folder's DICOM files and read their slice headers."""
    paths = list_series_files(folder)
    if not paths:
        subfolders = [path for path in folder.iterdir() if path.is_dir()]
        hint = (
            f" (it has {len(subfolders)} subfolders: pass one series folder)"
            if subfolders
            else ""
        )
        raise ImageReadError(
            f"The folder '{folder}' holds no DICOM files{hint}.", str(folder)
        )
    headers = [_slice_header(pydicom, path) for path in paths]
    return paths, headers


def _check_series_headers(
    folder: Path, paths: list[Path], headers: list[_SliceHeader]
) -> None:
    """Refuse several series, multi-frame files and disagreeing slice geometry."""
    by_series: dict[str, list[Path]] = defaultdict(list)
    for path, header in zip(paths, headers, strict=True):
        by_series[header.series].append(path)
    if len(by_series) > 1:
        listed = "; ".join(
            f"{uid}: {len(files)} file{'s' if len(files) > 1 else ''} ({_names(files)})"
            for uid, files in by_series.items()
        )
        raise _error(
            folder,
            f"it holds files of {len(by_series)} series (Series Instance UID) "
            f"- {listed}. Put each series in its own folder.",
        )
    multi_frame = [
        path for path, header in zip(paths, headers, strict=True) if header.n_frames > 1
    ]
    if multi_frame:
        raise _error(
            folder,
            f"{_names(multi_frame)} hold several frames; read_volume reads a "
            "series of single-frame files (read a multi-frame file with "
            "read_image).",
        )
    _check_same(
        folder,
        paths,
        [header.layout for header in headers],
        lambda a, b: a == b,
        "the slice size (rows, columns, samples per pixel)",
    )
    lacking = [
        path
        for path, header in zip(paths, headers, strict=True)
        if header.pixel_spacing is None
    ]
    if lacking:
        raise _error(folder, f"no Pixel Spacing in {_names(lacking)}.")
    _check_same(
        folder,
        paths,
        [np.asarray(header.pixel_spacing).tolist() for header in headers],
        lambda a, b: np.allclose(a, b, rtol=_SPACING_TOLERANCE, atol=0),
        "Pixel Spacing",
    )


def _read_slices(
    pydicom: Any,
    pixel_array: Callable[[Any], Any],
    folder: Path,
    paths: list[Path],
    headers: list[_SliceHeader],
    order: list[int],
) -> NDArray[Any]:
    """Decode the slices, in ``order``, into one volume of modality values."""
    rows, columns, samples = headers[0].layout
    dtype = np.result_type(*(header.value_type for header in headers))
    shape = (len(paths), rows, columns) + ((samples,) if samples > 1 else ())
    check_memory(
        math.prod(shape) * dtype.itemsize,
        f"Reading the DICOM series in '{folder}' ({len(paths)} slices of "
        f"{rows}x{columns}, {dtype})",
        "Read a smaller series, or resample it outside sk_medcnn.",
    )
    volume = np.empty(shape, dtype=dtype)
    for depth, position in enumerate(order):
        path = paths[position]
        dataset = read_dataset(pydicom, path)
        try:
            image = np.asarray(pixel_array(dataset))
            image = _modality_values(image, dataset, dtype)
            if str(dataset.get("PhotometricInterpretation", "")) == "MONOCHROME1":
                image = invert_monochrome1(image, dataset)
        except ImageReadError:
            raise
        except Exception as error:  # undecodable pixel data
            raise decode_error(dataset, path, error) from error
        if image.shape != shape[1:]:
            raise ImageReadError(
                f"'{path}' decoded to shape {image.shape}, not the {shape[1:]} its "
                "header announces.",
                str(path),
            )
        if not np.can_cast(image.dtype, volume.dtype, casting="safe"):
            volume = volume.astype(np.result_type(volume.dtype, image.dtype))
        volume[depth] = image
    return volume


def read_dicom_series(
    folder: Path,
) -> tuple[NDArray[Any], tuple[float, float, float]]:
    """Read the DICOM series in ``folder`` as one volume, depth first.

    Returns
    -------
    volume : ndarray of shape (depth, height, width) or \
            (depth, height, width, samples)
        The slices sorted by their position along the slice normal (the
        cross product of the row and column direction cosines of Image
        Orientation (Patient)), in modality values (HU for CT), then
        permuted and flipped into the closest canonical orientation, as
        NIfTI volumes are read: depth from inferior to superior, rows from
        posterior to anterior, columns from the patient's left to right.
    spacing : tuple of 3 float
        The median step between slice positions and Pixel Spacing (between
        rows, between columns), in mm, in the order of the returned axes.
    """
    pydicom = import_pydicom()
    from pydicom.pixels import pixel_array

    paths, headers = _series_headers(pydicom, folder)
    _check_series_headers(folder, paths, headers)
    order, step = _sort(folder, paths, headers)
    volume = _read_slices(pydicom, pixel_array, folder, paths, headers, order)
    spacing = np.asarray(headers[0].pixel_spacing)
    return _to_canonical(
        volume, (step, float(spacing[0]), float(spacing[1])), headers[0].orientation
    )
