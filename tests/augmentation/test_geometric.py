"""Flips, rotations and affine maps against exact references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.transform import AffineTransform, rotate, warp

from sk_medcnn.augmentation import RandomAffine, RandomFlip, RandomRotation
from sk_medcnn.augmentation._warp import affine_grid


def _nchw(images: np.ndarray) -> torch.Tensor:
    """(n, H, W, C) numpy -> (n, C, H, W) float64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def _nhwc(images: torch.Tensor) -> np.ndarray:
    return images.numpy().transpose(0, 2, 3, 1)


def _all(n: int) -> torch.Tensor:
    return torch.ones(n, dtype=torch.bool)


# --- flips ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("axes", "numpy_axes"),
    [
        ("horizontal", (2,)),
        (("horizontal",), (2,)),
        (("vertical",), (1,)),
        (("horizontal", "vertical"), (1, 2)),
        (["vertical", "horizontal"], (1, 2)),
    ],
)
def test_flip_equals_np_flip(axes, numpy_axes):
    X = np.random.default_rng(0).integers(0, 255, size=(4, 5, 7, 3), dtype=np.uint8)
    flipped = RandomFlip(axes, p=1.0, random_state=0).fit_transform(X)
    np.testing.assert_array_equal(flipped, np.flip(X, axis=numpy_axes))


def test_flip_chooses_per_image_and_axis():
    flip = RandomFlip(("horizontal", "vertical"), p=0.5)
    images = torch.zeros((4000, 1, 2, 2))
    params = flip._draw(images, torch.Generator().manual_seed(0))
    horizontal, vertical = params["horizontal"], params["vertical"]
    assert 0.45 < horizontal.float().mean() < 0.55
    assert 0.45 < vertical.float().mean() < 0.55
    assert 0.2 < (horizontal & vertical).float().mean() < 0.3  # independent


def test_flip_applies_its_draws():
    X = np.random.default_rng(1).random((6, 4, 4, 1))
    flip = RandomFlip(p=0.5)
    images = _nchw(X)
    params = {"horizontal": torch.tensor([1, 0, 1, 0, 0, 1], dtype=torch.bool)}
    out = _nhwc(flip._apply(images, params))
    for index, flipped in enumerate(params["horizontal"].tolist()):
        expected = np.flip(X[index], axis=1) if flipped else X[index]
        np.testing.assert_array_equal(out[index], expected)


@pytest.mark.parametrize(
    ("axes", "error", "match"),
    [
        ("diagonal", ValueError, "'horizontal'"),
        (("horizontal", "horizontal"), ValueError, "twice"),
        ((), TypeError, "non-empty"),
        (0, TypeError, "axes"),
    ],
)
def test_bad_flip_axes(axes, error, match):
    with pytest.raises(error, match=match):
        RandomFlip(axes).fit_transform(np.zeros((2, 4, 4)))


# --- rotations ------------------------------------------------------------------
@pytest.mark.parametrize(("angle", "k"), [(90.0, 1), (-90.0, -1), (180.0, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_quarter_turns_equal_np_rot90(angle, k, dtype):
    X = np.random.default_rng(2).random((3, 9, 9, 2)) * 1000 - 500
    rotation = RandomRotation(180.0)
    params = {"angle": torch.full((3,), angle, dtype=dtype), "active": _all(3)}
    out = _nhwc(rotation._apply(_nchw(X).to(dtype), params))
    np.testing.assert_allclose(out, np.rot90(X, k=k, axes=(1, 2)), atol=1e-3)


def test_quarter_turn_is_exact_on_integer_images():
    # the apply step with a given angle (a draw is never exactly 90 degrees)
    X = np.random.default_rng(3).integers(0, 256, size=(2, 8, 8, 1)).astype(np.uint8)
    params = {"angle": torch.full((2,), 90.0), "active": _all(2)}
    out = RandomRotation(90.0)._apply(_nchw(X).float(), params)
    rounded = np.rint(_nhwc(out)).astype(np.uint8)
    np.testing.assert_array_equal(rounded, np.rot90(X, k=1, axes=(1, 2)))


@pytest.mark.parametrize("angle", [17.0, -33.0, 135.0])
def test_rotation_matches_skimage_on_non_square_images(angle):
    X = np.random.default_rng(4).random((1, 20, 30, 1))
    params = {"angle": torch.tensor([angle], dtype=torch.float64), "active": _all(1)}
    out = _nhwc(RandomRotation(180.0)._apply(_nchw(X), params))[0, :, :, 0]
    expected = rotate(
        X[0, :, :, 0],
        angle,
        order=1,
        mode="constant",
        cval=X.min(),
        preserve_range=True,
    )
    np.testing.assert_allclose(out, expected, atol=1e-9)


def test_rotation_fills_the_corners_with_the_image_minimum():
    X = np.full((1, 16, 16), 40.0)  # soft tissue in HU
    X[0, 0, 0] = -1000.0  # air, the minimum
    Xt = RandomRotation(45.0, random_state=0).fit_transform(X)
    rotated = RandomRotation(180.0)._apply(
        _nchw(X[..., None]),
        {"angle": torch.tensor([45.0], dtype=torch.float64), "active": _all(1)},
    )
    corner = rotated[0, 0, 0, 0].item()
    assert corner == pytest.approx(-1000.0)  # not 0 (water), not 40 (a border)
    assert Xt.min() >= -1000.0


def test_rotation_draws_cover_the_range_and_respect_p():
    rotation = RandomRotation(25.0, p=0.3)
    params = rotation._draw(torch.zeros((4000, 1, 2, 2)), torch.Generator())
    angle = params["angle"]
    assert -25.0 <= angle.min() < -24.0
    assert 24.0 < angle.max() <= 25.0
    assert abs(angle.mean()) < 1.0
    assert 0.25 < params["active"].float().mean() < 0.35


def test_each_image_gets_its_own_angle():
    X = np.zeros((6, 15, 15), dtype=np.float32)
    X[:, 2:13, 7] = 1.0  # the same vertical bar in every image
    Xt = RandomRotation(40.0, random_state=0).fit_transform(X)
    assert len({image.tobytes() for image in Xt}) == 6


@pytest.mark.parametrize("degrees", [-1.0, 181.0, float("inf")])
def test_bad_degrees(degrees):
    with pytest.raises(ValueError, match=r"degrees must be in \[0, 180\]"):
        RandomRotation(degrees).fit_transform(np.zeros((2, 4, 4)))


def test_degrees_of_wrong_type():
    with pytest.raises(TypeError, match="degrees"):
        RandomRotation("10").fit(np.zeros((2, 4, 4)))


# --- affine ---------------------------------------------------------------------
@pytest.mark.parametrize("angle", [0.0, 25.0])
def test_affine_matches_skimage(angle):
    X = np.random.default_rng(5).random((1, 20, 30, 1))
    height, width = X.shape[1:3]
    shift, zoom, shear = np.array([3.0, -2.0]), 1.2, 10.0
    params = {
        "shift_x": torch.tensor([shift[0]], dtype=torch.float64),
        "shift_y": torch.tensor([shift[1]], dtype=torch.float64),
        "zoom": torch.tensor([zoom], dtype=torch.float64),
        "shear": torch.tensor([shear], dtype=torch.float64),
        "angle": torch.tensor([angle], dtype=torch.float64),
        "active": _all(1),
    }
    out = _nhwc(RandomAffine()._apply(_nchw(X), params))[0, :, :, 0]
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    cos, sin = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    rotation = np.array([[cos, sin], [-sin, cos]])  # counter-clockwise, y down
    linear = zoom * np.array([[1.0, np.tan(np.deg2rad(shear))], [0.0, 1.0]]) @ rotation
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = centre + shift - linear @ centre
    expected = warp(
        X[0, :, :, 0],
        AffineTransform(matrix=matrix).inverse,
        order=1,
        mode="constant",
        cval=X.min(),
        preserve_range=True,
    )
    np.testing.assert_allclose(out, expected, atol=1e-9)


def test_affine_rotation_equals_random_rotation():
    X = np.random.default_rng(7).random((3, 11, 13, 2))
    angles = torch.tensor([-30.0, 5.0, 90.0], dtype=torch.float64)
    ones, zeros = (
        torch.ones(3, dtype=torch.float64),
        torch.zeros(3, dtype=torch.float64),
    )
    affine = RandomAffine()._apply(
        _nchw(X),
        {
            "shift_x": zeros,
            "shift_y": zeros,
            "zoom": ones,
            "shear": zeros,
            "angle": angles,
            "active": _all(3),
        },
    )
    rotation = RandomRotation(90.0)._apply(
        _nchw(X), {"angle": angles, "active": _all(3)}
    )
    torch.testing.assert_close(affine, rotation)


def test_integer_shift_moves_pixels_exactly():
    X = np.random.default_rng(6).random((1, 8, 10, 1))
    params = {
        "shift_x": torch.tensor([2.0], dtype=torch.float64),  # right 2
        "shift_y": torch.tensor([1.0], dtype=torch.float64),  # down 1
        "zoom": torch.ones(1, dtype=torch.float64),
        "shear": torch.zeros(1, dtype=torch.float64),
        "angle": torch.zeros(1, dtype=torch.float64),
        "active": _all(1),
    }
    out = _nhwc(RandomAffine()._apply(_nchw(X), params))[0, :, :, 0]
    np.testing.assert_allclose(out[1:, 2:], X[0, :-1, :-2, 0], atol=1e-12)
    np.testing.assert_allclose(out[0], X.min())


def test_affine_draws_respect_the_ranges():
    affine = RandomAffine((0.1, 0.25), degrees=12.0, scale=(0.8, 1.5), shear=5.0)
    params = affine._draw(torch.zeros((2000, 1, 20, 40)), torch.Generator())
    assert params["shift_x"].abs().max() <= 0.1 * 40
    assert params["shift_y"].abs().max() <= 0.25 * 20
    assert params["shift_y"].abs().max() > 0.9 * 0.25 * 20
    assert 0.8 <= params["zoom"].min()
    assert params["zoom"].max() <= 1.5
    assert params["shear"].abs().max() <= 5.0
    assert params["angle"].abs().max() <= 12.0
    assert params["angle"].abs().max() > 11.0


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"translate": (0.1, 1.5)}, ValueError, "translate"),
        ({"translate": (-0.1, 0.1)}, ValueError, "translate"),
        ({"translate": 0.1}, TypeError, "translate"),
        ({"scale": (1.1, 0.9)}, ValueError, "scale"),
        ({"scale": (0.0, 1.0)}, ValueError, "scale"),
        ({"scale": (0.9, float("nan"))}, ValueError, "scale"),
        ({"scale": (0.9,)}, TypeError, "scale"),
        ({"shear": 90.0}, ValueError, "shear"),
        ({"shear": -5.0}, ValueError, "shear"),
        ({"degrees": -1.0}, ValueError, "degrees"),
        ({"degrees": 200.0}, ValueError, "degrees"),
    ],
)
def test_bad_affine_parameters(params, error, match):
    with pytest.raises(error, match=match):
        RandomAffine(**params).fit_transform(np.zeros((2, 4, 4)))


@pytest.mark.parametrize(("height", "width"), [(28, 28), (5, 9), (1, 6)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grid_equals_torch_affine_grid(height, width, dtype):
    theta = torch.randn((4, 2, 3), generator=torch.Generator().manual_seed(0))
    theta = theta.to(dtype)
    expected = torch.nn.functional.affine_grid(
        theta, [4, 1, height, width], align_corners=False
    )
    torch.testing.assert_close(affine_grid(theta, height, width), expected)
