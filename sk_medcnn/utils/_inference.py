"""Inference loops: scores, test-time augmentation and features, batch by batch.

:func:`predict_raw` runs a network on channels-last images in eval mode,
averaging over the views of :func:`tta_views` when asked;
:func:`predict_raw_with_features` also keeps a layer's features from the same
passes, and :func:`embed_raw` stops each pass at that layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ._batches import RowReader, check_float32_range
from ._image_source import ImageSource

__all__ = [
    "TTA_TOKENS",
    "View",
    "apply_view",
    "embed_raw",
    "predict_raw",
    "predict_raw_with_features",
    "tta_views",
]


TTA_TOKENS = ("hflip", "vflip", "shifts")


class View(NamedTuple):
    """One test-time view of an image: flips, then a shift in pixels."""

    flip_horizontal: bool
    flip_vertical: bool
    shift_y: int
    shift_x: int


def tta_views(tta: str | None, image_shape: tuple[int, ...]) -> list[View]:
    """List the views that test-time augmentation ``tta`` averages over.

    Parameters
    ----------
    tta : str or None
        None (the image only), or ``"+"``-joined tokens from ``"hflip"``,
        ``"vflip"`` and ``"shifts"``: each flip adds the flipped image (both add
        the doubly flipped one too); ``"shifts"`` adds the image shifted by 5%
        of its size (at least one pixel) up, down, left and right, with the
        border replicated.
    image_shape : tuple of int
        ``(height, width, channels)``, or ``(depth, height, width, channels)``
        for volumes (flips and shifts then act on height and width).

    Returns
    -------
    views : list of View
        The identity first.
    """
    height, width = image_shape[-3:-1] if len(image_shape) >= 3 else image_shape[:2]
    tokens = set() if tta is None else set(tta.split("+"))
    views = [View(False, False, 0, 0)]
    if "hflip" in tokens:
        views.append(View(True, False, 0, 0))
    if "vflip" in tokens:
        views.append(View(False, True, 0, 0))
    if {"hflip", "vflip"} <= tokens:
        views.append(View(True, True, 0, 0))
    if "shifts" in tokens:
        dy = max(1, round(0.05 * height))
        dx = max(1, round(0.05 * width))
        views += [
            View(False, False, -dy, 0),
            View(False, False, dy, 0),
            View(False, False, 0, -dx),
            View(False, False, 0, dx),
        ]
    return views


def apply_view(images: torch.Tensor, view: View) -> torch.Tensor:
    """Apply a :class:`View` to channels-last images ``(n, H, W, C)``.

    Volumes ``(n, D, H, W, C)`` are flipped and shifted in height and width,
    every slice alike. A shift moves the content by ``(shift_y, shift_x)``
    pixels and fills the uncovered border by replicating the edge row or
    column.
    """
    flip_h, flip_v, dy, dx = view
    row_axis, col_axis = images.ndim - 3, images.ndim - 2
    dims = [dim for dim, flag in ((col_axis, flip_h), (row_axis, flip_v)) if flag]
    if dims:
        images = torch.flip(images, dims)
    if dy or dx:
        height, width = images.shape[row_axis], images.shape[col_axis]
        rows = (torch.arange(height, device=images.device) - dy).clamp(0, height - 1)
        cols = (torch.arange(width, device=images.device) - dx).clamp(0, width - 1)
        images = images.index_select(row_axis, rows).index_select(col_axis, cols)
    return images


def predict_raw(
    module: nn.Module,
    images: ImageSource,
    *,
    device: torch.device,
    batch_size: int,
    views: Sequence[View] | None = None,
) -> NDArray[np.float32]:
    """Run ``module`` on channels-last ``images`` in eval mode, batch by batch.

    Written out rather than skorch's ``forward_iter``: contiguous slices of
    ``X`` need no DataLoader, and ``inference_mode`` skips autograd's
    bookkeeping (see ``benchmarks/bench_fit.py`` for the measured effect).

    Parameters
    ----------
    module : torch.nn.Module
        Usually an :class:`~sk_medcnn.utils._network.ImageNetwork`.
    images : ndarray or ImageSource of shape (n_samples, height, width, channels)
    device : torch.device
    batch_size : int
    views : sequence of View, optional
        Test-time views (:func:`tta_views`); the image only when None.

    Returns
    -------
    outputs : ndarray of shape (n_views, n_samples, n_outputs), dtype float32
        One slice per view (a single slice without ``views``).
    """
    outputs, _ = predict_raw_with_features(
        module, images, device=device, batch_size=batch_size, views=views
    )
    return outputs


def predict_raw_with_features(
    module: nn.Module,
    images: ImageSource,
    *,
    device: torch.device,
    batch_size: int,
    views: Sequence[View] | None = None,
    capture: tuple[nn.Module, str] | None = None,
    reduce: Callable[[NDArray[np.float32]], NDArray[Any]] | None = None,
) -> tuple[NDArray[np.float32], NDArray[Any] | None]:
    """:func:`predict_raw`, also keeping features from the same forward passes.

    ``capture = (target, "input" | "output")`` records, for the first view
    (the image itself for :func:`tta_views`), the input or output of the
    submodule ``target``, pooled as :func:`embed_raw` pools it; the forward
    pass goes on. ``reduce`` maps each batch's features, ``(batch,
    n_features)``, to what is kept (one score per image, say), so that the
    features of all images are never held at once. Returns ``(outputs,
    features)``, ``features`` None without ``capture``.

    Each batch's scores (and features) are copied into one array made at the
    first batch, not kept as a small array per batch to concatenate at the end:
    those small blocks, allocated between the batch's large activation
    buffers, pin the allocator's freed memory in place, and the process grows
    with every batch (measured in ``benchmarks/bench_fit_memory.py``).
    """
    views = [View(False, False, 0, 0)] if views is None else list(views)
    stacked: NDArray[np.float32] | None = None  # made at the first batch
    captured: list[NDArray[Any]] = []  # one array of all images, when made
    rows = [0, 0]  # the batch's rows among the images
    recording = [False]
    handle = None
    if capture is not None:
        target, side = capture

        def keep(tensor: torch.Tensor) -> None:
            if recording[0]:
                features = _pooled(tensor).numpy()
                kept = np.asarray(features if reduce is None else reduce(features))
                if not captured:
                    shape = (len(images), *kept.shape[1:])
                    captured.append(np.empty(shape, dtype=kept.dtype))
                captured[0][rows[0] : rows[1]] = kept

        if side == "input":
            handle = target.register_forward_pre_hook(lambda _, args: keep(args[0]))
        else:
            handle = target.register_forward_hook(lambda _, args, out: keep(out))
    try:
        start = 0
        for tensor in _inference_batches(module, images, device, batch_size):
            stop = start + len(tensor)
            rows[:] = start, stop
            for index, view in enumerate(views):
                recording[0] = index == 0
                scores = module(apply_view(tensor, view)).float().cpu().numpy()
                if stacked is None:
                    shape = (len(views), len(images), *scores.shape[1:])
                    stacked = np.empty(shape, dtype=np.float32)
                stacked[index, start:stop] = scores
                del scores
            start = stop
    finally:
        if handle is not None:
            handle.remove()
    if stacked is None:  # no images (no batch gave the scores' shape)
        raise ValueError("predict_raw_with_features got no images (0 samples).")
    if capture is None:
        return stacked, None
    if not captured:
        return stacked, np.zeros((0, 0), dtype=np.float32)
    return stacked, captured[0]


def _pooled(tensor: torch.Tensor) -> torch.Tensor:
    """Features per image: feature maps averaged over their spatial axes."""
    if tensor.ndim in (4, 5):
        tensor = tensor.mean(dim=tuple(range(2, tensor.ndim)))
    return tensor.reshape(len(tensor), -1).float().cpu()


def _inference_batches(
    module: nn.Module, images: ImageSource, device: torch.device, batch_size: int
) -> Iterator[torch.Tensor]:
    """Yield float32 batches of ``images`` on ``device`` for ``module``.

    The batches are consumed with ``module`` in eval mode under
    ``torch.inference_mode()`` (the generator holds both while suspended);
    the module's mode is restored afterwards.
    """
    was_training = module.training
    if was_training:  # a fitted net is left in eval mode: skip the switch
        module.eval()
    read = RowReader(images)
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                rows = read(slice(start, start + batch_size))
                check_float32_range(rows)
                batch = np.asarray(rows, dtype=np.float32)
                del rows
                if not batch.flags.writeable:  # torch refuses read-only memory
                    batch = batch.copy()
                tensor = torch.from_numpy(batch).to(device, non_blocking=True)
                del batch
                yield tensor
                del tensor  # free this batch before the next one is made
    finally:
        if was_training:
            module.train()


class _Captured(Exception):
    """Raised by the embedding hook once it holds the batch's features."""


def embed_raw(
    module: nn.Module,
    images: ImageSource,
    *,
    target: nn.Module,
    capture: str,
    device: torch.device,
    batch_size: int,
) -> NDArray[np.float32]:
    """Run ``module`` on ``images`` as :func:`predict_raw` does; return features.

    A hook on ``target`` (a submodule of ``module``) takes its input
    (``capture="input"``, e.g. the output layer's: the pooled features) or its
    output (``capture="output"``) and stops the forward pass there. Feature
    maps ``(n, C, H, W)`` are averaged over height and width (global average
    pooling); other shapes are flattened per image.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), dtype float32
    """
    captured: list[torch.Tensor] = []

    def keep(tensor: torch.Tensor) -> None:
        captured.append(_pooled(tensor))
        raise _Captured

    if capture == "input":
        handle = target.register_forward_pre_hook(lambda _, args: keep(args[0]))
    else:
        handle = target.register_forward_hook(lambda _, args, out: keep(out))
    try:
        for tensor in _inference_batches(module, images, device, batch_size):
            try:
                module(tensor)
            except _Captured:
                continue
            raise RuntimeError("the embedding layer was not called in the forward pass")
    finally:
        handle.remove()
    if not captured:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(captured).numpy()
