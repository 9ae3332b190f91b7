"""MixUp: batch-level mixing of images and labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from sk_medcnn.augmentation import MixUp
from sk_medcnn.augmentation._mixup import sample_beta


def _batch(n: int = 8):
    images = torch.rand((n, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    targets = torch.nn.functional.one_hot(torch.arange(n) % 3, 3).float()
    return images, targets


def test_mix_batch_is_a_convex_combination_of_pairs():
    images, targets = _batch()
    mixed, soft = MixUp(alpha=1.0).mix_batch(
        images, targets, torch.Generator().manual_seed(0)
    )
    assert mixed.shape == images.shape
    assert mixed.dtype == images.dtype
    assert soft.shape == targets.shape
    assert soft.dtype == targets.dtype
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(len(targets)))
    # replay the draws: one weight for the batch, then a permutation
    generator = torch.Generator().manual_seed(0)
    weight = sample_beta(1.0, generator, "cpu")
    order = torch.randperm(len(images), generator=generator)
    torch.testing.assert_close(mixed, weight * images + (1 - weight) * images[order])
    torch.testing.assert_close(soft, weight * targets + (1 - weight) * targets[order])


def test_mix_batch_is_reproducible_and_fresh_per_batch():
    images, targets = _batch()
    mixup = MixUp(alpha=0.4)
    generator = torch.Generator().manual_seed(1)
    first = mixup.mix_batch(images, targets, generator)
    second = mixup.mix_batch(images, targets, generator)
    replay = mixup.mix_batch(images, targets, torch.Generator().manual_seed(1))
    assert not torch.equal(first[0], second[0])
    assert torch.equal(first[0], replay[0])
    assert torch.equal(first[1], replay[1])


def test_mix_batch_does_not_modify_its_input():
    images, targets = _batch()
    before = images.clone(), targets.clone()
    MixUp(0.4).mix_batch(images, targets, torch.Generator())
    assert torch.equal(images, before[0])
    assert torch.equal(targets, before[1])


def test_channels_last_layout_works_too():
    images, targets = _batch()
    generator_state = torch.Generator().manual_seed(2)
    mixed_nhwc, _ = MixUp(0.4).mix_batch(
        images.permute(0, 2, 3, 1), targets, generator_state
    )
    mixed_nchw, _ = MixUp(0.4).mix_batch(
        images, targets, torch.Generator().manual_seed(2)
    )
    torch.testing.assert_close(mixed_nhwc.permute(0, 3, 1, 2), mixed_nchw)


@pytest.mark.parametrize("n", [1, 8])
def test_alpha_zero_or_one_sample_is_the_identity(n):
    images, targets = _batch(n)
    alpha = 0.0 if n > 1 else 0.4
    mixed, soft = MixUp(alpha).mix_batch(images, targets, torch.Generator())
    assert mixed is images
    assert soft is targets


@pytest.mark.parametrize("alpha", [0.2, 1.0, 5.0])
def test_weights_follow_the_beta_distribution(alpha):
    generator = torch.Generator().manual_seed(0)
    draws = np.array([sample_beta(alpha, generator, "cpu") for _ in range(2000)])
    assert draws.min() >= 0.0
    assert draws.max() <= 1.0
    assert stats.kstest(draws, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_bad_targets_and_images():
    images, targets = _batch()
    generator = torch.Generator()
    with pytest.raises(TypeError, match="one_hot"):
        MixUp().mix_batch(images, torch.arange(8), generator)
    with pytest.raises(ValueError, match="n_classes"):
        MixUp().mix_batch(images, targets[:4], generator)
    with pytest.raises(TypeError, match="floating-point"):
        MixUp().mix_batch(images.to(torch.uint8), targets, generator)
    with pytest.raises(TypeError, match="generator"):
        MixUp().mix_batch(images, targets, 0)
    with pytest.raises(ValueError, match="alpha"):
        MixUp(alpha=-1.0).mix_batch(images, targets, generator)


def test_standalone_use_is_refused_with_a_pointer():
    X = np.zeros((4, 6, 6), dtype=np.uint8)
    with pytest.raises(TypeError, match=r"labels.*MedicalCNNClassifier"):
        MixUp().fit_transform(X)
    mixup = MixUp()
    assert mixup.fit(X) is mixup
    np.testing.assert_array_equal(mixup.transform(X), X)  # inference: as is
