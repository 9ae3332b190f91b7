"""Geometric augmenters: random flips, rotations and affine shift/zoom/shear.

Rotations and affine maps are one sampling grid + ``grid_sample`` call per
batch, defined in pixel units so that non-square images are not distorted.
Per-sample parameters are a handful of numbers per image: their arithmetic is
kept to few tensor operations, because at 28x28 pixels each operation's fixed
cost (a few microseconds) matters as much as the resampling itself.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from ..utils._validation import (
    boolean,
    closed_fraction,
    random_state_like,
    spatial_dims_like,
)
from ._base import (
    BaseAugmenter,
    Checker,
    bounded_float,
    bounded_fraction_pair,
    draw_uniforms,
    per_image,
    range_pair,
)
from ._warp import (
    _rotation_3d,
    normalised_theta,
    plane_rotation,
    rotation_theta,
    volume_theta,
    warp_affine,
    warp_volumes,
)

__all__ = ["RandomAffine", "RandomFlip", "RandomRotation"]

#: Flip axes in draw order; "depth" last, so that 2-D draws are as before.
_FLIP_AXES = ("horizontal", "vertical", "depth")

#: Axes of a volume ``(depth, height, width)``, as named by ``plane``.
_VOLUME_AXES = ("depth", "height", "width")


def _flip_axes(value: Any, name: str) -> None:
    axes = (value,) if isinstance(value, str) else value
    if not isinstance(axes, tuple | list) or not axes:
        raise TypeError(
            f"{name} must be 'horizontal', 'vertical', 'depth' or a non-empty "
            f"tuple of them; got {value!r}."
        )
    for axis in axes:
        if axis not in _FLIP_AXES:
            raise ValueError(
                f"{name} must hold 'horizontal' (mirror left-right), 'vertical' "
                "(mirror top-bottom) or 'depth' (reverse the slices of volumes); "
                f"got {axis!r} in {value!r}."
            )
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name} names an axis twice: {value!r}.")


def _plane(value: Any, name: str) -> None:
    if value is None:
        return
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or any(axis not in _VOLUME_AXES for axis in value)
        or value[0] == value[1]
    ):
        raise ValueError(
            f"{name} must be None or a pair of two different axes among 'depth', "
            f"'height' and 'width', such as ('height', 'width'); got {value!r}."
        )


def _angle_or_triple(value: Any, name: str) -> None:
    """Check a float in [0, 180], or three of them (about depth, height, width)."""
    check = bounded_float(180.0, unit=" degrees")
    if isinstance(value, tuple | list):
        if len(value) != 3:
            raise ValueError(
                f"{name} must be a float in [0, 180] or a tuple of three (about the "
                f"depth, height and width axes of volumes); got {value!r}."
            )
        for item in value:
            check(item, name)
        return
    check(value, name)


def _fractions(value: Any, name: str) -> None:
    """Check a pair (horizontal, vertical) or a triple (depth, height, width)."""
    if isinstance(value, tuple | list) and len(value) == 3:
        for item in value:
            bounded_float(1.0)(item, name)
        return
    bounded_fraction_pair(value, name)


def volume_error(augmenter: Any, images: torch.Tensor, what: str) -> ValueError:
    """Build a ``ValueError`` naming the batch shape and what does not apply."""
    kind, layout = (
        ("volumes", "D, H, W") if images.ndim == 5 else ("2-D images", "H, W")
    )
    return ValueError(
        f"{type(augmenter).__name__}: {what}, but the batch holds {kind} of shape "
        f"{tuple(images.shape)} (torch layout (n, C, {layout}))."
    )


class RandomFlip(BaseAugmenter):
    """Mirror each image left-right and/or top-bottom (volumes: any axis) at random.

    Parameters
    ----------
    axes : {"horizontal", "vertical", "depth"} or tuple of them, \
            default=("horizontal",)
        ``"horizontal"`` mirrors left-right (reverses the columns, the width
        axis: ``np.flip(image, axis=1)`` on a ``(height, width)`` image,
        ``axis=2`` on a ``(depth, height, width)`` volume); ``"vertical"``
        mirrors top-bottom (reverses the rows, the height axis);
        ``"depth"`` reverses the order of the slices of a volume (its first
        axis) and is an error on 2-D images. Each named axis is flipped
        independently.
    p : float, default=0.5
        Probability, per image and per axis, of a flip; in [0, 1].
    spatial_dims : {"auto", 2, 3}, default="auto"
        How :meth:`fit_transform` reads ``X``: 2 for images, 3 for volumes,
        ``"auto"`` by its shape (5 axes, or 4 whose last is not 1, 3 or 4, are
        volumes; see ``sk_medcnn.utils.infer_spatial_dims``). Inside
        ``MedicalCNNClassifier`` the batch's shape decides; 2 or 3 then
        refuses the other kind with an error naming the shape.
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
    >>> volumes = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)  # (n, D, H, W)
    >>> flipped = RandomFlip("depth", p=1.0).fit_transform(volumes)
    >>> bool(np.array_equal(flipped, volumes[:, ::-1]))
    True
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "axes": _flip_axes,
        "p": closed_fraction,
        "spatial_dims": spatial_dims_like,
        "random_state": random_state_like,
    }

    def __init__(
        self,
        axes: str | tuple[str, ...] = ("horizontal",),
        *,
        p: float = 0.5,
        spatial_dims: int | str = "auto",
        random_state: Any = None,
    ) -> None:
        self.axes = axes
        self.p = p
        self.spatial_dims = spatial_dims
        self.random_state = random_state

    def _draw(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        axes = (self.axes,) if isinstance(self.axes, str) else tuple(self.axes)
        if "depth" in axes and images.ndim == 4:
            raise volume_error(self, images, "axes names 'depth', an axis of volumes")
        names = [axis for axis in _FLIP_AXES if axis in axes]
        flips = draw_uniforms(images, generator, len(names)) < self.p
        return dict(zip(names, flips, strict=True))

    def _apply(
        self, images: torch.Tensor, params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        dims = {"horizontal": -1, "vertical": -2, "depth": -3}
        for axis, flip in params.items():
            if not bool(flip.any()):
                continue
            flipped = images.flip(dims[axis])
            images = torch.where(per_image(flip, images), flipped, images)
        return images


class RandomRotation(BaseAugmenter):
    """Rotate each image or volume about its centre by a random angle.

    Parameters
    ----------
    degrees : float, default=10.0
        The angle is drawn uniformly in ``[-degrees, degrees]``; in [0, 180].
        Positive angles turn counter-clockwise as displayed (like
        ``np.rot90``). Volumes without a ``plane`` turn about each of their
        three axes by an angle drawn this way.
    plane : tuple of two of {"depth", "height", "width"}, default=None
        Volumes only turn in this plane (about the third axis), a positive
        angle from the first axis towards the second, like
        ``np.rot90(volume, axes=plane)`` on a ``(depth, height, width)``
        volume: ``("height", "width")`` turns every slice alike (about the
        depth axis). ``None``: images turn in their plane, volumes about all
        three axes. On 2-D images only ``("height", "width")`` (or the
        reverse, turning the other way) is a plane.
    quarter_turns : bool, default=False
        Add a random multiple of 90 degrees (0, 90, 180 or 270, equally
        likely) to the angle, in the image plane or in ``plane`` (which
        volumes then need). With ``degrees=0`` and a square plane the turns
        are exact (``np.rot90``), with no interpolation.
    p : float, default=1.0
        Probability, per image, of a rotation; in [0, 1].
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
    RandomAffine : Random shifts, zooms and shears.
    RandomFlip : Random mirror images.

    Notes
    -----
    One sampling grid (the grid of ``torch.nn.functional.affine_grid``, built
    faster) and one ``grid_sample`` call warp the whole batch with bilinear
    interpolation (trilinear for volumes), as
    ``skimage.transform.rotate(..., order=1)`` does image by image. The
    rotation is built in pixel (voxel) units, so non-square images keep
    their proportions. Corners that come from outside the image take the
    image's own minimum intensity (its background: air on radiographs and CT,
    0 on MRI), so no bright border or zero-HU (water) frame appears on data in
    any unit. A quarter turn of a square image equals ``np.rot90`` to float
    precision (exactly, once rounded, for integer images).

    A volume without ``plane`` is turned about the width axis, then the
    height axis, then the depth axis, each by its own angle; the angles, not
    the rotations, are uniform (a small-angle augmentation, not a uniformly
    random orientation).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.augmentation import RandomRotation
    >>> X = np.zeros((4, 16, 16), dtype=np.uint8)
    >>> X[:, 4:12, 7:9] = 200
    >>> Xt = RandomRotation(30, random_state=0).fit_transform(X)
    >>> Xt.shape, Xt.dtype
    ((4, 16, 16), dtype('uint8'))
    >>> volumes = np.random.default_rng(0).random((2, 6, 8, 8))  # (n, D, H, W)
    >>> turns = RandomRotation(0, plane=("height", "width"), quarter_turns=True)
    >>> turns.fit_transform(volumes).shape
    (2, 6, 8, 8)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "degrees": bounded_float(180.0, unit=" degrees"),
        "plane": _plane,
        "quarter_turns": boolean,
        "p": closed_fraction,
        "spatial_dims": spatial_dims_like,
        "random_state": random_state_like,
    }

    def __init__(
        self,
        degrees: float = 10.0,
        *,
        plane: tuple[str, str] | None = None,
        quarter_turns: bool = False,
        p: float = 1.0,
        spatial_dims: int | str = "auto",
        random_state: Any = None,
    ) -> None:
        self.degrees = degrees
        self.plane = plane
        self.quarter_turns = quarter_turns
        self.p = p
        self.spatial_dims = spatial_dims
        self.random_state = random_state

    def _plane_axes(self, images: torch.Tensor) -> tuple[int, int] | None:
        """Axes (0 depth, 1 height, 2 width) of the plane; None: all three."""
        if self.plane is None:
            if images.ndim == 5 and self.quarter_turns:
                raise volume_error(
                    self, images, "quarter_turns needs a plane to turn volumes in"
                )
            return (1, 2) if images.ndim == 4 else None
        first, second = (_VOLUME_AXES.index(axis) for axis in self.plane)
        if images.ndim == 4 and 0 in (first, second):
            raise volume_error(
                self, images, f"plane={tuple(self.plane)!r} names the depth axis"
            )
        return first, second

    def _draw(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        axes = self._plane_axes(images)
        degrees = float(self.degrees)
        n_angles = 3 if axes is None else 1
        n_draws = n_angles + 1 + int(bool(self.quarter_turns))
        uniforms = draw_uniforms(images, generator, n_draws)
        angles = uniforms[:n_angles] * (2 * degrees) - degrees
        params = {"active": uniforms[n_angles] < self.p}
        if self.quarter_turns:
            turns = torch.floor(uniforms[n_angles + 1] * 4).clamp_(max=3)
            params["turns"] = turns
            angles = angles + 90 * turns
        if images.ndim == 4:
            params["angle"] = angles[0]
        else:
            params["angles"] = angles
        return params

    def _apply(
        self, images: torch.Tensor, params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        axes = self._plane_axes(images)
        if "turns" in params and self.degrees == 0 and axes is not None:
            exact = self._exact_turns(images, params["turns"], params["active"], axes)
            if exact is not None:
                return exact
        if images.ndim == 4:
            # the plane is (height, width), or its reverse: the opposite turn
            angle = params["angle"] if axes == (1, 2) else -params["angle"]
            theta = rotation_theta(angle, images.shape[2], images.shape[3])
            return warp_affine(images, theta, params["active"] & (angle != 0))
        angles = params["angles"]
        if axes is None:
            matrix = _rotation_3d(angles)
        else:
            matrix = plane_rotation(angles[0], *axes)
        theta = volume_theta(
            matrix, torch.zeros_like(matrix[:, :, 0]), *images.shape[2:]
        )
        return warp_volumes(images, theta, params["active"] & (angles != 0).any(0))

    @staticmethod
    def _exact_turns(
        images: torch.Tensor,
        turns: torch.Tensor,
        active: torch.Tensor,
        axes: tuple[int, int],
    ) -> torch.Tensor | None:
        """Quarter turns by ``torch.rot90`` when the plane is square, else None."""
        dims = (axes[0] + images.ndim - 3, axes[1] + images.ndim - 3)
        if images.shape[dims[0]] != images.shape[dims[1]]:
            return None
        out = images
        for k in (1, 2, 3):
            chosen = active & (turns == k)
            if bool(chosen.any()):
                out = torch.where(
                    per_image(chosen, images), torch.rot90(images, k, dims), out
                )
        return out


class RandomAffine(BaseAugmenter):
    """Shift, zoom, shear and optionally rotate each image by random amounts.

    Parameters
    ----------
    translate : tuple of (float, float) or of three floats, default=(0.1, 0.1)
        Largest shifts as fractions of the image size, in [0, 1]. A pair is
        ``(horizontal, vertical)``, as in torchvision: the horizontal shift
        is drawn uniformly in ``[-translate[0] * width, translate[0] *
        width]``, the vertical one likewise with the height; volumes given a
        pair are shifted within their slices only. Three values are
        ``(depth, height, width)``, depth first like the volumes' axes, for
        volumes only.
    degrees : float or tuple of three floats, default=0.0
        Largest rotation angle, in [0, 180]: the angle is drawn uniformly in
        ``[-degrees, degrees]``, counter-clockwise positive, as in
        :class:`RandomRotation`, but applied in the same resampling as the
        shift and zoom. Volumes turn about each of their three axes by an
        angle drawn this way; three values give the largest angle about the
        depth, height and width axes (volumes only; 0 keeps an axis still).
    scale : tuple of (float, float), default=(0.9, 1.1)
        Range of the zoom factor, drawn uniformly; ``0 < low <= high``.
        Factors above 1 enlarge the content (zoom in); volumes are zoomed
        alike along their three axes.
    shear : float, default=0.0
        Largest shear angle in degrees, in [0, 90): the angle is drawn
        uniformly in ``[-shear, shear]`` and shears along x (the width; every
        slice of a volume alike).
    p : float, default=1.0
        Probability, per image, of the transform; in [0, 1].
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

    Volumes ``(n, C, D, H, W)`` in the classifier are warped the same way in
    3-D: one ``(n, 3, 4)`` map per batch and one 5-D ``grid_sample``
    (trilinear), the rotation composed as in :class:`RandomRotation`.

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
    >>> volumes = np.random.default_rng(0).random((2, 6, 8, 10))  # (n, D, H, W)
    >>> affine = RandomAffine((0.1, 0.1, 0.1), degrees=(10, 5, 5), random_state=0)
    >>> affine.fit_transform(volumes).shape
    (2, 6, 8, 10)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "translate": _fractions,
        "degrees": _angle_or_triple,
        "scale": range_pair(low=0.0, high=math.inf, include_low=False),
        "shear": bounded_float(90.0, unit=" degrees", include_high=False),
        "p": closed_fraction,
        "spatial_dims": spatial_dims_like,
        "random_state": random_state_like,
    }

    def __init__(
        self,
        translate: tuple[float, ...] = (0.1, 0.1),
        *,
        degrees: float | tuple[float, float, float] = 0.0,
        scale: tuple[float, float] = (0.9, 1.1),
        shear: float = 0.0,
        p: float = 1.0,
        spatial_dims: int | str = "auto",
        random_state: Any = None,
    ) -> None:
        self.translate = translate
        self.degrees = degrees
        self.scale = scale
        self.shear = shear
        self.p = p
        self.spatial_dims = spatial_dims
        self.random_state = random_state

    def _draw(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        if images.ndim == 5:
            return self._draw_volumes(images, generator)
        if len(self.translate) == 3 or isinstance(self.degrees, tuple | list):
            raise volume_error(
                self,
                images,
                "three translate or degrees values are (depth, height, width) "
                "of volumes",
            )
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
        if images.ndim == 5:
            return self._apply_volumes(images, params)
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

    def _draw_volumes(
        self, volumes: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        sizes = volumes.shape[2:]
        if len(self.translate) == 3:
            fractions = [float(value) for value in self.translate]
        else:  # (horizontal, vertical): within the slices
            fractions = [0.0, float(self.translate[1]), float(self.translate[0])]
        if isinstance(self.degrees, tuple | list):
            degrees = [float(value) for value in self.degrees]
        else:
            degrees = [float(self.degrees)] * 3
        low, high = (float(value) for value in self.scale)
        shear = float(self.shear)
        uniforms = draw_uniforms(volumes, generator, 9)
        largest_shift = torch.tensor(
            [fraction * size for fraction, size in zip(fractions, sizes, strict=True)],
            dtype=volumes.dtype,
            device=volumes.device,
        )
        largest_angle = torch.tensor(
            degrees, dtype=volumes.dtype, device=volumes.device
        )
        return {
            "shift": (uniforms[0:3] * 2 - 1) * largest_shift[:, None],  # (3, n)
            "angles": (uniforms[3:6] * 2 - 1) * largest_angle[:, None],  # (3, n)
            "zoom": uniforms[6] * (high - low) + low,
            "shear": uniforms[7] * (2 * shear) - shear,
            "active": uniforms[8] < self.p,
        }

    def _apply_volumes(
        self, volumes: torch.Tensor, params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        shift, angles, zoom = params["shift"], params["angles"], params["zoom"]
        tangent = torch.tan(torch.deg2rad(params["shear"]))
        # forward: p -> zoom * Shear Rotation p + shift; its inverse reads the
        # input at Rotation^-1 Shear^-1 (p - shift) / zoom, Shear^-1 taking
        # tan * height off the width (as the 2-D shear along x, slice by slice)
        shear_inverse = torch.eye(3, dtype=volumes.dtype, device=volumes.device)
        shear_inverse = shear_inverse.repeat(len(zoom), 1, 1)
        shear_inverse[:, 2, 1] = -tangent
        matrix = _rotation_3d(angles) @ shear_inverse / zoom[:, None, None]
        offset = -(matrix @ shift.T[:, :, None])[:, :, 0]
        theta = volume_theta(matrix, offset, *volumes.shape[2:])
        moving = (zoom != 1) | (tangent != 0) | (angles != 0).any(0)
        moving = moving | (shift != 0).any(0)
        return warp_volumes(volumes, theta, params["active"] & moving)
