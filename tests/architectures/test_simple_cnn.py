"""The reference CNN in 2-D and 3-D."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sk_medcnn.architectures import SimpleCNN, build_simple_cnn


def layer_kinds(net):
    return [type(layer).__name__ for layer in net.features]


@pytest.mark.parametrize("in_channels", [1, 2])
@pytest.mark.parametrize("shape", [(28, 28, 28), (5, 13, 9), (1, 1, 1), (64, 32, 16)])
def test_volumes_map_to_outputs(in_channels, shape):
    net = build_simple_cnn(in_channels, 3, shape, width=4, hidden_units=8)
    assert net.spatial_dims == 3
    assert net(torch.zeros(2, in_channels, *shape)).shape == (2, 3)


def test_the_3d_network_is_the_2d_design_with_3d_layers():
    flat = build_simple_cnn(1, 2, (28, 28), batch_norm=True)
    volume = build_simple_cnn(1, 2, (28, 28, 28), batch_norm=True)
    assert flat.spatial_dims == 2
    assert layer_kinds(volume) == [
        kind.replace("2d", "3d") for kind in layer_kinds(flat)
    ]
    for layer_2d, layer_3d in zip(flat.features, volume.features, strict=True):
        if isinstance(layer_2d, nn.Conv2d):
            assert layer_3d.weight.shape == (*layer_2d.weight.shape, 3)
            assert layer_3d.padding == (1, 1, 1)
        if isinstance(layer_2d, nn.MaxPool2d):
            assert layer_3d.kernel_size == 2
            assert layer_3d.ceil_mode
    # 28 -> 14 -> 7 -> 4 on every axis; 128 channels; the same dense layers
    assert volume.classifier[1].in_features == 128 * 4 * 4 * 4
    assert flat.classifier[1].in_features == 128 * 4 * 4
    assert [type(layer) for layer in volume.classifier] == [
        type(layer) for layer in flat.classifier
    ]


def test_parameters_mean_the_same_in_3d():
    net = build_simple_cnn(
        2, 5, (10, 12, 14), width=3, hidden_units=7, dropout=0.25, batch_norm=True
    )
    convolutions = [m for m in net.features if isinstance(m, nn.Conv3d)]
    assert [conv.out_channels for conv in convolutions] == [3, 6, 12]
    assert all(conv.bias is None for conv in convolutions)  # batch norm follows
    assert sum(isinstance(m, nn.BatchNorm3d) for m in net.features) == 3
    assert net.classifier[1].out_features == 7
    assert net.classifier[3].p == 0.25
    assert net.classifier[4].out_features == 5


def test_valid_padding_needs_22_voxels_a_side():
    net = build_simple_cnn(1, 2, (22, 22, 30), padding="valid", width=2)
    assert net(torch.zeros(1, 1, 22, 22, 30)).shape == (1, 2)
    with pytest.raises(ValueError, match=r"needs volumes of at least 22x22x22 voxels"):
        build_simple_cnn(1, 2, (30, 21, 30), padding="valid")
    with pytest.raises(ValueError, match=r"needs images of at least 22x22 pixels"):
        build_simple_cnn(1, 2, (30, 21), padding="valid")


@pytest.mark.parametrize("shape", [(28,), (4, 28, 28, 28), (0, 28, 28), (28, -1), "28"])
def test_bad_image_shape(shape):
    with pytest.raises(ValueError, match=r"image_shape of simple_cnn must be \(height"):
        SimpleCNN(1, 2, shape)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_gradients_flow_in_3d(batch_norm):
    net = build_simple_cnn(1, 3, (8, 9, 10), width=2, batch_norm=batch_norm)
    x = torch.randn(4, 1, 8, 9, 10, generator=torch.Generator().manual_seed(0))
    nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 0])).backward()
    for parameter in (net.features[0].weight, net.classifier[-1].weight):
        assert parameter.grad is not None
        assert torch.isfinite(parameter.grad).all()
        assert parameter.grad.abs().sum() > 0


def test_each_volume_is_classified_on_its_own():
    net = build_simple_cnn(1, 2, (8, 8, 8), width=2, batch_norm=True)
    x = torch.randn(3, 1, 8, 8, 8, generator=torch.Generator().manual_seed(1))
    net.train()
    net(x)
    net.eval()
    with torch.inference_mode():
        together, alone = net(x), net(x[1:2])
    torch.testing.assert_close(alone, together[1:2])


@pytest.mark.parametrize("shape", [(6, 10), (5, 13, 9)])
def test_global_pool_max_and_avg(shape):
    from sk_medcnn.architectures import GlobalPool

    x = torch.randn(3, 4, *shape)
    dims = tuple(range(2, x.ndim))
    torch.testing.assert_close(GlobalPool("max")(x), x.amax(dim=dims))
    torch.testing.assert_close(GlobalPool("avg")(x), x.mean(dim=dims))
    assert GlobalPool("avg")(x).shape == (3, 4)
    assert "mode='avg'" in repr(GlobalPool("avg"))
    with pytest.raises(ValueError, match=r"feature maps .* shape \(2, 3\)"):
        GlobalPool()(torch.ones(2, 3))  # no spatial axis: not silently a scalar
    with pytest.raises(ValueError, match="mode must be 'max' or 'avg'; got 'sum'"):
        GlobalPool("sum")


@pytest.mark.parametrize("global_pool", ["max", "avg"])
def test_a_global_pool_head_sees_channels_not_positions(global_pool):
    from sk_medcnn.architectures import GlobalPool

    small = SimpleCNN(1, 2, (8, 8, 8), width=4, global_pool=global_pool)
    large = SimpleCNN(1, 2, (28, 28, 28), width=4, global_pool=global_pool)
    assert isinstance(small.classifier[0], GlobalPool)
    assert small.classifier[1].in_features == 16  # 4 * width channels
    # the same weights for any volume size; the output layer keeps its index
    large.load_state_dict(small.state_dict())
    assert large(torch.zeros(2, 1, 28, 28, 28)).shape == (2, 2)
    flat = SimpleCNN(1, 2, (28, 28, 28), width=4)
    assert isinstance(flat.classifier[0], nn.Flatten)
    assert flat.classifier[1].in_features == 16 * 4**3
    assert sum(p.numel() for p in large.parameters()) < sum(
        p.numel() for p in flat.parameters()
    )


def test_a_global_pool_head_ignores_where_a_feature_fires():
    torch.manual_seed(0)
    net = build_simple_cnn(1, 2, (16, 16, 16), width=2, global_pool="max").eval()
    flat = build_simple_cnn(1, 2, (16, 16, 16), width=2).eval()
    maps = torch.randn(1, 8, 2, 2, 2)
    moved = maps.flip(2, 3, 4)  # every feature found elsewhere
    with torch.no_grad():
        torch.testing.assert_close(net.classifier(maps), net.classifier(moved))
        assert not torch.allclose(flat.classifier(maps), flat.classifier(moved))


def test_bad_global_pool():
    with pytest.raises(ValueError, match="global_pool must be None, 'max' or 'avg'"):
        SimpleCNN(1, 2, (8, 8), global_pool="flatten")
