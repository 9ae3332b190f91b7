"""The affine mathematics of the geometric augmenters, in 2-D and 3-D.

Output-to-input maps built in pixel (voxel) units about the centre, turned
into the normalised units of ``F.affine_grid`` (``align_corners=False``), and
applied to a batch by one sampling grid and one ``grid_sample`` call. The
grids are built as broadcast sums rather than by ``F.affine_grid``, which is
the costlier part at small image sizes.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = [
    "affine_grid",
    "affine_grid_3d",
    "normalised_theta",
    "plane_rotation",
    "rotation_theta",
    "volume_theta",
    "warp_affine",
    "warp_volumes",
]


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
    warped = _sample_over_minimum(images, grid)
    if n_active == n_samples:
        return warped
    return torch.where(active.reshape(-1, 1, 1, 1), warped, images)


def _sample_over_minimum(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample ``images`` at ``grid``, points outside taking each image's minimum.

    Bilinear on images ``(n, C, H, W)``, trilinear on volumes ``(n, C, D, H,
    W)``: zero padding of ``image - minimum`` is padding with the minimum.
    """
    minimum = images.flatten(1).amin(dim=1).reshape(-1, *(1,) * (images.ndim - 1))
    return (
        F.grid_sample(
            images - minimum,
            grid,
            mode="bilinear",  # trilinear on 5-D input
            padding_mode="zeros",
            align_corners=False,
        )
        + minimum
    )


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


@functools.lru_cache(maxsize=32)
def _voxel_centres(
    depth: int, height: int, width: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Voxel centres along width, height and depth, ``align_corners=False`` units."""
    xs, ys = _pixel_centres(height, width, dtype, device)
    zs = (torch.arange(depth, dtype=dtype, device=device) * 2 + 1) / depth - 1
    return xs, ys, zs


def affine_grid_3d(
    theta: torch.Tensor, depth: int, height: int, width: int
) -> torch.Tensor:
    """Build the grid of ``F.affine_grid(theta, size, align_corners=False)`` in 3-D.

    The broadcast sum of a per-column, a per-row and a per-slice term, as
    :func:`affine_grid` does in 2-D (equal to ``F.affine_grid`` to float
    rounding; ``tests/augmentation/test_augmentation_volumes.py`` checks it): measured
    about 18x faster than ``F.affine_grid`` on a batch of 32 volumes of
    28x28x28 (2.8 ms against 50 ms, 2 threads), where ``F.affine_grid``
    costs twice the ``grid_sample`` call itself.

    Parameters
    ----------
    theta : torch.Tensor of shape (n_samples, 3, 4)
        Output-to-input affine maps in normalised ``(x, y, z)`` coordinates
        (x along the width, y the height, z the depth).
    depth, height, width : int
        Output size.

    Returns
    -------
    grid : torch.Tensor of shape (n_samples, depth, height, width, 3)
        ``(x, y, z)`` input coordinates in [-1, 1] for ``F.grid_sample``.
    """
    xs, ys, zs = _voxel_centres(depth, height, width, theta.dtype, theta.device)
    columns = (theta[:, :, 0, None] * xs).transpose(1, 2)  # (n, W, 3)
    rows = (theta[:, :, 1, None] * ys).transpose(1, 2)  # (n, H, 3)
    slices = torch.addcmul(theta[:, :, 3, None], theta[:, :, 2, None], zs)
    slices = slices.transpose(1, 2)  # (n, D, 3)
    return (
        columns[:, None, None, :, :]
        + rows[:, None, :, None, :]
        + slices[:, :, None, None, :]
    )


def plane_rotation(angles: torch.Tensor, first: int, second: int) -> torch.Tensor:
    """Output-to-input maps ``(n, 3, 3)`` of rotations in the plane of two axes.

    In voxel units about the centre, axes ordered (depth, height, width). A
    positive angle turns like ``np.rot90(volume, axes=(first, second))``
    (from the first axis towards the second); in the (height, width) plane
    that is counter-clockwise as displayed, as :func:`rotation_theta`.
    """
    radians = torch.deg2rad(angles)
    cos, sin = torch.cos(radians), torch.sin(radians)
    matrix = torch.eye(3, dtype=angles.dtype, device=angles.device).repeat(
        len(angles), 1, 1
    )
    matrix[:, first, first] = cos
    matrix[:, first, second] = sin
    matrix[:, second, first] = -sin
    matrix[:, second, second] = cos
    return matrix


def volume_theta(
    matrix: torch.Tensor, shift: torch.Tensor, depth: int, height: int, width: int
) -> torch.Tensor:
    """Turn an output-to-input map in voxels into ``affine_grid``'s ``(n, 3, 4)``.

    Parameters
    ----------
    matrix : torch.Tensor of shape (n_samples, 3, 3)
        The output voxel at ``p`` (from the centre, axes depth, height, width)
        reads the input at ``matrix @ p + shift``.
    shift : torch.Tensor of shape (n_samples, 3)
        In voxels, (depth, height, width).
    depth, height, width : int
        Volume size.

    Returns
    -------
    theta : torch.Tensor of shape (n_samples, 3, 4)
        In normalised ``(x, y, z)`` units (``align_corners=False``).
    """
    sizes = torch.tensor(
        [width, height, depth], dtype=matrix.dtype, device=matrix.device
    )
    # reorder (d, h, w) to (x, y, z) = (w, h, d), then scale to normalised units
    linear = matrix.flip(-1).flip(-2) * (sizes[None, :] / sizes[:, None])
    offset = shift.flip(-1) * (2 / sizes)
    return torch.cat([linear, offset[:, :, None]], dim=2)


def warp_volumes(
    volumes: torch.Tensor, theta: torch.Tensor, active: torch.Tensor
) -> torch.Tensor:
    """Resample each volume through its own affine map (trilinear).

    Voxels that map outside the volume take the volume's own minimum, as
    :func:`warp_affine` does for images.

    Parameters
    ----------
    volumes : torch.Tensor of shape (n_samples, channels, depth, height, width)
        Floating-point volumes.
    theta : torch.Tensor of shape (n_samples, 3, 4)
        Output-to-input maps in normalised units (:func:`volume_theta`).
    active : torch.Tensor of shape (n_samples,), dtype bool
        Samples to warp; the others are returned exactly as they came.

    Returns
    -------
    warped : torch.Tensor of the shape and dtype of ``volumes``
    """
    n_samples = volumes.shape[0]
    n_active = int(active.sum())
    if n_active == 0:
        return volumes
    # only the active volumes are resampled (half of them with p=0.5): at 28^3
    # a volume's grid_sample costs far more than selecting it
    moving = volumes if n_active == n_samples else volumes[active]
    if n_active != n_samples:
        theta = theta[active]
    grid = affine_grid_3d(theta.to(volumes.dtype), *volumes.shape[2:])
    warped = _sample_over_minimum(moving, grid)
    if n_active == n_samples:
        return warped
    out = volumes.clone()
    out[active] = warped
    return out


def _rotation_3d(angles: torch.Tensor) -> torch.Tensor:
    """Output-to-input map of rotations about the depth, height and width axes.

    ``angles`` ``(3, n)`` in degrees: about the depth axis (in the (height,
    width) plane, the 2-D rotation of every slice), the height axis (the
    (depth, width) plane) and the width axis (the (depth, height) plane).
    The forward map turns about the width axis first, then the height axis,
    then the depth axis.
    """
    return (
        plane_rotation(angles[0], 1, 2)
        @ plane_rotation(angles[1], 0, 2)
        @ plane_rotation(angles[2], 0, 1)
    )
