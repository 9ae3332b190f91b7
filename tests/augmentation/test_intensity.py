"""Brightness/contrast/gamma, noise and erasing: relative to each image's range."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from sk_medcnn.augmentation import RandomErasing, RandomIntensity, RandomNoise

SCALE_FREE = [
    RandomIntensity(0.3, contrast=0.3, gamma=0.4),
    RandomNoise("gaussian", std=0.1),
    RandomNoise("rician", std=0.1),
    RandomErasing(p=1.0, scale=(0.1, 0.3)),
]


@pytest.mark.parametrize("augmenter", SCALE_FREE, ids=repr)
@pytest.mark.parametrize(("gain", "offset"), [(255.0, 0.0), (1400.0, -1000.0)])
def test_same_effect_on_any_intensity_scale(augmenter, gain, offset):
    # [0, 1] images, the same images in 0..255 and in HU: the same draws must
    # give the same augmented images, up to the change of units
    unit = np.random.default_rng(0).random((4, 10, 10))
    unit[:, 0, 0], unit[:, -1, -1] = 0.0, 1.0
    augmented = augmenter.set_params(random_state=3).fit_transform(unit)
    scaled = augmenter.set_params(random_state=3).fit_transform(unit * gain + offset)
    np.testing.assert_allclose(scaled, augmented * gain + offset, atol=1e-9 * gain)


# --- RandomIntensity --------------------------------------------------------------
def test_gamma_keeps_the_range_and_the_order():
    X = np.random.default_rng(1).random((6, 8, 8)) * 1400 - 1000
    Xt = RandomIntensity(0.0, contrast=0.0, gamma=0.5, random_state=0).fit_transform(X)
    np.testing.assert_allclose(Xt.min(axis=(1, 2)), X.min(axis=(1, 2)))
    np.testing.assert_allclose(Xt.max(axis=(1, 2)), X.max(axis=(1, 2)))
    for image, changed in zip(X, Xt, strict=True):
        order = np.argsort(image, axis=None)
        assert np.all(np.diff(changed.ravel()[order]) >= -1e-9)  # monotone
    assert not np.allclose(Xt, X)


def test_intensity_applies_its_draws():
    images = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 1, 2, 2) * 100
    augmenter = RandomIntensity(0.5, contrast=0.5, gamma=1.0)
    params = {
        "shift": torch.tensor([0.1]),
        "factor": torch.tensor([2.0]),
        "gamma": torch.tensor([2.0]),
        "active": torch.tensor([True]),
    }
    out = augmenter._apply(images, params).flatten()
    after_gamma = torch.tensor([0.0, 1.0, 4.0, 9.0]) / 9 * 300
    mean = after_gamma.mean()
    expected = mean + 2.0 * (after_gamma - mean) + 0.1 * 300
    torch.testing.assert_close(out, expected)


def test_intensity_draws_respect_the_ranges():
    augmenter = RandomIntensity(0.2, contrast=0.3, gamma=0.4, p=0.5)
    params = augmenter._draw(torch.zeros((4000, 1, 2, 2)), torch.Generator())
    assert params["shift"].abs().max() <= 0.2
    assert 0.7 <= params["factor"].min()
    assert params["factor"].max() <= 1.3
    log_gamma = params["gamma"].log()
    assert log_gamma.abs().max() <= 0.4 + 1e-6
    assert 0.45 < params["active"].float().mean() < 0.55


def test_constant_images_stay_finite():
    X = np.full((3, 6, 6), 7.0)
    Xt = RandomIntensity(0.2, contrast=0.2, gamma=0.5, random_state=0).fit_transform(X)
    assert np.all(np.isfinite(Xt))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"brightness": 1.5}, "brightness"),
        ({"brightness": -0.1}, "brightness"),
        ({"contrast": 1.1}, "contrast"),
        ({"gamma": -0.2}, "gamma"),
        ({"gamma": float("inf")}, "gamma"),
    ],
)
def test_bad_intensity_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        RandomIntensity(**params).fit_transform(np.zeros((2, 4, 4)))


# --- RandomNoise ------------------------------------------------------------------
def test_gaussian_noise_std_is_a_fraction_of_the_range():
    X = np.zeros((4, 64, 64))
    X[:, 0, 0] = 2000.0  # range 2000
    Xt = RandomNoise("gaussian", std=0.05, random_state=0).fit_transform(X)
    noise = (Xt - X)[:, 1:, 1:]
    assert noise.mean() == pytest.approx(0.0, abs=2.0)
    assert noise.std() == pytest.approx(100.0, rel=0.03)


def test_rician_noise_of_the_background_follows_rayleigh():
    # zero signal: the magnitude of complex Gaussian noise is Rayleigh(sigma)
    X = np.zeros((4, 64, 64))
    X[:, 0, 0] = 10.0
    Xt = RandomNoise("rician", std=0.1, random_state=0).fit_transform(X)
    background = Xt[:, 1:, 1:].ravel()
    assert background.min() >= 0.0
    result = stats.kstest(background, stats.rayleigh(scale=1.0).cdf)
    assert result.pvalue > 1e-3


def test_rician_noise_of_a_bright_signal_is_nearly_gaussian():
    X = np.full((2, 64, 64), 100.0)
    X[:, 0, 0] = 0.0  # range 100, sigma 1: signal-to-noise 100
    Xt = RandomNoise("rician", std=0.01, random_state=0).fit_transform(X)
    noise = (Xt - X)[:, 1:, 1:]
    assert noise.std() == pytest.approx(1.0, rel=0.05)
    assert noise.mean() == pytest.approx(0.005, abs=0.05)  # bias sigma^2 / 2A


def test_bad_noise_kind():
    with pytest.raises(ValueError, match="Did you mean 'rician'"):
        RandomNoise("ricean").fit_transform(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="std"):
        RandomNoise(std=-0.1).fit_transform(np.zeros((2, 4, 4)))


# --- RandomErasing ----------------------------------------------------------------
def test_erasing_replaces_one_rectangle_within_the_area_range():
    X = np.full((200, 20, 20), -5.0)
    X[:, 0, 0] = 5.0  # range [-5, 5]
    Xt = RandomErasing(p=1.0, scale=(0.05, 0.25), random_state=0).fit_transform(X)
    changed = Xt != X
    fractions = changed.reshape(200, -1).mean(axis=1)
    # rounding the sides to whole pixels moves the area a little
    assert fractions.min() >= 0.02
    assert fractions.max() <= 0.35
    for mask in changed[:20]:
        rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        box = mask[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
        assert box.mean() > 0.9  # one rectangle (a random fill may equal -5)
    assert Xt.min() >= -5.0
    assert Xt.max() <= 5.0


def test_erasing_probability():
    X = np.random.default_rng(2).random((400, 8, 8))
    Xt = RandomErasing(p=0.25, scale=(0.2, 0.2), random_state=0).fit_transform(X)
    erased = np.any(Xt != X, axis=(1, 2)).mean()
    assert 0.18 < erased < 0.32


def test_full_erasing():
    X = np.random.default_rng(3).random((3, 6, 6))
    Xt = RandomErasing(p=1.0, scale=(1.0, 1.0), random_state=0).fit_transform(X)
    # a whole-image rectangle for ratio 1; other ratios are cut to the image
    assert np.any(Xt != X, axis=(1, 2)).all()


@pytest.mark.parametrize(
    ("scale", "error"),
    [
        ((0.3, 0.1), ValueError),
        ((0.1, 1.2), ValueError),
        ((-0.1, 0.2), ValueError),
        (0.2, TypeError),
    ],
)
def test_bad_erasing_scale(scale, error):
    with pytest.raises(error, match="scale"):
        RandomErasing(scale=scale).fit_transform(np.zeros((2, 4, 4)))
