"""Intensity transformers: IntensityWindow, IntensityNormalizer and CLAHE."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..utils._validation import (
    Checker,
    boolean,
    closed_fraction,
    finite_number,
    one_of,
    optional,
    positive_float,
    spatial_dims_like,
)
from ..utils._window import WINDOW_PRESETS, apply_window
from ._base import (
    _ImageTransformer,
    iter_chunks,
    spatial_size,
    spatial_size_like,
)
from ._clahe import equalize_adapthist_batch

__all__ = ["CLAHE", "IntensityNormalizer", "IntensityWindow"]


_METHODS = ("zscore", "minmax", "percentile")

#: Largest value range whose exact percentiles are taken from a histogram.
_MAX_HISTOGRAM_BINS = 2**20


def _percentile_pair(value: Any, name: str) -> None:
    """Check that ``value`` is ``(low, high)`` with ``0 <= low < high <= 100``."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(
            f"{name} must be a tuple (low, high) of percentiles; got {value!r}."
        )
    for bound in value:
        finite_number(bound, name)
    low, high = value
    if not 0 <= low < high <= 100:
        raise ValueError(
            f"{name} must satisfy 0 <= low < high <= 100; got {tuple(value)!r}."
        )


class IntensityWindow(_ImageTransformer):
    """Map a CT window ``level +/- width / 2`` (in HU) onto [0, 1], clipping outside.

    Give either ``level`` and ``width`` or a named ``preset``, not both.

    Parameters
    ----------
    level : float, default=None
        Window level (centre) in Hounsfield units (HU); DICOM's Window Center.
    width : float, default=None
        Window width in HU, > 0.
    preset : {"lung", "mediastinum", "abdomen", "bone", "brain"}, default=None
        A standard window as (level, width) in HU: lung (-600, 1500),
        mediastinum (50, 350), abdomen (40, 400), bone (400, 1800),
        brain (40, 80).
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen in ``fit`` (``height * width * channels``).
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame of flat pixels given to ``fit``.

    See Also
    --------
    IntensityNormalizer : Scale by image or data-set statistics instead.

    Notes
    -----
    The output is ``clip((X - (level - width / 2)) / width, 0, 1)`` as
    float32, computed in float32 without a float64 copy. This is the plain
    linear window of radiology viewers; DICOM's VOI LUT function (PS3.3
    C.11.2.1.2.1) differs by half a unit at the edges, which is negligible
    for windows hundreds of HU wide. Apply it to HU values: pixel data
    rescaled with the DICOM ``rescale_slope`` and ``rescale_intercept``.
    Preset sources are given in ``WINDOW_PRESETS`` in the source. The
    window is applied voxel by voxel, so CT volumes ``(n, D, H, W)`` in HU
    are windowed the same way.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.preprocessing import IntensityWindow
    >>> X = np.array([[[-1000.0, 40.0, 240.0]]])
    >>> IntensityWindow(level=40, width=400).fit_transform(X)
    array([[[0. , 0.5, 1. ]]], dtype=float32)
    >>> IntensityWindow(preset="lung").fit_transform(X)
    array([[[0.23333333, 0.9266667 , 1.        ]]], dtype=float32)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "level": optional(finite_number),
        "width": optional(positive_float),
        "preset": optional(one_of(tuple(WINDOW_PRESETS))),
        "spatial_dims": spatial_dims_like,
    }
    _keeps_dtype = False

    def __init__(
        self,
        level: float | None = None,
        width: float | None = None,
        *,
        preset: str | None = None,
        spatial_dims: int | str = "auto",
    ) -> None:
        self.level = level
        self.width = width
        self.preset = preset
        self.spatial_dims = spatial_dims

    def _check_param_combination(self) -> None:
        if self.preset is not None:
            if self.level is not None or self.width is not None:
                raise ValueError(
                    f"give either preset (got {self.preset!r}) or level and width "
                    f"(got level={self.level!r}, width={self.width!r}), not both."
                )
        elif self.level is None or self.width is None:
            raise ValueError(
                "IntensityWindow needs level and width (in HU), or a preset "
                f"({', '.join(repr(name) for name in WINDOW_PRESETS)}); got "
                f"level={self.level!r}, width={self.width!r}."
            )

    def _window(self) -> tuple[float, float]:
        if self.preset is not None:
            return WINDOW_PRESETS[self.preset]
        return float(self.level), float(self.width)  # type: ignore[arg-type]

    def _transform_images(self, images: NDArray[Any]) -> NDArray[np.float32]:
        return apply_window(images, *self._window())


class IntensityNormalizer(_ImageTransformer):
    """Scale intensities by per-image or data-set statistics, to float32.

    Parameters
    ----------
    method : {"zscore", "minmax", "percentile"}, default="zscore"
        ``"zscore"``: subtract the mean and divide by the standard deviation.
        ``"minmax"``: map ``[min, max]`` onto [0, 1].
        ``"percentile"``: map the ``percentiles`` onto [0, 1] and clip
        outside them (robust to a few extreme pixels).
    per_image : bool, default=True
        If True, statistics are computed for each image and channel, and
        the transformer is stateless. If False, ``fit`` learns them per
        channel over the whole training set, and ``transform`` applies them.
    percentiles : tuple of (float, float), default=(1, 99)
        Lower and upper percentiles of ``method="percentile"``,
        ``0 <= low < high <= 100``.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Attributes
    ----------
    mean_ : ndarray of shape (n_channels,)
        Per-channel mean of the training images (``method="zscore"``,
        ``per_image=False``).
    scale_ : ndarray of shape (n_channels,)
        Per-channel standard deviation, 1 where it is 0 (``method="zscore"``,
        ``per_image=False``).
    low_, high_ : ndarray of shape (n_channels,)
        Per-channel minimum and maximum (``"minmax"``) or percentiles
        (``"percentile"``) of the training images (``per_image=False``).
    n_features_in_ : int
        Values per image seen in ``fit`` (``height * width * channels``).
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame of flat pixels given to ``fit``.

    See Also
    --------
    IntensityWindow : Fixed CT windows in Hounsfield units.
    sklearn.preprocessing.StandardScaler : Per-pixel (not per-channel) scaling.

    Notes
    -----
    Constant images (or channels), whose statistics give no scale, map to 0,
    never to NaN: a standard deviation of 0 is replaced by 1 (as
    :class:`~sklearn.preprocessing.StandardScaler` does), so ``X - mean`` is
    0; an empty range (``min == max``, or coinciding percentiles) gives a
    threshold: 1 above ``low``, 0 elsewhere, hence 0 for a constant image.

    With ``per_image=False``, ``"minmax"`` does not clip: images outside the
    training range map outside [0, 1] (as
    :class:`~sklearn.preprocessing.MinMaxScaler` does); ``"percentile"``
    clips. Images in ``transform`` must have as many channels as in ``fit``.

    Volumes are normalised the same way, their statistics taken over all
    their voxels (per volume and channel with ``per_image=True``).

    Memory: images are processed in chunks of a few tens of MB, with float32
    temporaries and float64 accumulators; no float64 copy of ``X`` is made.
    Data-set percentiles of integer images come exactly from a histogram;
    for float images each channel is copied once (in its own dtype) to be
    partitioned.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.preprocessing import IntensityNormalizer
    >>> X = np.array([[[0, 50], [100, 150]], [[7, 7], [7, 7]]], dtype=np.uint8)
    >>> IntensityNormalizer(method="minmax").fit_transform(X)
    array([[[0.        , 0.33333334],
            [0.6666667 , 1.        ]],
    <BLANKLINE>
           [[0.        , 0.        ],
            [0.        , 0.        ]]], dtype=float32)
    >>> normalizer = IntensityNormalizer(per_image=False).fit(X)
    >>> normalizer.mean_.round(3), normalizer.scale_.round(3)
    (array([41.]), array([52.139]))
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "method": one_of(_METHODS),
        "per_image": boolean,
        "percentiles": _percentile_pair,
        "spatial_dims": spatial_dims_like,
    }
    _keeps_dtype = False

    def __init__(
        self,
        method: str = "zscore",
        *,
        per_image: bool = True,
        percentiles: tuple[float, float] = (1, 99),
        spatial_dims: int | str = "auto",
    ) -> None:
        self.method = method
        self.per_image = per_image
        self.percentiles = percentiles
        self.spatial_dims = spatial_dims

    def _fitted_attributes(self) -> list[str] | None:
        if self.per_image:
            return None
        if self.method == "zscore":
            return ["mean_", "scale_"]
        return ["low_", "high_"]

    # --- fit: data-set statistics ------------------------------------------------
    def _fit_images(self, images: NDArray[Any]) -> None:
        if self.per_image:
            return
        if self.method == "zscore":
            mean, variance = _channel_moments(images)
            scale = np.sqrt(variance)
            self.mean_ = mean
            self.scale_ = np.where(_is_zero_scale(scale, mean), 1.0, scale)
        elif self.method == "minmax":
            all_but_channels = tuple(range(images.ndim - 1))
            self.low_ = images.min(axis=all_but_channels).astype(np.float64)
            self.high_ = images.max(axis=all_but_channels).astype(np.float64)
        else:
            low, high = self.percentiles
            self.low_, self.high_ = _channel_percentiles(
                images, (float(low), float(high))
            )

    # --- transform --------------------------------------------------------------
    def _transform_images(self, images: NDArray[Any]) -> NDArray[np.float32]:
        n_samples, channels = images.shape[0], images.shape[-1]
        if not self.per_image:
            fitted_channels = self.image_shape_[-1]
            if channels != fitted_channels:
                raise ValueError(
                    f"X has images with {channels} channel(s), but "
                    f"IntensityNormalizer was fitted on images with "
                    f"{fitted_channels}; its statistics are per channel."
                )
        out = np.empty(images.shape, dtype=np.float32)
        bytes_per_image = 3 * math.prod(images.shape[1:]) * 4
        for chunk in iter_chunks(n_samples, bytes_per_image):
            out[chunk] = self._normalize(images[chunk])
        return out

    def _normalize(self, block: NDArray[Any]) -> NDArray[np.float32]:
        """Normalise a chunk ``(m, H, W, C)`` or ``(m, D, H, W, C)``; float32 out."""
        values = block.astype(np.float32)
        spatial = tuple(range(1, block.ndim - 1))  # per image and channel
        if self.method == "zscore":
            if self.per_image:
                mean = values.mean(axis=spatial, keepdims=True, dtype=np.float64)
                values -= mean.astype(np.float32)
                variance = np.mean(
                    np.square(values), axis=spatial, keepdims=True, dtype=np.float64
                )
                scale = np.sqrt(variance)
                scale[_is_zero_scale(scale, mean)] = 1.0
            else:
                values -= self.mean_.astype(np.float32)
                scale = self.scale_
            values *= (1 / scale).astype(np.float32)
            return values
        if self.per_image:
            if self.method == "minmax":
                low = block.min(axis=spatial, keepdims=True).astype(np.float64)
                high = block.max(axis=spatial, keepdims=True).astype(np.float64)
            else:
                low, high = np.percentile(
                    block, self.percentiles, axis=spatial, keepdims=True
                )
        else:
            low, high = self.low_, self.high_
        return _scale_to_unit(
            values, low, high, clip=self.per_image or self.method == "percentile"
        )


def _is_zero_scale(
    scale: NDArray[np.float64], mean: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Scales that are 0 up to float32 rounding of values around ``mean``."""
    return scale <= 10 * np.finfo(np.float32).eps * np.abs(mean)


def _scale_to_unit(
    values: NDArray[np.float32],
    low: NDArray[np.float64],
    high: NDArray[np.float64],
    *,
    clip: bool,
) -> NDArray[np.float32]:
    """Map ``[low, high]`` onto [0, 1], in place; a zero range thresholds at ``low``."""
    span = high - low
    empty = span == 0
    values -= np.asarray(low, dtype=np.float32)
    if np.any(empty):
        # nothing to scale by: 1 above low, 0 elsewhere (0 for a constant image)
        above = values > 0
        values *= (1 / np.where(empty, 1, span)).astype(np.float32)
        values[np.broadcast_to(empty, values.shape)] = 0
        values[np.broadcast_to(empty, values.shape) & above] = 1
    else:
        values *= (1 / span).astype(np.float32)
    if clip:
        np.clip(values, 0, 1, out=values)
    return values


def _channel_moments(
    images: NDArray[Any],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-channel mean and variance of all pixels, chunk by chunk.

    Chunks are combined with Chan et al.'s pairwise update, so no float64
    copy of the images is made and the variance is numerically stable.
    """
    n_samples, channels = images.shape[0], images.shape[-1]
    n_values = math.prod(images.shape[1:-1])  # per image and channel
    all_but_channels = tuple(range(images.ndim - 1))
    count = 0
    mean = np.zeros(channels)
    sum_squares = np.zeros(channels)  # sum of squared deviations from mean
    for chunk in iter_chunks(n_samples, 2 * n_values * channels * 4):
        values = images[chunk].astype(np.float32)
        chunk_count = values.shape[0] * n_values
        chunk_mean = values.mean(axis=all_but_channels, dtype=np.float64)
        values -= chunk_mean.astype(np.float32)
        chunk_squares = np.square(values).sum(axis=all_but_channels, dtype=np.float64)
        # the mean was rounded to float32; correct the sum of squares for it
        residual = values.mean(axis=all_but_channels, dtype=np.float64)
        chunk_squares -= chunk_count * residual**2
        total = count + chunk_count
        delta = chunk_mean - mean
        mean = mean + delta * chunk_count / total
        sum_squares += chunk_squares + delta**2 * count * chunk_count / total
        count = total
    return mean, sum_squares / count


def _channel_percentiles(
    images: NDArray[Any], percentiles: tuple[float, float]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-channel percentiles of all pixels, as ``np.percentile`` computes them.

    Integer images with a moderate value range are counted into a histogram
    chunk by chunk (exact, and no copy); otherwise each channel is copied
    once, in its own dtype, and partitioned.
    """
    channels = images.shape[-1]
    low = np.empty(channels)
    high = np.empty(channels)
    for channel in range(channels):
        values = images[..., channel]
        if images.dtype.kind in "iu":
            minimum, maximum = int(values.min()), int(values.max())
            if maximum - minimum < _MAX_HISTOGRAM_BINS:
                low[channel], high[channel] = _histogram_percentiles(
                    values, minimum, maximum, percentiles
                )
                continue
        flat = values.ravel()  # a copy, since a channel of (n, H, W, C) is strided
        if np.shares_memory(flat, images):
            flat = flat.copy()
        low[channel], high[channel] = np.percentile(
            flat, percentiles, overwrite_input=True
        )
    return low, high


def _histogram_percentiles(
    values: NDArray[np.integer[Any]],
    minimum: int,
    maximum: int,
    percentiles: Sequence[float],
) -> tuple[float, float]:
    """Exact "linear" percentiles of integers from their histogram."""
    n_samples = values.shape[0]
    counts = np.zeros(maximum - minimum + 1, dtype=np.int64)
    per_image = int(np.prod(values.shape[1:]))
    for chunk in iter_chunks(n_samples, per_image * 8):
        counts += np.bincount(
            (values[chunk].astype(np.int64) - minimum).ravel(),
            minlength=counts.size,
        )
    cumulative = np.cumsum(counts)
    n_values = int(cumulative[-1])
    result = []
    for q in percentiles:
        # np.percentile's default ("linear"): interpolate between the sorted
        # values at ranks floor(r) and floor(r) + 1, r = q / 100 * (n - 1)
        rank = q / 100 * (n_values - 1)
        below = int(np.floor(rank))
        above = min(below + 1, n_values - 1)
        value_below = np.searchsorted(cumulative, below, side="right") + minimum
        value_above = np.searchsorted(cumulative, above, side="right") + minimum
        fraction = rank - below
        result.append(float(value_below + fraction * (value_above - value_below)))
    return result[0], result[1]


class CLAHE(_ImageTransformer):
    """Contrast limited adaptive histogram equalisation, batched, to [0, 1].

    Equalises each image as :func:`skimage.exposure.equalize_adapthist` does,
    but all images of a batch at once: the same algorithm, vectorised over the
    batch, with bit-identical results for uint8 and uint16 images and for
    float images in [0, 1]. On two cores that is about 12 times faster than a
    per-image loop for 28x28 images and 3-4 times for 224x224 images
    (``benchmarks/bench_preprocessing.py``); splitting the batch over joblib
    threads or processes measured no faster, so there is no ``n_jobs``.

    Parameters
    ----------
    clip_limit : float, default=0.01
        Clipping limit of the local histograms, in [0, 1]; higher gives more
        contrast, 0 gives unclipped adaptive equalisation.
    kernel_size : int or tuple of (int, int) or of (int, int, int), default=None
        ``(height, width)`` of the contextual regions, ``(depth, height,
        width)`` for volumes; ``None`` is 1/8 of each size.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen in ``fit`` (``height * width * channels``).
    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame of flat pixels given to ``fit``.

    See Also
    --------
    IntensityNormalizer : Global rather than local contrast scaling.
    skimage.exposure.equalize_adapthist : The per-image function this batches.

    Notes
    -----
    CLAHE [1]_ equalises the histogram of each contextual region, clipping it
    at ``clip_limit`` first so that noise is not amplified, and interpolates
    bilinearly between the mappings of neighbouring regions.

    As ``equalize_adapthist`` does, each image is first stretched over its own
    range, and the result is stretched to [0, 1]; output is float32.
    Single-channel images are equalised directly; three-channel images are
    taken as RGB and their HSV value is equalised (float RGB must lie in
    [0, 1]); other channel counts are equalised channel by channel.

    Differences from ``equalize_adapthist``: constant images map to 0 (it
    maps them to 1); floats outside [-1, 1], such as Hounsfield units or
    z-scores, are accepted (it refuses them); negative integers (int16 CT)
    are stretched from their values (it first clips them to 0).

    Volumes are equalised in 3-D, with 3-D contextual regions, one volume and
    channel at a time by ``equalize_adapthist`` itself (which supports
    n-dimensional images): each is stretched over its own range to [0, 1]
    first, and a constant one maps to 0. This is not batched, so it is
    slower per voxel than the 2-D path.

    References
    ----------
    .. [1] K. Zuiderveld, "Contrast Limited Adaptive Histogram Equalization",
       in P. S. Heckbert (ed.), Graphics Gems IV, Academic Press, 1994,
       pp. 474-485.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.preprocessing import CLAHE
    >>> X = np.random.default_rng(0).integers(0, 64, (4, 32, 32), dtype=np.uint8)
    >>> X_eq = CLAHE(clip_limit=0.02).fit_transform(X)
    >>> X_eq.shape, X_eq.dtype, float(X_eq.min()), float(X_eq.max())
    ((4, 32, 32), dtype('float32'), 0.0, 1.0)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "clip_limit": closed_fraction,
        "kernel_size": optional(spatial_size_like),
        "spatial_dims": spatial_dims_like,
    }
    _keeps_dtype = False

    def __init__(
        self,
        clip_limit: float = 0.01,
        kernel_size: int | tuple[int, ...] | None = None,
        *,
        spatial_dims: int | str = "auto",
    ) -> None:
        self.clip_limit = clip_limit
        self.kernel_size = kernel_size
        self.spatial_dims = spatial_dims

    def _transform_images(self, images: NDArray[Any]) -> NDArray[np.float32]:
        if self.kernel_size is not None:
            spatial_size(self.kernel_size, images, "kernel_size", "CLAHE")
        if images.ndim == 5:
            return self._equalize_volumes(images)
        kernel_size: int | tuple[int, int] | None = None
        if self.kernel_size is not None:  # an int or two sizes, checked above
            height, width = spatial_size(
                self.kernel_size, images, "kernel_size", "CLAHE"
            )
            kernel_size = (height, width)
        return equalize_adapthist_batch(
            images, kernel_size=kernel_size, clip_limit=float(self.clip_limit)
        )

    def _equalize_volumes(self, volumes: NDArray[Any]) -> NDArray[np.float32]:
        from skimage.exposure import equalize_adapthist

        # the function without its RGB adapter, which would take a volume
        # whose last axis has 3 or 4 voxels for an RGB image
        equalize = getattr(equalize_adapthist, "__wrapped__", equalize_adapthist)
        kernel = (
            None
            if self.kernel_size is None
            else spatial_size(self.kernel_size, volumes, "kernel_size", "CLAHE")
        )
        out = np.empty(volumes.shape, dtype=np.float32)
        for index in np.ndindex(volumes.shape[0], volumes.shape[-1]):
            sample, channel = index
            volume = volumes[sample, ..., channel].astype(np.float64)
            low, high = volume.min(), volume.max()
            if high == low:
                out[sample, ..., channel] = 0
                continue
            out[sample, ..., channel] = equalize(
                (volume - low) / (high - low),
                kernel_size=kernel,
                clip_limit=float(self.clip_limit),
            )
        return out
