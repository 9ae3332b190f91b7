"""Acquisition corruptions of medical images, as transformers with a severity.

Each corruption models something that changes between scanners, protocols or
sites: noise, blur, contrast and brightness, gamma, lossy compression,
pixelation, a lower resolution, an MRI bias field, ring and stripe artefacts.
Severities run from 1 (barely visible) to 5 (a poor acquisition), as in
ImageNet-C (Hendrycks and Dietterich, 2019) and MedMNIST-C (Di Salvo et al.,
2024). Every corruption keeps the input's dtype and layout; integer images are
corrupted on their dtype's range (0-255 for uint8), float images on the range
of the images seen in ``fit`` (their minimum to their maximum; ``fit_transform``
on the images to corrupt is the usual call). The random corruptions seed each
image's draw from ``random_state`` and the image's own content, so an image gets
the same corruption whatever batch it comes in.

Volumes ``(n, depth, height, width[, channels])`` are corrupted in 3-D where the
corruption is physical in 3-D (noise, blur, resolution, pixelation, the MRI bias
field; contrast around each volume's mean), and slice by slice along the depth
axis where it arises in 2-D acquisition or storage (JPEG compression of a DICOM
series, CT ring artefacts, detector stripes). ``spatial_dims`` tells images from
volumes, as in :mod:`sk_medcnn.augmentation` and :mod:`sk_medcnn.preprocessing`.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import operator
import zlib
from collections.abc import Iterator
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from skimage.filters import gaussian
from skimage.transform import resize
from sklearn.utils import check_random_state

from ..preprocessing._base import _ImageTransformer, iter_chunks
from ..preprocessing._resample import spacing_like
from ..utils._arrays import cast_like
from ..utils._validation import (
    Checker,
    optional,
    random_state_like,
    spatial_dims_like,
)

__all__ = [
    "BiasField",
    "Brightness",
    "Contrast",
    "Gamma",
    "GaussianBlur",
    "GaussianNoise",
    "JPEGCompression",
    "Pixelate",
    "ResolutionChange",
    "RingArtifact",
    "StripeArtifact",
]


def _severity(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int from 1 to 5; got {value!r}.")
    if not 1 <= int(value) <= 5:
        raise ValueError(f"{name} must be an int from 1 to 5; got {value!r}.")


def _value_range(images: NDArray[Any]) -> tuple[float, float]:
    """Return the range to corrupt on: the dtype's, or the images' for floats."""
    if images.dtype.kind in "iu":
        info = np.iinfo(images.dtype)
        return float(info.min), float(info.max)
    if images.dtype == np.bool_:
        return 0.0, 1.0
    low, high = float(np.min(images)), float(np.max(images))
    return (low, high) if high > low else (low, low + 1.0)


class _Corruption(_ImageTransformer):
    """Scale to [0, 1], corrupt, scale back and cast to the input's dtype.

    ``_corrupt`` gets channels-last images ``(n, H, W, C)`` or volumes ``(n,
    D, H, W, C)``, a chunk at a time (``CHUNK_BYTES`` of float64, as the
    preprocessing transformers, so no float copy of a whole data set is
    made), with the call's seed; a subclass with ``_per_slice = True`` gets
    the axial slices of volumes as images ``(n * D, H, W, C)`` instead.
    Every corruption works image by image, so chunks change no result.
    """

    #: The corruption's strength at severities 1 to 5.
    _levels: ClassVar[tuple[float, ...]] = ()
    #: True for 2-D acquisition artefacts, applied to each slice of a volume.
    _per_slice: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "severity": _severity,
        "spatial_dims": spatial_dims_like,
    }

    def __init__(self, severity: int = 3, *, spatial_dims: int | str = "auto") -> None:
        self.severity = severity
        self.spatial_dims = spatial_dims

    @property
    def _level(self) -> float:
        return self._levels[int(self.severity) - 1]

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        raise NotImplementedError

    def _fit_images(self, images: NDArray[Any]) -> None:
        self.value_range_ = _value_range(images)

    def _fitted_attributes(self) -> list[str] | None:
        return ["value_range_"]

    def _call_seed(self) -> int:
        """Return the seed of one call; deterministic corruptions draw nothing."""
        return 0

    def _transform_images(self, images: NDArray[Any]) -> NDArray[Any]:
        low, high = (
            _value_range(images) if images.dtype.kind in "iub" else self.value_range_
        )
        seed = self._call_seed()
        out = np.empty(images.shape, dtype=images.dtype)  # not a memmap's type
        # float64 values and about three temporaries of them per image
        per_image = 4 * 8 * math.prod(images.shape[1:])
        for chunk in iter_chunks(len(images), per_image):
            unit = (images[chunk].astype(np.float64) - low) / (high - low)
            if self._per_slice and unit.ndim == 5:
                slices = unit.reshape(-1, *unit.shape[2:])  # (n * D, H, W, C)
                corrupted = self._corrupt(slices, seed).reshape(unit.shape)
            else:
                corrupted = self._corrupt(unit, seed)
            corrupted = np.clip(corrupted, 0.0, 1.0)
            out[chunk] = cast_like(corrupted * (high - low) + low, images.dtype)
        return out


class _RandomCorruption(_Corruption):
    """A corruption that draws: seeded by ``random_state`` on every call."""

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "severity": _severity,
        "spatial_dims": spatial_dims_like,
        "random_state": random_state_like,
    }

    def __init__(
        self,
        severity: int = 3,
        *,
        spatial_dims: int | str = "auto",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.severity = severity
        self.spatial_dims = spatial_dims
        self.random_state = random_state

    def _call_seed(self) -> int:
        """Return ``random_state`` itself, or a new draw from it on every call."""
        if isinstance(self.random_state, Integral):
            return int(self.random_state)
        # None or a RandomState: a new draw on every call
        return int(check_random_state(self.random_state).randint(2**31))

    def _image_rngs(
        self, unit: NDArray[np.float64], seed: int
    ) -> Iterator[np.random.Generator]:
        """Yield one generator per image, seeded by the call's seed and its content."""
        for image in unit:
            yield np.random.default_rng([seed, zlib.crc32(image.tobytes())])


class GaussianNoise(_RandomCorruption):
    """Add Gaussian noise, as from a lower dose or a shorter acquisition.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: a standard deviation of 2%, 4%, 6%, 8% or 10% of the range.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels. Volumes get independent noise in every voxel.
    random_state : int, RandomState instance or None, default=None
        Seeds the noise; an int gives the same noise on every call.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import GaussianNoise
    >>> X = np.full((2, 8, 8), 128, dtype=np.uint8)
    >>> noisy = GaussianNoise(severity=5, random_state=0).fit_transform(X)
    >>> noisy.dtype, bool(noisy.std() > 10)
    (dtype('uint8'), True)
    """

    _levels = (0.02, 0.04, 0.06, 0.08, 0.10)

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        noise = [
            rng.normal(0.0, self._level, size=unit.shape[1:])
            for rng in self._image_rngs(unit, seed)
        ]
        return unit + np.stack(noise)


class GaussianBlur(_Corruption):
    """Blur with a Gaussian kernel, as from motion or a wider point-spread.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: a standard deviation of 0.5, 0.75, 1, 1.5 or 2 pixels per 28
        pixels of the image's shorter side (so 28 px and 224 px images blur
        alike). Volumes are blurred along their three axes, by the same
        standard deviation in voxels, set by the shorter in-plane side
        (height or width).
    spacing : float or tuple of float, default=None
        The pixel or voxel spacing of the input, ``(height, width)`` or
        ``(depth, height, width)`` (any unit, e.g. mm; as ``Resample``'s
        ``input_spacing``), for anisotropic data such as CT volumes of 5 mm
        slices and 0.8 mm pixels: the blur is then the same in physical
        units along every axis, the axis of the finest spacing taking the
        severity's standard deviation and coarser axes proportionally less
        (``sigma * min(spacing) / spacing``). None: isotropic pixels.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import GaussianBlur
    >>> X = np.zeros((1, 28, 28), dtype=np.uint8)
    >>> X[0, 14, 14] = 255
    >>> int(GaussianBlur(severity=5).fit_transform(X).max()) < 255
    True
    >>> volumes = np.zeros((1, 8, 28, 28), dtype=np.uint8)  # (n, D, H, W)
    >>> volumes[0, 4, 14, 14] = 255
    >>> blurred = GaussianBlur(severity=5, spacing=(4.0, 1.0, 1.0)).fit_transform(
    ...     volumes
    ... )
    >>> bool(blurred[0, 3, 14, 14] > 0)  # spread to the neighbouring slices
    True
    """

    _levels = (0.5, 0.75, 1.0, 1.5, 2.0)
    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "severity": _severity,
        "spacing": optional(spacing_like),
        "spatial_dims": spatial_dims_like,
    }

    def __init__(
        self,
        severity: int = 3,
        *,
        spacing: float | tuple[float, ...] | None = None,
        spatial_dims: int | str = "auto",
    ) -> None:
        self.severity = severity
        self.spacing = spacing
        self.spatial_dims = spatial_dims

    def _sigmas(self, unit: NDArray[np.float64]) -> tuple[float, ...]:
        """Return the standard deviation along each spatial axis, in voxels."""
        n_axes = unit.ndim - 2
        sigma = self._level * min(unit.shape[-3:-1]) / 28  # in-plane: H, W
        if self.spacing is None:
            return (sigma,) * n_axes
        if not isinstance(self.spacing, tuple | list):
            return (sigma,) * n_axes  # one spacing for all axes: isotropic
        spacing = tuple(float(size) for size in self.spacing)
        if len(spacing) != n_axes:
            found = "x".join(str(size) for size in unit.shape[1:-1])
            kind = "volumes" if n_axes == 3 else "images"
            axes = "(depth, height, width)" if n_axes == 3 else "(height, width)"
            raise ValueError(
                f"GaussianBlur: spacing={self.spacing!r} has {len(spacing)} values, "
                f"but X holds {kind} of {found}; give {axes} or one number."
            )
        finest = min(spacing)
        return tuple(sigma * finest / size for size in spacing)

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        # one call on the batch, not smoothed across images or channels: equal to
        # a loop over images, 3x faster on 512 RGB 28x28 images
        return gaussian(unit, sigma=(0, *self._sigmas(unit), 0))


class Contrast(_Corruption):
    """Lower the contrast around each image's mean, as from another window.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: deviations from the mean scaled by 0.75, 0.6, 0.45, 0.3 or 0.2.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels. The mean is each image's or each volume's (over
        all its voxels and channels), not each slice's.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import Contrast
    >>> X = np.array([[[0, 255]]], dtype=np.uint8)
    >>> Contrast(severity=5).fit_transform(X).tolist()
    [[[102, 153]]]
    """

    _levels = (0.75, 0.6, 0.45, 0.3, 0.2)

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        # per image or volume: every axis but the first (channels included)
        mean = unit.mean(axis=tuple(range(1, unit.ndim)), keepdims=True)
        return mean + self._level * (unit - mean)


class Brightness(_Corruption):
    """Brighten the image, as from a higher exposure or another gain.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: add 5%, 10%, 15%, 20% or 30% of the range.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import Brightness
    >>> Brightness(severity=1).fit_transform(np.zeros((1, 2, 2), np.uint8)).max()
    np.uint8(13)
    """

    _levels = (0.05, 0.1, 0.15, 0.2, 0.3)

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        return unit + self._level


class Gamma(_Corruption):
    """Apply a gamma curve, as from another detector response or display LUT.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: gamma 1.2, 1.4, 1.7, 2.0 or 2.5 on the range scaled to [0, 1]
        (mid-tones darken; black and white stay).
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import Gamma
    >>> Gamma(severity=4).fit_transform(np.array([[[0, 128, 255]]], np.uint8))
    array([[[  0,  64, 255]]], dtype=uint8)
    """

    _levels = (1.2, 1.4, 1.7, 2.0, 2.5)

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        return np.clip(unit, 0.0, 1.0) ** self._level


class JPEGCompression(_Corruption):
    """Compress lossily with JPEG, as when images pass through a web viewer.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: JPEG quality 60, 40, 25, 15 or 8 (Pillow's encoder, on the
        image scaled to 8 bits; 1 or 3 channels).
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels. Each axial slice of a volume (along its depth
        axis) is compressed as one image, as a DICOM series is stored.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import JPEGCompression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, (1, 16, 16), dtype=np.uint8)
    >>> out = JPEGCompression(severity=5).fit_transform(X)
    >>> out.shape == X.shape and not np.array_equal(out, X)
    True
    """

    _levels = (60, 40, 25, 15, 8)
    _per_slice = True

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        from PIL import Image

        if unit.shape[-1] not in (1, 3):
            raise ValueError(
                "JPEGCompression takes images or volumes of 1 or 3 channels; got "
                f"{unit.shape[-1]}."
            )
        out = np.empty_like(unit)
        for index, image in enumerate(unit):
            bytes_ = np.rint(image * 255).astype(np.uint8)
            picture = Image.fromarray(
                bytes_[..., 0] if image.shape[-1] == 1 else bytes_
            )
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=int(self._level))
            decoded = np.asarray(Image.open(buffer), dtype=np.float64) / 255
            out[index] = decoded.reshape(image.shape)
        return out


def _down_up(unit: NDArray[np.float64], factor: float, order: int) -> NDArray[Any]:
    """Resample each image or volume to ``factor`` of its size and back."""
    *sizes, channels = unit.shape[1:]
    small = (*(max(1, round(size * factor)) for size in sizes), channels)
    out = np.empty_like(unit)
    for index, image in enumerate(unit):
        reduced = resize(image, small, order=order, anti_aliasing=order > 0)
        out[index] = resize(reduced, image.shape, order=order, anti_aliasing=False)
    return out


class Pixelate(_Corruption):
    """Pixelate: nearest-neighbour down- and up-sampling, blocky edges.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: blocks of 1/0.8, 1/0.65, 2, 2.5 or 3.3 pixels (sampled to
        80%, 65%, 50%, 40% or 30% of the size and back).
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels. Volumes are sampled along their three axes
        (blocks of voxels).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import Pixelate
    >>> X = np.arange(64, dtype=np.uint8).reshape(1, 8, 8)
    >>> out = Pixelate(severity=3).fit_transform(X)
    >>> len(np.unique(out)) < len(np.unique(X))
    True
    """

    _levels = (0.8, 0.65, 0.5, 0.4, 0.3)

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        return _down_up(unit, self._level, order=0)


class ResolutionChange(_Corruption):
    """Lose resolution: anti-aliased down-sampling, then bilinear up-sampling.

    As from a scanner of coarser resolution, or a thicker slice, whose images
    were resampled to the model's size.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: sampled to 80%, 65%, 50%, 40% or 30% of the size and back.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels. Volumes are sampled along their three axes
        (trilinear up-sampling).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import ResolutionChange
    >>> X = np.tile(np.array([0, 255], np.uint8), (1, 8, 4))
    >>> out = ResolutionChange(severity=3).fit_transform(X)
    >>> bool(out.std() < X.std())
    True
    """

    _levels = (0.8, 0.65, 0.5, 0.4, 0.3)

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        return _down_up(unit, self._level, order=1)


class BiasField(_RandomCorruption):
    """Multiply by a smooth random field: MRI's intensity inhomogeneity.

    The field is ``exp(a * p(y, x))`` for a random polynomial ``p`` of degree 3
    in the normalised coordinates, scaled to span [-1, 1] (as TorchIO's
    ``RandomBiasField``), one draw per image; volumes get a 3-D field,
    ``exp(a * p(z, y, x))``, as MRI's bias field is.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: ``a`` = 0.1, 0.2, 0.3, 0.4 or 0.5 (the field varies by up to a
        factor ``exp(2a)`` across the image).
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.
    random_state : int, RandomState instance or None, default=None
        Seeds the fields.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import BiasField
    >>> X = np.full((1, 16, 16), 100, dtype=np.uint8)
    >>> out = BiasField(severity=5, random_state=0).fit_transform(X)
    >>> bool(out.min() < 100 < out.max())
    True
    """

    _levels = (0.1, 0.2, 0.3, 0.4, 0.5)

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        coordinates = np.meshgrid(
            *(np.linspace(-1, 1, size) for size in unit.shape[1:-1]), indexing="ij"
        )
        # the monomials of degree <= 3: (y^i x^j) for images, (z^i y^j x^k) for
        # volumes, in the order of the exponents
        terms = [
            functools.reduce(
                operator.mul,
                (axis**power for axis, power in zip(coordinates, powers, strict=True)),
            )
            for powers in itertools.product(range(4), repeat=len(coordinates))
            if sum(powers) <= 3
        ]
        out = np.empty_like(unit)
        for index, (image, rng) in enumerate(
            zip(unit, self._image_rngs(unit, seed), strict=True)
        ):
            weights = rng.uniform(-1, 1, len(terms))
            field = sum(c * t for c, t in zip(weights, terms, strict=True))
            span = np.max(np.abs(field)) or 1.0
            out[index] = image * np.exp(self._level * field / span)[..., None]
        return out


class RingArtifact(_Corruption):
    """Add concentric rings around the centre: CT's ring artefact.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: rings of an amplitude of 3%, 5%, 8%, 11% or 15% of the range,
        with a period of 4 pixels per 28 of the shorter side.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels. Each axial slice of a volume (along its depth
        axis) gets the same rings, as CT's rings come from a detector element
        and sit at one radius in every slice.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import RingArtifact
    >>> X = np.full((1, 28, 28), 128, dtype=np.uint8)
    >>> len(np.unique(RingArtifact(severity=5).fit_transform(X))) > 1
    True
    """

    _levels = (0.03, 0.05, 0.08, 0.11, 0.15)
    _per_slice = True

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        height, width = unit.shape[1:3]
        y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        radius = np.hypot(y - (height - 1) / 2, x - (width - 1) / 2)
        period = 4 * min(height, width) / 28
        rings = self._level * np.sin(2 * np.pi * radius / period)
        return unit + rings[None, :, :, None]


class StripeArtifact(_Corruption):
    """Add vertical stripes: a detector's miscalibrated columns, or MRI spikes.

    Parameters
    ----------
    severity : int, default=3
        1 to 5: stripes of an amplitude of 3%, 5%, 8%, 11% or 15% of the range,
        with a period of 3 pixels per 28 of the width.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels. Each axial slice of a volume (along its depth
        axis) gets the same stripes, as from one miscalibrated detector.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.robustness import StripeArtifact
    >>> X = np.full((1, 8, 28), 128, dtype=np.uint8)
    >>> out = StripeArtifact(severity=5).fit_transform(X)
    >>> bool((out[0, 0] == out[0, 7]).all()), len(np.unique(out[0, 0])) > 1
    (True, True)
    """

    _levels = (0.03, 0.05, 0.08, 0.11, 0.15)
    _per_slice = True

    def _corrupt(self, unit: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
        width = unit.shape[2]
        period = 3 * width / 28
        stripes = self._level * np.sin(2 * np.pi * np.arange(width) / period)
        return unit + stripes[None, None, :, None]
