"""ACS convolutions: orientations, shapes, conversion of 2-D networks, weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sk_medcnn import get_architecture, get_weight_loader
from sk_medcnn.architectures import ACSConv, acs_convert
from sk_medcnn.pretrained import load_weights, read_weights


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def acs_with_kernel(kernel, *, stride=1, padding=1):
    """An ACSConv whose three groups (one channel each) share one 2-D kernel."""
    conv = ACSConv(kernel.shape[1], 3, kernel.shape[-1], stride=stride, padding=padding)
    assert conv.split == (1, 1, 1)
    with torch.no_grad():
        conv.weight.copy_(kernel.repeat(3, 1, 1, 1))
        conv.bias.zero_()
    return conv


@pytest.mark.parametrize("stride", [1, 2])
def test_each_group_is_the_2d_convolution_of_its_planes(stride):
    # an asymmetric kernel and unequal sides: any mix-up of axes changes the result
    kernel = torch.randn(1, 2, 3, 3, generator=generator(0))
    x = torch.randn(2, 2, 5, 6, 7, generator=generator(1))
    out = acs_with_kernel(kernel, stride=stride)(x)

    def plane(image):
        return F.conv2d(image, kernel, stride=stride, padding=1)

    depth, height, width = x.shape[2:]
    axial = torch.stack([plane(x[:, :, d]) for d in range(0, depth, stride)], 2)
    coronal = torch.stack([plane(x[:, :, :, h]) for h in range(0, height, stride)], 3)
    sagittal = torch.stack([plane(x[..., w]) for w in range(0, width, stride)], 4)
    torch.testing.assert_close(out[:, :1], axial)
    torch.testing.assert_close(out[:, 1:2], coronal)
    torch.testing.assert_close(out[:, 2:], sagittal)


def test_a_volume_constant_in_depth_gives_the_image_convolution_on_every_slice():
    kernel = torch.randn(1, 1, 3, 3, generator=generator(2))
    image = torch.randn(1, 1, 6, 7, generator=generator(3))
    volume = image[:, :, None].expand(1, 1, 4, 6, 7).contiguous()
    out = acs_with_kernel(kernel)(volume)
    expected = F.conv2d(image, kernel, padding=1)
    for depth in range(4):
        torch.testing.assert_close(out[:, 0, depth], expected[:, 0])
    # the coronal kernel spans depth and width: on a volume constant in depth it is
    # not the image's convolution (it is a 1-D filter of each row)
    assert not torch.allclose(out[:, 1, 1], expected[:, 0])


def test_valid_padding_reads_the_centre_slice_of_the_left_out_axis():
    kernel = torch.randn(1, 1, 3, 3, generator=generator(4))
    x = torch.randn(1, 1, 6, 7, 8, generator=generator(5))
    out = acs_with_kernel(kernel, padding=0)(x)
    assert out.shape == (1, 3, 4, 5, 6)  # as Conv3d with a 3x3x3 kernel
    for depth in range(4):  # the axial group reads slice depth + 1
        expected = F.conv2d(x[:, :, depth + 1], kernel)
        torch.testing.assert_close(out[:, 0, depth], expected[:, 0])
        assert not torch.allclose(
            out[:, 0, depth], F.conv2d(x[:, :, depth], kernel)[:, 0]
        )


@pytest.mark.parametrize(
    ("kernel_size", "stride", "padding", "dilation"),
    [
        (3, 1, 1, 1),
        (3, 1, 0, 1),
        (3, 2, 1, 1),
        (7, 2, 3, 1),
        (3, 1, 2, 2),
        (5, 3, 1, 2),
        (2, 1, 0, 1),
        (4, 2, 1, 1),
        (1, 2, 0, 1),
        (3, 1, "same", 1),
        (3, 2, "valid", 1),
    ],
)
@pytest.mark.parametrize("shape", [(9, 10, 11), (12, 12, 12)])
def test_output_shape_is_that_of_conv3d(kernel_size, stride, padding, dilation, shape):
    acs = ACSConv(2, 5, kernel_size, stride=stride, padding=padding, dilation=dilation)
    conv3d = nn.Conv3d(
        2, 5, kernel_size, stride=stride, padding=padding, dilation=dilation
    )
    x = torch.zeros(1, 2, *shape)
    assert acs(x).shape == conv3d(x).shape


@pytest.mark.parametrize(
    ("out_channels", "split"),
    [(1, (1, 0, 0)), (2, (1, 1, 0)), (64, (22, 21, 21)), (9, (3, 3, 3))],
)
def test_split_of_the_output_channels(out_channels, split):
    conv = ACSConv(1, out_channels, 3, padding=1)
    assert conv.split == split
    assert conv(torch.zeros(1, 1, 4, 4, 4)).shape == (1, out_channels, 4, 4, 4)


def test_pointwise_kernel_is_one_conv3d():
    conv = ACSConv(4, 6, 1, stride=2)
    x = torch.randn(2, 4, 5, 6, 7, generator=generator(6))
    expected = F.conv3d(x, conv.weight[..., None], conv.bias, stride=2)
    torch.testing.assert_close(conv(x), expected)


def test_gradient_reaches_every_group():
    conv = ACSConv(2, 6, 3, padding=1, bias=False)
    x = torch.randn(2, 2, 5, 6, 7, generator=generator(7), requires_grad=True)
    conv(x).square().sum().backward()
    assert conv.bias is None
    for start, stop in ((0, 2), (2, 4), (4, 6)):
        assert conv.weight.grad[start:stop].abs().sum() > 0
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_initialised_as_conv2d():
    torch.manual_seed(0)
    acs = ACSConv(3, 8, 3)
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3)
    torch.testing.assert_close(acs.weight, conv.weight, rtol=0, atol=0)
    torch.testing.assert_close(acs.bias, conv.bias, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel_size": (3, 5)}, "same kernel_size on both axes"),
        ({"kernel_size": 3, "stride": (1, 2)}, "same stride on both axes"),
        ({"kernel_size": 3, "padding": "full"}, "padding must be an int"),
        ({"kernel_size": 3, "padding": "same", "stride": 2}, "needs stride=1"),
        ({"kernel_size": 3, "padding": -1}, "padding must be >= 0"),
        ({"kernel_size": 0}, "must be >= 1"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ACSConv(1, 2, **kwargs)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1"):
        ACSConv(0, 2, 3)


def test_images_are_refused_with_the_shape():
    with pytest.raises(ValueError, match=r"takes volumes .*\(2, 1, 8, 8\)"):
        ACSConv(1, 2, 3)(torch.zeros(2, 1, 8, 8))


# --- acs_convert ---------------------------------------------------------------------
def small_2d_network():
    return nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Dropout2d(0.1),
        nn.Conv2d(6, 4, 3, stride=2, padding=1, bias=False),
        nn.InstanceNorm2d(4, affine=True),
        nn.AvgPool2d(2),
        nn.AdaptiveMaxPool2d((2, 2)),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


def test_convert_keeps_every_key_shape_and_tensor():
    net = small_2d_network()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1, generator=generator(8))
    before = {key: tensor.clone() for key, tensor in net.state_dict().items()}
    objects = {key: tensor.data_ptr() for key, tensor in net.state_dict().items()}
    state = torch.random.get_rng_state()
    converted = acs_convert(net)
    assert converted is net
    assert torch.equal(torch.random.get_rng_state(), state)  # no random draws
    after = converted.state_dict()
    assert list(after) == list(before)
    for key, tensor in after.items():
        torch.testing.assert_close(tensor, before[key], rtol=0, atol=0)
        assert tensor.data_ptr() == objects[key]  # the same storage, not copies
    kinds = [type(layer).__name__ for layer in converted]
    assert kinds == [
        "ACSConv",
        "BatchNorm3d",
        "ReLU",
        "MaxPool3d",
        "Dropout3d",
        "ACSConv",
        "InstanceNorm3d",
        "AvgPool3d",
        "AdaptiveMaxPool3d",
        "AdaptiveAvgPool3d",
        "Flatten",
        "Linear",
    ]
    assert converted[3].ceil_mode
    assert converted[0].padding == (1, 1)
    assert converted[5].stride == (2, 2)
    assert converted(torch.zeros(2, 2, 9, 10, 11)).shape == (2, 3)


def test_convert_keeps_the_mode_and_the_running_statistics_work():
    net = small_2d_network().eval()
    converted = acs_convert(net)
    assert not any(layer.training for layer in converted.modules())
    batch_norm = converted[1]
    x = torch.randn(4, 2, 5, 5, 5, generator=generator(9))
    mean = batch_norm.running_mean.clone()
    converted(x)  # eval mode: the running statistics stay
    torch.testing.assert_close(batch_norm.running_mean, mean, rtol=0, atol=0)
    converted.train()
    converted(x)
    assert not torch.equal(batch_norm.running_mean, mean)


def test_converted_convolution_matches_the_2d_one_on_axial_slices():
    conv = nn.Conv2d(1, 3, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(conv.weight[:1].repeat(3, 1, 1, 1))
        conv.bias.copy_(conv.bias[:1].repeat(3))
    x = torch.randn(1, 1, 4, 6, 8, generator=generator(10))
    expected = torch.stack([conv(x[:, :, d]) for d in range(4)], 2)
    out = acs_convert(conv)(x)
    torch.testing.assert_close(out[:, :1], expected[:, :1])


class Conv2dSame(nn.Conv2d):
    """A subclass with its own forward, which acs_convert must not silently drop."""


@pytest.mark.parametrize(
    ("layer", "match"),
    [
        (nn.ConvTranspose2d(4, 4, 3), r"0 \(ConvTranspose2d\)"),
        (nn.ReflectionPad2d(1), r"0 \(ReflectionPad2d\)"),
        (Conv2dSame(4, 4, 3), r"0 \(Conv2dSame\)"),
        (nn.Conv2d(4, 4, 3, groups=2), "groups=2"),
        (nn.Conv2d(4, 4, (1, 3)), "same kernel_size on both axes"),
        (nn.Conv2d(4, 4, 3, padding_mode="reflect"), "padding_mode='reflect'"),
        (nn.MaxPool2d((2, 3)), "same kernel_size on both axes"),
        (nn.AdaptiveAvgPool2d((2, 3)), "output_size"),
    ],
)
def test_unconvertible_layers_are_named_and_nothing_changes(layer, match):
    net = nn.Sequential(layer, nn.Conv2d(4, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(ValueError, match=match):
        acs_convert(net)
    assert type(net[1]) is nn.Conv2d
    assert type(net[2]) is nn.BatchNorm2d


def test_convert_needs_a_module():
    with pytest.raises(TypeError, match=r"module must be a torch\.nn\.Module"):
        acs_convert("resnet18")


def test_converting_twice_changes_nothing():
    net = acs_convert(small_2d_network())
    layers = list(net)
    assert list(acs_convert(net)) == layers


# --- ACS ResNets ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["acs_resnet18", "acs_resnet34"])
def test_acs_resnet_has_the_2d_keys_and_shapes(name):
    plain = get_architecture(name.removeprefix("acs_"))(1, 2, (28, 28), width=4)
    acs = get_architecture(name)(1, 2, (28, 28, 28), width=4)
    assert acs.spatial_dims == 3
    assert {k: v.shape for k, v in acs.state_dict().items()} == {
        k: v.shape for k, v in plain.state_dict().items()
    }
    assert not any(isinstance(m, nn.Conv2d | nn.BatchNorm2d) for m in acs.modules())
    assert sum(isinstance(m, ACSConv) for m in acs.modules()) == sum(
        isinstance(m, nn.Conv2d) for m in plain.modules()
    )


@pytest.mark.parametrize(
    ("image_shape", "stem", "kernel"),
    [((28, 28, 28), "small", 3), ((64, 64, 70), "imagenet", 7)],
)
def test_acs_resnet_stem(image_shape, stem, kernel):
    net = get_architecture("acs_resnet18")(1, 2, image_shape, width=4)
    assert net.stem == stem
    assert net.conv1.kernel_size == (kernel, kernel)
    if stem == "imagenet":
        assert isinstance(net.maxpool, nn.MaxPool3d)
    else:
        assert isinstance(net.maxpool, nn.Identity)


@pytest.mark.parametrize("name", ["acs_resnet18", "acs_resnet34"])
def test_acs_resnet_refuses_images(name):
    with pytest.raises(ValueError, match=rf"image_shape of {name} must be \(depth"):
        get_architecture(name)(1, 2, (28, 28))


def test_acs_resnet_gradients_flow():
    # zero_init_residual=False: with it, no gradient reaches a block's convolutions
    # before its last batch normalisation has moved from zero
    net = get_architecture("acs_resnet18")(
        1, 3, (8, 8, 8), width=4, zero_init_residual=False
    )
    x = torch.randn(4, 1, 8, 8, 8, generator=generator(11))
    nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 0])).backward()
    for parameter in (net.conv1.weight, net.layer4[-1].conv2.weight, net.fc.weight):
        assert parameter.grad is not None
        assert torch.isfinite(parameter.grad).all()
        assert parameter.grad.abs().sum() > 0


def torchvision_resnet18(width=8, seed=0):
    """A 'pretrained' 2-D ResNet-18 in torchvision's layout: RGB, 1000 classes."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = get_architecture("resnet18")(
            3, 1000, (224, 224), width=width, stem="imagenet"
        )
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
    return net


def test_a_torchvision_resnet18_checkpoint_loads_into_acs_resnet18(tmp_path):
    source = torchvision_resnet18().state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(source, path)
    state = read_weights(path)
    loader = get_weight_loader("acs_resnet18")
    assert loader.head == ("fc",)
    assert loader.input_convolution == "conv1.weight"
    params = loader.architecture_params(state)
    assert params == {"stem": "imagenet", "width": 8}
    net = get_architecture("acs_resnet18")(1, 2, (32, 32, 32), **params)
    load_weights(net, state, loader, source=str(path), architecture="acs_resnet18")
    loaded = net.state_dict()
    # the grayscale first convolution sums the RGB kernels; the rest is as saved
    torch.testing.assert_close(
        loaded["conv1.weight"], source["conv1.weight"].sum(1, keepdim=True)
    )
    for key, tensor in source.items():
        if key.startswith("fc.") or key == "conv1.weight":
            continue
        torch.testing.assert_close(loaded[key], tensor, rtol=0, atol=0)
    assert loaded["fc.weight"].shape == (2, 64)  # a new output layer
    net.eval()
    with torch.inference_mode():
        assert torch.isfinite(net(torch.rand(2, 1, 32, 32, 32))).all()


def test_a_3d_checkpoint_does_not_load_into_acs_resnet18():
    plain_3d = get_architecture("resnet18")(1, 2, (28, 28, 28), width=4)
    net = get_architecture("acs_resnet18")(1, 2, (28, 28, 28), width=4)
    with pytest.raises(ValueError, match=r"keys of another shape: conv1.weight"):
        load_weights(
            net,
            plain_3d.state_dict(),
            get_weight_loader("acs_resnet18"),
            source="a 3-D checkpoint",
            architecture="acs_resnet18",
        )


@pytest.mark.parametrize(
    "memory_format", [torch.channels_last_3d, torch.channels_last, None]
)
def test_memory_formats_and_dtypes(memory_format):
    torch.manual_seed(0)
    net = get_architecture("acs_resnet18")(1, 2, (12, 12, 12), width=4).eval()
    x = torch.rand(2, 1, 12, 12, 12, generator=generator(12))
    with torch.inference_mode():
        expected = net(x)
    shapes = {key: tensor.shape for key, tensor in net.state_dict().items()}
    if memory_format is not None:
        net = net.to(memory_format=memory_format)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    assert {key: tensor.shape for key, tensor in net.state_dict().items()} == shapes
    with torch.inference_mode():
        torch.testing.assert_close(net(x), expected, rtol=1e-4, atol=1e-5)
    net = net.to(torch.float64)
    assert net.conv1.weight.dtype == torch.float64
    assert net.conv1.weight.shape == (4, 1, 3, 3)
    # training works in the new layout
    net.train()
    net(x.double()).sum().backward()
    assert net.conv1.weight.grad.shape == (4, 1, 3, 3)


@pytest.mark.slow  # about 7 s: a fit of acs_resnet18 on volumes
def test_the_estimator_fine_tunes_acs_resnet18_from_a_2d_checkpoint(tmp_path):
    from sk_medcnn import MedicalCNNClassifier
    from sk_medcnn.datasets import make_lesion_phantoms

    X, y = make_lesion_phantoms(16, image_size=16, spatial_dims=3, random_state=0)
    source = torchvision_resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    clf = MedicalCNNClassifier(
        "acs_resnet18",
        pretrained=path,
        max_epochs=1,
        freeze_epochs=1,  # the body keeps the checkpoint's weights
        random_state=0,
        tta=None,
        calibration=None,
    ).fit(X, y)
    body = clf.net_.module_.body
    assert isinstance(body.conv1, ACSConv)
    assert body.stem == "imagenet"  # read from the checkpoint's 7x7 kernel
    torch.testing.assert_close(
        body.layer1[0].conv1.weight, source.layer1[0].conv1.weight
    )
    assert clf.predict_proba(X).shape == (16, 2)
