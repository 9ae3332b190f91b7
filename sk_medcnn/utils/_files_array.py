"""Image files that behave as a lazily read image array (for ``fit``/``predict``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ImageFiles", "is_path_array"]


def is_path_array(X: Any) -> bool:
    """Whether ``X`` is a 1-D sequence of file paths (str or os.PathLike).

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


class ImageFiles:
    """Image files indexed like a channels-last image array, read on demand.

    ``files[rows]`` reads just those files (with :class:`sk_medcnn.io.ImageLoader`)
    into a ``(len(rows), height, width, channels)`` array, so the data loader of
    ``fit`` reads one batch at a time and ``predict`` never holds more than one
    batch of images.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        The image files.
    image_shape : tuple of int, optional
        ``(height, width)`` to resize every image to. Without it, every image
        must have the size of the first.
    estimator_name : str, default="estimator"
        Used in error messages.

    Attributes
    ----------
    shape : tuple of int
        ``(n_files, height, width, channels)``, from the first file.
    dtype : numpy.dtype
        The dtype of the first file's pixels.
    """

    ndim = 4

    def __init__(
        self,
        paths: Any,
        *,
        image_shape: tuple[int, ...] | None = None,
        estimator_name: str = "estimator",
    ) -> None:
        from ..io import ImageLoader

        self.paths = np.array([os.fspath(path) for path in paths], dtype=object)
        size = None if image_shape is None else tuple(int(v) for v in image_shape[:2])
        channels = None
        if image_shape is not None and len(image_shape) == 3:
            channels = int(image_shape[2])
        self._loader = ImageLoader(shape=size, channels=channels)
        first = self._read(self.paths[:1])
        self.shape: tuple[int, ...] = (len(self.paths), *first.shape[1:])
        self.dtype = first.dtype
        self._name = estimator_name

    def _read(self, paths: NDArray[Any]) -> NDArray[Any]:
        images = self._loader.transform(list(paths))
        if images.ndim == 3:
            images = images[..., np.newaxis]
        return images

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, rows: Any) -> NDArray[Any]:
        from ..exceptions import ImageReadError

        try:
            images = self._read(self.paths[rows])
        except ImageReadError:
            raise
        except ValueError as error:  # sizes or channels differ within the batch
            raise ValueError(
                f"{self._name}: {error} For an estimator, pass "
                "image_shape=(height, width) to resize the files."
            ) from error
        if images.shape[1:] != self.shape[1:]:
            raise ValueError(
                f"{self._name}: the image files differ in size or channels: "
                f"{self.paths[0]!r} is {self.shape[1:]}, but files among "
                f"{list(self.paths[rows][:3])!r} are {images.shape[1:]}; pass "
                "image_shape=(height, width) to resize them, or use "
                "sk_medcnn.io.ImageLoader in a Pipeline."
            )
        return images

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        """Read every file (what ``np.asarray`` does; avoid it on large sets)."""
        images = self[:]
        return images if dtype is None else images.astype(dtype)
