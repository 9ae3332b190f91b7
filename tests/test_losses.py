import pytest
import torch

from sk_medcnn.losses import FocalLoss


@pytest.fixture
def logits_and_targets():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 3, generator=generator)
    target = torch.randint(0, 3, (8,), generator=generator)
    return logits, target


def test_gamma_zero_is_weighted_cross_entropy(logits_and_targets):
    logits, target = logits_and_targets
    weight = torch.tensor([1.0, 2.0, 0.5])
    expected = torch.nn.CrossEntropyLoss(weight=weight)(logits, target)
    assert torch.isclose(FocalLoss(gamma=0.0, weight=weight)(logits, target), expected)


def test_soft_targets_match_cross_entropy(logits_and_targets):
    logits, target = logits_and_targets
    soft = torch.nn.functional.one_hot(target, 3).float() * 0.8 + 0.2 / 3
    expected = torch.nn.CrossEntropyLoss()(logits, soft)
    assert torch.isclose(FocalLoss(gamma=0.0)(logits, soft), expected)


def test_focusing_down_weights_easy_samples():
    logits = torch.tensor([[4.0, 0.0], [0.2, 0.0]])  # easy, hard
    target = torch.tensor([0, 0])
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    focal = torch.stack(
        [FocalLoss(gamma=2.0)(logits[i : i + 1], target[i : i + 1]) for i in (0, 1)]
    )
    ratio = focal / ce
    assert ratio[0] < 0.01 < ratio[1]


def test_negative_gamma():
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        FocalLoss(gamma=-1.0)


def test_focal_loss_one_hot_probabilities_equal_class_indices_with_weights():
    # mixed (soft) labels must keep the loss scale of hard labels under class weights
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 3, generator=generator)
    target = torch.randint(0, 3, (16,), generator=generator)
    weight = torch.tensor([1.0, 4.0, 0.5])
    one_hot = torch.nn.functional.one_hot(target, 3).float()
    for gamma in (0.0, 2.0):
        loss = FocalLoss(gamma=gamma, weight=weight)
        torch.testing.assert_close(loss(logits, one_hot), loss(logits, target))
    # gamma=0 is torch's weighted cross-entropy on class indices
    torch.testing.assert_close(
        FocalLoss(gamma=0.0, weight=weight)(logits, one_hot),
        torch.nn.CrossEntropyLoss(weight=weight)(logits, target),
    )


def test_focal_loss_without_reduction_returns_each_samples_loss():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, generator=generator)
    target = torch.tensor([0, 2, 1, 1, 0])
    weight = torch.tensor([1.0, 2.0, 0.5])
    per_sample = FocalLoss(gamma=2.0, weight=weight, reduction="none")(logits, target)
    assert per_sample.shape == (5,)
    mean = FocalLoss(gamma=2.0, weight=weight)(logits, target)
    torch.testing.assert_close(per_sample.sum() / weight[target].sum(), mean)
    soft = torch.nn.functional.one_hot(target, 3).float()
    torch.testing.assert_close(FocalLoss(2.0, weight, "none")(logits, soft), per_sample)
    with pytest.raises(ValueError, match="reduction"):
        FocalLoss(reduction="sum")
