"""Image and volume files that behave as a lazily read array (fit, predict)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ImageReadError
from . import _volume  # looked up per call: tests count the volumes read
from ._loader import ImageLoader

__all__ = ["ImageFiles", "is_path_array"]


def is_path_array(X: Any) -> bool:
    """Whether ``X`` is a 1-D sequence of paths (str or os.PathLike).

    The paths may name image files, volume files (NIfTI) or DICOM series
    folders; what they hold is found when :class:`ImageFiles` reads them.
    Looks at the first items only: a list of image arrays is not copied into an
    object array to find out that it holds no paths.
    """
    if isinstance(X, str | os.PathLike | bytes) or not hasattr(X, "__len__"):
        return False
    if len(X) == 0:
        return False
    if isinstance(X, np.ndarray):
        if X.ndim != 1:
            return False
        if X.dtype.kind == "U":
            return True
        if X.dtype.kind != "O":
            return False
    elif getattr(X, "ndim", 1) != 1 or not isinstance(X, list | tuple):
        return False
    return all(isinstance(item, str | os.PathLike) for item in X[:16])


def _check_spatial_dims(value: Any) -> int | None:
    """Return ``spatial_dims`` as 2, 3 or None (``"auto"`` is None)."""
    if value is None or (isinstance(value, str) and value == "auto"):
        return None
    if isinstance(value, bool) or value not in (2, 3):
        raise ValueError(
            "spatial_dims must be None (infer from the first file), 2 (images) "
            f"or 3 (volumes); got {value!r}."
        )
    return int(value)


class ImageFiles:
    """Image or volume files indexed like a channels-last array, read on demand.

    ``files[rows]`` reads just those files into a ``(len(rows), height, width,
    channels)`` array of images (with :class:`sk_medcnn.io.ImageLoader`) or a
    ``(len(rows), depth, height, width, channels)`` array of volumes (with
    :func:`sk_medcnn.io.read_volume`), so the data loader of ``fit`` reads one
    batch at a time and ``predict`` never holds more than one batch.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Image files (PNG, JPEG, TIFF, DICOM, NIfTI slices), or volumes: NIfTI
        files and DICOM series folders.
    image_shape : tuple of int, optional
        The size to resize every image or volume to: ``(height, width[,
        channels])`` for images, ``(depth, height, width[, channels])`` for
        volumes. Images are resized with
        :class:`~sk_medcnn.preprocessing.Resize`, volumes with
        :func:`skimage.transform.resize` (linear, anti-aliased when
        shrinking). A channel count converts images (1 or 3) and must match
        the volumes' own. Without it, every file must have the size of the
        first.
    spatial_dims : {None, 2, 3}, default=None
        2 reads every path as a 2-D image (as :class:`~sk_medcnn.io.ImageLoader`
        does), 3 as a volume. None infers it from the first path: a folder (a
        DICOM series) or a NIfTI file more than one voxel thick on each axis
        is a volume, any other file an image. ``"auto"`` is the same as None.
        A first path of the other kind is a ValueError naming it; a later one
        fails when its batch is read (an
        :class:`~sk_medcnn.exceptions.ImageReadError` naming the file).
    estimator_name : str, default="estimator"
        Used in error messages.

    Attributes
    ----------
    shape : tuple of int
        ``(n_files, height, width, channels)`` or ``(n_files, depth, height,
        width, channels)``, from the first file.
    dtype : numpy.dtype
        The dtype of the first file's values.
    ndim : int
        4 for images, 5 for volumes.
    spatial_dims : int
        2 for images, 3 for volumes.
    """

    def __init__(
        self,
        paths: Any,
        *,
        image_shape: tuple[int, ...] | None = None,
        spatial_dims: int | str | None = None,
        estimator_name: str = "estimator",
    ) -> None:
        self._name = estimator_name
        self.paths = np.array([os.fspath(path) for path in paths], dtype=object)
        dims = _check_spatial_dims(spatial_dims)
        if len(self.paths):
            found = _volume.spatial_dims_of_file(self.paths[0])
            if dims is not None and dims != found:
                raise ValueError(self._other_kind_message(dims, self.paths[0]))
            dims = found
        self.spatial_dims: int = dims or 2
        self.ndim: int = self.spatial_dims + 2
        self._size: tuple[int, ...] | None = None
        self._channels: int | None = None
        if image_shape is not None:
            self._size, self._channels = self._split_shape(image_shape)
        if self.spatial_dims == 2:
            self._loader = ImageLoader(
                shape=self._size,  # type: ignore[arg-type]  # (height, width)
                channels=self._channels,
            )
        first = self._read(self.paths[:1])
        self.shape: tuple[int, ...] = (len(self.paths), *first.shape[1:])
        self.dtype = first.dtype

    def _other_kind_message(self, dims: int, path: str) -> str:
        if dims == 2:
            return (
                f"{self._name}: spatial_dims=2 reads 2-D images, but {path!r} is a "
                "volume (a NIfTI volume or a DICOM series folder); pass "
                "spatial_dims=3 (None infers it), or take one slice of each file "
                "with sk_medcnn.io.ImageLoader(index=...) in a Pipeline."
            )
        return (
            f"{self._name}: spatial_dims=3 reads volumes (NIfTI files, DICOM "
            f"series folders), but {path!r} is a 2-D image; pass spatial_dims=2 "
            "(None infers it)."
        )

    def _split_shape(
        self, image_shape: tuple[int, ...]
    ) -> tuple[tuple[int, ...], int | None]:
        """Split ``image_shape`` into the spatial size and the channels."""
        shape = tuple(int(size) for size in image_shape)
        dims = self.spatial_dims
        if len(shape) not in (dims, dims + 1):
            first = self.paths[0] if len(self.paths) else "(none)"
            kind = "a volume" if dims == 3 else "a 2-D image"
            wanted = (
                "(depth, height, width[, channels])"
                if dims == 3
                else "(height, width[, channels])"
            )
            raise ValueError(
                f"{self._name}: image_shape={shape} does not fit the files: "
                f"{first!r} is {kind}, to be resized with image_shape={wanted}."
            )
        return shape[:dims], (shape[dims] if len(shape) > dims else None)

    def _read(self, paths: NDArray[Any]) -> NDArray[Any]:
        if self.spatial_dims == 3:
            return self._read_volumes(paths)
        images = self._loader.transform(list(paths))
        if images.ndim == 3:
            images = images[..., np.newaxis]
        return images

    def _read_volumes(self, paths: NDArray[Any]) -> NDArray[Any]:
        """Read ``paths`` as volumes into one ``(n, D, H, W, C)`` array."""
        out: NDArray[Any] | None = None
        for row, path in enumerate(paths):
            volume = _volume.read_volume(path)  # a 2-D image file is an ImageReadError
            if volume.ndim == 3:
                volume = volume[..., np.newaxis]
            if self._channels is not None and volume.shape[-1] != self._channels:
                raise ValueError(
                    f"{self._name}: {path!r} holds a volume of {volume.shape[-1]} "
                    f"channel(s), but image_shape asks for {self._channels}."
                )
            if self._size is not None:
                volume = _volume.resize_volume(volume, self._size)  # type: ignore[arg-type]
            if out is None:
                out = np.empty((len(paths), *volume.shape), dtype=volume.dtype)
            elif volume.shape != out.shape[1:]:
                raise ValueError(
                    f"{self._name}: the volume files differ in size or channels: "
                    f"{paths[0]!r} is {out.shape[1:]} (depth, height, width, "
                    f"channels), but {path!r} is {volume.shape}; pass "
                    "image_shape=(depth, height, width) to resize them."
                )
            elif not np.can_cast(volume.dtype, out.dtype, casting="safe"):
                out = out.astype(np.result_type(out.dtype, volume.dtype))
            out[row] = volume
        if out is None:
            raise ValueError(f"{self._name}: no volume files to read.")
        return out

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, rows: Any) -> NDArray[Any]:
        hint = (
            "image_shape=(depth, height, width)"
            if self.spatial_dims == 3
            else "image_shape=(height, width)"
        )
        try:
            images = self._read(self.paths[rows])
        except ImageReadError:
            raise
        except ValueError as error:  # sizes or channels differ within the batch
            if self.spatial_dims == 3:
                raise
            raise ValueError(
                f"{self._name}: {error} For an estimator, pass {hint} to resize "
                "the files."
            ) from error
        if images.shape[1:] != self.shape[1:]:
            what = "volume" if self.spatial_dims == 3 else "image"
            raise ValueError(
                f"{self._name}: the {what} files differ in size or channels: "
                f"{self.paths[0]!r} is {self.shape[1:]}, but files among "
                f"{list(self.paths[rows][:3])!r} are {images.shape[1:]}; pass "
                f"{hint} to resize them"
                + (
                    ", or use sk_medcnn.io.ImageLoader in a Pipeline."
                    if self.spatial_dims == 2
                    else "."
                )
            )
        return images

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        """Read every file (what ``np.asarray`` does; avoid it on large sets)."""
        images = self[:]
        return images if dtype is None else images.astype(dtype)
