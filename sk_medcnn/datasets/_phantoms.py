"""Synthetic lesion phantoms: a labelled image data set for demos and tests."""

from __future__ import annotations

import logging
from numbers import Integral, Real
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sklearn.utils import check_random_state, check_scalar

__all__ = ["make_lesion_phantoms"]

logger = logging.getLogger(__name__)

# Appearance of the phantoms, on a [0, 1] intensity scale. Chosen so that, with
# the defaults, a linear model on raw pixels stays far from perfect while a
# lesion is plain to see (see the tests).
_BACKGROUND_LEVEL = 0.05  # air around the body
_BODY_LEVEL = (0.30, 0.50)  # per-image tissue brightness
_BODY_AXES = (0.36, 0.46)  # body semi-axes, as fractions of the image size
_TEXTURE_GRIDS = ((4, 0.10), (8, 0.08))  # (coarse grid cells, amplitude)
_CHANNEL_GAIN = (0.75, 1.0)  # per-image, per-channel tint when n_channels > 1
_CHUNK = 256  # images generated at once, bounding the float64 working memory


def _check_radius(lesion_radius: Any, image_size: int) -> tuple[float, float]:
    """Validate ``lesion_radius`` as a number or a ``(low, high)`` pair."""
    if isinstance(lesion_radius, Real) and not isinstance(lesion_radius, bool):
        low = high = float(lesion_radius)
    else:
        try:
            low, high = (float(value) for value in lesion_radius)
        except (TypeError, ValueError):
            raise ValueError(
                "lesion_radius must be a positive number or a (low, high) pair of "
                f"them; got {lesion_radius!r}."
            ) from None
    limit = image_size / 4
    if not 0 < low <= high <= limit:
        raise ValueError(
            "lesion_radius must satisfy 0 < low <= high <= image_size / 4 "
            f"(= {limit:g}, so that the lesion fits inside the body); "
            f"got {lesion_radius!r}."
        )
    return low, high


def _smooth_noise(
    rng: np.random.RandomState, n_images: int, image_size: int, grid: int
) -> NDArray[np.float64]:
    """Low-frequency noise: a coarse random grid, smoothly interpolated.

    The ``(grid + 1) x (grid + 1)`` random values sit on knots spanning the
    image; each pixel takes their Gaussian-weighted mean, applied separably as
    two small matrix products (much faster than ``scipy.ndimage.zoom``). Each
    image is scaled to zero mean and unit standard deviation, so the texture
    strength depends on neither the grid nor the image size.
    """
    weights = _knot_weights(image_size, grid)
    coarse = rng.standard_normal((n_images, grid + 1, grid + 1))
    texture = weights @ coarse @ weights.T
    texture -= texture.mean(axis=(1, 2), keepdims=True)
    texture /= texture.std(axis=(1, 2), keepdims=True) + 1e-12
    return texture


def _knot_weights(size: int, grid: int) -> NDArray[np.float64]:
    """Return the ``(size, grid + 1)`` interpolation weights of the noise grids.

    The ``grid + 1`` knots span the ``size`` pixels along one axis; each pixel
    takes the knots' Gaussian weights, normalised to sum to 1.
    """
    knots = np.linspace(-0.5, size - 0.5, grid + 1)
    width = 0.6 * (knots[1] - knots[0])
    pixels = np.arange(size, dtype=np.float64)
    weights = np.exp(-0.5 * ((pixels[:, None] - knots[None, :]) / width) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    return weights


def _shuffled_labels(
    rng: np.random.RandomState, n_samples: int, n_positive: int
) -> NDArray[np.int64]:
    """Return ``n_positive`` ones and zeros for the rest, in a random order."""
    y = np.zeros(n_samples, dtype=np.int64)
    y[:n_positive] = 1
    y = y[rng.permutation(n_samples)]
    return y


def _check_phantom_params(
    n_samples: Any,
    image_size: Any,
    lesion_fraction: Any,
    lesion_radius: Any,
    contrast: Any,
    noise: Any,
    n_channels: Any,
    dtype: Any,
    spatial_dims: Any,
) -> tuple[float, float, np.dtype[Any]]:
    """Validate the parameters; return the radius range and the output dtype."""
    check_scalar(n_samples, "n_samples", Integral, min_val=1)
    check_scalar(image_size, "image_size", Integral, min_val=8)
    check_scalar(lesion_fraction, "lesion_fraction", Real, min_val=0.0, max_val=1.0)
    low_radius, high_radius = _check_radius(lesion_radius, int(image_size))
    check_scalar(contrast, "contrast", Real, min_val=0.0, include_boundaries="neither")
    check_scalar(noise, "noise", Real, min_val=0.0)
    check_scalar(n_channels, "n_channels", Integral, min_val=1)
    try:
        out_dtype = np.dtype(dtype)
    except TypeError:
        out_dtype = None
    if out_dtype not in (np.dtype(np.uint8), np.dtype(np.float32)):
        raise ValueError(f"dtype must be 'uint8' or 'float32'; got {dtype!r}.")

    if isinstance(spatial_dims, bool) or spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3; got {spatial_dims!r}.")
    return low_radius, high_radius, out_dtype


class _ImageDraws(NamedTuple):
    """The random per-image parameters of the 2-D phantoms."""

    y: NDArray[np.int64]
    body_center: NDArray[np.float64]
    body_axes: NDArray[np.float64]
    body_angle: NDArray[np.float64]
    body_level: NDArray[np.float64]
    radius: NDArray[np.float64]
    aspect: NDArray[np.float64]
    lesion_angle: NDArray[np.float64]
    lesion_center: NDArray[np.float64]
    gains: NDArray[np.float64]


def _draw_image_params(
    rng: np.random.RandomState,
    n_samples: int,
    n_positive: int,
    image_size: int,
    radius_range: tuple[float, float],
    n_channels: int,
) -> _ImageDraws:
    """Draw the labels, bodies, lesions and channel gains of the 2-D phantoms."""
    y = _shuffled_labels(rng, n_samples, n_positive)

    center = (image_size - 1) / 2
    body_center = center + rng.uniform(-0.06, 0.06, (n_samples, 2)) * image_size
    body_axes = rng.uniform(*_BODY_AXES, (n_samples, 2)) * image_size
    body_angle = rng.uniform(0.0, np.pi, n_samples)
    body_level = rng.uniform(*_BODY_LEVEL, n_samples)

    radius = rng.uniform(*radius_range, n_samples)
    aspect = rng.uniform(0.8, 1.25, n_samples)  # roughly round
    lesion_angle = rng.uniform(0.0, np.pi, n_samples)
    # A point in the unit disc, scaled so the lesion stays inside the body.
    direction = rng.uniform(0.0, 2 * np.pi, n_samples)
    spread = np.sqrt(rng.uniform(0.0, 1.0, n_samples))
    extent = radius * np.maximum(np.sqrt(aspect), 1.0 / np.sqrt(aspect))
    margin = (extent + 1.0) / body_axes.min(axis=1)
    spread *= np.clip(1.0 - margin, 0.0, None)
    unit = np.stack([np.cos(direction), np.sin(direction)], axis=1) * spread[:, None]
    # From the body's own frame (rotated by body_angle) to image coordinates.
    cos, sin = np.cos(body_angle), np.sin(body_angle)
    local = unit * body_axes
    lesion_center = body_center + np.stack(
        [cos * local[:, 0] - sin * local[:, 1], sin * local[:, 0] + cos * local[:, 1]],
        axis=1,
    )
    gains = np.ones((n_samples, n_channels))
    if n_channels > 1:
        gains = rng.uniform(*_CHANNEL_GAIN, (n_samples, n_channels))
    return _ImageDraws(
        y,
        body_center,
        body_axes,
        body_angle,
        body_level,
        radius,
        aspect,
        lesion_angle,
        lesion_center,
        gains,
    )


def _render_images(
    draws: _ImageDraws,
    rng: np.random.RandomState,
    image_size: int,
    n_channels: int,
    contrast: float,
    noise: float,
    out_dtype: np.dtype[Any],
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """Build the 2-D images and lesion masks from the drawn parameters, by chunk."""
    n_samples = len(draws.y)
    y, body_center, body_axes = draws.y, draws.body_center, draws.body_axes
    radius, aspect, lesion_center = draws.radius, draws.aspect, draws.lesion_center
    cos, sin = np.cos(draws.body_angle), np.sin(draws.body_angle)
    shape = (n_samples, image_size, image_size)
    X = np.empty(shape + ((n_channels,) if n_channels > 1 else ()), dtype=out_dtype)
    masks = np.zeros(shape, dtype=bool)
    rows, cols = np.mgrid[0:image_size, 0:image_size].astype(np.float64)
    for start in range(0, n_samples, _CHUNK):
        part = slice(start, min(start + _CHUNK, n_samples))
        n_part = part.stop - part.start
        dy = rows - body_center[part, 0, None, None]
        dx = cols - body_center[part, 1, None, None]
        c, s = cos[part, None, None], sin[part, None, None]
        u = (c * dy + s * dx) / body_axes[part, 0, None, None]
        v = (-s * dy + c * dx) / body_axes[part, 1, None, None]
        # Signed distance-like coordinate, about 1 px wide at the body edge.
        edge = (1.0 - np.sqrt(u**2 + v**2)) * body_axes[part].min(axis=1)[:, None, None]
        body = np.clip(edge + 0.5, 0.0, 1.0)

        tissue = draws.body_level[part, None, None] * np.ones_like(body)
        for grid, amplitude in _TEXTURE_GRIDS:
            tissue += amplitude * _smooth_noise(rng, n_part, image_size, grid)
        image = _BACKGROUND_LEVEL + body * (tissue - _BACKGROUND_LEVEL)

        dy = rows - lesion_center[part, 0, None, None]
        dx = cols - lesion_center[part, 1, None, None]
        c = np.cos(draws.lesion_angle[part])[:, None, None]
        s = np.sin(draws.lesion_angle[part])[:, None, None]
        stretch = np.sqrt(aspect[part])[:, None, None]
        distance = np.sqrt(
            ((c * dy + s * dx) * stretch) ** 2 + ((-s * dy + c * dx) / stretch) ** 2
        )
        profile = np.clip(radius[part, None, None] - distance + 0.5, 0.0, 1.0)
        profile *= y[part, None, None]
        masks[part] = profile >= 0.5
        image += contrast * profile

        image = image[..., None] * draws.gains[part, None, None, :]
        # drawn even when noise == 0, so that noise does not shift later draws
        image += noise * rng.standard_normal(image.shape)
        np.clip(image, 0.0, 1.0, out=image)
        if n_channels == 1:
            image = image[..., 0]
        if out_dtype == np.uint8:
            X[part] = np.rint(image * 255)
        else:
            X[part] = image
    return X, masks


def make_lesion_phantoms(
    n_samples: int = 200,
    *,
    image_size: int = 28,
    lesion_fraction: float = 0.5,
    lesion_radius: float | tuple[float, float] = (2.0, 4.0),
    contrast: float = 0.5,
    noise: float = 0.1,
    n_channels: int = 1,
    dtype: str = "uint8",
    return_masks: bool = False,
    spatial_dims: int = 2,
    random_state: int | np.random.RandomState | None = None,
) -> (
    tuple[NDArray[Any], NDArray[np.int64]]
    | tuple[NDArray[Any], NDArray[np.int64], NDArray[np.bool_]]
):
    """Generate synthetic images of a body, half of them with a bright lesion.

    Every image shows an elliptical "body" of smoothly textured tissue on a
    dark background, with random size, position, orientation and brightness.
    Positive images (label 1) also carry a bright, roughly round lesion at a
    random place inside the body; negative images (label 0) do not. Pixel
    noise is added last. The lesion is easy to see, but its random position,
    the brightness of the body and the texture blobs keep a linear model on
    raw pixels well short of perfect: a task for a CNN, and ground-truth masks
    to check saliency maps against.

    Parameters
    ----------
    n_samples : int, default=200
        Number of images, >= 1.
    image_size : int, default=28
        Height and width of the square images, >= 8.
    lesion_fraction : float, default=0.5
        Fraction of positive images, in [0, 1]. Exactly
        ``round(n_samples * lesion_fraction)`` images are positive (Python's
        ``round``: halves go to the even number).
    lesion_radius : float or tuple of (float, float), default=(2.0, 4.0)
        Lesion radius in pixels, drawn uniformly from ``(low, high)`` for each
        lesion, or fixed if a single number; ``0 < low <= high <=
        image_size / 4``.
    contrast : float, default=0.5
        Brightness the lesion adds at its centre, on the [0, 1] intensity
        scale; > 0.
    noise : float, default=0.1
        Standard deviation of the Gaussian pixel noise on the [0, 1] scale;
        >= 0.
    n_channels : int, default=1
        1 for grayscale images without a channel axis; more for images with a
        trailing channel axis, each channel a differently tinted copy with its
        own noise.
    dtype : {"uint8", "float32"}, default="uint8"
        ``"uint8"`` maps [0, 1] onto 0..255; ``"float32"`` keeps [0, 1].
    return_masks : bool, default=False
        Also return the lesion masks.
    spatial_dims : {2, 3}, default=2
        2 for images; 3 for volumes of ``image_size`` cubed voxels: an
        ellipsoidal body of smoothly textured tissue (axis-aligned, random
        size, position and brightness) and, in positive volumes, a bright
        ball of radius ``lesion_radius`` inside it.
    random_state : int, RandomState instance or None, default=None
        Seed or generator; a fixed value gives the same data set every time.

    Returns
    -------
    X : ndarray of shape (n_samples, image_size, image_size) or \
(n_samples, image_size, image_size, n_channels)
        The images, of the requested ``dtype``; volumes have one more
        ``image_size`` axis first (``(n_samples, depth, height, width[,
        n_channels])``).
    y : ndarray of shape (n_samples,), dtype int64
        1 for images with a lesion, 0 for those without, in shuffled order.
    masks : ndarray of shape (n_samples, image_size, image_size), dtype bool
        (volumes: one more axis). Only if ``return_masks``: True on lesion
        pixels (where the lesion adds at least half its peak brightness); all
        False for negative images.

    Raises
    ------
    ValueError
        If a parameter is out of range; the message names it.
    TypeError
        If a numeric parameter has the wrong type.

    See Also
    --------
    load_medmnist : Real images in the same array layout.

    Notes
    -----
    The phantoms follow the array conventions of MedMNIST v2 [1]_ (28 x 28
    uint8 images by default, channels last), so code written against them
    runs unchanged on MedMNIST data. Parameters that do not change the image
    geometry (``contrast``, ``noise``, ``dtype``) do not change the random
    draws either: with the same ``random_state`` they give the same bodies,
    labels and lesion positions.

    References
    ----------
    .. [1] J. Yang, R. Shi, D. Wei, Z. Liu, L. Zhao, B. Ke, H. Pfister and
       B. Ni, "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D
       biomedical image classification", Scientific Data 10:41, 2023.

    Examples
    --------
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> X, y = make_lesion_phantoms(10, random_state=0)
    >>> X.shape, X.dtype, y.dtype, int(y.sum())
    ((10, 28, 28), dtype('uint8'), dtype('int64'), 5)
    >>> X, y, masks = make_lesion_phantoms(
    ...     4, image_size=16, n_channels=3, dtype="float32", return_masks=True,
    ...     random_state=0,
    ... )
    >>> X.shape, masks.shape, bool(masks[y == 0].any())
    ((4, 16, 16, 3), (4, 16, 16), False)
    """
    low_radius, high_radius, out_dtype = _check_phantom_params(
        n_samples,
        image_size,
        lesion_fraction,
        lesion_radius,
        contrast,
        noise,
        n_channels,
        dtype,
        spatial_dims,
    )
    n_samples, image_size, n_channels = int(n_samples), int(image_size), int(n_channels)
    rng = check_random_state(random_state)
    if spatial_dims == 3:
        return _make_volume_phantoms(
            n_samples,
            image_size,
            lesion_fraction,
            (low_radius, high_radius),
            float(contrast),
            float(noise),
            n_channels,
            out_dtype,
            return_masks,
            rng,
        )

    # Draw every per-image parameter first, then build the images from them.
    n_positive = round(n_samples * lesion_fraction)
    draws = _draw_image_params(
        rng, n_samples, n_positive, image_size, (low_radius, high_radius), n_channels
    )
    X, masks = _render_images(
        draws, rng, image_size, n_channels, contrast, noise, out_dtype
    )
    logger.debug(
        "Generated %d lesion phantoms (%d positive) of size %d",
        n_samples,
        n_positive,
        image_size,
    )
    if return_masks:
        return X, draws.y, masks
    return X, draws.y


def _make_volume_phantoms(
    n_samples: int,
    size: int,
    lesion_fraction: float,
    radius_range: tuple[float, float],
    contrast: float,
    noise: float,
    n_channels: int,
    out_dtype: np.dtype[Any],
    return_masks: bool,
    rng: np.random.RandomState,
) -> Any:
    """``make_lesion_phantoms(spatial_dims=3)``: bodies and lesions in 3-D."""
    n_positive = round(n_samples * lesion_fraction)
    y = _shuffled_labels(rng, n_samples, n_positive)
    center = (size - 1) / 2
    body_center = center + rng.uniform(-0.06, 0.06, (n_samples, 3)) * size
    body_axes = rng.uniform(*_BODY_AXES, (n_samples, 3)) * size
    body_level = rng.uniform(*_BODY_LEVEL, n_samples)
    radius = rng.uniform(*radius_range, n_samples)
    # a point in the unit ball, scaled so that the lesion stays inside the body
    direction = rng.standard_normal((n_samples, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True) + 1e-12
    spread = np.cbrt(rng.uniform(0.0, 1.0, n_samples))
    margin = (radius + 1.0) / body_axes.min(axis=1)
    spread *= np.clip(1.0 - margin, 0.0, None)
    lesion_center = body_center + direction * spread[:, None] * body_axes
    gains = np.ones((n_samples, n_channels))
    if n_channels > 1:
        gains = rng.uniform(*_CHANNEL_GAIN, (n_samples, n_channels))

    shape = (n_samples, size, size, size)
    X = np.empty(shape + ((n_channels,) if n_channels > 1 else ()), dtype=out_dtype)
    masks = np.zeros(shape, dtype=bool)
    grid = np.indices((size, size, size), dtype=np.float64)
    chunk = max(1, _CHUNK * 28 // size)
    for start in range(0, n_samples, chunk):
        part = slice(start, min(start + chunk, n_samples))
        n_part = part.stop - part.start
        offsets = grid[None] - body_center[part, :, None, None, None]
        scaled = offsets / body_axes[part, :, None, None, None]
        edge = (1.0 - np.sqrt((scaled**2).sum(axis=1))) * body_axes[part].min(axis=1)[
            :, None, None, None
        ]
        body = np.clip(edge + 0.5, 0.0, 1.0)
        tissue = body_level[part, None, None, None] * np.ones_like(body)
        for cells, amplitude in _TEXTURE_GRIDS:
            tissue += amplitude * _smooth_noise_3d(rng, n_part, size, cells)
        image = _BACKGROUND_LEVEL + body * (tissue - _BACKGROUND_LEVEL)
        offsets = grid[None] - lesion_center[part, :, None, None, None]
        distance = np.sqrt((offsets**2).sum(axis=1))
        profile = np.clip(radius[part, None, None, None] - distance + 0.5, 0.0, 1.0)
        profile *= y[part, None, None, None]
        masks[part] = profile >= 0.5
        image += contrast * profile
        image = image[..., None] * gains[part, None, None, None, :]
        image += noise * rng.standard_normal(image.shape)
        np.clip(image, 0.0, 1.0, out=image)
        if n_channels == 1:
            image = image[..., 0]
        X[part] = np.rint(image * 255) if out_dtype == np.uint8 else image
    logger.debug("Generated %d volume phantoms of size %d", n_samples, size)
    if return_masks:
        return X, y, masks
    return X, y


def _smooth_noise_3d(
    rng: np.random.RandomState, n_volumes: int, size: int, grid: int
) -> NDArray[np.float64]:
    """:func:`_smooth_noise` in 3-D: a random grid, interpolated along each axis."""
    weights = _knot_weights(size, grid)
    coarse = rng.standard_normal((n_volumes, grid + 1, grid + 1, grid + 1))
    texture = np.einsum(
        "ai,bj,ck,nijk->nabc", weights, weights, weights, coarse, optimize=True
    )
    texture -= texture.mean(axis=(1, 2, 3), keepdims=True)
    texture /= texture.std(axis=(1, 2, 3), keepdims=True) + 1e-12
    return texture
