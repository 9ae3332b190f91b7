"""Batches of channels-last images read from an array: the training dataset.

:class:`RowReader` reads rows without mapping memmap files into memory,
:class:`ArrayDataset` serves a whole batch per call to skorch's data loader,
and :func:`check_float32_range` refuses values the network cannot hold.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

__all__ = [
    "FLOAT32_MAX",
    "ArrayDataset",
    "BatchAugmenter",
    "RowReader",
    "check_float32_range",
    "collate_batch",
]


#: A function that augments a batch of channels-last images (training only).
BatchAugmenter = Callable[[torch.Tensor], torch.Tensor]


def _file_rows(array: Any) -> tuple[str, int, int] | None:
    """Where the rows of a view of a file-backed ``numpy.memmap`` lie in its file.

    Returns ``(filename, offset of row 0, bytes per row)`` when ``array`` is a
    C-contiguous view into a ``numpy.memmap`` opened from a file, else None.
    """
    if not (isinstance(array, np.ndarray) and array.ndim >= 1):
        return None
    if not array.flags.c_contiguous or len(array) == 0:
        return None
    # the deepest memmap in the chain owns the mapping: its data start is the
    # file position ``offset`` (a sliced memmap keeps its parent's ``offset``)
    base = None
    link: Any = array
    while link is not None:
        if isinstance(link, np.memmap):
            base = link
        link = getattr(link, "base", None)
    if base is None or getattr(base, "filename", None) is None:
        return None
    start = array.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    if start < 0 or start + array.nbytes > base.nbytes:
        return None
    return str(base.filename), int(base.offset) + int(start), int(array.strides[0])


class RowReader:
    """Read rows (images) of an array by index, without mapping memmap files in.

    Pages of a file mapping that a process has touched count in its resident
    memory, and the kernel maps whole (large) page-cache folios at a time: one
    epoch over a 2 GB ``numpy.memmap`` shows as 2 GB of RSS. For a
    file-backed memmap (or a contiguous view of one) this reads the requested
    rows with ``os.preadv`` into a buffer of the batch's size instead; the file
    stays in the page cache, which the process's RSS does not include. Other
    arrays are indexed as usual.

    Parameters
    ----------
    array : ndarray of shape (n_rows, ...)
        The data.
    """

    def __init__(self, array: Any) -> None:
        self.array = array
        self._location = _file_rows(array) if hasattr(os, "preadv") else None
        self._fd: int | None = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_fd=None, _pid=-1)  # file descriptors do not travel
        return state

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(fd)

    def _descriptor(self, filename: str) -> int:
        if self._fd is None or self._pid != os.getpid():  # new, or a forked worker
            self._fd = os.open(filename, os.O_RDONLY)
            self._pid = os.getpid()
        return self._fd

    def __call__(self, rows: slice | NDArray[np.intp]) -> NDArray[Any]:
        """Return ``array[rows]`` as a new array."""
        if self._location is None:
            return np.asarray(self.array[rows])
        filename, offset, row_bytes = self._location
        n_rows = len(self.array)
        if isinstance(rows, slice):
            first, stop, step = rows.indices(n_rows)
            if step == 1:
                out = np.empty(
                    (max(0, stop - first), *self.array.shape[1:]), self.array.dtype
                )
                self._read_into(out, filename, offset + first * row_bytes)
                return out
            rows = np.arange(first, stop, step)
        index = np.asarray(rows, dtype=np.intp)
        if index.size and (index.min() < -n_rows or index.max() >= n_rows):
            raise IndexError(f"row index out of range for {n_rows} rows")
        index = np.where(index < 0, index + n_rows, index)
        out = np.empty((len(index), *self.array.shape[1:]), self.array.dtype)
        for position, row in enumerate(index):
            self._read_into(out[position], filename, offset + int(row) * row_bytes)
        return out

    def _read_into(self, out: NDArray[Any], filename: str, offset: int) -> None:
        if out.nbytes == 0:
            return
        view = out.data.cast("B")  # ``out`` is C-contiguous: a new array or its row
        done = 0
        fd = self._descriptor(filename)
        while done < len(view):
            count = os.preadv(fd, [view[done:]], offset + done)
            if count <= 0:
                raise OSError(f"{filename!r} ended before the rows of the array")
            done += count


class ArrayDataset(torch.utils.data.Dataset):
    """A map-style dataset over a channels-last image array, fetched by batch.

    ``__getitems__`` gathers a whole batch with one fancy-indexing call and
    converts only that batch to float32, so memory grows with the batch and
    not with a second copy of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, height, width, channels)
        Images in any numeric dtype (a ``numpy.memmap`` works).
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs), default=None
        Targets, already encoded (int64 class indices or float32 values).
    indices : ndarray of int, default=None
        The rows of ``X`` and ``y`` this dataset holds (a split without a copy
        of the images); all rows when None.
    sample_weight : ndarray of shape (n_samples,), default=None
        Loss weights, one per row of ``X``. With them, a batch's images come
        as skorch's dict input ``{"images": ..., "sample_weight": ...}``, which
        ``ImageNet.get_loss`` reads (skorch's documented way to weigh samples).

    Attributes
    ----------
    y : ndarray or None
        The targets of the held rows (what skorch's scoring callbacks read).
    sample_weight : ndarray of float32 or None
        The loss weights of the held rows.
    """

    def __init__(
        self,
        X: NDArray[Any],
        y: NDArray[Any] | None = None,
        *,
        indices: NDArray[np.intp] | None = None,
        sample_weight: NDArray[Any] | None = None,
    ) -> None:
        self.X = X
        self.indices = indices
        self.y = y if y is None or indices is None else y[indices]
        self.sample_weight = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float32)
            self.sample_weight = weights if indices is None else weights[indices]
        self._read = RowReader(X)

    def __len__(self) -> int:
        return len(self.X) if self.indices is None else len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor]:
        return self.__getitems__([index])

    def __getitems__(self, indices: Sequence[int]) -> tuple[Any, torch.Tensor]:
        index = np.asarray(indices, dtype=np.intp)
        rows = index if self.indices is None else self.indices[index]
        batch = np.asarray(self._read(rows))
        check_float32_range(batch)
        images = torch.from_numpy(np.asarray(batch, dtype=np.float32))
        if self.y is None:
            targets = torch.zeros(len(index), dtype=torch.float32)
        else:
            targets = torch.from_numpy(np.asarray(self.y[index]))
        if self.sample_weight is not None:
            weights = torch.from_numpy(self.sample_weight[index])
            return {"images": images, "sample_weight": weights}, targets
        return images, targets


def collate_batch(batch: Any) -> Any:
    """Return a batch already gathered by ``ArrayDataset.__getitems__``."""
    return batch


#: The largest magnitude a pixel value may have: the network computes in float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32_range(values: NDArray[Any]) -> None:
    """Refuse pixel values that float32, in which the network computes, cannot hold.

    float64 values beyond about 3.4e38 become infinite in float32, and the
    standardised images NaN: the model would predict NaN, silently.

    Parameters
    ----------
    values : ndarray
        Pixel values (a batch) in any real dtype.
    """
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4 or not values.size:
        return
    peak = float(np.max(np.abs(values)))
    if peak > FLOAT32_MAX or not math.isfinite(peak):
        raise ValueError(
            f"X holds pixel values up to {peak:.3g} in magnitude, beyond the "
            f"float32 range ({FLOAT32_MAX:.3g}) the network computes in: they would "
            "become infinite and the model would predict NaN. Rescale X (e.g. "
            "divide by its maximum, or use sk_medcnn.preprocessing."
            "IntensityNormalizer)."
        )
