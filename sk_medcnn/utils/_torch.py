"""Torch glue: devices, seeds, the batch dataset and the input adapter module.

Public arrays are channels-last ``(n, H, W, C)``; the switch to torch's
``(n, C, H, W)`` happens in one place, :class:`ImageNetwork`.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.utils import check_random_state
from torch import nn

from ._image_source import ImageSource

BatchAugmenter = Callable[[torch.Tensor], torch.Tensor]


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"`` (CUDA if present, else Apple MPS, else CPU) into a device.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        If the string is not a device torch knows, or names a CUDA device
        that this machine does not have.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or another torch "
            f"device; got {device!r}."
        ) from error
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but CUDA is not available on this machine; "
                "use device='auto' or 'cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    return resolved


def draw_seeds(random_state: Any, n_seeds: int) -> list[int]:
    """Draw ``n_seeds`` independent 31-bit seeds from ``random_state``.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        Resolved with :func:`sklearn.utils.check_random_state`.
    n_seeds : int
        How many seeds.

    Returns
    -------
    seeds : list of int
    """
    rng = check_random_state(random_state)
    return [int(seed) for seed in rng.randint(np.iinfo(np.int32).max, size=n_seeds)]


@contextlib.contextmanager
def seeded_torch(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global generators inside the block and restore them after.

    Network initialisers and dropout read torch's global generator; this keeps
    that seeding from leaking into the user's session.
    """
    # torch.manual_seed seeds every device of the accelerator: restore them all
    devices: list[int] = []
    device_type = "cuda"
    if device.type == "cuda":
        devices = list(range(torch.cuda.device_count()))
    elif device.type != "cpu":
        devices, device_type = [device.index or 0], device.type
    with torch.random.fork_rng(devices=devices, device_type=device_type):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``n_threads`` torch intra-op threads, then restore.

    ``None`` leaves torch's setting alone. The setting is per process, so
    concurrent blocks in threads of one process share it.
    """
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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

    Attributes
    ----------
    y : ndarray or None
        The targets of the held rows (what skorch's scoring callbacks read).
    """

    def __init__(
        self,
        X: NDArray[Any],
        y: NDArray[Any] | None = None,
        *,
        indices: NDArray[np.intp] | None = None,
    ) -> None:
        self.X = X
        self.indices = indices
        self.y = y if y is None or indices is None else y[indices]
        self._read = RowReader(X)

    def __len__(self) -> int:
        return len(self.X) if self.indices is None else len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([index])

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = np.asarray(indices, dtype=np.intp)
        rows = index if self.indices is None else self.indices[index]
        batch = np.asarray(self._read(rows))
        check_float32_range(batch)
        images = torch.from_numpy(np.asarray(batch, dtype=np.float32))
        if self.y is None:
            targets = torch.zeros(len(index), dtype=torch.float32)
        else:
            targets = torch.from_numpy(np.asarray(self.y[index]))
        return images, targets


def collate_batch(batch: Any) -> Any:
    """Return a batch already gathered by ``ArrayDataset.__getitems__``."""
    return batch


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
        ``"channels_last"``.
        """
        if self.memory_format == "channels_last":
            return
        self.body = self.body.to(  # type: ignore[call-overload]  # stubs lack memory_format
            memory_format=_torch_memory_format("channels_last", self.spatial_dims)
        )
        _avoid_strided_pointwise_convolutions(self.body)
        self.memory_format = "channels_last"

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
        Usually an :class:`ImageNetwork`.
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
    """
    views = [View(False, False, 0, 0)] if views is None else list(views)
    outputs: list[list[torch.Tensor]] = [[] for _ in views]
    captured: list[NDArray[Any]] = []
    recording = [False]
    handle = None
    if capture is not None:
        target, side = capture

        def keep(tensor: torch.Tensor) -> None:
            if recording[0]:
                features = _pooled(tensor).numpy()
                captured.append(features if reduce is None else reduce(features))

        if side == "input":
            handle = target.register_forward_pre_hook(lambda _, args: keep(args[0]))
        else:
            handle = target.register_forward_hook(lambda _, args, out: keep(out))
    try:
        for tensor in _inference_batches(module, images, device, batch_size):
            for index, (view, collected) in enumerate(zip(views, outputs, strict=True)):
                recording[0] = index == 0
                collected.append(module(apply_view(tensor, view)).float().cpu())
    finally:
        if handle is not None:
            handle.remove()
    stacked = torch.stack([torch.cat(collected) for collected in outputs]).numpy()
    if capture is None:
        return stacked, None
    if not captured:
        return stacked, np.zeros((0, 0), dtype=np.float32)
    return stacked, np.concatenate(captured)


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


def warn_cpu_fallback(requested: str) -> None:
    """Warn that a model saved on ``requested`` is used on the CPU."""
    warnings.warn(
        f"the model was trained on {requested!r}, which is not available here; "
        "it now runs on the CPU.",
        stacklevel=3,
    )
