"""ToGrayscale and ToRGB: luminance as rgb2gray, layouts, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2gray

from sk_medcnn.preprocessing import ToGrayscale, ToRGB


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grayscale_equals_rgb2gray_on_floats(dtype):
    X = np.random.default_rng(0).uniform(0, 1, (4, 6, 5, 3)).astype(dtype)
    out = ToGrayscale().fit_transform(X)
    assert out.shape == (4, 6, 5, 1)
    assert out.dtype == dtype
    expected = np.stack([rgb2gray(image) for image in X])
    np.testing.assert_allclose(out[..., 0], expected, rtol=1e-6)


def test_grayscale_keeps_uint8_range():
    X = np.random.default_rng(0).integers(0, 256, (3, 7, 7, 3), dtype=np.uint8)
    out = ToGrayscale().fit_transform(X)
    assert out.dtype == np.uint8
    expected = np.rint(255 * np.stack([rgb2gray(image) for image in X]))
    assert np.abs(out[..., 0].astype(int) - expected).max() <= 1
    white = np.full((1, 1, 1, 3), 255, dtype=np.uint8)
    assert ToGrayscale().fit_transform(white).item() == 255


def test_grayscale_passes_grey_images_through():
    X = np.arange(12, dtype=np.uint16).reshape(1, 3, 4)
    np.testing.assert_array_equal(ToGrayscale().fit_transform(X), X)
    np.testing.assert_array_equal(
        ToGrayscale().fit_transform(X[..., None]), X[..., None]
    )


def test_grayscale_refuses_alpha():
    with pytest.raises(ValueError, match=r"4 channels. Drop an alpha channel"):
        ToGrayscale().fit_transform(np.zeros((1, 2, 2, 4)))


def test_to_rgb_repeats_the_channel():
    X = np.arange(6, dtype=np.int16).reshape(1, 2, 3)
    out = ToRGB().fit_transform(X)
    assert out.shape == (1, 2, 3, 3)
    assert out.dtype == np.int16
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], X)
    np.testing.assert_array_equal(ToRGB().fit_transform(out), out)
    flat = ToRGB().fit_transform(np.arange(4).reshape(1, 4))  # one 2x2 image
    np.testing.assert_array_equal(flat, [[0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]])


def test_round_trip_of_grey_images():
    X = np.random.default_rng(0).integers(0, 256, (3, 5, 5), dtype=np.uint8)
    rgb = ToRGB().fit_transform(X)
    np.testing.assert_array_equal(ToGrayscale().fit_transform(rgb)[..., 0], X)


def test_to_rgb_refuses_other_channel_counts():
    with pytest.raises(ValueError, match="ToRGB takes single-channel images; X has 2"):
        # 2-D images of 2 channels: (1, 2, 2, 2) alone would be read as a volume
        ToRGB(spatial_dims=2).fit_transform(np.zeros((1, 2, 2, 2)))
