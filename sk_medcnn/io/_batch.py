"""Read many image files into one array: one image per file, one size, one layout.

Shared by :func:`~sk_medcnn.io.load_image_folder` and
:class:`~sk_medcnn.io.ImageLoader`: each file is read with
:func:`~sk_medcnn.io.read_image`, converted to the requested channels and
size, and written into a single preallocated array (no list of images and
second stacked copy).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ImageReadError
from ..preprocessing import Resize, ToGrayscale
from ..utils._arrays import size_pair
from ..utils._memory import check_memory
from ..utils._window import WINDOW_PRESETS, apply_window
from ._readers import read_image_stack
from ._volume import read_volume, resize_volume

__all__ = ["UnreadableFilesWarning", "check_channels", "read_images"]

#: Skipped files listed by name in a warning's message; all are in ``paths``.
_LISTED = 10


class UnreadableFilesWarning(UserWarning):
    """Image files that could not be read, and were skipped or left blank.

    Parameters
    ----------
    message : str
        The warning's text: how many files, and the first few with reasons.
    paths : sequence of str
        Every file that could not be read.
    errors : sequence of str
        Why, one message per file of ``paths``.

    Attributes
    ----------
    paths : list of str
        Every file that could not be read, in the order they were met.
    errors : list of str
        The error message of each of ``paths``.

    Examples
    --------
    >>> import warnings
    >>> from sk_medcnn.io import UnreadableFilesWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn(UnreadableFilesWarning("1 file skipped", ["a.png"], ["?"]))
    >>> caught[0].message.paths
    ['a.png']
    """

    def __init__(
        self,
        message: str,
        paths: Sequence[str] = (),
        errors: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.paths = list(paths)
        self.errors = list(errors)


def check_channels(value: Any, name: str) -> None:
    """Check a ``channels``: None, 1 (grayscale) or 3 (RGB)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be None, 1 (grayscale) or 3 (RGB); got {value!r} "
            f"({type(value).__name__})."
        )
    if value not in (1, 3):
        raise ValueError(
            f"{name} must be None, 1 (grayscale) or 3 (RGB); got {value!r}."
        )


def _describe(shape: tuple[int, ...]) -> str:
    size = f"{shape[0]}x{shape[1]}"
    if len(shape) == 2:
        return f"{size} grayscale"
    return f"{size} with {shape[2]} channels"


def conform_channels(
    image: NDArray[Any], channels: int | None, path: str
) -> NDArray[Any]:
    """Convert ``image`` (H, W) or (H, W, C) to ``channels`` (None keeps it).

    One channel is returned as ``(H, W)``. RGB(A) becomes grayscale by its
    luminance (:class:`~sk_medcnn.preprocessing.ToGrayscale`), grayscale
    becomes RGB by repetition; an alpha channel is dropped.
    """
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if channels is None:
        return image
    n_channels = 1 if image.ndim == 2 else image.shape[-1]
    if n_channels not in (1, 2, 3, 4):
        raise ImageReadError(
            f"'{path}' has {n_channels} channels; channels={channels} converts "
            "images of 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels.",
            path,
        )
    if channels == 1:
        if n_channels == 1:
            return image
        if n_channels == 2:
            return np.ascontiguousarray(image[..., 0])
        rgb = image[np.newaxis, ..., :3]
        return np.asarray(ToGrayscale().fit_transform(rgb))[0, ..., 0]
    if n_channels in (3, 4):
        return np.ascontiguousarray(image[..., :3])
    grey = image if n_channels == 1 else image[..., 0]
    return np.repeat(grey[..., np.newaxis], 3, axis=-1)


def conform_size(
    image: NDArray[Any], shape: int | tuple[int, int] | None
) -> NDArray[Any]:
    """Resize ``image`` to ``shape`` (height, width) unless it has that size."""
    if shape is None:
        return image
    size = size_pair(shape)
    if image.shape[:2] == size:
        return image
    resized = Resize(size).fit_transform(image[np.newaxis])
    return np.asarray(resized)[0]


def read_one(
    path: str | os.PathLike[str],
    *,
    shape: int | tuple[int, int] | None,
    channels: int | None,
    read_params: dict[str, Any],
) -> NDArray[Any]:
    """Read ``path`` as one image, converted to ``channels`` and ``shape``."""
    image, is_stack = read_image_stack(path, **read_params)
    if is_stack:
        if image.shape[0] != 1:
            raise ImageReadError(
                f"'{path}' holds {image.shape[0]} images (frames, slices or pages) "
                "where one image per file is expected; pass index= to take one "
                f"(e.g. index={image.shape[0] // 2} for the middle one).",
                str(path),
            )
        image = image[0]
    image = conform_channels(image, channels, str(path))
    return conform_size(image, shape)


def read_one_volume(
    path: str | os.PathLike[str],
    *,
    shape: int | tuple[int, int, int] | None,
    channels: int | None,
    read_params: dict[str, Any],
) -> NDArray[Any]:
    """Read ``path`` as one volume, windowed and resized to ``shape`` (D, H, W).

    Only the ``window`` of ``read_params`` applies to volumes (a preset name
    or ``(level, width)``). ``channels`` is checked, not converted.
    """
    volume = read_volume(path)
    n_channels = 1 if volume.ndim == 3 else volume.shape[-1]
    if channels is not None and n_channels != channels:
        raise ValueError(
            f"'{path}' holds a volume of {n_channels} channel(s), but channels="
            f"{channels} was asked for; volumes are not converted (pass "
            "channels=None to keep them as they are)."
        )
    window = read_params.get("window")
    if isinstance(window, str):
        volume = apply_window(volume, *WINDOW_PRESETS[window])
    elif window is not None:
        volume = apply_window(volume, float(window[0]), float(window[1]))
    if shape is None:
        return volume
    if isinstance(shape, tuple | list):
        depth, height, width = shape
        return resize_volume(volume, (int(depth), int(height), int(width)))
    return resize_volume(volume, (int(shape),) * 3)


def read_images(
    paths: Sequence[str | os.PathLike[str]],
    *,
    shape: int | tuple[int, ...] | None = None,
    channels: int | None = None,
    on_error: str = "raise",
    read_params: dict[str, Any] | None = None,
    stacklevel: int = 3,
    spatial_dims: int = 2,
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """Read every file of ``paths`` into one array of shape (n, H, W[, C]).

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        The files, one image each (or one volume each: NIfTI files and
        DICOM series folders, with ``spatial_dims=3``).
    shape : int or tuple of int, default=None
        Resize every image to ``(height, width)`` (volumes: ``(depth,
        height, width)``); None requires one size.
    channels : {1, 3}, default=None
        Convert every image to grayscale or RGB; None requires one layout.
        Volumes are not converted: each must then have that many channels.
    on_error : {"raise", "skip", "fill"}, default="raise"
        What an unreadable file does: raise its ImageReadError, drop its row,
        or leave its row zero. "skip" and "fill" warn once with
        :class:`UnreadableFilesWarning`.
    read_params : dict, default=None
        Keyword arguments of :func:`read_image` (``index``, ``slice_axis``,
        ``window``).
    stacklevel : int, default=3
        Passed to :func:`warnings.warn`.
    spatial_dims : {2, 3}, default=2
        Read images with :func:`read_image`, or volumes with
        :func:`read_volume`.

    Returns
    -------
    images : ndarray of shape (n_read, height, width), \
            (n_read, height, width, channels) or (n_read, depth, height, \
            width[, channels])
        ``n_read`` is ``len(paths)`` unless ``on_error="skip"`` dropped files.
        The dtype is the common one of the images (numpy's promotion).
    read : ndarray of shape (len(paths),), dtype bool
        Which files were read.

    Raises
    ------
    ImageReadError
        The first unreadable file (``on_error="raise"``), or every file
        unreadable.
    ValueError
        Images of different sizes or channel layouts (without ``shape`` or
        ``channels``), or ``paths`` empty.
    """
    read_params = {} if read_params is None else read_params
    n_files = len(paths)
    if n_files == 0:
        raise ValueError("No image files to read: the list of paths is empty.")
    read = np.zeros(n_files, dtype=bool)
    failures: list[tuple[str, str]] = []
    out: NDArray[Any] | None = None
    first_path = ""
    example_of_dtype: dict[np.dtype[Any], str] = {}
    row = 0
    for position, path in enumerate(paths):
        try:
            if spatial_dims == 3:
                image = read_one_volume(
                    path,
                    shape=shape,  # type: ignore[arg-type]
                    channels=channels,
                    read_params=read_params,
                )
            else:
                image = read_one(
                    path,
                    shape=shape,  # type: ignore[arg-type]
                    channels=channels,
                    read_params=read_params,
                )
        except ImageReadError as error:
            if on_error == "raise":
                raise
            failures.append((str(path), str(error)))
            if on_error == "fill":
                row += 1
            continue
        example_of_dtype.setdefault(image.dtype, str(path))
        if out is None:
            what = "volumes" if spatial_dims == 3 else "images"
            size = "(depth, height, width)" if spatial_dims == 3 else "(height, width)"
            check_memory(
                n_files * image.nbytes,
                f"Reading {n_files} {what} of shape {image.shape} {image.dtype} "
                f"(the shape of {str(path)!r})",
                f"Pass a smaller shape={size} to resize them as they are "
                "read, or read the files lazily (lazy=True, or sk_medcnn.io."
                "ImageLoader in a Pipeline).",
            )
            out = np.zeros((n_files, *image.shape), dtype=image.dtype)
            first_path = str(path)
        elif image.shape != out.shape[1:]:
            raise ValueError(
                _mismatch_message(first_path, out.shape[1:], path, image, spatial_dims)
            )
        elif not np.can_cast(image.dtype, out.dtype, casting="safe"):
            out = out.astype(np.result_type(out.dtype, image.dtype))
        out[row] = image
        read[position] = True
        row += 1
    if out is None:
        listed = "; ".join(message for _, message in failures[:_LISTED])
        raise ImageReadError(f"None of the {n_files} files could be read: {listed}")
    if on_error == "skip" and row < n_files:
        out = out[:row].copy()
    if failures:
        _warn_unreadable(failures, on_error, stacklevel + 1)
    _warn_mixed_bit_depths(example_of_dtype, out.dtype, stacklevel + 1)
    return out, read


def _mismatch_message(
    first_path: str,
    first_shape: tuple[int, ...],
    path: str | os.PathLike[str],
    image: NDArray[Any],
    spatial_dims: int = 2,
) -> str:
    if spatial_dims == 3:
        return (
            f"Volumes differ in size or channels: '{first_path}' is "
            f"{first_shape} but '{path}' is {image.shape} (depth, height, "
            "width[, channels]). Pass shape=(depth, height, width) to resize "
            "every volume to one size."
        )
    if first_shape[:2] != image.shape[:2]:
        return (
            f"Images differ in size: '{first_path}' is {_describe(first_shape)} "
            f"but '{path}' is {_describe(image.shape)} (height x width). Pass "
            "shape=(height, width) to resize every image to one size."
        )
    return (
        f"Images differ in channels: '{first_path}' is {_describe(first_shape)} "
        f"but '{path}' is {_describe(image.shape)}. Pass channels=1 (grayscale) "
        "or channels=3 (RGB) to convert every image."
    )


def _warn_unreadable(
    failures: list[tuple[str, str]], on_error: str, stacklevel: int
) -> None:
    paths = [path for path, _ in failures]
    action = "skipped" if on_error == "skip" else "replaced by blank (zero) images"
    lines = [f"  {message}" for _, message in failures[:_LISTED]]
    if len(failures) > _LISTED:
        lines.append(f"  ... and {len(failures) - _LISTED} more (see .paths)")
    noun = "file" if len(failures) == 1 else "files"
    warnings.warn(
        UnreadableFilesWarning(
            f"{len(failures)} unreadable image {noun} {action}:\n" + "\n".join(lines),
            paths,
            [message for _, message in failures],
        ),
        stacklevel=stacklevel,
    )


def _warn_mixed_bit_depths(
    example_of_dtype: dict[np.dtype[Any], str], result: np.dtype[Any], stacklevel: int
) -> None:
    integers = {
        dtype: path for dtype, path in example_of_dtype.items() if dtype.kind in "iu"
    }
    if len({dtype.itemsize for dtype in integers}) < 2:
        return
    shown = ", ".join(f"{dtype} ('{path}')" for dtype, path in integers.items())
    warnings.warn(
        f"The images have different bit depths: {shown}. They were stacked as "
        f"{result} without rescaling, so the same value may mean different "
        "brightness; convert the files to one bit depth, or normalise each image "
        "(sk_medcnn.preprocessing.IntensityNormalizer).",
        UserWarning,
        stacklevel=stacklevel,
    )
