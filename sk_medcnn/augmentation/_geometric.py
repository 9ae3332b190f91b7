"""Geometric augmenters: random flips, rotations and affine shift/zoom/shear.

Rotations and affine maps are one sampling grid + ``grid_sample`` call per
batch, defined in pixel units so that non-square images are not distorted.
Per-sample parameters are a handful of numbers per image: their arithmetic is
kept to few tensor operations, because at 28x28 pixels each operation's fixed
cost (a few microseconds) matters as much as the resampling itself.
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..utils._validation import closed_fraction, random_state_like
from ._base import (
    BaseAugmenter,
    Checker,
    bounded_float,
    bounded_fraction_pair,
    draw_uniforms,
    range_pair,
)

__all__ = ["RandomAffine", "RandomFlip", "RandomRotation"]

_FLIP_AXES = ("horizontal", "vertical")


def _flip_axes(value: Any, name: str) -> None:
    axes = (value,) if isinstance(value, str) else value
    if not isinstance(axes, tuple | list) or not axes:
        raise TypeError(
            f"{name} must be 'horizontal', 'vertical' or a non-empty tuple of "
            f"them; got {value!r}."
        )
    for axis in axes:
        if axis not in _FLIP_AXES:
            raise ValueError(
                f"{name} must hold 'horizontal' (mirror left-right) or 'vertical' "
                f"(mirror top-bottom); got {axis!r} in {value!r}."
            )
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name} names an axis twice: {value!r}.")


@functools.lru_cache(maxsize=32)
def _pixel_centres(
    height: int, width: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres in the normalised units of ``align_corners=False``."""
    xs = (torch.arange(width, dtype=dtype, device=device) * 2 + 1) / width - 1
    ys = (torch.arange(height, dtype=dtype, device=device) * 2 + 1) / height - 1
    return xs, ys


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Build the grid of ``F.affine_grid(theta, size, align_corners=False)``.

    The same grid, built as the broadcast sum of a per-column and a per-row
    term instead of ``affine_grid``'s batched product with a ``(H * W, 3)``
    matrix: measured about 8x faster on batches of 32 28x28 images and 90x
    on 224x224 ones, where ``affine_grid`` costs more than ``grid_sample``.

    Parameters
    ----------
    theta : torch.Tensor of shape (n_samples, 2, 3)
        Output-to-input affine maps in normalised coordinates.
    height, width : int
        Output size.

    Returns
    -------
    grid : torch.Tensor of shape (n_samples, height, width, 2)
        ``(x, y)`` input coordinates in [-1, 1] for ``F.grid_sample``.
    """
    xs, ys = _pixel_centres(height, width, theta.dtype, theta.device)
    columns = theta[:, :, 0, None] * xs  # (n, 2, W)
    rows = torch.addcmul(theta[:, :, 2, None], theta[:, :, 1, None], ys)  # (n, 2, H)
    return columns.transpose(1, 2)[:, None, :, :] + rows.transpose(1, 2)[:, :, None, :]


def normalised_theta(
    xx: torch.Tensor,
    xy: torch.Tensor,
    yx: torch.Tensor,
    yy: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
    height: int,
    width: int,
) -> torch.Tensor:
    """Stack an output-to-input map in pixels into ``affine_grid``'s units.

    The output pixel at ``(x, y)`` (from the image centre, x to the right, y
    down) reads the input at ``(xx * x + xy * y + shift_x, yx * x + yy * y +
    shift_y)``. Normalised units are ``x / (width / 2)`` and
    ``y / (height / 2)`` (``align_corners=False``).

    Parameters
    ----------
    xx, xy, yx, yy, shift_x, shift_y : torch.Tensor of shape (n_samples,)
        The map, in pixels.
    height, width : int
        Image size.

    Returns
    -------
    theta : torch.Tensor of shape (n_samples, 2, 3)
    """
    return torch.stack(
        [
            xx,
            xy * (height / width),
            shift_x * (2 / width),
            yx * (width / height),
            yy,
            shift_y * (2 / height),
        ],
        dim=1,
    ).reshape(-1, 2, 3)


def warp_affine(
    images: torch.Tensor, theta: torch.Tensor, active: torch.Tensor
) -> torch.Tensor:
    """Resample each image through its own affine map.

    Bilinear interpolation; pixels that map outside the image take the
    image's own minimum (its background: air on a radiograph or a CT slice).

    Parameters
    ----------
    images : torch.Tensor of shape (n_samples, channels, height, width)
        Floating-point images.
    theta : torch.Tensor of shape (n_samples, 2, 3)
        Output-to-input maps in normalised units (:func:`normalised_theta`).
    active : torch.Tensor of shape (n_samples,), dtype bool
        Samples to warp; the others are returned exactly as they came.

    Returns
    -------
    warped : torch.Tensor of the shape and dtype of ``images``
        ``images`` itself when no sample is active.
    """
    n_samples, _, height, width = images.shape
    n_active = int(active.sum())
    if n_active == 0:
        return images
    grid = affine_grid(theta.to(images.dtype), height, width)
    minimum = images.flatten(1).amin(dim=1).reshape(-1, 1, 1, 1)
    # zero padding of (image - minimum) is padding with the image's minimum
    warped = (
        F.grid_sample(
            images - minimum,
            grid,
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )
        + minimum
    )
    if n_active == n_samples:
        return warped
    return torch.where(active.reshape(-1, 1, 1, 1), warped, images)


def rotation_theta(angles: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Output-to-input maps of counter-clockwise rotations about the centre.

    Parameters
    ----------
    angles : torch.Tensor of shape (n_samples,)
        Angles in degrees; positive turns the image counter-clockwise as
        displayed (row 0 at the top), like ``np.rot90`` and
        ``skimage.transform.rotate``.
    height, width : int
        Image size.

    Returns
    -------
    theta : torch.Tensor of shape (n_samples, 2, 3)
        In the normalised units of ``affine_grid``.
    """
    radians = torch.deg2rad(angles)
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(cos)
    # the forward map on screen (y down) is [[cos, sin], [-sin, cos]]; its
    # inverse reads the input at [[cos, -sin], [sin, cos]] @ output
    return normalised_theta(cos, -sin, sin, cos, zero, zero, height, width)


class RandomFlip(BaseAugmenter):
    """Mirror each image left-right and/or top-bottom at random.

    Parameters
    ----------
    axes : {"horizontal", "vertical"} or tuple of them, default=("horizontal",)
        ``"horizontal"`` mirrors left-right (reverses the columns, like
        ``np.flip(image, axis=1)`` on a ``(height, width)`` image);
        ``"vertical"`` mirrors top-bottom (reverses the rows). Each named
        axis is flipped independently.
    p : float, default=0.5
        Probability, per image and per axis, of a flip; in [0, 1].
    random_state : int, RandomState instance or None, default=None
        Seeds :meth:`fit_transform`. Inside ``MedicalCNNClassifier`` the draws
        come from the classifier's generator (its ``random_state``) instead.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen by :meth:`fit` or :meth:`fit_transform`.

    See Also
    --------
    RandomRotation : Rotations by a random angle.
    RandomAffine : Random shifts, zooms and shears.

    Notes
    -----
    Mirror symmetry is an assumption about the task: left-right flips suit
    dermatoscopy or histology, but they swap the patient's sides on chest
    radiographs and axial CT (the heart moves to the right), which can hurt a
    model that uses laterality. ``transform`` returns its input unchanged, so
    a ``Pipeline`` never augments the data it predicts on.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.augmentation import RandomFlip
    >>> X = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    >>> RandomFlip(p=1.0).fit_transform(X)[0]
    array([[1, 0],
           [3, 2]], dtype=uint8)
    >>> bool(np.array_equal(RandomFlip().transform(X), X))  # inference: as is
    True
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "axes": _flip_axes,
        "p": closed_fraction,
        "random_state": random_state_like,
    }

    def __init__(
        self,
        axes: str | tuple[str, ...] = ("horizontal",),
        *,
        p: float = 0.5,
        random_state: Any = None,
    ) -> None:
        self.axes = axes
        self.p = p
        self.random_state = random_state

    def _draw(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        axes = (self.axes,) if isinstance(self.axes, str) else tuple(self.axes)
        names = [axis for axis in _FLIP_AXES if axis in axes]
        flips = draw_uniforms(images, generator, len(names)) < self.p
        return dict(zip(names, flips, strict=True))

    def _apply(
        self, images: torch.Tensor, params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        for axis, flip in params.items():
            if not bool(flip.any()):
                continue
            dim = -1 if axis == "horizontal" else -2
            images = torch.where(flip.reshape(-1, 1, 1, 1), images.flip(dim), images)
        return images


class RandomRotation(BaseAugmenter):
    """Rotate each image about its centre by a random angle.

    Parameters
    ----------
    degrees : float, default=10.0
        The angle is drawn uniformly in ``[-degrees, degrees]``; in [0, 180].
        Positive angles turn counter-clockwise as displayed.
    p : float, default=1.0
        Probability, per image, of a rotation; in [0, 1].
    random_state : int, RandomState instance or None, default=None
        Seeds :meth:`fit_transform`; inside ``MedicalCNNClassifier`` the
        classifier's generator is used instead.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen by :meth:`fit` or :meth:`fit_transform`.

    See Also
    --------
    RandomAffine : Random shifts, zooms and shears.
    RandomFlip : Random mirror images.

    Notes
    -----
    One sampling grid (the grid of ``torch.nn.functional.affine_grid``, built
    faster) and one ``grid_sample`` call warp the whole batch with bilinear
    interpolation, as ``skimage.transform.rotate(..., order=1)`` does image
    by image. The rotation is built in pixel units, so non-square images keep
    their proportions. Corners that come from outside the image take the
    image's own minimum intensity (its background: air on radiographs and CT,
    0 on MRI), so no bright border or zero-HU (water) frame appears on data in
    any unit. A quarter turn of a square image equals ``np.rot90`` to float
    precision (exactly, once rounded, for integer images).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.augmentation import RandomRotation
    >>> X = np.zeros((4, 16, 16), dtype=np.uint8)
    >>> X[:, 4:12, 7:9] = 200
    >>> Xt = RandomRotation(30, random_state=0).fit_transform(X)
    >>> Xt.shape, Xt.dtype
    ((4, 16, 16), dtype('uint8'))
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "degrees": bounded_float(180.0, unit=" degrees"),
        "p": closed_fraction,
        "random_state": random_state_like,
    }

    def __init__(
        self, degrees: float = 10.0, *, p: float = 1.0, random_state: Any = None
    ) -> None:
        self.degrees = degrees
        self.p = p
        self.random_state = random_state

    def _draw(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        uniforms = draw_uniforms(images, generator, 2)
        degrees = float(self.degrees)
        return {
            "angle": uniforms[0] * (2 * degrees) - degrees,
            "active": uniforms[1] < self.p,
        }

    def _apply(
        self, images: torch.Tensor, params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        angle = params["angle"]
        theta = rotation_theta(angle, images.shape[2], images.shape[3])
        return warp_affine(images, theta, params["active"] & (angle != 0))


class RandomAffine(BaseAugmenter):
    """Shift, zoom, shear and optionally rotate each image by random amounts.

    Parameters
    ----------
    translate : tuple of (float, float), default=(0.1, 0.1)
        Largest shifts as fractions of the width and the height, in [0, 1]:
        the horizontal shift is drawn uniformly in
        ``[-translate[0] * width, translate[0] * width]``, the vertical one
        likewise with the height.
    degrees : float, default=0.0
        Largest rotation angle, in [0, 180]: the angle is drawn uniformly in
        ``[-degrees, degrees]``, counter-clockwise positive, as in
        :class:`RandomRotation`, but applied in the same resampling as the
        shift and zoom.
    scale : tuple of (float, float), default=(0.9, 1.1)
        Range of the zoom factor, drawn uniformly; ``0 < low <= high``.
        Factors above 1 enlarge the content (zoom in).
    shear : float, default=0.0
        Largest shear angle in degrees, in [0, 90): the angle is drawn
        uniformly in ``[-shear, shear]`` and shears along x.
    p : float, default=1.0
        Probability, per image, of the transform; in [0, 1].
    random_state : int, RandomState instance or None, default=None
        Seeds :meth:`fit_transform`; inside ``MedicalCNNClassifier`` the
        classifier's generator is used instead.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen by :meth:`fit` or :meth:`fit_transform`.

    See Also
    --------
    RandomRotation : Rotations by a random angle, alone.

    Notes
    -----
    The forward map, about the image centre, is ``p -> zoom * S(shear) R(angle)
    p + shift``; one sampling grid and one ``grid_sample`` call apply it to
    the batch with bilinear interpolation, and pixels from outside the image
    take the image's own minimum, as in :class:`RandomRotation`.

    Every resampling blurs a little. ``RandomAffine(degrees=10)`` rotates,
    shifts and zooms in one resampling, where ``RandomRotation(10)`` followed
    by ``RandomAffine()`` resamples twice, at twice the cost; on 28x28
    PneumoniaMNIST the single resampling also trained the better model (see
    ``docs/augmentation.rst``). With ``translate=(0, 0)``, ``degrees=0``,
    ``scale=(1, 1)`` and ``shear=0`` the images come back unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.augmentation import RandomAffine
    >>> X = np.random.default_rng(0).normal(size=(3, 12, 10))
    >>> Xt = RandomAffine((0.2, 0.2), degrees=15, random_state=0).fit_transform(X)
    >>> Xt.shape, Xt.dtype
    ((3, 12, 10), dtype('float64'))
    >>> identity = RandomAffine(translate=(0, 0), scale=(1, 1))
    >>> bool(np.array_equal(identity.fit_transform(X), X))
    True
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "translate": bounded_fraction_pair,
        "degrees": bounded_float(180.0, unit=" degrees"),
        "scale": range_pair(low=0.0, high=math.inf, include_low=False),
        "shear": bounded_float(90.0, unit=" degrees", include_high=False),
        "p": closed_fraction,
        "random_state": random_state_like,
    }

    def __init__(
        self,
        translate: tuple[float, float] = (0.1, 0.1),
        *,
        degrees: float = 0.0,
        scale: tuple[float, float] = (0.9, 1.1),
        shear: float = 0.0,
        p: float = 1.0,
        random_state: Any = None,
    ) -> None:
        self.translate = translate
        self.degrees = degrees
        self.scale = scale
        self.shear = shear
        self.p = p
        self.random_state = random_state

    def _draw(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        _, _, height, width = images.shape
        low, high = (float(value) for value in self.scale)
        uniforms = draw_uniforms(images, generator, 6)
        shift = float(self.translate[0]) * width, float(self.translate[1]) * height
        degrees, shear = float(self.degrees), float(self.shear)
        return {
            "shift_x": uniforms[0] * (2 * shift[0]) - shift[0],
            "shift_y": uniforms[1] * (2 * shift[1]) - shift[1],
            "zoom": uniforms[2] * (high - low) + low,
            "shear": uniforms[3] * (2 * shear) - shear,
            "angle": uniforms[4] * (2 * degrees) - degrees,
            "active": uniforms[5] < self.p,
        }

    def _apply(
        self, images: torch.Tensor, params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        shift_x, shift_y = params["shift_x"], params["shift_y"]
        zoom, angle = params["zoom"], params["angle"]
        tangent = torch.tan(torch.deg2rad(params["shear"]))
        radians = torch.deg2rad(angle)
        cos, sin = torch.cos(radians), torch.sin(radians)
        # forward: p -> zoom * [[1, tan], [0, 1]] [[cos, sin], [-sin, cos]] p +
        # shift (on screen, y down); the output-to-input map is its inverse,
        # [[cos, -sin], [sin, cos]] [[1, -tan], [0, 1]] (p - shift) / zoom
        inverse_zoom = 1 / zoom
        xx, yx = cos * inverse_zoom, sin * inverse_zoom
        xy = -(cos * tangent + sin) * inverse_zoom
        yy = (cos - sin * tangent) * inverse_zoom
        theta = normalised_theta(
            xx,
            xy,
            yx,
            yy,
            -(xx * shift_x + xy * shift_y),
            -(yx * shift_x + yy * shift_y),
            images.shape[2],
            images.shape[3],
        )
        moving = (zoom != 1) | (tangent != 0) | (angle != 0)
        moving = moving | (shift_x != 0) | (shift_y != 0)
        return warp_affine(images, theta, params["active"] & moving)
