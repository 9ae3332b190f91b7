"""The type of channels-last images that are read a batch of rows at a time."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["ImageSource"]


@runtime_checkable
class ImageSource(Protocol):
    """Channels-last images or volumes that are read a batch of rows at a time.

    What the estimators predict on and the inference loops read: a checked
    array (:func:`~sk_medcnn.utils._validation.check_images`), image files
    (:class:`~sk_medcnn.io._files_array.ImageFiles`) or a dataset's items
    (:class:`~sk_medcnn.utils._dataset_array.DatasetImages`). ``source[rows]``
    returns those rows as an array of shape ``(len(rows), *shape[1:])``;
    ``np.asarray(source)`` reads them all.

    Attributes
    ----------
    shape : tuple of int
        ``(n_samples, height, width, channels)``, or ``(n_samples, depth,
        height, width, channels)`` for volumes.
    ndim : int
        ``len(shape)``.
    dtype : numpy.dtype
        The dtype of the rows read.
    """

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n_samples, [depth,] height, width, channels)``."""

    @property
    def ndim(self) -> int:
        """4 for images, 5 for volumes."""

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the rows read."""

    def __len__(self) -> int:
        """Return the number of images, ``shape[0]``."""

    def __getitem__(self, rows: Any) -> NDArray[Any]:
        """Read ``rows`` (a slice or an index array) into a new array."""

    def __array__(self) -> NDArray[Any]:
        """Read every row (what ``np.asarray`` does; avoid it on large sets)."""
