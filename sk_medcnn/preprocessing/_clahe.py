"""Batched CLAHE: scikit-image's ``equalize_adapthist`` on many images at once.

``skimage.exposure.equalize_adapthist`` handles one image per call, and most
of its time goes to Python-level work per tile (``np.apply_along_axis`` over
the histograms of the contextual regions). For a batch of images of one size
the same algorithm vectorises over the batch: every tile of every image is a
row of one histogram array, and the redistribution of clipped counts runs
over all rows at once. Each step below mirrors scikit-image's code
(``skimage/exposure/_adapthist.py``, as of 0.26) operation for operation, so
that the results are bit-identical for uint8 and uint16 images and for float
images in [0, 1]; ``tests/preprocessing/test_clahe.py`` checks this against
the installed scikit-image.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from skimage.color import hsv2rgb, rgb2hsv

from ._base import iter_chunks

#: Grey levels of the CLAHE algorithm, as skimage's ``NR_OF_GRAY``.
N_GRAY = 2**14

#: Temporaries per chunk: the histogram tables of a few MB stay in cache and
#: are reused by the allocator; 4 MB measured about twice as fast as 32 MB.
_CHUNK_BYTES = 4 * 2**20


def equalize_adapthist_batch(
    images: NDArray[Any],
    *,
    kernel_size: int | tuple[int, int] | None = None,
    clip_limit: float = 0.01,
    nbins: int = 256,
) -> NDArray[np.float32]:
    """Equalise channels-last images ``(n, H, W, C)`` with CLAHE.

    One channel is equalised as a grey image; three channels are taken as
    RGB and their HSV value is equalised (as ``equalize_adapthist`` does);
    any other number of channels is equalised channel by channel.

    Parameters
    ----------
    images : ndarray of shape (n_samples, height, width, channels)
        Real-valued images. Three-channel float images must lie in [0, 1].
    kernel_size : int or tuple of (int, int), default=None
        Size of the contextual regions; ``None`` is 1/8 of the height and
        of the width (at least 1 pixel).
    clip_limit : float, default=0.01
        Clipping limit in [0, 1]; 0 gives plain adaptive equalisation.
    nbins : int, default=256
        Histogram bins.

    Returns
    -------
    equalised : ndarray of shape (n_samples, height, width, channels), dtype float32
        Values in [0, 1]; constant images (or constant HSV values) map to 0.
    """
    n_samples, height, width, channels = images.shape
    if kernel_size is None:
        kernel = (max(height // 8, 1), max(width // 8, 1))
    elif isinstance(kernel_size, int | np.integer):
        kernel = (int(kernel_size), int(kernel_size))
    else:
        kernel = (int(kernel_size[0]), int(kernel_size[1]))
    out = np.empty(images.shape, dtype=np.float32)
    bytes_per_image = _bytes_per_image(height, width, kernel, nbins) * channels
    for chunk in iter_chunks(n_samples, bytes_per_image, chunk_bytes=_CHUNK_BYTES):
        block = images[chunk]
        if channels == 3:
            if block.dtype.kind == "f" and (block.min() < 0 or block.max() > 1):
                raise ValueError(
                    "CLAHE takes three-channel images as RGB and equalises their "
                    "HSV value, as skimage.exposure.equalize_adapthist does: float "
                    f"RGB images must lie in [0, 1]; got values from {block.min()} "
                    f"to {block.max()}. Scale them first, or convert them with "
                    "ToGrayscale."
                )
            hsv = rgb2hsv(block, channel_axis=-1)
            hsv[..., 2] = _equalize_grey(hsv[..., 2], kernel, clip_limit, nbins)
            out[chunk] = hsv2rgb(hsv, channel_axis=-1)
        else:
            grey = np.moveaxis(block, -1, 1).reshape(-1, height, width)
            equalised = _equalize_grey(grey, kernel, clip_limit, nbins)
            out[chunk] = np.moveaxis(
                equalised.reshape(-1, channels, height, width), 1, -1
            )
    return out


def _bytes_per_image(
    height: int, width: int, kernel: tuple[int, int], nbins: int
) -> int:
    """Rough size of one image's temporaries (the mapping tables dominate)."""
    padded = (height + 2 * kernel[0]) * (width + 2 * kernel[1])
    n_maps = (padded // (kernel[0] * kernel[1]) + 4) * nbins
    return 8 * n_maps + 48 * padded


def _equalize_grey(
    images: NDArray[Any], kernel: tuple[int, int], clip_limit: float, nbins: int
) -> NDArray[np.floating[Any]]:
    """CLAHE of grey images ``(m, H, W)``; float in [0, 1], constants map to 0."""
    levels, constant = _grey_levels(images)
    equalised = _clahe(levels, kernel, clip_limit, nbins)
    # equalize_adapthist ends with rescale_intensity in the input's float type
    float_type = np.float32 if images.dtype in (np.float16, np.float32) else np.float64
    result = equalised.astype(float_type)
    low = result.min(axis=(1, 2), keepdims=True)
    high = result.max(axis=(1, 2), keepdims=True)
    span = high - low
    flat = span == 0
    # rescale_intensity clips a constant result to [0, 1] (so a uniform
    # equalised image is 1); a constant input maps to 0 here, not to 1
    low[flat] = 0
    span[flat] = 1
    result = np.clip((result - low) / span, 0, 1)
    result[constant] = 0
    return result


def _grey_levels(
    images: NDArray[Any],
) -> tuple[NDArray[np.uint16], NDArray[np.bool_]]:
    """Map each image to the integer levels [0, N_GRAY - 1] over its own range.

    ``equalize_adapthist`` converts to uint16 (``img_as_uint``), then stretches
    each image to ``[0, N_GRAY - 1]`` (``rescale_intensity``). Integers are
    stretched from their exact values (for uint8 and uint16 that is the same
    computation: ``257 * a / (257 * b) == a / b`` in floating point); floats
    in [0, 1] are first quantised to 16 bits as ``img_as_uint`` does; other
    floats, which ``img_as_uint`` refuses, are first mapped to [0, 1]. Also
    return which images are constant.
    """
    low = images.min(axis=(1, 2))
    high = images.max(axis=(1, 2))
    if images.dtype.kind == "f":
        compute = np.float32 if images.dtype in (np.float16, np.float32) else np.float64
        in_unit = (low >= 0) & (high <= 1)
        offset: NDArray[Any] = np.where(in_unit, 0, low).astype(compute)
        span: NDArray[Any] = (high - low).astype(compute)
        safe_span = np.where(span == 0, 1, span)
        scale: NDArray[Any] = np.where(in_unit | (span == 0), 1, 1 / safe_span)
        shifted: NDArray[Any] = images.astype(compute) - offset[:, None, None]
        unit = shifted * scale.astype(compute)[:, None, None]
        values = np.rint(np.multiply(unit, 65535, dtype=compute))
        np.clip(values, 0, 65535, out=values)
        values = values.astype(np.float64)
        low = values.min(axis=(1, 2))
        high = values.max(axis=(1, 2))
    else:
        values = images.astype(np.float64)
        low = low.astype(np.float64)
        high = high.astype(np.float64)
    constant = high == low
    span = np.where(constant, 1.0, high - low)[:, None, None]
    stretched = (values - low[:, None, None]) / span * (N_GRAY - 1) + 0.0
    return np.round(stretched).astype(np.uint16), constant


def _clahe(
    image: NDArray[np.uint16], kernel: tuple[int, int], clip_limit: float, nbins: int
) -> NDArray[np.uint16]:
    """Equalise a batch ``(m, H, W)`` of level images as skimage's ``_clahe`` does.

    The steps: pad the images to whole tiles and bin their levels, map each
    contextual region's clipped histogram to a lookup table, interpolate every
    pixel between its four surrounding tables, then cut the padding off.
    """
    shape = image.shape[1:]
    pad_start = [k // 2 for k in kernel]
    pad_end = [
        (k - s % k) % k + math.ceil(k / 2.0) for k, s in zip(kernel, shape, strict=True)
    ]
    binned = _pad_and_bin(image, pad_start, pad_end, nbins)
    maps = _region_maps(binned, kernel, clip_limit, nbins)
    equalised = _interpolate_maps(binned, maps, kernel)
    padded = binned.shape[1:]
    return equalised[
        :,
        pad_start[0] : padded[0] - pad_end[0],
        pad_start[1] : padded[1] - pad_end[1],
    ]


def _pad_and_bin(
    image: NDArray[np.uint16], pad_start: list[int], pad_end: list[int], nbins: int
) -> NDArray[np.uint16]:
    """Reflect-pad the images ``(m, H, W)`` and map their levels to ``nbins`` bins."""
    image = np.pad(
        image,
        [(0, 0)]
        + [(start, end) for start, end in zip(pad_start, pad_end, strict=True)],
        mode="reflect",
    )
    bin_size = 1 + N_GRAY // nbins
    lut = np.arange(N_GRAY, dtype=np.uint16) // bin_size
    return lut[image]


def _region_maps(
    image: NDArray[np.uint16], kernel: tuple[int, int], clip_limit: float, nbins: int
) -> NDArray[np.int32]:
    """Return the lookup table of every contextual region, edge-padded by one.

    The histograms of the regions (one row per tile of every image) are
    clipped at ``clip_limit`` and turned into tables over ``[0, N_GRAY - 1]``;
    the result has shape ``(m, n_tile_rows + 2, n_tile_columns + 2, nbins)``.
    """
    n_images = image.shape[0]
    kernel_height, kernel_width = kernel
    n_tiles = [int(s / k) - 1 for s, k in zip(image.shape[1:], kernel, strict=True)]
    tiles = image[
        :,
        kernel_height // 2 : kernel_height // 2 + n_tiles[0] * kernel_height,
        kernel_width // 2 : kernel_width // 2 + n_tiles[1] * kernel_width,
    ]
    tiles = tiles.reshape(
        n_images, n_tiles[0], kernel_height, n_tiles[1], kernel_width
    ).transpose(0, 1, 3, 2, 4)
    n_rows = n_images * n_tiles[0] * n_tiles[1]
    offsets = np.arange(n_rows, dtype=np.intp).reshape(
        n_images, n_tiles[0], n_tiles[1], 1, 1
    )
    hist = np.bincount(
        (tiles + offsets * nbins).ravel(), minlength=n_rows * nbins
    ).reshape(n_rows, nbins)
    hist = hist.astype(np.int32)  # counts <= kernel size; half the memory

    kernel_elements = kernel_height * kernel_width
    if clip_limit > 0.0:
        limit = int(np.clip(clip_limit * kernel_elements, 1, None))
    else:
        limit = kernel_elements
    _clip_histograms(hist, limit)
    maps = _map_histograms(hist, 0, N_GRAY - 1, kernel_elements)
    maps = maps.reshape(n_images, n_tiles[0], n_tiles[1], nbins)
    return np.pad(maps, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="edge")


def _interpolate_maps(
    image: NDArray[np.uint16], maps: NDArray[np.int32], kernel: tuple[int, int]
) -> NDArray[np.uint16]:
    """Map every pixel through its four surrounding tables, bilinearly weighted.

    skimage slices the table array per corner; here each pixel's entry is
    gathered by its flat index (the same values, without copying the tables).
    """
    n_images, map_rows, map_columns, nbins = maps.shape
    kernel_height, kernel_width = kernel
    padded = image.shape[1:]
    n_blocks = [int(s / k) for s, k in zip(padded, kernel, strict=True)]
    blocks = image.reshape(
        n_images, n_blocks[0], kernel_height, n_blocks[1], kernel_width
    ).transpose(0, 1, 3, 2, 4)
    corner = (
        np.arange(n_images, dtype=np.intp)[:, None, None] * map_rows
        + np.arange(n_blocks[0], dtype=np.intp)[:, None]
    ) * map_columns + np.arange(n_blocks[1], dtype=np.intp)
    index = corner[..., None, None] * nbins + blocks
    kernel_elements = kernel_height * kernel_width
    index = index.reshape(n_images, n_blocks[0] * n_blocks[1], kernel_elements)
    flat_maps = maps.ravel()
    grids = np.meshgrid(*tuple(np.arange(k) / k for k in kernel[::-1]), indexing="ij")
    coeffs = [np.transpose(c).flatten() for c in grids]
    inv_coeffs = [1 - c for c in coeffs]
    result = np.zeros(index.shape, dtype=np.float32)
    for edge in np.ndindex(2, 2):
        shift = (edge[0] * map_columns + edge[1]) * nbins
        edge_mapped = flat_maps[index + shift if shift else index]
        edge_coeffs = np.prod(
            [[inv_coeffs, coeffs][e][d] for d, e in enumerate(edge[::-1])], 0
        )
        result += (edge_mapped * edge_coeffs).astype(result.dtype)
    equalised = result.astype(np.uint16).reshape(
        n_images, n_blocks[0], n_blocks[1], kernel_height, kernel_width
    )
    return equalised.transpose(0, 1, 3, 2, 4).reshape(n_images, *padded)


@functools.lru_cache(maxsize=8)
def _periodic_masks(nbins: int) -> NDArray[np.bool_]:
    """``masks[s, j]`` is True where ``j`` is a multiple of ``s`` (``s >= 1``)."""
    steps = np.arange(nbins + 1)
    steps[0] = 1
    masks = np.arange(nbins) % steps[:, None] == 0
    masks.setflags(write=False)
    return masks


def _clip_histograms(hist: NDArray[np.integer[Any]], clip_limit: int) -> None:
    """Clip every row of ``hist`` in place, as skimage's ``clip_histogram`` does."""
    nbins = hist.shape[1]
    over = np.maximum(hist - clip_limit, 0)
    n_excess = over.sum(axis=1)
    hist -= over  # every bin is now at most clip_limit
    del over
    bin_incr = n_excess // nbins  # average bin increment
    rows = np.flatnonzero(bin_incr)  # rows where the steps below change anything
    if rows.size:
        part = hist[rows]
        incr = bin_incr[rows][:, None]
        upper = clip_limit - incr  # bins above this become clip_limit
        low_mask = part < upper
        n_excess[rows] -= low_mask.sum(axis=1) * bin_incr[rows]
        part += low_mask * incr
        mid_mask = (part >= upper) & (part < clip_limit)
        n_excess[rows] += np.where(mid_mask, part - clip_limit, 0).sum(axis=1)
        part[mid_mask] = clip_limit
        hist[rows] = part

    # redistribute the remaining excess, as skimage's while / for loops do,
    # over every row still holding some at once
    masks = _periodic_masks(nbins)
    active = np.flatnonzero(n_excess > 0)
    while active.size:
        previous = n_excess[active].copy()
        running = active
        for index in range(nbins):
            part = hist[running]
            under = part < clip_limit
            step = np.minimum(
                np.maximum(1, under.sum(axis=1) // n_excess[running]), nbins
            )
            # bins index, index + step, ... that are under the limit
            chosen = np.zeros_like(under)
            chosen[:, index:] = under[:, index:] & masks[step, : nbins - index]
            part += chosen
            hist[running] = part
            n_excess[running] -= chosen.sum(axis=1)
            running = running[n_excess[running] > 0]
            if running.size == 0:
                break
        # rows that went through every index: continue while they progress
        progressed = n_excess[running] != previous[np.searchsorted(active, running)]
        active = running[progressed]


def _map_histograms(
    hist: NDArray[np.integer[Any]], min_val: int, max_val: int, n_pixels: int
) -> NDArray[np.int32]:
    """Turn histograms into lookup tables, as skimage's ``map_histogram`` does.

    The values are those of skimage (the same float64 operations); they are
    stored as int32 rather than int64, which halves the tables' memory.
    """
    out = np.cumsum(hist, axis=-1).astype(float)
    out *= (max_val - min_val) / n_pixels
    out += min_val
    np.clip(out, a_min=None, a_max=max_val, out=out)
    return out.astype(np.int32)
