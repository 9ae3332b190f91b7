"""The input adapter module: channels-last images in, an architecture's scores out.

Public arrays are channels-last ``(n, H, W, C)``; the switch to torch's
``(n, C, H, W)`` happens in one place, :class:`ImageNetwork`, which also
standardises with the statistics :func:`channel_statistics` learns in ``fit``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ._batches import RowReader, check_float32_range

__all__ = [
    "MEMORY_FORMATS",
    "PRECISIONS",
    "ImageNetwork",
    "channel_statistics",
    "channels_first",
    "channels_last",
]


PRECISIONS = ("fp32", "bf16")
MEMORY_FORMATS = ("contiguous", "channels_last")


class ImageNetwork(nn.Module):
    """Adapt channels-last images to an architecture: layout, scaling, augmentation.

    ``forward`` takes ``(n, H, W, C)`` float images (volumes: ``(n, D, H, W,
    C)``), views them as ``(n, C, H, W)`` (``(n, C, D, H, W)``; a free
    permutation), standardises with the statistics learned in ``fit`` into one
    new tensor in the network's memory format, and calls the architecture,
    under bfloat16 autocast when asked.

    Parameters
    ----------
    body : torch.nn.Module
        The architecture, ``(n, C, H, W) -> (n, n_outputs)`` (volumes: ``(n,
        C, D, H, W)``).
    mean, std : ndarray of shape (channels,)
        Per-channel statistics of the training images.
    precision : {"fp32", "bf16"}, default="fp32"
        ``"bf16"`` runs the architecture under :func:`torch.autocast` with
        bfloat16 (convolutions and matrix products in bfloat16, weights,
        normalisation statistics and the returned scores in float32).
    memory_format : {"contiguous", "channels_last"}, default="contiguous"
        The layout of the architecture's weights and inputs (for training;
        see :meth:`to_inference_layout`; volumes use torch's
        ``channels_last_3d``). With
        ``"channels_last"``, strided 1x1 convolutions are rewritten to read a
        subsampled input at stride 1 (the same function): torch 2.13's CPU
        (oneDNN) backward of a channels-last strided 1x1 convolution with
        few channels corrupts the heap.
    spatial_dims : {2, 3}, default=2
        2 for images, 3 for volumes.
    """

    mean: torch.Tensor
    std: torch.Tensor
    # class-level defaults: networks pickled before these options existed
    precision = "fp32"
    memory_format = "contiguous"
    spatial_dims = 2

    def __init__(
        self,
        body: nn.Module,
        mean: NDArray[Any],
        std: NDArray[Any],
        *,
        precision: str = "fp32",
        memory_format: str = "contiguous",
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {PRECISIONS}; got {precision!r}."
            )
        if memory_format not in MEMORY_FORMATS:
            raise ValueError(
                f"memory_format must be one of {MEMORY_FORMATS}; got {memory_format!r}."
            )
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3; got {spatial_dims!r}.")
        self.precision = precision
        self.memory_format = memory_format
        self.spatial_dims = spatial_dims
        if memory_format == "channels_last":
            body = body.to(  # type: ignore[call-overload]  # stubs lack memory_format
                memory_format=_torch_memory_format(memory_format, spatial_dims)
            )
            _avoid_strided_pointwise_convolutions(body)
        self.body = body
        shape = (1, len(mean)) + (1,) * spatial_dims
        self.register_buffer(
            "mean", torch.as_tensor(mean, dtype=torch.float32).reshape(shape)
        )
        self.register_buffer(
            "std", torch.as_tensor(std, dtype=torch.float32).reshape(shape)
        )

    def to_inference_layout(self) -> None:
        """Switch the network to channels-last, the faster layout for CPU inference.

        Measured on this project's CPU (2 threads, oneDNN), forward only:
        ``simple_cnn`` at 28 px 2.3x the images/s of NCHW in batches and 0.26
        against 0.35 ms for one image, ResNet-18 at 64 px 1.2x and 1.7x. Only
        the training backward has the heap corruption that keeps training
        NCHW by default, and the strided 1x1 rewrite covers gradients taken
        later (Grad-CAM, saliency maps). ``memory_format`` then reads
        ``"channels_last"``. A bfloat16 network of volumes stays NCHW: torch
        2.13's bfloat16 ``channels_last_3d`` convolutions on the CPU return
        wrong values for small volumes (``benchmarks/check_channels_last.py``).
        """
        if self.memory_format == "channels_last" or self._bf16_volumes():
            return
        self.body = self.body.to(  # type: ignore[call-overload]  # stubs lack memory_format
            memory_format=_torch_memory_format("channels_last", self.spatial_dims)
        )
        _avoid_strided_pointwise_convolutions(self.body)
        self.memory_format = "channels_last"

    @contextlib.contextmanager
    def inference_layout(self) -> Iterator[None]:
        """Run the network in channels-last within the block, then switch back.

        For inference passes in the middle of training (the per-epoch
        validation): a network that trains in NCHW (``memory_format=
        "contiguous"``) predicts in channels-last inside the block, as it does
        after ``fit`` (:meth:`to_inference_layout`), and trains in NCHW again
        after it, its weights (and their gradients) copied exactly both ways,
        so training is unchanged. Channels-last is the faster CPU inference
        layout (the validation pass of 5,000 64x64 images: 149 s against
        215 s in NCHW, two runs side by side on a loaded machine). The
        strided 1x1 rewrite of :meth:`to_inference_layout` is not applied: it
        avoids a bug of the channels-last backward, and nothing here takes a
        gradient.

        A no-op when the network is already channels-last, is a bfloat16
        network of volumes (see :meth:`to_inference_layout`) or the
        architecture is wrapped for data-parallel training.
        """
        if (
            self.memory_format == "channels_last"
            or self._bf16_volumes()
            or isinstance(self.body, nn.parallel.DistributedDataParallel)
        ):
            yield
            return
        self.body.to(  # type: ignore[call-overload]  # stubs lack memory_format
            memory_format=_torch_memory_format("channels_last", self.spatial_dims)
        )
        self.memory_format = "channels_last"
        try:
            yield
        finally:
            self.body.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
            self.memory_format = "contiguous"

    def _bf16_volumes(self) -> bool:
        """Whether this is a bfloat16 network of volumes: it stays NCHW to predict.

        torch 2.13's bfloat16 ``channels_last_3d`` convolutions on the CPU
        return wrong values for small volumes
        (``benchmarks/check_channels_last.py``).
        """
        return self.spatial_dims == 3 and self.precision == "bf16"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map ``(n, H, W, C)`` images (or volumes) to ``(n, n_outputs)`` scores."""
        x = channels_first(images)
        x = _standardise(x, self.mean, self.std, self.memory_format)
        if self.precision == "bf16":
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return self.body(x).float()
        return self.body(x)


def channels_first(images: torch.Tensor) -> torch.Tensor:
    """View ``(n, *spatial, C)`` images as float32 ``(n, C, *spatial)``.

    A free permutation of the axes; a copy only to convert another dtype.
    """
    x = images.movedim(-1, 1)
    return x if x.dtype == torch.float32 else x.float()


def channels_last(images: torch.Tensor) -> torch.Tensor:
    """View ``(n, C, *spatial)`` images as ``(n, *spatial, C)``: the inverse view."""
    return images.movedim(1, -1)


def _torch_memory_format(memory_format: str, spatial_dims: int) -> torch.memory_format:
    """Torch's memory format for a layout name and images (2) or volumes (3)."""
    if memory_format != "channels_last":
        return torch.contiguous_format
    return torch.channels_last if spatial_dims == 2 else torch.channels_last_3d


def _plain_strides(shape: tuple[int, ...], channels_last: bool) -> tuple[int, ...]:
    """Return the strides of a dense ``(n, C, *spatial)`` tensor in a layout."""
    order = (0, *range(2, len(shape)), 1) if channels_last else tuple(range(len(shape)))
    strides = [0] * len(shape)
    step = 1
    for axis in reversed(order):
        strides[axis] = step
        step *= shape[axis]
    return tuple(strides)


def _standardise(
    x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, memory_format: str
) -> torch.Tensor:
    """Return ``(x - mean) / std`` as one new tensor with the layout's strides.

    The strides must be the plain ones of the layout even with one channel,
    where both layouts claim the same tensor: oneDNN picks its kernels from
    them. Without autograd (training inputs, inference) the result is written
    into one tensor allocated in that layout, so the batch is copied once.
    """
    torch_format = _torch_memory_format(memory_format, x.ndim - 2)
    if not (x.requires_grad and torch.is_grad_enabled()):
        out = torch.empty(
            x.shape, dtype=x.dtype, device=x.device, memory_format=torch_format
        )
        torch.sub(x, mean, out=out)
        return out.div_(std)
    out = (x - mean) / std  # saliency maps need the gradient with respect to x
    plain = _plain_strides(
        tuple(out.shape), torch_format is not torch.contiguous_format
    )
    if out.stride() == plain:
        return out
    return out.clone(memory_format=torch_format)


def _avoid_strided_pointwise_convolutions(body: nn.Module) -> None:
    """Make strided 1x1 convolutions of ``body`` read a subsampled input at stride 1.

    ``Conv2d(c_in, c_out, 1, stride=s, padding=0)`` equals the same
    convolution at stride 1 on ``x[:, :, ::s, ::s]``. torch 2.13's oneDNN
    backward for the channels-last strided form (8 -> 16 channels, 16 px, a
    batch of 9, two threads) corrupts the heap; the stride-1 form is safe.
    The weights and their names do not change.
    """
    for module in body.modules():
        if (
            isinstance(module, nn.Conv2d)
            and module.kernel_size == (1, 1)
            and module.stride != (1, 1)
            and module.padding == (0, 0)
            and module.dilation == (1, 1)
        ):
            step_y, step_x = module.stride
            module.stride = (1, 1)
            module.register_forward_pre_hook(_Subsample(step_y, step_x))


class _Subsample:
    """A forward pre-hook: keep every ``step``-th row and column of the input."""

    def __init__(self, step_y: int, step_x: int) -> None:
        self.step_y = step_y
        self.step_x = step_x

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0][:, :, :: self.step_y, :: self.step_x]
        return (x.contiguous(memory_format=torch.channels_last), *args[1:])


def channel_statistics(
    images: NDArray[Any],
    *,
    indices: NDArray[np.intp] | None = None,
    chunk_values: int = 2**16,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-channel mean and standard deviation, in chunks (no float copy of X).

    Parameters
    ----------
    images : ndarray of shape (n_samples, height, width, channels)
    indices : ndarray of int, default=None
        The rows to use; all when None.
    chunk_values : int, default=2**16
        Values converted to float64 at a time (512 KiB), at least one image.

    Returns
    -------
    mean, std : ndarray of shape (channels,)
        ``std`` is 1 where a channel is constant.
    """
    channels = images.shape[-1]
    chunk_size = max(1, chunk_values // max(1, int(np.prod(images.shape[1:]))))
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    count = 0
    n_rows = len(images) if indices is None else len(indices)
    read = RowReader(images)
    for start in range(0, n_rows, chunk_size):
        rows = (
            slice(start, start + chunk_size)
            if indices is None
            else (indices[start : start + chunk_size])
        )
        chunk = np.asarray(read(rows), dtype=np.float64)
        if chunk.size:
            check_float32_range(chunk)
        flat = chunk.reshape(-1, channels)
        total += flat.sum(axis=0)
        total_sq += np.square(flat).sum(axis=0)
        count += len(flat)
    mean = total / count
    variance = np.maximum(total_sq / count - mean**2, 0.0)
    std = np.sqrt(variance)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise ValueError(  # pragma: no cover - values within float32 keep these finite
            "X gives a non-finite mean or standard deviation of its pixel values; "
            "rescale X."
        )
    scale = np.maximum(np.abs(mean), 1.0)
    std[std <= 1e-7 * scale] = 1.0
    return mean, std
