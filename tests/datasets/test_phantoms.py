from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from sk_medcnn.datasets import make_lesion_phantoms


@pytest.mark.parametrize(
    ("n_samples", "fraction", "n_positive"),
    [(200, 0.5, 100), (7, 0.5, 4), (10, 0.25, 2), (5, 0.0, 0), (5, 1.0, 5)],
)
def test_label_counts(n_samples, fraction, n_positive):
    _, y = make_lesion_phantoms(n_samples, lesion_fraction=fraction, random_state=0)
    assert y.shape == (n_samples,)
    assert y.dtype == np.int64
    assert set(np.unique(y)) <= {0, 1}
    assert int(y.sum()) == n_positive == round(n_samples * fraction)


def test_labels_are_shuffled():
    _, y = make_lesion_phantoms(100, random_state=0)
    assert not np.array_equal(y, np.sort(y))
    assert not np.array_equal(y, np.sort(y)[::-1])


def test_default_shape_and_dtype():
    X, _ = make_lesion_phantoms(12, random_state=0)
    assert X.shape == (12, 28, 28)
    assert X.dtype == np.uint8
    assert X.min() < 30  # dark background
    assert X.max() > 150  # bright tissue or lesion


def test_float32_in_unit_interval_and_matches_uint8():
    X8, y8 = make_lesion_phantoms(10, image_size=16, random_state=3)
    X32, y32 = make_lesion_phantoms(10, image_size=16, dtype="float32", random_state=3)
    assert X32.dtype == np.float32
    assert X32.shape == (10, 16, 16)
    assert X32.min() >= 0.0
    assert X32.max() <= 1.0
    np.testing.assert_array_equal(y8, y32)
    np.testing.assert_array_equal(X8, np.rint(X32.astype(np.float64) * 255))


def test_channels_last():
    X, y, masks = make_lesion_phantoms(
        6, image_size=20, n_channels=3, return_masks=True, random_state=0
    )
    assert X.shape == (6, 20, 20, 3)
    assert masks.shape == (6, 20, 20)
    assert y.shape == (6,)
    # the channels are tinted copies with their own noise, not identical
    assert not np.array_equal(X[..., 0], X[..., 1])


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_deterministic(seed):
    first = make_lesion_phantoms(20, return_masks=True, random_state=seed)
    second = make_lesion_phantoms(
        20, return_masks=True, random_state=np.random.RandomState(seed)
    )
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    other = make_lesion_phantoms(20, random_state=seed + 1)
    assert not np.array_equal(first[0], other[0])


def test_many_samples_span_chunks():
    # more images than one generation chunk: still right shape, labels, masks
    X, y, masks = make_lesion_phantoms(
        300, image_size=8, lesion_radius=1.5, return_masks=True, random_state=0
    )
    assert X.shape == (300, 8, 8)
    assert int(y.sum()) == 150
    assert masks[y == 1].any(axis=(1, 2)).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_masks_mark_visible_lesions(seed):
    X, y, masks = make_lesion_phantoms(
        100, return_masks=True, noise=0.1, random_state=seed
    )
    assert masks.dtype == np.bool_
    assert not masks[y == 0].any()
    sizes = masks[y == 1].sum(axis=(1, 2))
    # radius 2..4 px: roughly 12..50 pixels
    assert sizes.min() >= 8
    assert sizes.max() <= 70
    images = X.astype(np.float64)
    margins = []
    for image, mask in zip(images[y == 1], masks[y == 1], strict=True):
        ring = ndimage.binary_dilation(mask, iterations=2) & ~mask
        margins.append(image[mask].mean() - image[ring].mean())
    margins = np.array(margins)
    # contrast 0.5 adds up to ~127 grey levels; lesions stand out clearly
    assert margins.min() > 30
    assert np.median(margins) > 70


def test_lesions_inside_body():
    X, _, masks = make_lesion_phantoms(
        60, dtype="float32", noise=0.0, return_masks=True, random_state=0
    )
    # background outside the body is 0.05; every lesion pixel sits on tissue
    lesion_pixels = X[masks]
    assert lesion_pixels.min() > 0.3


def test_contrast_controls_lesion_strength():
    kwargs = {"n_samples": 40, "noise": 0.0, "return_masks": True, "random_state": 5}
    X_low, _, masks = make_lesion_phantoms(contrast=0.2, **kwargs)
    X_high, _, _ = make_lesion_phantoms(contrast=0.6, **kwargs)
    low = X_low[masks].astype(float).mean()
    high = X_high[masks].astype(float).mean()
    assert high > low + 50
    # same geometry: away from the lesions (and their 1 px soft edge) nothing changes
    near = ndimage.binary_dilation(masks, structure=np.ones((1, 3, 3), dtype=bool))
    np.testing.assert_array_equal(X_low[~near], X_high[~near])


def test_linear_model_is_not_enough():
    # the lesion moves around: a linear model on raw pixels stays far from perfect
    X, y = make_lesion_phantoms(400, random_state=0)
    X_flat = X.reshape(len(X), -1) / 255.0
    accuracy = cross_val_score(LogisticRegression(C=0.01), X_flat, y, cv=3).mean()
    assert accuracy < 0.85


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_samples": 2.5}, TypeError, "n_samples"),
        ({"image_size": 7}, ValueError, "image_size"),
        ({"lesion_fraction": 1.5}, ValueError, "lesion_fraction"),
        ({"lesion_fraction": -0.1}, ValueError, "lesion_fraction"),
        ({"lesion_radius": 0.0}, ValueError, "lesion_radius"),
        ({"lesion_radius": (-1.0, 2.0)}, ValueError, "lesion_radius"),
        ({"lesion_radius": (3.0, 2.0)}, ValueError, "lesion_radius"),
        ({"lesion_radius": (2.0, 8.0)}, ValueError, r"lesion_radius.*image_size / 4"),
        ({"lesion_radius": "big"}, ValueError, "lesion_radius"),
        ({"lesion_radius": (1.0, 2.0, 3.0)}, ValueError, "lesion_radius"),
        ({"contrast": 0.0}, ValueError, "contrast"),
        ({"noise": -0.1}, ValueError, "noise"),
        ({"n_channels": 0}, ValueError, "n_channels"),
        ({"dtype": "float64"}, ValueError, "dtype must be 'uint8' or 'float32'"),
        ({"dtype": "nonsense"}, ValueError, "dtype"),
    ],
)
def test_invalid_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_lesion_phantoms(**{"n_samples": 4, "random_state": 0, **kwargs})


def test_fixed_radius_and_small_images():
    X, y, masks = make_lesion_phantoms(
        12, image_size=16, lesion_radius=3.0, return_masks=True, random_state=0
    )
    assert X.shape == (12, 16, 16)
    assert masks[y == 1].any(axis=(1, 2)).all()
