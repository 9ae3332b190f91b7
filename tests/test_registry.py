"""The architecture registry and third-party plugins through entry points."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch

from sk_medcnn import (
    MedicalCNNClassifier,
    get_architecture,
    list_architectures,
    register_architecture,
)
from sk_medcnn.exceptions import ArchitectureNotFoundError, PluginLoadError
from sk_medcnn.registry import _ARCHITECTURES


@pytest.mark.parametrize("name", list_architectures())
@pytest.mark.parametrize("in_channels", [1, 3])
def test_every_architecture_maps_images_to_outputs(name, in_channels):
    net = get_architecture(name)(
        in_channels=in_channels, n_outputs=3, image_shape=(28, 28)
    )
    net.eval()
    with torch.inference_mode():
        assert net(torch.zeros(2, in_channels, 28, 28)).shape == (2, 3)


@pytest.mark.parametrize("size", [1, 8, 13])
def test_simple_cnn_small_and_odd_sizes(size):
    net = get_architecture("simple_cnn")(1, 2, (size, size + 1))
    assert net(torch.zeros(2, 1, size, size + 1)).shape == (2, 2)


def test_simple_cnn_valid_padding_is_the_keras_model():
    net = get_architecture("simple_cnn")(3, 1, (150, 150), padding="valid")
    # Keras: 150 -> 148 -> 74 -> 72 -> 36 -> 34 -> 17; Flatten 17 * 17 * 128
    assert net.classifier[1].in_features == 17 * 17 * 128
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == 4_828_481  # model.summary() of the Keras reference model
    with pytest.raises(ValueError, match="at least 22x22"):
        get_architecture("simple_cnn")(1, 2, (21, 40), padding="valid")


def test_list_is_sorted_and_filters():
    names = list_architectures()
    assert names == sorted(names)
    assert {"simple_cnn", "resnet18", "resnet34"} <= set(names)
    assert list_architectures("resnet*") == ["resnet18", "resnet34"]


def test_unknown_name_lists_the_choices():
    with pytest.raises(ArchitectureNotFoundError, match=r"available: .*simple_cnn"):
        get_architecture("vgg_nonexistent")
    with pytest.raises(ValueError, match="unknown architecture"):  # a subclass
        get_architecture("vgg_nonexistent")


def test_register_and_refuse_duplicates():
    @register_architecture("_test_linear")
    def build(in_channels, n_outputs, image_shape):
        return torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(in_channels * image_shape[0] * image_shape[1], n_outputs),
        )

    try:
        assert get_architecture("_test_linear") is build
        with pytest.raises(ValueError, match="already registered by"):
            register_architecture("_test_linear")(build)
        with pytest.raises(ValueError, match="non-empty string"):
            register_architecture("")
        X = np.random.RandomState(0).rand(8, 4, 4)
        clf = MedicalCNNClassifier("_test_linear", max_epochs=1).fit(
            X, np.arange(8) % 2
        )
        assert clf.predict(X).shape == (8,)
    finally:
        del _ARCHITECTURES["_test_linear"]


def _install_distribution(root, dist_name, module_name, source, entry_points):
    """Write a real installed distribution (package + dist-info) under root."""
    (root / f"{module_name}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist_name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 0.1\n"
    )
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[sk_medcnn.architectures]\n{lines}\n")
    (info / "RECORD").write_text("")


PLUGIN_SOURCE = """
    import torch

    def build_tinynet(in_channels, n_outputs, image_shape, *, hidden=8):
        return torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, hidden, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(hidden, n_outputs),
        )
"""


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    _install_distribution(
        tmp_path,
        "skmed_tinynet",
        "skmed_tinynet_plugin",
        PLUGIN_SOURCE,
        {"tinynet": "skmed_tinynet_plugin:build_tinynet"},
    )
    _install_distribution(
        tmp_path,
        "skmed_broken",
        "skmed_broken_plugin",
        "raise ImportError('needs a library that is not installed')\n",
        {"brokennet": "skmed_broken_plugin:build"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    from sk_medcnn import registry

    registry._LOADED_PLUGINS.pop("tinynet", None)
    for module in ("skmed_tinynet_plugin", "skmed_broken_plugin"):
        sys.modules.pop(module, None)


def test_plugin_from_an_installed_distribution(plugin_path, phantoms):
    assert "tinynet" in list_architectures()
    assert "brokennet" in list_architectures()  # listed without importing it
    assert "skmed_broken_plugin" not in sys.modules
    factory = get_architecture("tinynet")
    assert factory.__module__ == "skmed_tinynet_plugin"
    X, y = phantoms
    clf = MedicalCNNClassifier(
        "tinynet", architecture_params={"hidden": 4}, max_epochs=1, random_state=0
    ).fit(X, y)
    assert clf.net_.module_.body[0].out_channels == 4


def test_broken_plugin_fails_only_when_asked_for(plugin_path):
    with pytest.raises(PluginLoadError, match=r"skmed_broken.*failed to import"):
        get_architecture("brokennet")
    with pytest.raises(ImportError, match="brokennet"):  # a subclass
        get_architecture("brokennet")
    assert get_architecture("simple_cnn") is not None
    assert get_architecture("tinynet") is not None
