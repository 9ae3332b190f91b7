"""Resize, CenterCrop and Pad: agreement with scikit-image / numpy, shapes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import resize

from sk_medcnn.preprocessing import CenterCrop, Pad, Resize, _base, _geometry


def _per_image_resize(X, shape, **params):
    return np.stack(
        [resize(image, shape, preserve_range=True, **params) for image in X]
    )


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("anti_aliasing", [True, False])
@pytest.mark.parametrize(
    ("source", "target"),
    [((28, 28), (64, 64)), ((30, 20), (7, 13)), ((16, 16), (16, 8)), ((5, 9), (9, 5))],
)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_resize_matches_skimage_per_image(
    seed, order, anti_aliasing, source, target, channels
):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-100, 300, size=(3, *source, channels))
    out = Resize(target, order=order, anti_aliasing=anti_aliasing).fit_transform(X)
    expected = _per_image_resize(X, target, order=order, anti_aliasing=anti_aliasing)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("order", [1, 3])
def test_resize_uint8_rounds_like_the_float_result(order):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(4, 24, 24), dtype=np.uint8)
    out = Resize((10, 37), order=order).fit_transform(X)
    expected = np.clip(np.rint(_per_image_resize(X, (10, 37), order=order)), 0, 255)
    assert out.dtype == np.uint8
    # float32 arithmetic may round an exact .5 the other way
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert np.mean(out == expected) > 0.99


def test_resize_float32_stays_float32_and_close():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(3, 20, 20)).astype(np.float32)
    out = Resize(11).fit_transform(X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _per_image_resize(X, (11, 11)), atol=1e-6)


def test_resize_preserve_range_false_scales_integers():
    X = np.full((2, 4, 4), 255, dtype=np.uint8)
    out = Resize(2, preserve_range=False).fit_transform(X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0)
    floats = np.full((2, 4, 4), 7.0)
    np.testing.assert_allclose(
        Resize(2, preserve_range=False).fit_transform(floats), 7.0
    )


def test_resize_is_batched_not_a_loop(monkeypatch):
    """skimage's resize runs once per axis and shape, not once per image."""
    calls = []
    original = _geometry.skimage_resize

    def counting(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(_geometry, "skimage_resize", counting)
    _geometry._resize_matrix.cache_clear()
    X = np.zeros((50, 17, 23), dtype=np.uint8)
    Resize((9, 31)).fit_transform(X)
    assert len(calls) == 2  # one matrix per axis
    Resize((9, 31)).fit_transform(X)
    assert len(calls) == 2  # cached
    _geometry._resize_matrix.cache_clear()


def test_resize_works_chunk_by_chunk(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(7, 12, 12, 2))
    expected = Resize(5).fit_transform(X)
    monkeypatch.setattr(_base, "CHUNK_BYTES", 1)
    monkeypatch.setattr(
        _geometry,
        "iter_chunks",
        lambda n, per_image: _base.iter_chunks(n, per_image, chunk_bytes=1),
    )
    np.testing.assert_array_equal(Resize(5).fit_transform(X), expected)


def test_resize_same_size_is_identity():
    X = np.random.default_rng(0).integers(0, 256, (2, 6, 6), dtype=np.uint8)
    np.testing.assert_array_equal(Resize(6).fit_transform(X), X)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"shape": 0}, ValueError, "shape must be >= 1; got 0"),
        ({"shape": (4, 0)}, ValueError, "shape must hold sizes >= 1"),
        ({"shape": (4, 4, 4, 4)}, ValueError, r"\(height, width\) of two ints or"),
        ({"shape": "big"}, TypeError, "shape must be an int, a tuple"),
        ({"shape": 4, "order": 6}, ValueError, "order must be an int from 0 to 5"),
        ({"shape": 4, "order": 1.0}, TypeError, "order must be an int"),
        ({"shape": 4, "order": True}, TypeError, "order must be an int"),
        ({"shape": 4, "anti_aliasing": "yes"}, TypeError, "anti_aliasing must be"),
        ({"shape": 4, "preserve_range": 1}, TypeError, "preserve_range must be"),
    ],
)
def test_resize_parameter_errors(params, error, match):
    X = np.zeros((2, 8, 8))
    with pytest.raises(error, match=match):
        Resize(**params).fit(X)
    with pytest.raises(error, match=match):
        Resize(**params).transform(X)


def test_center_crop_takes_the_centre():
    X = np.arange(2 * 5 * 6).reshape(2, 5, 6)
    out = CenterCrop((3, 2)).fit_transform(X)
    np.testing.assert_array_equal(out, X[:, 1:4, 2:4])
    np.testing.assert_array_equal(CenterCrop(5).fit_transform(X), X[:, :, :5])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_center_crop_undoes_pad(seed):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(3, 7, 4, 2), dtype=np.uint8)
    # 2-D images of 2 channels (spatial_dims=2: alone, the shape reads as volumes)
    padded = Pad((12, 9), mode="reflect", spatial_dims=2).fit_transform(X)
    assert padded.shape == (3, 12, 9, 2)
    crop = CenterCrop((7, 4), spatial_dims=2)
    np.testing.assert_array_equal(crop.fit_transform(padded), X)


def test_center_crop_too_large_names_the_sizes():
    with pytest.raises(ValueError, match="at least 10x10 pixels; X holds 8x8"):
        CenterCrop(10).fit_transform(np.zeros((1, 8, 8)))


@pytest.mark.parametrize("mode", _geometry.PAD_MODES)
def test_pad_matches_numpy_pad_per_image(mode):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 200, size=(3, 5, 4, 2)).astype(np.int16)
    pad = Pad((8, 7), mode=mode, constant_values=-7, spatial_dims=2)  # 2 channels
    out = pad.fit_transform(X)
    options = {}
    if mode == "constant":
        options = {"constant_values": -7}
    elif mode == "linear_ramp":
        options = {"end_values": -7}
    expected = np.stack(
        [np.pad(image, ((1, 2), (1, 2), (0, 0)), mode=mode, **options) for image in X]
    )
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, expected)


def test_pad_leaves_large_images_alone():
    X = np.ones((2, 10, 3))
    out = Pad((4, 6)).fit_transform(X)
    assert out.shape == (2, 10, 6)
    np.testing.assert_array_equal(out[:, :, 1:4], X)
    assert Pad(2).fit_transform(X).shape == (2, 10, 3)


def test_pad_fill_value_must_fit_the_dtype():
    X = np.zeros((1, 2, 2), dtype=np.uint8)
    with pytest.raises(
        ValueError, match=r"constant_values=-1 cannot be stored .*uint8"
    ):
        Pad(4, constant_values=-1).fit_transform(X)
    with pytest.raises(ValueError, match=r"constant_values=0\.5"):
        Pad(4, constant_values=0.5).fit_transform(X)
    # float images take any fill value; CT air in HU for int16
    assert Pad(4, constant_values=0.5).fit_transform(X.astype(float)).max() == 0.5
    assert (
        Pad(4, constant_values=-1024).fit_transform(X.astype(np.int16)).min() == -1024
    )


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"mode": "reflct"}, ValueError, "Did you mean 'reflect'"),
        ({"mode": "empty"}, ValueError, "mode must be one of"),
        (
            {"constant_values": float("nan")},
            ValueError,
            "constant_values must be finite",
        ),
        ({"constant_values": "0"}, TypeError, "constant_values must be a real number"),
    ],
)
def test_pad_parameter_errors(params, error, match):
    with pytest.raises(error, match=match):
        Pad(4, **params).fit(np.zeros((1, 2, 2)))
