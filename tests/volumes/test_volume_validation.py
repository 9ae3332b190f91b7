"""Telling images from volumes: ``infer_spatial_dims`` and ``check_images``."""

import numpy as np
import pytest
import torch

from sk_medcnn.utils._validation import (
    check_images,
    image_shape_like,
    infer_spatial_dims,
    spatial_dims_like,
)


@pytest.mark.parametrize(
    ("shape", "image_shape", "expected"),
    [
        ((5, 28, 28), None, 2),
        ((5, 28, 28, 1), None, 2),
        ((5, 28, 28, 3), None, 2),  # ambiguous: stays colour images
        ((5, 28, 28, 4), None, 2),
        ((5, 28, 28, 28), None, 3),
        ((5, 8, 28, 28, 2), None, 3),
        ((5, 784), None, 2),
        ((5, 784), (28, 28), 2),
        ((5, 2352), (28, 28, 3), 2),
        ((5, 21952), (28, 28, 28), 3),
        ((5, 43904), (28, 28, 28, 2), 3),
    ],
)
def test_infer_spatial_dims_arrays(shape, image_shape, expected):
    assert infer_spatial_dims(np.zeros(shape), image_shape=image_shape) == expected


def test_infer_spatial_dims_torch_layout():
    # torch's 4-D layout is (n, C, H, W), whatever the sizes
    assert infer_spatial_dims(torch.zeros(2, 28, 28, 28)) == 2
    assert infer_spatial_dims(torch.zeros(2, 1, 8, 8, 8)) == 3


def test_check_images_volumes_channels_last():
    X = np.arange(2 * 4 * 5 * 6, dtype=np.uint8).reshape(2, 4, 5, 6)
    volumes = check_images(X, spatial_dims=None)
    assert volumes.shape == (2, 4, 5, 6, 1)
    assert volumes.dtype == np.uint8
    assert np.shares_memory(volumes, X)
    # the same array read as 2-D images has six channels
    assert check_images(X, spatial_dims=2).shape == (2, 4, 5, 6)


def test_check_images_torch_volumes_are_moved_to_channels_last():
    X = torch.arange(2 * 3 * 4 * 5 * 6, dtype=torch.float32).reshape(2, 3, 4, 5, 6)
    volumes = check_images(X, spatial_dims=None)
    assert volumes.shape == (2, 4, 5, 6, 3)
    np.testing.assert_array_equal(volumes[1, 2, 3, 4], X[1, :, 2, 3, 4].numpy())


def test_check_images_flat_volumes():
    X = np.random.default_rng(0).random((3, 4 * 5 * 6))
    volumes = check_images(X, image_shape=(4, 5, 6), spatial_dims=3)
    assert volumes.shape == (3, 4, 5, 6, 1)
    np.testing.assert_array_equal(volumes[2].ravel(), X[2])
    cubes = check_images(np.zeros((2, 27)), spatial_dims=3)
    assert cubes.shape == (2, 3, 3, 3, 1)
    with pytest.raises(ValueError, match="not a cube number"):
        check_images(np.zeros((2, 28)), spatial_dims=3)
    with pytest.raises(ValueError, match="does not describe volumes"):
        check_images(np.zeros((2, 28 * 28)), image_shape=(28, 28), spatial_dims=3)


def test_check_images_volumes_given_to_images_name_the_shape():
    with pytest.raises(ValueError, match=r"shape \(2, 4, 5, 6, 1\).*volumes"):
        check_images(np.zeros((2, 4, 5, 6, 1)), spatial_dims=2)
    with pytest.raises(ValueError, match="must be volumes"):
        check_images(np.zeros((2, 4, 5)), spatial_dims=3)


def test_channels_first_images_read_as_volumes_warn():
    with pytest.warns(UserWarning, match="read as 2 volumes of 3x28x28"):
        check_images(np.zeros((2, 3, 28, 28)), spatial_dims=None)


def test_parameter_checkers():
    spatial_dims_like("auto", "spatial_dims")
    spatial_dims_like(3, "spatial_dims")
    for bad in (1, 4, True, "3d", None):
        with pytest.raises(ValueError, match="spatial_dims must be"):
            spatial_dims_like(bad, "spatial_dims")
    image_shape_like((8, 28, 28, 1), "image_shape")
    with pytest.raises(ValueError, match="image_shape must be"):
        image_shape_like((1, 2, 3, 4, 5), "image_shape")
