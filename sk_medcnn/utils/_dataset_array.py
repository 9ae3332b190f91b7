"""A ``torch.utils.data.Dataset`` seen as a lazily read image array."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from ._validation import CHANNEL_SIZES

__all__ = ["DatasetImages", "dataset_targets", "is_dataset"]


def is_dataset(X: Any) -> bool:
    """Whether ``X`` is a map-style ``torch.utils.data.Dataset`` (with a length)."""
    return (
        isinstance(X, torch.utils.data.Dataset)
        and not isinstance(X, torch.utils.data.IterableDataset)
        and hasattr(X, "__len__")
    )


def _image_of(item: Any) -> Any:
    """Return the image of a dataset item: the item, or a tuple's first."""
    return item[0] if isinstance(item, tuple | list) else item


def _item_spatial_dims(image: Any) -> int:
    """Tell an image item from a volume item, as ``infer_spatial_dims`` does.

    A torch tensor of 4 axes is a volume ``(C, D, H, W)``, of 3 an image ``(C,
    H, W)``; a numpy array of 4 axes is a volume ``(D, H, W, C)``, of 3 an
    image ``(H, W, C)`` when its last axis has 1, 3 or 4 entries and a volume
    ``(D, H, W)`` otherwise.
    """
    ndim = getattr(image, "ndim", np.ndim(image))
    if ndim == 4:
        return 3
    if ndim == 3 and not isinstance(image, torch.Tensor):
        return 2 if int(np.shape(image)[-1]) in CHANNEL_SIZES else 3
    return 2


def _channels_last(
    image: Any, index: int, name: str, spatial_dims: int = 2
) -> NDArray[Any]:
    """One image as ``(H, W, C)`` (a volume ``(D, H, W, C)``).

    Torch tensors are channels-first, numpy arrays channels-last.
    """
    if isinstance(image, torch.Tensor):
        array = image.detach().cpu().numpy()
        if array.ndim == spatial_dims + 1:
            array = np.moveaxis(array, 0, -1)
    else:
        array = np.asarray(image)
    if array.ndim == spatial_dims:
        array = array[..., np.newaxis]
    if array.ndim != spatial_dims + 1 or array.dtype.kind not in "uifb":
        expected = (
            "a 3-D or 4-D tensor or array of numbers (torch tensors (C, D, H, W), "
            "numpy arrays (D, H, W, C))"
            if spatial_dims == 3
            else "a 2-D or 3-D tensor or array of numbers (torch tensors (C, H, W), "
            "numpy arrays (H, W, C))"
        )
        kind = "volume" if spatial_dims == 3 else "image"
        raise ValueError(
            f"{name}: item {index} of the dataset is not an {kind}: expected "
            f"{expected}, got {type(image).__name__} of shape "
            f"{getattr(array, 'shape', '?')} and dtype {array.dtype}."
        )
    return array


class DatasetImages:
    """Images of a map-style dataset, indexed like a channels-last image array.

    ``images[rows]`` calls ``dataset[i]`` for just those rows and stacks their
    images into ``(len(rows), height, width, channels)``, so ``fit`` reads one
    batch at a time (in ``num_workers`` loader processes) and never holds the
    data set. An item is an image or a tuple ``(image, target, ...)``; a torch
    tensor image is ``(C, H, W)`` or ``(H, W)``, a numpy array ``(H, W, C)``
    or ``(H, W)``. Volumes: a tensor ``(C, D, H, W)``, an array ``(D, H, W,
    C)``, or either as ``(D, H, W)`` with ``spatial_dims=3``.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style: ``len(dataset)`` and ``dataset[i]``.
    estimator_name : str, default="estimator"
        Used in error messages.
    spatial_dims : {2, 3} or None, default=None
        Images or volumes; None tells them apart by the first item's shape.

    Attributes
    ----------
    shape : tuple of int
        ``(n_items, [depth,] height, width, channels)``, from the first item.
    dtype : numpy.dtype
        The dtype of the first item's image.
    """

    def __init__(
        self,
        dataset: Any,
        *,
        estimator_name: str = "estimator",
        spatial_dims: int | None = None,
    ) -> None:
        self.dataset = dataset
        self._name = estimator_name
        if len(dataset) == 0:
            raise ValueError(f"{estimator_name}: the dataset is empty.")
        image = _image_of(dataset[0])
        if spatial_dims is None:
            spatial_dims = _item_spatial_dims(image)
        self.spatial_dims = spatial_dims
        first = _channels_last(image, 0, estimator_name, spatial_dims)
        self.shape: tuple[int, ...] = (len(dataset), *first.shape)
        self.ndim = len(self.shape)
        self.dtype = first.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> NDArray[Any]:
        index = np.arange(len(self))[rows]
        if index.ndim == 0:
            index = index[np.newaxis]
        out = np.empty((len(index), *self.shape[1:]), dtype=self.dtype)
        for position, row in enumerate(index):
            image = _channels_last(
                _image_of(self.dataset[int(row)]), row, self._name, self.spatial_dims
            )
            if image.dtype != self.dtype:
                raise ValueError(
                    f"{self._name}: the dataset's images differ in dtype: item 0 "
                    f"is {self.dtype}, item {int(row)} is {image.dtype}; convert "
                    "them in the dataset."
                )
            if image.shape != self.shape[1:]:
                raise ValueError(
                    f"{self._name}: the dataset's images differ in size or "
                    f"channels: item 0 is {self.shape[1:]} (height, width, "
                    f"channels), item {int(row)} is {image.shape}; resize them in "
                    "the dataset."
                )
            out[position] = image
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            finite = np.isfinite(out).reshape(len(out), -1).all(axis=1)
            bad = int(index[np.flatnonzero(~finite)[0]])
            raise ValueError(
                f"{self._name}: item {bad} of the dataset holds NaN or infinite "
                "pixel values."
            )
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        """Read every item (what ``np.asarray`` does; avoid it on large sets)."""
        images = self[:]
        return images if dtype is None else images.astype(dtype)


def dataset_targets(dataset: Any, estimator_name: str) -> NDArray[Any]:
    """Return a dataset's ``targets`` attribute, or else every item's second.

    Reading the items' targets reads their images too (once); a dataset that
    knows its targets (``dataset.targets``, as torchvision's do) avoids that.
    """
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return np.asarray(
            targets.cpu().numpy() if isinstance(targets, torch.Tensor) else targets
        )
    collected = []
    for index in range(len(dataset)):
        item = dataset[index]
        if not (isinstance(item, tuple | list) and len(item) >= 2):
            raise ValueError(
                f"{estimator_name}.fit got a dataset without targets: its items "
                "are not (image, target) pairs and it has no `targets` attribute; "
                "pass y."
            )
        target = item[1]
        collected.append(
            target.cpu().numpy() if isinstance(target, torch.Tensor) else target
        )
    return np.asarray(collected)
