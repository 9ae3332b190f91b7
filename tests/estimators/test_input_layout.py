"""Image layout and scale mistakes a user makes, caught with a clear message."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.utils._validation import check_images

FAST = {"max_epochs": 1, "random_state": 0, "device": "cpu", "batch_size": 16}


@pytest.fixture(scope="module")
def fitted(phantoms):
    X, y = phantoms
    return MedicalCNNClassifier(**FAST).fit(X, y)


def test_a_torch_batch_is_read_channels_first(phantoms, fitted):
    X, y = phantoms
    batch = torch.from_numpy(X[:, np.newaxis].astype(np.float32))  # (n, 1, H, W)
    from_tensor = MedicalCNNClassifier(**FAST).fit(batch, y)
    assert from_tensor.image_shape_ == (16, 16, 1)
    np.testing.assert_allclose(
        from_tensor.predict_proba(batch), fitted.predict_proba(X), rtol=1e-5
    )


def test_a_channels_first_array_gets_a_warning(phantoms):
    X, y = phantoms
    rgb_first = np.repeat(X[:, np.newaxis], 3, axis=1)  # (n, 3, 16, 16)
    with pytest.warns(UserWarning, match=r"channels-first.*transpose\(0, 2, 3, 1\)"):
        MedicalCNNClassifier(spatial_dims=2, **FAST).fit(rgb_first, y)
    # by default such an array is read as volumes of depth 3, with the same advice
    with pytest.warns(UserWarning, match=r"3x16x16 voxels.*transpose\(0, 2, 3, 1\)"):
        check_images(rgb_first, spatial_dims=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # channels-last RGB: no warning
        MedicalCNNClassifier(**FAST).fit(rgb_first.transpose(0, 2, 3, 1), y)


def test_image_shape_that_does_not_fit_the_images_is_refused(phantoms):
    X, y = phantoms
    with pytest.raises(ValueError, match=r"image_shape=\(8, 8\).*\(16, 16, 1\)"):
        MedicalCNNClassifier(image_shape=(8, 8), **FAST).fit(X, y)
    # the shape the images have is accepted
    MedicalCNNClassifier(image_shape=(16, 16), **FAST).fit(X, y)


def test_prediction_shape_errors_speak_of_images(fitted, phantoms):
    X, _ = phantoms
    with pytest.raises(ValueError, match=r"images of shape \(32, 32, 1\).*Resize"):
        fitted.predict(np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match=r"one image of shape \(16, 16\).*newaxis"):
        fitted.predict(X[0])
    assert fitted.predict(X[0][np.newaxis]).shape == (1,)


@pytest.mark.parametrize("scale", ["unit", "16-bit"])
def test_predicting_on_another_intensity_scale_warns(fitted, phantoms, scale):
    X, _ = phantoms
    other = X / 255.0 if scale == "unit" else X.astype(np.uint16) * 257
    with pytest.warns(UserWarning, match="scaled differently"):
        fitted.predict(other)


def test_the_same_scale_in_another_dtype_does_not_warn(fitted, phantoms):
    X, _ = phantoms
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict(X.astype(np.float32))
        fitted.predict(X[:1])
        fitted.predict(np.zeros((1, 16, 16), dtype=np.uint8))  # constant image


def test_a_channels_last_torch_batch_gets_a_warning(phantoms):
    X, y = phantoms
    batch = torch.from_numpy(X[..., np.newaxis].astype(np.float32))  # (n, H, W, 1)
    with pytest.warns(UserWarning, match=r"torch's layout.*permute\(0, 3, 1, 2\)"):
        MedicalCNNClassifier(**FAST).fit(batch, y)


def test_a_flat_image_of_the_usual_values_does_not_warn():
    # CT-like training images in Hounsfield units; then a slice of air only
    rng = np.random.default_rng(0)
    X = rng.normal(-300.0, 500.0, size=(40, 16, 16)).astype(np.float32)
    y = np.arange(40) % 2
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    air = rng.normal(-1000.0, 5.0, size=(1, 16, 16)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict(air)
    with pytest.warns(UserWarning, match="scaled differently"):
        clf.predict(X / 1000.0)
