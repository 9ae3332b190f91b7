"""The preprocessing transformers on volumes, and Resample."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from skimage.exposure import equalize_adapthist
from skimage.transform import resize as skimage_resize
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sk_medcnn.preprocessing import (
    CLAHE,
    CenterCrop,
    IntensityNormalizer,
    IntensityWindow,
    Pad,
    Resample,
    Resize,
    ToGrayscale,
    ToRGB,
)

SHAPE = (6, 8, 10)  # depth, height, width


def _volumes(n=3, dtype=np.uint8, channels=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, *SHAPE) if channels is None else (n, *SHAPE, channels)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(0, 200, size=shape).astype(dtype)
    return (rng.normal(size=shape) * 300).astype(dtype)


# --- geometry ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "order", "anti_aliasing"),
    [((3, 4, 5), 1, True), ((12, 16, 7), 1, False), ((4, 8, 20), 3, True)],
)
def test_resize_volumes_equals_skimage_resize(shape, order, anti_aliasing):
    X = _volumes(dtype=np.float64)
    out = Resize(shape, order=order, anti_aliasing=anti_aliasing).fit_transform(X)
    expected = np.stack(
        [
            skimage_resize(
                volume, shape, order=order, mode="reflect", anti_aliasing=anti_aliasing
            )
            for volume in X
        ]
    )
    assert out.shape == (3, *shape)
    np.testing.assert_allclose(out, expected, atol=1e-9)


def test_resize_volumes_keeps_uint8_and_channels():
    X = _volumes(channels=2)
    out = Resize(4).fit_transform(X)
    assert out.shape == (3, 4, 4, 4, 2)
    assert out.dtype == np.uint8
    expected = skimage_resize(
        X[1, ..., 1].astype(np.float64), (4, 4, 4), anti_aliasing=True
    )
    np.testing.assert_allclose(out[1, ..., 1], np.rint(expected), atol=1)


def test_crop_and_pad_in_3d():
    X = _volumes(dtype=np.int16)
    padded = Pad((9, 8, 13), constant_values=-1024).fit_transform(X)
    assert padded.shape == (3, 9, 8, 13)
    # the extra slice, row and column go to the back, bottom and right
    assert np.all(padded[:, :1] == -1024)
    assert np.all(padded[:, -2:] == -1024)
    np.testing.assert_array_equal(padded[:, 1:7, :, 1:11], X)
    np.testing.assert_array_equal(CenterCrop(SHAPE).fit_transform(padded), X)
    cropped = CenterCrop((2, 4, 4)).fit_transform(X)
    np.testing.assert_array_equal(cropped, X[:, 2:4, 2:6, 3:7])


@pytest.mark.parametrize("cls", [Resize, CenterCrop, Pad])
def test_a_2d_shape_on_volumes_names_both_shapes(cls):
    with pytest.raises(ValueError, match=r"shape=\(4, 4\) has 2 sizes.*6x8x10"):
        cls((4, 4)).fit_transform(_volumes())
    with pytest.raises(ValueError, match=r"\(4, 4, 4\) has 3 sizes.*images of 8x10"):
        cls((4, 4, 4)).fit_transform(np.zeros((2, 8, 10)))


def test_crop_too_large_names_the_volume_sizes():
    with pytest.raises(ValueError, match="at least 8x8x8 voxels; X holds 6x8x10"):
        CenterCrop(8).fit_transform(_volumes())


def test_spatial_dims_3_reads_4d_arrays_with_three_voxels_wide():
    X = _volumes(n=2)[..., :3]  # (2, 6, 8, 3): colour images unless told
    as_volumes = Resize((3, 4, 3), spatial_dims=3).fit_transform(X)
    assert as_volumes.shape == (2, 3, 4, 3)
    with pytest.raises(ValueError, match="has 3 sizes"):
        Resize((3, 4, 3)).fit_transform(X)


# --- intensity ----------------------------------------------------------------------
def test_window_and_normalizer_on_volumes():
    X = _volumes(dtype=np.float32)
    windowed = IntensityWindow(level=40, width=400).fit_transform(X)
    np.testing.assert_allclose(windowed, np.clip((X + 160) / 400, 0, 1), atol=1e-6)
    out = IntensityNormalizer().fit_transform(X)
    mean = X.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float64)
    std = X.std(axis=(1, 2, 3), keepdims=True, dtype=np.float64)
    np.testing.assert_allclose(out, (X - mean) / std, rtol=1e-4, atol=1e-4)
    minmax = IntensityNormalizer("minmax").fit_transform(X)
    assert np.allclose(minmax.min(axis=(1, 2, 3)), 0)
    assert np.allclose(minmax.max(axis=(1, 2, 3)), 1)


def test_dataset_statistics_on_volumes_per_channel():
    X = _volumes(channels=2, dtype=np.float64)
    normalizer = IntensityNormalizer(per_image=False).fit(X)
    values = X.reshape(-1, 2)
    np.testing.assert_allclose(normalizer.mean_, values.mean(axis=0))
    np.testing.assert_allclose(normalizer.scale_, values.std(axis=0))
    percentile = IntensityNormalizer("percentile", per_image=False).fit(X)
    np.testing.assert_allclose(
        percentile.low_, np.percentile(values, 1, axis=0), rtol=1e-12
    )


def test_clahe_on_volumes_is_equalize_adapthist_in_3d():
    X = _volumes(n=2, dtype=np.float64)
    out = CLAHE(clip_limit=0.02, kernel_size=(3, 4, 5)).fit_transform(X)
    for volume, result in zip(X, out, strict=True):
        stretched = (volume - volume.min()) / (volume.max() - volume.min())
        expected = equalize_adapthist(stretched, kernel_size=(3, 4, 5), clip_limit=0.02)
        np.testing.assert_allclose(result, expected, atol=1e-6)
    assert out.dtype == np.float32
    # a volume three voxels wide is not taken for an RGB image
    narrow = CLAHE(spatial_dims=3).fit_transform(X[..., :3])
    assert narrow.shape == (2, 6, 8, 3)
    constant = CLAHE().fit_transform(np.full((1, 4, 4, 5), 7.0))
    assert np.all(constant == 0)
    with pytest.raises(ValueError, match=r"kernel_size=\(4, 4\) has 2 sizes"):
        CLAHE(kernel_size=(4, 4)).fit_transform(X)


def test_channel_ops_on_volumes():
    X = _volumes()
    rgb = ToRGB().fit_transform(X)
    assert rgb.shape == (*X.shape, 3)
    np.testing.assert_array_equal(rgb[..., 2], X)
    gray = ToGrayscale().fit_transform(rgb)
    assert gray.shape == (*X.shape, 1)
    np.testing.assert_array_equal(gray[..., 0], X)


@pytest.mark.parametrize(
    "transformer",
    [Resize(4), CenterCrop(4), Pad(12), IntensityWindow(preset="brain"), ToRGB()],
    ids=lambda t: type(t).__name__,
)
def test_flat_rows_of_volumes_stay_flat(transformer):
    X = _volumes(n=2)
    fitted = clone(transformer).fit(X)
    as_rows = fitted.transform(X.reshape(2, -1))
    assert as_rows.ndim == 2
    np.testing.assert_array_equal(as_rows, fitted.transform(X).reshape(2, -1))


# --- Resample -----------------------------------------------------------------------
def test_resample_halving_the_spacing_equals_resize():
    X = _volumes(dtype=np.float64)
    out = Resample((1.0, 0.5, 0.5)).fit_transform(X, spacing=(2.0, 1.0, 1.0))
    np.testing.assert_array_equal(out, Resize((12, 16, 20)).fit_transform(X))
    same = Resample(1.0, input_spacing=1.0).fit_transform(X)
    np.testing.assert_array_equal(same, X)


def test_resample_per_sample_spacing_with_a_shape():
    X = _volumes(n=3, dtype=np.int16)
    spacing = np.array([[1.0, 1.0, 1.0], [2.0, 1.0, 1.0], [1.0, 0.5, 0.5]])
    out = Resample(1.0, shape=(8, 8, 8)).fit_transform(X, spacing=spacing)
    assert out.shape == (3, 8, 8, 8)
    assert out.dtype == np.int16
    # sample 1 has 12 slices at 1 mm, cropped to the central 8
    expected = Resize((12, 8, 10)).fit_transform(X[1:2])[:, 2:10, :, 1:9]
    np.testing.assert_array_equal(out[1:2], expected)
    # sample 0 keeps its voxels, padded with its minimum along the depth
    np.testing.assert_array_equal(out[0, 1:7, :, :], X[0, :, :, 1:9])
    assert np.all(out[0, 0] == X[0].min())


def test_resample_images_to_a_pixel_spacing():
    X = np.random.default_rng(0).integers(0, 255, (4, 10, 12), dtype=np.uint8)
    out = Resample(0.5).fit_transform(X, spacing=(1.0, 1.0))
    np.testing.assert_array_equal(out, Resize((20, 24)).fit_transform(X))


def test_resample_errors_say_what_to_give():
    X = _volumes()
    with pytest.raises(ValueError, match="needs the spacing of the input"):
        Resample(1.0).fit_transform(X)
    with pytest.raises(ValueError, match="spacing twice"):
        Resample(1.0, input_spacing=1.0).fit_transform(X, spacing=1.0)
    with pytest.raises(ValueError, match=r"spacing has 2 values.*\(depth, height"):
        Resample(1.0).fit_transform(X, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        Resample(1.0).fit_transform(X, spacing=np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"different sizes \(6x8x10, 12x8x10\)"):
        Resample(1.0).fit_transform(X, spacing=[[1, 1, 1], [2, 1, 1], [1, 1, 1]])
    with pytest.raises(ValueError, match="spacing must hold finite numbers > 0"):
        Resample(0.0).fit_transform(X, spacing=1.0)
    with pytest.raises(ValueError, match="must hold finite spacings > 0"):
        Resample(1.0).fit_transform(X, spacing=(1.0, -1.0, 1.0))


def test_resample_spacing_is_routed_through_pipelines_and_cv():
    X = _volumes(n=8, dtype=np.float64)
    y = np.tile([0, 1], 4)
    spacing = np.tile([[2.0, 1.0, 1.0], [1.0, 1.0, 1.0]], (4, 1))
    flatten = FunctionTransformer(lambda volumes: volumes.reshape(len(volumes), -1))
    with sklearn.config_context(enable_metadata_routing=True):
        resample = Resample(1.0, shape=(6, 8, 10)).set_transform_request(spacing=True)
        pipe = make_pipeline(resample, flatten)
        out = pipe.fit_transform(X, y, spacing=spacing)
        np.testing.assert_array_equal(
            out.reshape(8, *SHAPE)[1::2], X[1::2]
        )  # the 1 mm volumes unchanged
        assert not np.array_equal(out.reshape(8, *SHAPE)[0], X[0])
        np.testing.assert_array_equal(pipe.transform(X, spacing=spacing), out)
        # cross-validation splits the rows of spacing with X
        from sklearn.dummy import DummyClassifier

        model = make_pipeline(clone(resample), clone(flatten), DummyClassifier())
        scores = cross_val_score(model, X, y, cv=KFold(2), params={"spacing": spacing})
        assert scores.shape == (2,)
        search = GridSearchCV(model, {"resample__order": [0, 1]}, cv=KFold(2)).fit(
            X, y, spacing=spacing
        )
        assert search.best_params_["resample__order"] in (0, 1)
    # without routing, a Pipeline passes step parameters of fit
    plain = make_pipeline(Resample(1.0, shape=(6, 8, 10)), clone(flatten))
    np.testing.assert_array_equal(
        plain.fit_transform(X, y, resample__spacing=spacing), out
    )
