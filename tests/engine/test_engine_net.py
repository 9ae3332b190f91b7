"""The engine's net: augmentation in the train step; the net of a loaded model."""

import numpy as np
import torch
from torch import nn

from sk_medcnn._engine import ImageNet, build_inference_net
from sk_medcnn.utils._batches import ArrayDataset, collate_batch
from sk_medcnn.utils._network import ImageNetwork


def _module_params(channels=1):
    body = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * channels, 2))
    return {"body": body, "mean": np.zeros(channels), "std": np.ones(channels)}


def test_the_augmenter_sees_training_batches_only_channels_first():
    seen = []

    def augmenter(images):
        seen.append(tuple(images.shape))
        return images + 1.0

    params = _module_params()
    net = ImageNet(
        module=ImageNetwork,
        criterion=nn.CrossEntropyLoss,
        augmenter=augmenter,
        batch_size=4,
        max_epochs=2,
        train_split=None,
        verbose=0,
        iterator_train__collate_fn=collate_batch,
        iterator_valid__collate_fn=collate_batch,
        **{f"module__{key}": value for key, value in params.items()},
    )
    X = np.random.default_rng(0).random((8, 8, 8, 1)).astype(np.float32)
    y = np.array([0, 1] * 4)
    net.fit(ArrayDataset(X, y), y=None)
    # 2 epochs of 2 batches, each (n, C, H, W) on the way in
    assert seen == [(4, 1, 8, 8)] * 4
    net.module_.eval()
    net.forward(ArrayDataset(X, y))
    assert len(seen) == 4  # inference does not augment


def test_the_inference_net_holds_no_training_settings():
    net = build_inference_net(
        module_params=_module_params(),
        criterion=nn.CrossEntropyLoss,
        batch_size=16,
        device=torch.device("cpu"),
    )
    net.initialize()
    names = [name for name, _ in net.callbacks_]
    assert "lr_schedule" not in names
    assert "early_stopping" not in names
    assert net.augmenter is None
    assert net.train_split is None
    X = torch.zeros((3, 8, 8, 1))
    assert tuple(net.module_(X).shape) == (3, 2)


def test_sample_weights_weigh_the_loss_through_the_dict_input():
    rng = np.random.default_rng(0)
    X = rng.random((6, 8, 8, 1)).astype(np.float32)
    y = np.array([0, 1, 0, 1, 1, 0])
    weights = np.array([1.0, 0.5, 2.0, 0.0, 1.0, 1.5], dtype=np.float32)
    dataset = ArrayDataset(X, y, sample_weight=weights, indices=np.arange(1, 6))
    batch, targets = dataset.__getitems__([0, 1, 2])
    assert set(batch) == {"images", "sample_weight"}
    assert torch.equal(batch["sample_weight"], torch.from_numpy(weights[1:4]))
    net = build_inference_net(
        module_params=_module_params(),
        criterion=nn.CrossEntropyLoss,
        batch_size=16,
        device=torch.device("cpu"),
    )
    net.set_params(criterion__reduction="none")
    net.initialize()
    outputs = net.infer(batch)  # the network sees the images only
    assert tuple(outputs.shape) == (3, 2)
    per_sample = nn.functional.cross_entropy(outputs, targets, reduction="none")
    expected = (per_sample * batch["sample_weight"]).mean()
    torch.testing.assert_close(net.get_loss(outputs, targets, X=batch), expected)
