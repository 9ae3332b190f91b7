"""CLAHE: bit-identical to skimage's equalize_adapthist, batched, and its edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.exposure import _adapthist, equalize_adapthist

from sk_medcnn.preprocessing import CLAHE, _clahe

PNEUMONIAMNIST = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "pneumoniamnist_28_trainval.npz"
)


def _per_image(X, **params):
    """equalize_adapthist image by image, as float32 channels-last."""
    if X.ndim == 3:
        return np.stack([equalize_adapthist(image, **params) for image in X]).astype(
            np.float32
        )
    return np.stack([equalize_adapthist(image, **params) for image in X]).astype(
        np.float32
    )


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"clip_limit": 0.03, "kernel_size": 5},
        {"clip_limit": 0, "kernel_size": (3, 7)},
    ],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("seed", [0, 1])
def test_identical_to_skimage_on_integers(params, dtype, seed):
    rng = np.random.default_rng(seed)
    high = np.iinfo(dtype).max
    # smooth images with a bright blob: realistic, not uniform noise
    yy, xx = np.mgrid[:33, :29]
    blob = np.exp(-((yy - 12) ** 2 + (xx - 17) ** 2) / 60.0)
    X = (high * (0.2 + 0.6 * blob) * rng.uniform(0.5, 1, (5, 1, 1))).astype(dtype)
    X += rng.integers(0, high // 20, X.shape, dtype=dtype)
    np.testing.assert_array_equal(
        CLAHE(**params).fit_transform(X), _per_image(X, **params)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identical_to_skimage_on_unit_floats(dtype):
    X = np.random.default_rng(0).uniform(0, 1, (4, 20, 24)).astype(dtype)
    np.testing.assert_array_equal(CLAHE().fit_transform(X), _per_image(X))


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_identical_to_skimage_on_rgb(dtype):
    X = np.random.default_rng(0).uniform(0, 1, (3, 24, 20, 3))
    if dtype == np.uint8:
        X = (255 * X).astype(np.uint8)
    np.testing.assert_array_equal(CLAHE().fit_transform(X), _per_image(X))


def test_identical_to_skimage_on_pneumoniamnist():
    if not PNEUMONIAMNIST.exists():
        pytest.skip(f"{PNEUMONIAMNIST} is absent")
    with np.load(PNEUMONIAMNIST) as data:
        X = data["val_images"][:64]
    np.testing.assert_array_equal(CLAHE().fit_transform(X), _per_image(X))


def test_other_channel_counts_are_equalised_one_by_one():
    X = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 2), dtype=np.uint8)
    out = CLAHE(spatial_dims=2).fit_transform(X)  # 2 channels: not a volume
    for channel in range(2):
        np.testing.assert_array_equal(
            out[..., channel], CLAHE().fit_transform(X[..., channel])
        )


def test_any_real_range_is_accepted_and_stretched():
    """Hounsfield units and z-scores, which equalize_adapthist refuses, work."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (3, 16, 16))
    hounsfield = X * 3000 - 1000
    out = CLAHE().fit_transform(hounsfield)
    assert out.dtype == np.float32
    assert out.min() == 0
    assert out.max() == 1
    # the same images on another scale give (up to 16-bit quantisation) the same
    np.testing.assert_allclose(out, CLAHE().fit_transform(X), atol=0.02)


def test_int16_ct_is_stretched_from_its_values():
    X = np.random.default_rng(0).integers(-1024, 1500, (2, 16, 16)).astype(np.int16)
    out = CLAHE().fit_transform(X)
    # a shift of the values changes nothing ...
    shifted = (X.astype(np.int32) + 1024).astype(np.uint16)
    np.testing.assert_array_equal(out, CLAHE().fit_transform(shifted))
    # ... where equalize_adapthist first clips every negative HU to 0
    assert np.any(out != _per_image(X))


def test_constant_images_map_to_zero():
    X = np.full((2, 8, 8), 100, dtype=np.uint8)
    np.testing.assert_array_equal(CLAHE().fit_transform(X), 0)


def test_rgb_floats_must_lie_in_the_unit_interval():
    with pytest.raises(ValueError, match=r"float RGB images must lie in \[0, 1\]"):
        CLAHE().fit_transform(np.full((1, 8, 8, 3), 2.0))


def test_tiny_images():
    rng = np.random.default_rng(0)
    for shape in [(1, 5), (2, 2), (5, 1), (3, 3)]:
        X = rng.uniform(size=(4, *shape))
        np.testing.assert_array_equal(CLAHE().fit_transform(X), _per_image(X))


def test_does_not_depend_on_chunks(monkeypatch):
    X = np.random.default_rng(0).integers(0, 256, (9, 20, 20), dtype=np.uint8)
    expected = CLAHE().fit_transform(X)
    monkeypatch.setattr(_clahe, "_CHUNK_BYTES", 1)
    np.testing.assert_array_equal(CLAHE().fit_transform(X), expected)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 40), min_size=4, max_size=40),
    n_rows=st.integers(1, 6),
    limit=st.integers(1, 30),
    seed=st.integers(0, 2**16),
)
def test_clip_histograms_equals_skimage_row_by_row(counts, n_rows, limit, seed):
    rng = np.random.default_rng(seed)
    hist = np.stack([rng.permutation(counts) for _ in range(n_rows)]).astype(np.int64)
    expected = np.stack([_adapthist.clip_histogram(row.copy(), limit) for row in hist])
    _clahe._clip_histograms(hist, limit)
    np.testing.assert_array_equal(hist, expected)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"clip_limit": 1.5}, ValueError, "clip_limit == 1.5, must be <= 1"),
        ({"clip_limit": -0.1}, ValueError, "clip_limit == -0.1, must be >= 0"),
        ({"clip_limit": "high"}, TypeError, "clip_limit must be a real number"),
        ({"kernel_size": 0}, ValueError, "kernel_size must be >= 1"),
        ({"kernel_size": (8, 8, 8, 8)}, ValueError, "kernel_size must be an int, a"),
    ],
)
def test_parameter_errors(params, error, match):
    with pytest.raises(error, match=match):
        CLAHE(**params).fit(np.zeros((1, 8, 8)))
