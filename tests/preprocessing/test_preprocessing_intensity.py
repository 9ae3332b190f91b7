"""IntensityWindow and IntensityNormalizer: values, constant images, memory, errors."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sk_medcnn.preprocessing import (
    IntensityNormalizer,
    IntensityWindow,
    _base,
    _intensity,
)

# --- IntensityWindow ------------------------------------------------------------


def test_window_maps_level_and_edges():
    X = np.array([[[-1000, -160, 40, 240, 3000]]], dtype=np.int16)
    out = IntensityWindow(level=40, width=400).fit_transform(X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[[0.0, 0.0, 0.5, 1.0, 1.0]]])


@pytest.mark.parametrize("preset", list(_intensity.WINDOW_PRESETS))
def test_presets_equal_their_level_and_width(preset):
    level, width = _intensity.WINDOW_PRESETS[preset]
    X = np.linspace(-1200, 2000, 64).reshape(1, 8, 8)
    np.testing.assert_array_equal(
        IntensityWindow(preset=preset).fit_transform(X),
        IntensityWindow(level=level, width=width).fit_transform(X),
    )


def test_preset_values():
    assert _intensity.WINDOW_PRESETS == {
        "lung": (-600, 1500),
        "mediastinum": (50, 350),
        "abdomen": (40, 400),
        "bone": (400, 1800),
        "brain": (40, 80),
    }


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float32, np.float64])
def test_window_output_is_float32_in_unit_interval(dtype):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 3000, size=(5, 9, 9)).astype(dtype)
    out = IntensityWindow(preset="bone").fit_transform(X)
    assert out.dtype == np.float32
    assert out.min() >= 0
    assert out.max() <= 1
    expected = np.clip((X.astype(np.float64) - (400 - 900)) / 1800, 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"level": 40, "width": 0}, ValueError, "width == 0, must be > 0"),
        ({"level": 40, "width": -400}, ValueError, "width == -400, must be > 0"),
        ({"level": 40, "width": "400"}, TypeError, "width must be a real number"),
        ({"level": float("inf"), "width": 4}, ValueError, "level must be finite"),
        ({"preset": "lungs"}, ValueError, "Did you mean 'lung'"),
        ({"preset": "liver"}, ValueError, "preset must be one of 'lung'"),
        ({"level": 40}, ValueError, "needs level and width .* or a preset"),
        ({}, ValueError, "needs level and width"),
        (
            {"level": 40, "width": 400, "preset": "brain"},
            ValueError,
            "either preset .* or level and width .*, not both",
        ),
    ],
)
def test_window_parameter_errors(params, error, match):
    X = np.zeros((1, 4, 4))
    with pytest.raises(error, match=match):
        IntensityWindow(**params).fit(X)
    with pytest.raises(error, match=match):
        IntensityWindow(**params).transform(X)


# --- IntensityNormalizer, per image ---------------------------------------------


# 2-D images of 2 channels: the normalisers below say spatial_dims=2, since
# (n, 10, 12, 2) alone is read as volumes (sk_medcnn.utils.infer_spatial_dims)
def _images(seed=0, shape=(6, 10, 12, 2), dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (
        rng.gamma(2.0, 30.0, size=shape) + rng.uniform(0, 50, (shape[0], 1, 1, 1))
    ).astype(dtype)


@pytest.mark.parametrize("seed", [0, 1])
def test_per_image_zscore(seed):
    X = _images(seed)
    out = IntensityNormalizer("zscore", spatial_dims=2).fit_transform(X)
    mean = X.mean(axis=(1, 2), keepdims=True)
    std = X.std(axis=(1, 2), keepdims=True)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (X - mean) / std, rtol=1e-5, atol=1e-5)


def test_per_image_minmax():
    X = _images(dtype=np.uint16)
    out = IntensityNormalizer("minmax", spatial_dims=2).fit_transform(X)
    low = X.min(axis=(1, 2), keepdims=True)
    high = X.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out, (X - low) / (high - low), atol=1e-6)


@pytest.mark.parametrize("percentiles", [(1, 99), (0, 100), (2.5, 60)])
def test_per_image_percentile(percentiles):
    X = _images(dtype=np.uint8)
    normalizer = IntensityNormalizer(
        "percentile", percentiles=percentiles, spatial_dims=2
    )
    out = normalizer.fit_transform(X)
    for image, result in zip(X, out, strict=True):
        for channel in range(X.shape[-1]):
            low, high = np.percentile(image[..., channel], percentiles)
            expected = np.clip((image[..., channel] - low) / (high - low), 0, 1)
            np.testing.assert_allclose(result[..., channel], expected, atol=1e-6)


@pytest.mark.parametrize("method", ["zscore", "minmax", "percentile"])
@pytest.mark.parametrize("per_image", [True, False])
@pytest.mark.parametrize("value", [0, 7, 1e6])
def test_constant_images_map_to_zero_not_nan(method, per_image, value):
    X = np.full((3, 5, 5), value, dtype=np.float32)
    out = IntensityNormalizer(method, per_image=per_image).fit_transform(X)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, 0)


def test_coinciding_percentiles_threshold():
    X = np.zeros((1, 10, 10), dtype=np.uint8)
    X[0, 0, 0] = 200  # one bright pixel: the 1st and 99th percentiles are 0
    out = IntensityNormalizer("percentile").fit_transform(X)
    assert out[0, 0, 0] == 1
    assert out.sum() == 1


# --- IntensityNormalizer, data-set statistics -----------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_dataset_statistics_per_channel(dtype):
    X = _images(dtype=dtype) - (100 if dtype == np.int16 else 0)
    zscore = IntensityNormalizer("zscore", per_image=False, spatial_dims=2).fit(X)
    values = X.astype(np.float64).reshape(-1, 2)
    np.testing.assert_allclose(zscore.mean_, values.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(zscore.scale_, values.std(axis=0), rtol=1e-5)
    out = zscore.transform(X).reshape(-1, 2)
    np.testing.assert_allclose(
        out, (values - values.mean(axis=0)) / values.std(axis=0), atol=1e-5
    )
    minmax = IntensityNormalizer("minmax", per_image=False, spatial_dims=2).fit(X)
    np.testing.assert_array_equal(minmax.low_, values.min(axis=0))
    np.testing.assert_array_equal(minmax.high_, values.max(axis=0))
    percentile = IntensityNormalizer(
        "percentile", per_image=False, percentiles=(3, 97.5), spatial_dims=2
    ).fit(X)
    expected = np.percentile(X.reshape(-1, 2), (3, 97.5), axis=0)
    np.testing.assert_allclose(percentile.low_, expected[0], rtol=1e-12)
    np.testing.assert_allclose(percentile.high_, expected[1], rtol=1e-12)


@pytest.mark.parametrize("q", [(0, 100), (1, 99), (13.7, 50), (49.9, 50.1)])
def test_histogram_percentiles_are_exact(q):
    rng = np.random.default_rng(0)
    X = rng.integers(-1024, 3000, size=(20, 9, 7, 1)).astype(np.int16)
    low, high = _intensity._channel_percentiles(X, q)
    np.testing.assert_allclose([low[0], high[0]], np.percentile(X, q), rtol=1e-12)


def test_dataset_statistics_do_not_depend_on_chunks(monkeypatch):
    X = _images(dtype=np.float32, shape=(9, 8, 8, 3))
    expected = IntensityNormalizer(per_image=False).fit(X)
    monkeypatch.setattr(
        _intensity,
        "iter_chunks",
        lambda n, per_image: _base.iter_chunks(n, per_image, chunk_bytes=1),
    )
    chunked = IntensityNormalizer(per_image=False).fit(X)
    np.testing.assert_allclose(chunked.mean_, expected.mean_, rtol=1e-12)
    np.testing.assert_allclose(chunked.scale_, expected.scale_, rtol=1e-6)
    np.testing.assert_allclose(chunked.transform(X), expected.transform(X), atol=1e-6)


def test_dataset_minmax_does_not_clip_new_images():
    X = np.array([[[10.0, 20.0]]])
    normalizer = IntensityNormalizer("minmax", per_image=False).fit(X)
    np.testing.assert_allclose(normalizer.transform([[[0.0, 30.0]]]), [[[-1, 2]]])
    percentile = IntensityNormalizer("percentile", per_image=False).fit(X)
    np.testing.assert_allclose(percentile.transform([[[0.0, 30.0]]]), [[[0, 1]]])


def test_channels_must_match_the_fit():
    normalizer = IntensityNormalizer(per_image=False).fit(np.ones((2, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"1 channel.*fitted on images with 3"):
        normalizer.transform(np.ones((2, 4, 4)))


def test_dataset_statistics_need_fit_and_the_fitted_method():
    normalizer = IntensityNormalizer(per_image=False)
    with pytest.raises(NotFittedError):
        normalizer.transform(np.ones((2, 4, 4)))
    normalizer.fit(np.ones((2, 4, 4)))
    normalizer.set_params(method="minmax")
    with pytest.raises(NotFittedError):
        normalizer.transform(np.ones((2, 4, 4)))


def test_refit_forgets_previous_statistics():
    normalizer = IntensityNormalizer(per_image=False).fit(np.ones((2, 4, 4)))
    normalizer.set_params(method="minmax").fit(np.ones((2, 4, 4)))
    assert not hasattr(normalizer, "mean_")
    assert hasattr(normalizer, "low_")


def test_no_float64_copy_of_the_data():
    """Fit and transform of 20 MB of uint8 stay far below its 160 MB float64 copy."""
    X = np.random.default_rng(0).integers(0, 256, (26_000, 28, 28), dtype=np.uint8)
    float64_bytes = X.size * 8
    for normalizer in (
        IntensityNormalizer(per_image=False),
        IntensityNormalizer("percentile", per_image=False),
        IntensityNormalizer("percentile"),
    ):
        tracemalloc.start()
        normalizer.fit(X)
        _, fit_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert fit_peak < 0.3 * float64_bytes, (normalizer, fit_peak)
        tracemalloc.start()
        out = normalizer.transform(X)
        _, transform_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        # the float32 output (half a float64 copy) plus chunk temporaries
        assert transform_peak < out.nbytes + 0.3 * float64_bytes, (
            normalizer,
            transform_peak,
        )


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"method": "z-score"}, ValueError, "Did you mean 'zscore'"),
        ({"per_image": "yes"}, TypeError, "per_image must be a bool"),
        ({"percentiles": (99, 1)}, ValueError, "0 <= low < high <= 100"),
        ({"percentiles": (0, 101)}, ValueError, "0 <= low < high <= 100"),
        ({"percentiles": 5}, TypeError, r"percentiles must be a tuple \(low, high\)"),
        ({"percentiles": (1, "99")}, TypeError, "percentiles must be a real number"),
    ],
)
def test_normalizer_parameter_errors(params, error, match):
    with pytest.raises(error, match=match):
        IntensityNormalizer(**params).fit(np.ones((2, 4, 4)))
