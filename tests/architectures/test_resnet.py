import pytest
import torch
from torch import nn

from sk_medcnn.architectures._resnet import (
    BasicBlock,
    ResNet,
    build_resnet18,
    build_resnet34,
)
from sk_medcnn.registry import get_architecture

FACTORIES = [build_resnet18, build_resnet34]


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


@pytest.mark.parametrize(
    ("name", "factory"), [("resnet18", build_resnet18), ("resnet34", build_resnet34)]
)
def test_registered(name, factory):
    assert get_architecture(name) is factory


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("size", [8, 28, 64])
def test_output_shape(factory, in_channels, size):
    net = factory(in_channels, 4, (size, size), width=8)
    out = net(torch.zeros(2, in_channels, size, size))
    assert out.shape == (2, 4)


@pytest.mark.parametrize("stem", ["small", "imagenet"])
def test_any_input_size_works(stem):
    net = build_resnet18(1, 3, (28, 28), stem=stem, width=4).eval()
    for shape in [(1, 1), (5, 7), (33, 17)]:
        assert net(torch.zeros(1, 1, *shape)).shape == (1, 3)


def assert_small_stem(net):
    assert net.stem == "small"
    assert net.conv1.kernel_size == (3, 3)
    assert net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, nn.Identity)
    assert not any(isinstance(module, nn.MaxPool2d) for module in net.modules())


def assert_imagenet_stem(net):
    assert net.stem == "imagenet"
    assert net.conv1.kernel_size == (7, 7)
    assert net.conv1.stride == (2, 2)
    assert isinstance(net.maxpool, nn.MaxPool2d)


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize(
    ("image_shape", "expected"),
    [
        ((28, 28), "small"),
        ((63, 63), "small"),
        ((64, 64), "imagenet"),
        ((224, 224), "imagenet"),
        ((63, 512), "small"),  # the smaller side decides
        ((512, 64), "imagenet"),
    ],
)
def test_auto_stem(factory, image_shape, expected):
    net = factory(1, 2, image_shape, width=4)
    if expected == "small":
        assert_small_stem(net)
    else:
        assert_imagenet_stem(net)


@pytest.mark.parametrize("factory", FACTORIES)
def test_forced_stem(factory):
    assert_small_stem(factory(1, 2, (224, 224), stem="small", width=4))
    assert_imagenet_stem(factory(1, 2, (28, 28), stem="imagenet", width=4))


def test_small_stem_keeps_resolution_into_first_stage():
    net = build_resnet18(1, 2, (28, 28), width=4)
    features = net.maxpool(net.relu(net.bn1(net.conv1(torch.zeros(1, 1, 28, 28)))))
    assert features.shape == (1, 4, 28, 28)


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("stem", ["Small", "cifar", "", None])
def test_bad_stem(factory, stem):
    with pytest.raises(ValueError, match="stem must be 'auto', 'small' or 'imagenet'"):
        factory(1, 2, (28, 28), stem=stem)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"width": 0}, "width must be >= 1"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        build_resnet18(1, 2, (28, 28), **params)


def test_bad_layers():
    with pytest.raises(ValueError, match="layers must hold four block counts"):
        ResNet(1, 2, (2, 2, 2))


@pytest.mark.parametrize(
    ("factory", "n_blocks", "expected"),
    [(build_resnet18, 8, 11_689_512), (build_resnet34, 16, 21_797_672)],
)
def test_parameter_count_matches_torchvision(factory, n_blocks, expected):
    net = factory(3, 1000, (224, 224), stem="imagenet")
    assert count_parameters(net) == expected
    assert sum(isinstance(module, BasicBlock) for module in net.modules()) == n_blocks


def test_stage_widths():
    net = build_resnet18(1, 2, (28, 28), width=8)
    widths = [
        stage[-1].conv2.out_channels
        for stage in (net.layer1, net.layer2, net.layer3, net.layer4)
    ]
    assert widths == [8, 16, 32, 64]
    assert net.fc.in_features == 64


def test_initialisation():
    net = build_resnet18(1, 2, (28, 28), width=8)
    for block in net.modules():
        if isinstance(block, BasicBlock):
            assert torch.all(block.bn2.weight == 0)
            assert torch.all(block.bn1.weight == 1)
    # kaiming normal, fan_out mode: std = sqrt(2 / (out_channels * k * k))
    weight = net.layer4[0].conv1.weight
    expected_std = (2 / (weight.shape[0] * 9)) ** 0.5
    assert weight.std().item() == pytest.approx(expected_std, rel=0.05)

    net = build_resnet18(1, 2, (28, 28), width=8, zero_init_residual=False)
    assert all(
        torch.all(block.bn2.weight == 1)
        for block in net.modules()
        if isinstance(block, BasicBlock)
    )


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("zero_init_residual", [True, False])
def test_gradients_flow(factory, zero_init_residual):
    net = factory(1, 3, (16, 16), width=4, zero_init_residual=zero_init_residual)
    x = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    loss = nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    for parameter in (net.conv1.weight, net.fc.weight):
        assert parameter.grad is not None
        assert torch.isfinite(parameter.grad).all()
        assert parameter.grad.abs().sum() > 0


@pytest.mark.parametrize("factory", FACTORIES)
def test_eval_mode_is_deterministic(factory):
    net = factory(1, 3, (16, 16), width=4, dropout=0.5)
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    net.train()
    net(x)  # update the batch-norm running statistics
    net.eval()
    with torch.inference_mode():
        first, second = net(x), net(x)
    assert torch.equal(first, second)
    # each sample's output does not depend on the rest of the batch
    with torch.inference_mode():
        alone = net(x[:1])
    assert torch.allclose(alone, first[:1], atol=1e-6)


# --- 3-D ---------------------------------------------------------------------------
@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("in_channels", [1, 2])
@pytest.mark.parametrize("shape", [(8, 8, 8), (7, 12, 17), (64, 64, 64)])
def test_output_shape_3d(factory, in_channels, shape):
    net = factory(in_channels, 4, shape, width=2).eval()
    assert net.spatial_dims == 3
    with torch.inference_mode():
        assert net(torch.zeros(1, in_channels, *shape)).shape == (1, 4)


@pytest.mark.parametrize("factory", FACTORIES)
def test_3d_network_is_3d_throughout(factory):
    flat = factory(1, 2, (28, 28), width=4)
    volume = factory(1, 2, (28, 28, 28), width=4)
    assert flat.spatial_dims == 2
    assert not any(
        isinstance(m, nn.Conv2d | nn.BatchNorm2d | nn.MaxPool2d | nn.AdaptiveAvgPool2d)
        for m in volume.modules()
    )
    assert isinstance(volume.avgpool, nn.AdaptiveAvgPool3d)
    # the same modules and keys; each kernel gains a depth axis of its own size
    flat_state, volume_state = flat.state_dict(), volume.state_dict()
    assert list(flat_state) == list(volume_state)
    for key, tensor in flat_state.items():
        if tensor.ndim == 4:
            assert volume_state[key].shape == (*tensor.shape, tensor.shape[-1])
        else:
            assert volume_state[key].shape == tensor.shape
    assert "spatial_dims=3" in repr(volume)
    assert "spatial_dims" not in repr(flat)


@pytest.mark.parametrize(
    ("image_shape", "expected"),
    [
        ((28, 28, 28), "small"),
        ((63, 64, 64), "small"),  # the smallest side decides
        ((64, 64, 64), "imagenet"),
        ((64, 128, 96), "imagenet"),
    ],
)
def test_auto_stem_3d(image_shape, expected):
    net = build_resnet18(1, 2, image_shape, width=4)
    assert net.stem == expected
    if expected == "small":
        assert net.conv1.kernel_size == (3, 3, 3)
        assert net.conv1.stride == (1, 1, 1)
        assert isinstance(net.maxpool, nn.Identity)
    else:
        assert net.conv1.kernel_size == (7, 7, 7)
        assert net.conv1.stride == (2, 2, 2)
        assert isinstance(net.maxpool, nn.MaxPool3d)


def test_small_stem_keeps_resolution_into_first_stage_3d():
    net = build_resnet18(1, 2, (28, 28, 28), width=4)
    x = torch.zeros(1, 1, 28, 28, 28)
    features = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    assert features.shape == (1, 4, 28, 28, 28)


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("shape", [(28,), (4, 28, 28, 28), (28, 0), "28"])
def test_bad_image_shape(factory, shape):
    with pytest.raises(ValueError, match=r"image_shape of resnet\d\d must be"):
        factory(1, 2, shape)


@pytest.mark.parametrize("factory", FACTORIES)
def test_gradients_flow_3d(factory):
    net = factory(1, 3, (10, 11, 12), width=2, zero_init_residual=False)
    x = torch.randn(4, 1, 10, 11, 12, generator=torch.Generator().manual_seed(0))
    loss = nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    for parameter in (net.conv1.weight, net.layer4[-1].conv2.weight, net.fc.weight):
        assert parameter.grad is not None
        assert torch.isfinite(parameter.grad).all()
        assert parameter.grad.abs().sum() > 0


def test_3d_initialisation():
    net = build_resnet18(1, 2, (16, 16, 16), width=8)
    weight = net.layer4[0].conv1.weight  # kaiming normal, fan_out: 2 / (out * k^3)
    expected_std = (2 / (weight.shape[0] * 27)) ** 0.5
    assert weight.std().item() == pytest.approx(expected_std, rel=0.05)
    assert all(
        torch.all(block.bn2.weight == 0)
        for block in net.modules()
        if isinstance(block, BasicBlock)
    )


def test_resnet_checkpoint_params_read_a_3d_first_convolution():
    from sk_medcnn import get_weight_loader

    loader = get_weight_loader("resnet18")
    for shape, stem in (((28, 28, 28), "small"), ((64, 64, 64), "imagenet")):
        net = build_resnet18(1, 2, shape, width=4)
        assert loader.architecture_params(net.state_dict()) == {
            "stem": stem,
            "width": 4,
        }


def test_bad_spatial_dims():
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        ResNet(1, 2, (1, 1, 1, 1), spatial_dims=1)


@pytest.mark.parametrize("name", ["resnet18", "simple_cnn"])
def test_weight_loader_adapts_a_3d_first_convolution(name):
    from sk_medcnn import get_architecture, get_weight_loader
    from sk_medcnn.pretrained import load_weights

    loader = get_weight_loader(name)
    source = get_architecture(name)(3, 5, (16, 16, 16), width=4)
    target = get_architecture(name)(1, 2, (16, 16, 16), width=4)
    state = source.state_dict()
    load_weights(target, state, loader, source="a 3-D checkpoint", architecture=name)
    loaded = target.state_dict()
    first = loader.input_convolution
    assert state[first].ndim == 5
    torch.testing.assert_close(loaded[first], state[first].sum(1, keepdim=True))
    for key, tensor in state.items():
        head = any(key.startswith(part + ".") for part in loader.head)
        if key == first or head:
            continue
        torch.testing.assert_close(loaded[key], tensor, rtol=0, atol=0)
    # the head is the module's own: 2 outputs, not the checkpoint's 5
    head_weight = loaded[f"{loader.head[0]}.weight"]
    assert head_weight.shape[0] == 2
    assert isinstance(target.get_submodule(loader.head[0]), nn.Linear)
