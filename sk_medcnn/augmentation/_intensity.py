"""Intensity augmenters: brightness/contrast/gamma, noise and random erasing.

Every strength is relative to each image's own intensities (its minimum,
maximum, range or mean), so one setting means the same on uint8 radiographs
(0-255), CT in Hounsfield units and images already scaled to [0, 1].
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from ..utils._validation import (
    closed_fraction,
    non_negative_float,
    one_of,
    random_state_like,
    spatial_dims_like,
)
from ._base import (
    BaseAugmenter,
    Checker,
    draw_uniforms,
    image_range,
    per_image,
    range_pair,
)

__all__ = ["RandomErasing", "RandomIntensity", "RandomNoise"]

#: Aspect ratios of the erased rectangles, log-uniform between these (the
#: r1 = 0.3, r2 = 1 / r1 of Zhong et al. 2020).
_ERASING_RATIO = (0.3, 1 / 0.3)


class RandomIntensity(BaseAugmenter):
    """Change each image's brightness, contrast and gamma by random amounts.

    Parameters
    ----------
    brightness : float, default=0.1
        Largest shift, as a fraction of the image's intensity range
        (maximum - minimum), in [0, 1]: the shift is drawn uniformly in
        ``[-brightness, brightness] * range``.
    contrast : float, default=0.1
        Largest relative change of contrast, in [0, 1]: intensities are
        stretched about the image mean by a factor drawn uniformly in
        ``[1 - contrast, 1 + contrast]``.
    gamma : float, default=0.0
        Largest log-gamma, >= 0: ``log(g)`` is drawn uniformly in
        ``[-gamma, gamma]`` (``gamma=0.2`` gives ``g`` in [0.82, 1.22]) and the
        image, min-max normalised to [0, 1], is raised to the power ``g`` and
        mapped back to its range.
    p : float, default=1.0
        Probability, per image, of the change; in [0, 1].
    spatial_dims : {"auto", 2, 3}, default="auto"
        How :meth:`fit_transform` reads ``X``: 2 for images, 3 for volumes,
        ``"auto"`` by its shape (5 axes, or 4 whose last is not 1, 3 or 4, are
        volumes; see ``sk_medcnn.utils.infer_spatial_dims``). Inside
        ``MedicalCNNClassifier`` the batch's shape decides; 2 or 3 then
        refuses the other kind with an error naming the shape.
    random_state : int, RandomState instance or None, default=None
        Seeds :meth:`fit_transform`; inside ``MedicalCNNClassifier`` the
        classifier's generator is used instead.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen by :meth:`fit` or :meth:`fit_transform`.

    See Also
    --------
    RandomNoise : Additive Gaussian or Rician noise.

    Notes
    -----
    The three changes apply in the order gamma, contrast, brightness, each
    relative to the image's own statistics over all its channels (so colours
    keep their balance), which makes them independent of the intensity unit.
    Results are not clipped to the input's range: a brightened CT slice may
    exceed its maximum HU. :meth:`fit_transform` clips integer images to
    their dtype's range. A constant image is left as it is by the gamma
    change (it has no range). Zero strengths leave images exactly unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.augmentation import RandomIntensity
    >>> X = np.linspace(-1000, 400, 2 * 8 * 8).reshape(2, 8, 8)  # CT, in HU
    >>> Xt = RandomIntensity(0.1, gamma=0.2, random_state=0).fit_transform(X)
    >>> Xt.shape, Xt.dtype
    ((2, 8, 8), dtype('float64'))
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "brightness": closed_fraction,
        "contrast": closed_fraction,
        "gamma": non_negative_float,
        "p": closed_fraction,
        "spatial_dims": spatial_dims_like,
        "random_state": random_state_like,
    }

    def __init__(
        self,
        brightness: float = 0.1,
        *,
        contrast: float = 0.1,
        gamma: float = 0.0,
        p: float = 1.0,
        spatial_dims: int | str = "auto",
        random_state: Any = None,
    ) -> None:
        self.brightness = brightness
        self.contrast = contrast
        self.gamma = gamma
        self.p = p
        self.spatial_dims = spatial_dims
        self.random_state = random_state

    def _draw(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        uniforms = draw_uniforms(images, generator, 4)
        brightness, contrast = float(self.brightness), float(self.contrast)
        gamma = float(self.gamma)
        return {
            "shift": uniforms[0] * (2 * brightness) - brightness,
            "factor": uniforms[1] * (2 * contrast) + (1 - contrast),
            "gamma": torch.exp(uniforms[2] * (2 * gamma) - gamma),
            "active": uniforms[3] < self.p,
        }

    def _apply(
        self, images: torch.Tensor, params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        active = params["active"]
        n_active = int(active.sum())
        if n_active == 0:
            return images
        low, high = image_range(images)
        spread = high - low
        out = images
        if self.gamma > 0:
            # a constant image (spread 0) is its minimum: low + 0 * ... = x
            scale = spread.clamp_min(torch.finfo(spread.dtype).tiny).reciprocal_()
            normalised = ((out - low) * scale).clamp_(0, 1)
            normalised.pow_(per_image(params["gamma"], images))
            out = torch.addcmul(low, normalised, spread)
        # contrast about the mean, then the shift, as one multiply-add
        factor = offset = None
        if self.contrast > 0:
            factor = per_image(params["factor"], images)
            dims = tuple(range(1, images.ndim))
            offset = out.mean(dim=dims, keepdim=True) * (1 - factor)
        if self.brightness > 0:
            shift = per_image(params["shift"], images) * spread
            offset = shift if offset is None else offset + shift
        if factor is not None and offset is not None:
            out = torch.addcmul(offset, out, factor)
        elif offset is not None:
            out = out + offset
        if n_active == len(images):
            return out
        return torch.where(per_image(active, images), out, images)


class RandomNoise(BaseAugmenter):
    """Add random Gaussian or Rician noise to each image.

    Parameters
    ----------
    kind : {"gaussian", "rician"}, default="gaussian"
        ``"gaussian"`` adds zero-mean Gaussian noise. ``"rician"`` models the
        noise of magnitude MRI: Gaussian noise on the real and imaginary parts
        of the signal, then the magnitude (Gudbjartsson and Patz 1995).
    std : float, default=0.05
        Standard deviation of the noise as a fraction of each image's
        intensity range (maximum - minimum), >= 0.
    p : float, default=1.0
        Probability, per image, of noise; in [0, 1].
    spatial_dims : {"auto", 2, 3}, default="auto"
        How :meth:`fit_transform` reads ``X``: 2 for images, 3 for volumes,
        ``"auto"`` by its shape (5 axes, or 4 whose last is not 1, 3 or 4, are
        volumes; see ``sk_medcnn.utils.infer_spatial_dims``). Inside
        ``MedicalCNNClassifier`` the batch's shape decides; 2 or 3 then
        refuses the other kind with an error naming the shape.
    random_state : int, RandomState instance or None, default=None
        Seeds :meth:`fit_transform`; inside ``MedicalCNNClassifier`` the
        classifier's generator is used instead.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen by :meth:`fit` or :meth:`fit_transform`.

    See Also
    --------
    RandomIntensity : Random brightness, contrast and gamma.

    Notes
    -----
    With ``sigma = std * (maximum - minimum)`` of the image, Gaussian noise
    gives ``x + sigma * n1`` and Rician noise
    ``minimum + sqrt((x - minimum + sigma * n1) ** 2 + (sigma * n2) ** 2)``,
    with ``n1``, ``n2`` independent standard normal draws per pixel. The
    Rician form takes the image minimum as zero signal (the background of a
    magnitude image), so it suits data in any offset; the noise then lifts
    the dark background, as in real magnitude images, where Gaussian noise
    would give negative magnitudes.

    References
    ----------
    H. Gudbjartsson and S. Patz, "The Rician distribution of noisy MRI
    data", Magnetic Resonance in Medicine 34(6), 910-914, 1995.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.augmentation import RandomNoise
    >>> X = np.full((2, 8, 8), 100, dtype=np.uint16)
    >>> X[:, 2:6, 2:6] = 900
    >>> Xt = RandomNoise("rician", std=0.05, random_state=0).fit_transform(X)
    >>> Xt.dtype, bool(Xt.min() >= 100)
    (dtype('uint16'), True)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "kind": one_of(("gaussian", "rician")),
        "std": non_negative_float,
        "p": closed_fraction,
        "spatial_dims": spatial_dims_like,
        "random_state": random_state_like,
    }

    def __init__(
        self,
        kind: str = "gaussian",
        *,
        std: float = 0.05,
        p: float = 1.0,
        spatial_dims: int | str = "auto",
        random_state: Any = None,
    ) -> None:
        self.kind = kind
        self.std = std
        self.p = p
        self.spatial_dims = spatial_dims
        self.random_state = random_state

    def _draw(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        n_parts = 2 if self.kind == "rician" else 1
        noise = torch.randn(
            (n_parts, *images.shape), generator=generator, device=images.device
        ).to(images.dtype)
        return {
            "noise": noise,
            "active": draw_uniforms(images, generator, 1)[0] < self.p,
        }

    def _apply(
        self, images: torch.Tensor, params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        active = params["active"]
        if self.std == 0 or not bool(active.any()):
            return images
        low, high = image_range(images)
        sigma = float(self.std) * (high - low)
        noise = params["noise"]
        if self.kind == "rician":
            real = images - low + sigma * noise[0]
            imaginary = sigma * noise[1]
            noisy = low + torch.sqrt(real * real + imaginary * imaginary)
        else:
            noisy = images + sigma * noise[0]
        return torch.where(per_image(active, images), noisy, images)


class RandomErasing(BaseAugmenter):
    """Replace a random rectangle (volumes: a box) of each image with random values.

    Parameters
    ----------
    p : float, default=0.5
        Probability, per image, of erasing a rectangle; in [0, 1].
    scale : tuple of (float, float), default=(0.02, 0.2)
        Range of the rectangle's area as a fraction of the image's (of a
        box's volume as a fraction of the volume's), drawn uniformly;
        ``0 <= low <= high <= 1``.
    spatial_dims : {"auto", 2, 3}, default="auto"
        How :meth:`fit_transform` reads ``X``: 2 for images, 3 for volumes,
        ``"auto"`` by its shape (5 axes, or 4 whose last is not 1, 3 or 4, are
        volumes; see ``sk_medcnn.utils.infer_spatial_dims``). Inside
        ``MedicalCNNClassifier`` the batch's shape decides; 2 or 3 then
        refuses the other kind with an error naming the shape.
    random_state : int, RandomState instance or None, default=None
        Seeds :meth:`fit_transform`; inside ``MedicalCNNClassifier`` the
        classifier's generator is used instead.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen by :meth:`fit` or :meth:`fit_transform`.

    See Also
    --------
    RandomNoise : Additive noise over the whole image.

    Notes
    -----
    Random erasing (Zhong et al. 2020) makes a network robust to occlusion.
    As in the paper, the aspect ratio of the rectangle is drawn log-uniformly
    in [0.3, 1 / 0.3] and its pixels are filled with independent uniform
    values, here within the image's own [minimum, maximum] (all channels).
    A rectangle taller or wider than the image is cut to it (the paper draws
    again), and one smaller than half a pixel erases nothing. A lesion may be
    erased with the rest: keep ``scale`` well below the lesion size where the
    label depends on a small finding.

    On volumes the box's two aspect ratios, height / depth and width /
    depth, are each drawn log-uniformly in [0.3, 1 / 0.3], and its sides
    are cut to the volume as a rectangle's are.

    References
    ----------
    Z. Zhong, L. Zheng, G. Kang, S. Li and Y. Yang, "Random erasing data
    augmentation", AAAI 2020, 13001-13008.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.augmentation import RandomErasing
    >>> X = np.zeros((3, 10, 10), dtype=np.float32)
    >>> X[:, 0, 0] = 1.0
    >>> Xt = RandomErasing(p=1.0, scale=(0.1, 0.1), random_state=0).fit_transform(X)
    >>> [int(np.count_nonzero(image)) >= 9 for image in Xt]  # about 10 pixels each
    [True, True, True]
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "p": closed_fraction,
        "scale": range_pair(low=0.0, high=1.0),
        "spatial_dims": spatial_dims_like,
        "random_state": random_state_like,
    }

    def __init__(
        self,
        p: float = 0.5,
        *,
        scale: tuple[float, float] = (0.02, 0.2),
        spatial_dims: int | str = "auto",
        random_state: Any = None,
    ) -> None:
        self.p = p
        self.scale = scale
        self.spatial_dims = spatial_dims
        self.random_state = random_state

    def _draw(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        if images.ndim == 5:
            return self._draw_box(images, generator)
        _, _, height, width = images.shape
        low, high = (float(value) for value in self.scale)
        uniforms = draw_uniforms(images, generator, 5)
        area = (uniforms[0] * (high - low) + low) * (height * width)
        log_low, log_high = (math.log(value) for value in _ERASING_RATIO)
        ratio = torch.exp(uniforms[1] * (log_high - log_low) + log_low)
        box_height = torch.floor(torch.sqrt(area * ratio) + 0.5).clamp(0, height)
        box_width = torch.floor(torch.sqrt(area / ratio) + 0.5).clamp(0, width)
        top = torch.floor(uniforms[2] * (height - box_height + 1))
        left = torch.floor(uniforms[3] * (width - box_width + 1))
        fill = torch.rand(images.shape, generator=generator, device=images.device)
        return {
            "height": box_height,
            "width": box_width,
            "top": top.clamp(max=height - box_height),
            "left": left.clamp(max=width - box_width),
            "fill": fill.to(images.dtype),
            "active": uniforms[4] < self.p,
        }

    def _draw_box(
        self, volumes: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        sizes = volumes.shape[2:]
        low, high = (float(value) for value in self.scale)
        uniforms = draw_uniforms(volumes, generator, 7)
        volume = (uniforms[0] * (high - low) + low) * math.prod(sizes)
        log_low, log_high = (math.log(value) for value in _ERASING_RATIO)
        ratios = torch.exp(uniforms[1:3] * (log_high - log_low) + log_low)
        # depth * (depth * ratio_h) * (depth * ratio_w) = volume
        depth = torch.pow(volume / (ratios[0] * ratios[1]), 1 / 3)
        sides = torch.stack([depth, depth * ratios[0], depth * ratios[1]])
        params: dict[str, torch.Tensor] = {}
        for axis, (name, size) in enumerate(
            zip(("depth", "height", "width"), sizes, strict=True)
        ):
            side = torch.floor(sides[axis] + 0.5).clamp(0, size)
            start = torch.floor(uniforms[3 + axis] * (size - side + 1))
            params[name] = side
            params[f"{name}_start"] = start.clamp(max=size - side)
        fill = torch.rand(volumes.shape, generator=generator, device=volumes.device)
        params["fill"] = fill.to(volumes.dtype)
        params["active"] = uniforms[6] < self.p
        return params

    def _apply(
        self, images: torch.Tensor, params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        active = params["active"] & (params["height"] > 0) & (params["width"] > 0)
        if images.ndim == 5:
            return self._apply_box(images, params, active & (params["depth"] > 0))
        if not bool(active.any()):
            return images
        _, _, height, width = images.shape
        rows = torch.arange(height, device=images.device, dtype=images.dtype)
        columns = torch.arange(width, device=images.device, dtype=images.dtype)
        top, left = params["top"][:, None], params["left"][:, None]
        in_rows = (rows >= top) & (rows < top + params["height"][:, None])
        in_columns = (columns >= left) & (columns < left + params["width"][:, None])
        mask = (
            active[:, None, None, None]
            & in_rows[:, None, :, None]
            & in_columns[:, None, None, :]
        )
        low, high = image_range(images)
        fill = low + params["fill"] * (high - low)
        return torch.where(mask, fill, images)

    @staticmethod
    def _apply_box(
        volumes: torch.Tensor, params: dict[str, torch.Tensor], active: torch.Tensor
    ) -> torch.Tensor:
        if not bool(active.any()):
            return volumes
        mask = active.reshape(-1, 1, 1, 1, 1)
        for axis, name in enumerate(("depth", "height", "width")):
            positions = torch.arange(
                volumes.shape[2 + axis], device=volumes.device, dtype=volumes.dtype
            )
            start = params[f"{name}_start"][:, None]
            inside = (positions >= start) & (positions < start + params[name][:, None])
            shape = [-1, 1, 1, 1, 1]
            shape[2 + axis] = volumes.shape[2 + axis]
            mask = mask & inside.reshape(shape)
        low, high = image_range(volumes)
        fill = low + params["fill"] * (high - low)
        return torch.where(mask, fill, volumes)
