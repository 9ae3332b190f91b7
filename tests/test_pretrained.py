"""Pretrained weights: checkpoint files, layouts, channel adaptation, fine-tuning."""

from __future__ import annotations

import hashlib
import http.server
import pickle
import threading
from functools import partial

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from scipy.special import softmax
from sklearn.base import clone

from sk_medcnn import (
    MedicalCNNClassifier,
    MedicalCNNRegressor,
    fetch_weights,
    get_architecture,
    get_weight_loader,
    load_model,
    register_architecture,
    register_weight_loader,
    save_model,
)
from sk_medcnn.exceptions import PluginLoadError
from sk_medcnn.pretrained import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    adapt_input_conv,
    load_weights,
    read_weights,
)
from sk_medcnn.registry import _weights as registry_weights

WIDTH = 8  # small ResNets: the layout is the same at any width


@pytest.fixture(scope="module")
def phantoms(phantoms):
    """32 of the shared phantoms (both classes): fits here take under a second."""
    X, y = phantoms
    assert len(np.unique(y[:32])) == 2
    return X[:32], y[:32]


def torchvision_resnet_layout(blocks=(2, 2, 2, 2), width=64, n_classes=1000):
    """Keys and shapes of torchvision's ``resnet18``/``resnet34`` state dict.

    Written from torchvision's ``ResNet`` and ``BasicBlock`` (models/resnet.py):
    ``conv1``/``bn1`` stem, ``layer{1..4}.{i}.{conv1,bn1,conv2,bn2}``, a
    ``downsample`` of ``0`` (1x1 conv) and ``1`` (batch norm) in the first block of
    layers 2-4, and ``fc``. Independent of our module's code.
    """
    layout = {"conv1.weight": (width, 3, 7, 7)}

    def batch_norm(prefix, channels):
        for name in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{prefix}.{name}"] = (channels,)
        layout[f"{prefix}.num_batches_tracked"] = ()

    batch_norm("bn1", width)
    channels = width
    for stage, n_blocks in enumerate(blocks, start=1):
        out = width * 2 ** (stage - 1)
        for index in range(n_blocks):
            prefix = f"layer{stage}.{index}"
            layout[f"{prefix}.conv1.weight"] = (
                out,
                channels if index == 0 else out,
                3,
                3,
            )
            batch_norm(f"{prefix}.bn1", out)
            layout[f"{prefix}.conv2.weight"] = (out, out, 3, 3)
            batch_norm(f"{prefix}.bn2", out)
            if index == 0 and stage > 1:
                layout[f"{prefix}.downsample.0.weight"] = (out, channels, 1, 1)
                batch_norm(f"{prefix}.downsample.1", out)
        channels = out
    layout["fc.weight"] = (n_classes, channels)
    layout["fc.bias"] = (n_classes,)
    return layout


def imagenet_resnet(width=WIDTH, seed=0):
    """A 'pretrained' ResNet-18 in torchvision's layout (3 channels, 1000 classes)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = get_architecture("resnet18")(
            3, 1000, (224, 224), width=width, stem="imagenet"
        )
    # non-trivial batch-norm statistics, so that loading them is visible
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
    return net


@pytest.fixture(scope="module")
def source():
    return imagenet_resnet()


def _write_weights(source, folder, suffix):
    state = source.state_dict()
    if suffix == "pth":
        path = folder / "resnet18.pth"
        torch.save(state, path)
    else:
        path = folder / "resnet18.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


@pytest.fixture(scope="module")
def weights_file(source, tmp_path_factory):
    return _write_weights(source, tmp_path_factory.mktemp("weights"), "pth")


@pytest.fixture(scope="module", params=["pth", "safetensors"])
def any_weights_file(request, source, tmp_path_factory):
    return _write_weights(source, tmp_path_factory.mktemp("weights"), request.param)


def frozen_classifier(path, **params):
    """A classifier whose body keeps the pretrained weights (frozen throughout)."""
    settings = {
        "architecture": "resnet18",
        "pretrained": path,
        "max_epochs": 1,
        "freeze_epochs": 1,
        "random_state": 0,
        "device": "cpu",
        "tta": None,
        "calibration": None,
    }
    settings.update(params)
    return MedicalCNNClassifier(**settings)


# --- layouts ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "blocks"), [("resnet18", (2, 2, 2, 2)), ("resnet34", (3, 4, 6, 3))]
)
def test_resnet_keys_and_shapes_are_torchvisions(name, blocks):
    with torch.device("meta"):
        net = get_architecture(name)(3, 1000, (224, 224), stem="imagenet")
    ours = {key: tuple(t.shape) for key, t in net.state_dict().items()}
    assert ours == torchvision_resnet_layout(blocks)


def test_resnet_key_mapping_both_directions(source):
    loader = get_weight_loader("resnet18")
    ours = source.state_dict()
    mapped = loader.map_keys(dict(ours))  # torchvision/timm layout -> ours
    assert set(mapped) == set(torchvision_resnet_layout(width=WIDTH))
    # and back: a module built from the mapped keys gives the same tensors
    rebuilt = imagenet_resnet(seed=1)
    rebuilt.load_state_dict(mapped, strict=True)
    for key, tensor in rebuilt.state_dict().items():
        torch.testing.assert_close(tensor, ours[key], rtol=0, atol=0)


# --- reading files ------------------------------------------------------------------
def test_read_weights_unwraps_and_strips_module_prefix(tmp_path, source):
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "state_dict": state}, path)
    read = read_weights(path)
    assert set(read) == set(source.state_dict())


@pytest.mark.parametrize(
    ("content", "suffix", "match"),
    [
        (b"not a zip file", ".pth", "cannot be read"),
        (b"garbage", ".safetensors", "not a readable safetensors"),
        (b"", ".npz", "must end in"),
    ],
)
def test_broken_files_are_named(tmp_path, content, suffix, match):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        read_weights(path)
    assert str(path) in str(info.value)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "hostile.pth"
    torch.save({"fc.weight": torch.zeros(1), "hook": partial(print, "x")}, path)
    with pytest.raises(ValueError, match="weights_only"):
        read_weights(path)


def test_a_file_without_tensors_is_refused(tmp_path):
    path = tmp_path / "numbers.pth"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(ValueError, match="does not hold a state dict"):
        read_weights(path)


def test_missing_file_is_named(tmp_path, phantoms):
    X, y = phantoms
    path = tmp_path / "absent.pth"
    with pytest.raises(ValueError, match=r"absent\.pth"):
        frozen_classifier(path).fit(X, y)


# --- the first convolution ----------------------------------------------------------
def test_adapt_input_conv_rules():
    # float64 and a seeded generator: the rules are exact identities, and in
    # float32 summing 225 products against 75 differs by rounding (~1e-5 at
    # magnitude 10), which an unseeded draw hits now and then
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 3, 5, 5, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(adapt_input_conv(weight, 1), weight.sum(1, keepdim=True))
    assert adapt_input_conv(weight, 3) is weight
    assert adapt_input_conv(weight, 1).dtype == torch.float64
    assert adapt_input_conv(weight.half(), 2).dtype == torch.float16
    six = adapt_input_conv(weight, 6)
    torch.testing.assert_close(six, torch.cat([weight, weight], 1) / 2)
    two = adapt_input_conv(weight, 2)
    torch.testing.assert_close(two, weight[:, :2] * 1.5)
    # an image equal in every channel gives the same response (1 channel, or a
    # multiple of the source's)
    image = torch.randn(1, 1, 9, 9, generator=generator, dtype=torch.float64)
    conv = torch.nn.functional.conv2d
    for channels in (1, 6, 9):
        adapted = adapt_input_conv(weight, channels)
        torch.testing.assert_close(
            conv(image.expand(1, channels, 9, 9), adapted),
            conv(image.expand(1, 3, 9, 9), weight),
        )
    with pytest.raises(ValueError, match="in_channels"):
        adapt_input_conv(weight, 0)


def test_weights_land_and_one_channel_is_the_rgb_sum(
    any_weights_file, source, phantoms
):
    X, y = phantoms  # grayscale uint8
    clf = frozen_classifier(any_weights_file).fit(X, y)
    body = clf.net_.module_.body
    expected = source.state_dict()
    torch.testing.assert_close(
        body.conv1.weight.detach(), expected["conv1.weight"].sum(1, keepdim=True)
    )
    for name, tensor in body.named_parameters():
        if name.startswith(("fc.", "conv1.")):
            continue
        torch.testing.assert_close(tensor.detach(), expected[name], rtol=0, atol=0)
    # the head is new: two outputs, trained
    assert body.fc.weight.shape == (2, 8 * WIDTH)
    assert clf.architecture_params_ == {"stem": "imagenet", "width": WIDTH}
    assert clf.input_normalization_ == "imagenet"


@pytest.mark.slow
def test_rgb_and_five_channel_images(weights_file, source, phantoms):
    X, y = phantoms
    rgb = np.repeat(X[..., None], 3, axis=-1)
    clf = frozen_classifier(weights_file).fit(rgb, y)
    torch.testing.assert_close(
        clf.net_.module_.body.conv1.weight.detach(), source.conv1.weight.detach()
    )
    np.testing.assert_allclose(clf.input_mean_, np.array(IMAGENET_MEAN) * 255)
    five = np.repeat(X[..., None], 5, axis=-1)
    # a last axis of 5 reads as volumes under spatial_dims="auto" (docs/volumes.rst)
    clf = frozen_classifier(weights_file, spatial_dims=2).fit(five, y)
    torch.testing.assert_close(
        clf.net_.module_.body.conv1.weight.detach(),
        adapt_input_conv(source.conv1.weight.detach(), 5),
    )
    np.testing.assert_allclose(
        clf.input_std_, np.array([*IMAGENET_STD, *IMAGENET_STD[:2]]) * 255
    )


def test_normalisation_is_applied_at_predict(weights_file, phantoms):
    X, y = phantoms
    clf = frozen_classifier(weights_file).fit(X, y)
    mean, std = np.mean(IMAGENET_MEAN) * 255, np.mean(IMAGENET_STD) * 255
    np.testing.assert_allclose(clf.input_mean_, [mean])
    np.testing.assert_allclose(clf.input_std_, [std])
    body = clf.net_.module_.body
    x = torch.from_numpy(((X[:5] - mean) / std).astype(np.float32))[:, None]
    with torch.no_grad():
        logits = body(x.contiguous(memory_format=torch.channels_last)).numpy()
    np.testing.assert_allclose(
        clf.predict_proba(X[:5]), softmax(logits.astype(np.float64), axis=1), rtol=1e-4
    )


@pytest.mark.slow
def test_normalisation_override_and_checks(weights_file, phantoms):
    X, y = phantoms
    clf = frozen_classifier(weights_file, input_normalization="data").fit(X, y)
    assert clf.input_normalization_ == "data"
    np.testing.assert_allclose(clf.input_mean_, [X.mean()], rtol=1e-6)
    clf = frozen_classifier(weights_file, input_normalization=(100.0, [50.0])).fit(X, y)
    assert clf.input_normalization_ == "given"
    np.testing.assert_array_equal(clf.input_std_, [50.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        frozen_classifier(weights_file).fit(X.astype(np.float32), y)
    frozen_classifier(weights_file).fit(X.astype(np.float32) / 255, y)  # in [0, 1]
    with pytest.raises(ValueError, match="int16"):
        frozen_classifier(weights_file).fit(X.astype(np.int16), y)
    with pytest.raises(ValueError, match="std > 0"):
        frozen_classifier(weights_file, input_normalization=(0.0, 0.0)).fit(X, y)
    with pytest.raises(ValueError, match="one per channel"):
        frozen_classifier(weights_file, input_normalization=([1, 2], 1.0)).fit(X, y)


def test_wrong_keys_are_named(tmp_path, source, phantoms):
    X, y = phantoms
    state = source.state_dict()
    state["layer1.0.se.weight"] = torch.zeros(3)
    del state["layer2.0.conv2.weight"]
    path = tmp_path / "other.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"other\.pth") as info:
        frozen_classifier(path).fit(X, y)
    message = str(info.value)
    assert "unmatched keys in the file: layer1.0.se.weight" in message
    assert "keys missing from the file: layer2.0.conv2.weight" in message


def test_stem_set_against_the_checkpoint_is_named(weights_file, phantoms):
    X, y = phantoms
    clf = frozen_classifier(weights_file, architecture_params={"stem": "small"})
    with pytest.raises(ValueError, match=r"conv1.weight \(\(8, 1, 7, 7\)"):
        clf.fit(X, y)


def test_pretrained_needs_a_weight_loader(tmp_path, phantoms):
    X, y = phantoms

    def factory(in_channels, n_outputs, image_shape):
        return torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(in_channels * 256, n_outputs)
        )

    path = tmp_path / "w.pth"
    torch.save({"1.weight": torch.zeros(2, 256)}, path)
    with pytest.raises(ValueError, match="registered architecture name"):
        MedicalCNNClassifier(factory, pretrained=path, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="output layer"):
        MedicalCNNClassifier(factory, freeze_epochs=1, max_epochs=1).fit(X, y)


# --- training options ---------------------------------------------------------------
def test_freeze_epochs_then_train(weights_file, source, phantoms):
    X, y = phantoms
    clf = frozen_classifier(weights_file, max_epochs=2, freeze_epochs=1).fit(X, y)
    body = clf.net_.module_.body
    assert not torch.equal(body.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert all(p.requires_grad for p in body.parameters())


@pytest.mark.slow
def test_body_lr_factor_makes_param_groups(weights_file, phantoms):
    X, y = phantoms
    clf = frozen_classifier(
        weights_file, freeze_epochs=0, body_lr_factor=0.1, lr=0.01, lr_schedule=None
    ).fit(X, y)
    groups = clf.net_.optimizer_.param_groups
    assert [group["lr"] for group in groups] == [0.01, pytest.approx(0.001)]
    fc = {id(p) for p in clf.net_.module_.body.fc.parameters()}
    assert {id(p) for p in groups[0]["params"]} == fc
    assert len(groups[1]["params"]) == len(list(clf.net_.module_.parameters())) - 2
    # the one-cycle schedule gets one peak rate per group
    clf = frozen_classifier(
        weights_file,
        freeze_epochs=0,
        body_lr_factor=0.5,
        lr=0.01,
        lr_schedule="onecycle",
        max_epochs=2,
    ).fit(X, y)
    assert len(clf.net_.optimizer_.param_groups) == 2


def test_freeze_epochs_is_refused_with_distributed(weights_file, phantoms):
    X, y = phantoms
    clf = frozen_classifier(weights_file, distributed=True)
    with pytest.raises(ValueError, match="freeze_epochs is not supported"):
        clf.fit(X, y)


# --- fine-tuning a fitted sk_medcnn model -------------------------------------------
@pytest.fixture(scope="module")
def fitted_source(phantoms):
    X, y = phantoms
    return MedicalCNNClassifier(
        max_epochs=2, random_state=0, device="cpu", tta=None
    ).fit(X, y)


def test_fine_tune_from_skmed_keeps_head_for_same_classes(
    fitted_source, phantoms, tmp_path
):
    X, y = phantoms
    path = tmp_path / "source.skmed"
    save_model(fitted_source, path)
    tuned = MedicalCNNClassifier(
        pretrained=path, max_epochs=1, lr=1e-12, random_state=1, device="cpu"
    ).fit(X, y)
    before = fitted_source.net_.module_.body.state_dict()
    for name, tensor in tuned.net_.module_.body.named_parameters():
        torch.testing.assert_close(tensor.detach(), before[name], atol=1e-8, rtol=0)
    assert tuned.input_normalization_ == "pretrained"
    np.testing.assert_array_equal(tuned.input_mean_, fitted_source.input_mean_)


def test_fine_tune_replaces_head_for_other_classes(fitted_source, phantoms):
    X, y = phantoms
    y3 = np.where(np.arange(len(y)) % 3 == 0, 2, y)
    tuned = MedicalCNNClassifier(
        pretrained=fitted_source, max_epochs=1, lr=1e-12, random_state=1, device="cpu"
    ).fit(X, y3)
    body = tuned.net_.module_.body
    assert body.classifier[4].weight.shape[0] == 3
    source_body = fitted_source.net_.module_.body
    torch.testing.assert_close(
        body.features[0].weight.detach(),
        source_body.features[0].weight.detach(),
        atol=1e-8,
        rtol=0,
    )
    # a regressor fine-tuned from the classifier: a new one-output head
    reg = MedicalCNNRegressor(pretrained=fitted_source, max_epochs=1, device="cpu")
    assert reg.fit(X, y.astype(float)).net_.module_.body.classifier[4].out_features == 1


def test_fine_tune_refuses_another_architecture_or_unfitted(fitted_source, phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier("resnet18", pretrained=fitted_source, max_epochs=1)
    with pytest.raises(ValueError, match="has architecture 'simple_cnn'"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="an unfitted MedicalCNNClassifier"):
        MedicalCNNClassifier(pretrained=MedicalCNNClassifier(), max_epochs=1).fit(X, y)
    with pytest.raises(TypeError, match="pretrained must be None"):
        MedicalCNNClassifier(pretrained=3).fit(X, y)


def test_clone_keeps_a_fitted_source(fitted_source):
    clf = MedicalCNNClassifier(pretrained=fitted_source, max_epochs=1, device="cpu")
    cloned = clone(clf)
    assert cloned.pretrained is fitted_source
    assert hasattr(cloned.pretrained, "net_")
    cloned.set_params(lr=0.5)
    assert clf.lr == 1e-3


# --- round trips --------------------------------------------------------------------
def test_round_trips_keep_the_behaviour(weights_file, phantoms, tmp_path):
    X, y = phantoms
    clf = frozen_classifier(weights_file, freeze_epochs=0, max_epochs=1).fit(X, y)
    expected = clf.predict_proba(X)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    refit = clone(clf).fit(X, y)
    np.testing.assert_array_equal(refit.predict_proba(X), expected)
    # the safe format keeps the normalisation and the implied stem, and never
    # opens the weights file again: it may be gone
    copy = tmp_path / weights_file.name
    copy.write_bytes(weights_file.read_bytes())
    clf.set_params(pretrained=copy)
    path = tmp_path / "model.skmed"
    save_model(clf, path)
    copy.unlink()
    loaded = load_model(path)
    assert loaded.pretrained == copy
    assert loaded.input_normalization_ == "imagenet"
    assert loaded.architecture_params_ == {"stem": "imagenet", "width": WIDTH}
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-5)


# --- the registry hook --------------------------------------------------------------
def test_plugin_weight_loader_with_key_mapping(phantoms, tmp_path):
    X, y = phantoms

    class Tiny(torch.nn.Module):
        def __init__(self, in_channels, n_outputs):
            super().__init__()
            self.stem = torch.nn.Conv2d(in_channels, 4, 3, padding=1)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.out = torch.nn.Linear(4, n_outputs)

        def forward(self, x):
            return self.out(self.pool(torch.relu(self.stem(x))).flatten(1))

    @register_architecture("tiny_pretrained_test")
    def build(in_channels, n_outputs, image_shape):
        return Tiny(in_channels, n_outputs)

    @register_weight_loader(
        "tiny_pretrained_test", head=("out",), input_convolution="stem.weight"
    )
    def from_other_layout(state_dict):
        return {
            key.replace("backbone.conv", "stem"): v for key, v in state_dict.items()
        }

    with pytest.raises(ValueError, match="already has a weight loader"):
        register_weight_loader("tiny_pretrained_test", head=("out",))(None)
    other = {
        "backbone.conv.weight": torch.randn(4, 3, 3, 3),
        "backbone.conv.bias": torch.randn(4),
        "head.weight": torch.randn(10, 4),
    }
    path = tmp_path / "tiny.pth"
    torch.save(other, path)
    with pytest.raises(ValueError, match=r"unmatched keys in the file: head\.weight"):
        frozen_classifier(path, architecture="tiny_pretrained_test").fit(X / 255, y)
    del other["head.weight"]
    torch.save(other, path)
    clf = frozen_classifier(path, architecture="tiny_pretrained_test").fit(X / 255, y)
    torch.testing.assert_close(
        clf.net_.module_.body.stem.weight.detach(),
        other["backbone.conv.weight"].sum(1, keepdim=True),
    )


def test_weight_loader_from_an_entry_point(monkeypatch):
    class FakeEntryPoint:
        value = "fake_plugin:WEIGHTS"
        dist = None

        def __init__(self, declared):
            self.declared = declared

        def load(self):
            return self.declared

    @register_architecture("tiny_entry_point_test")
    def build(in_channels, n_outputs, image_shape):
        return torch.nn.Linear(in_channels, n_outputs)

    monkeypatch.setattr(
        registry_weights,
        "_weight_loader_entry_point",
        lambda name: FakeEntryPoint({"head": ["fc"], "colour": "red"}),
    )
    with pytest.raises(PluginLoadError, match="colour"):
        get_weight_loader("tiny_entry_point_test")
    monkeypatch.setattr(
        registry_weights,
        "_weight_loader_entry_point",
        lambda name: FakeEntryPoint({"head": ["fc"], "normalization": None}),
    )
    loader = get_weight_loader("tiny_entry_point_test")
    assert loader.head == ("fc",)
    assert loader.normalization is None
    monkeypatch.setattr(
        registry_weights, "_weight_loader_entry_point", lambda name: None
    )
    register_architecture("tiny_entry_point_missing_test")(build)
    with pytest.raises(ValueError, match="declares no weight loader"):
        get_weight_loader("tiny_entry_point_missing_test")


def test_load_weights_keep_head():
    source = imagenet_resnet()
    target = get_architecture("resnet18")(
        3, 1000, (224, 224), width=WIDTH, stem="imagenet"
    )
    load_weights(
        target,
        source.state_dict(),
        get_weight_loader("resnet18"),
        source="test",
        architecture="resnet18",
        keep_head=True,
    )
    torch.testing.assert_close(target.fc.weight, source.fc.weight)


# --- downloads ----------------------------------------------------------------------
@pytest.fixture
def local_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_weights_verifies_the_checksum(local_server, tmp_path, source):
    served, url, hits = local_server
    path = served / "resnet18.pth"
    torch.save(source.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    found = fetch_weights(f"{url}/resnet18.pth", digest, folder=cache)
    assert found.read_bytes() == path.read_bytes()
    assert found.suffix == ".pth"
    assert set(read_weights(found)) == set(source.state_dict())
    again = fetch_weights(f"{url}/resnet18.pth", digest.upper(), folder=cache)
    assert again == found
    assert len(hits) == 1  # the verified file is not downloaded again
    wrong = "0" * 64
    with pytest.raises(ValueError, match="does not have the SHA-256"):
        fetch_weights(f"{url}/resnet18.pth", wrong, folder=tmp_path / "other")
    assert not list((tmp_path / "other").glob("*resnet18.pth"))
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        fetch_weights(f"{url}/resnet18.pth", "abc", folder=cache)


def test_plugin_template_weight_loader(monkeypatch, tmp_path):
    """The template's WEIGHTS dict, declared through its entry point, loads weights."""
    import importlib.util
    from pathlib import Path

    module_path = (
        Path(__file__).resolve().parents[1]
        / "examples/plugin_package/src/sk_medcnn_tinynet/__init__.py"
    )
    spec = importlib.util.spec_from_file_location("tinynet_template", module_path)
    template = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(template)
    register_architecture("tinynet_template_test")(template.build_tinynet)

    class EntryPoint:
        value = "sk_medcnn_tinynet:WEIGHTS"
        dist = None

        def load(self):
            return template.WEIGHTS

    monkeypatch.setattr(
        registry_weights, "_weight_loader_entry_point", lambda name: EntryPoint()
    )
    source = template.build_tinynet(3, 10, (16, 16))
    state = {
        f"backbone.{key}": value
        for key, value in source.state_dict().items()
        if not key.startswith("classifier.")
    }
    path = tmp_path / "tinynet.pth"
    torch.save(state, path)
    X = np.random.default_rng(0).random((24, 16, 16), dtype=np.float32)
    y = np.arange(24) % 2
    clf = MedicalCNNClassifier(
        "tinynet_template_test", pretrained=path, max_epochs=1, freeze_epochs=1
    ).fit(X, y)
    body = clf.net_.module_.body
    assert clf.input_normalization_ == "data"
    torch.testing.assert_close(
        body.features[0].weight.detach(),
        source.features[0].weight.detach().sum(1, keepdim=True),
    )
    torch.testing.assert_close(
        body.features[4].weight.detach(), source.features[4].weight.detach()
    )


def test_hostile_fitted_architecture_params_are_refused(
    weights_file, phantoms, tmp_path, edit_model_file
):
    import time

    from sk_medcnn.exceptions import ModelFileError

    X, y = phantoms
    clf = frozen_classifier(weights_file).fit(X, y)
    path = tmp_path / "model.skmed"
    save_model(clf, path)
    bomb = tmp_path / "bomb.skmed"
    bomb.write_bytes(path.read_bytes())
    edit_model_file(
        bomb,
        lambda node: node["attributes"]["architecture_params_"].update(width=10**6),
    )
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match="expects"):
        load_model(bomb)
    assert time.perf_counter() - start < 5
    other = tmp_path / "other.skmed"
    other.write_bytes(path.read_bytes())
    edit_model_file(
        other, lambda node: node["params"].update(architecture_params={"width": 16})
    )
    with pytest.raises(ModelFileError, match="holding architecture_params"):
        load_model(other)


def test_regressor_from_a_weights_file(weights_file, source, phantoms):
    X, y = phantoms
    reg = MedicalCNNRegressor(
        "resnet18", pretrained=weights_file, freeze_epochs=1, max_epochs=1, device="cpu"
    ).fit(X, y.astype(float))
    body = reg.net_.module_.body
    torch.testing.assert_close(
        body.conv1.weight.detach(), source.conv1.weight.detach().sum(1, keepdim=True)
    )
    assert body.fc.out_features == 1
    assert reg.input_normalization_ == "imagenet"
    assert reg.predict(X[:3]).shape == (3,)
