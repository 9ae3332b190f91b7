"""The architecture registry and third-party plugins through entry points."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch

from sk_medcnn import (
    MedicalCNNClassifier,
    architecture_spatial_dims,
    check_architecture_dims,
    get_architecture,
    list_architectures,
    register_architecture,
)
from sk_medcnn import registry as registry_module
from sk_medcnn.architectures import build_resnet18
from sk_medcnn.exceptions import ArchitectureNotFoundError, PluginLoadError
from sk_medcnn.registry import _ARCHITECTURES


@pytest.fixture
def forget():
    """Names registered by a test, removed from the registry afterwards."""
    names = []
    yield names
    for name in names:
        _ARCHITECTURES.pop(name, None)
        registry_module._SPATIAL_DIMS.pop(name, None)


@pytest.mark.parametrize("name", list_architectures(spatial_dims=2))
@pytest.mark.parametrize("in_channels", [1, 3])
def test_every_architecture_maps_images_to_outputs(name, in_channels):
    net = get_architecture(name)(
        in_channels=in_channels, n_outputs=3, image_shape=(28, 28)
    )
    net.eval()
    with torch.inference_mode():
        assert net(torch.zeros(2, in_channels, 28, 28)).shape == (2, 3)


@pytest.mark.parametrize("name", list_architectures(spatial_dims=3))
@pytest.mark.parametrize("in_channels", [1, 2])
def test_every_volume_architecture_maps_volumes_to_outputs(name, in_channels):
    shape = (10, 12, 14)  # unequal sides: an axis mix-up fails somewhere
    net = get_architecture(name)(in_channels, 3, shape, width=4)
    net.eval()
    with torch.inference_mode():
        assert net(torch.zeros(2, in_channels, *shape)).shape == (2, 3)


def test_builtin_dimensions():
    assert architecture_spatial_dims("simple_cnn") == (2, 3)
    assert architecture_spatial_dims("resnet18") == (2, 3)
    assert architecture_spatial_dims("resnet34") == (2, 3)
    assert architecture_spatial_dims("acs_resnet18") == (3,)
    assert architecture_spatial_dims("acs_resnet34") == (3,)
    assert set(list_architectures(spatial_dims=3)) >= {
        "simple_cnn",
        "resnet18",
        "resnet34",
        "acs_resnet18",
        "acs_resnet34",
    }
    volume_only = set(list_architectures(spatial_dims=3)) - set(
        list_architectures(spatial_dims=2)
    )
    assert {"acs_resnet18", "acs_resnet34"} <= volume_only
    assert list_architectures("acs_*", spatial_dims=2) == []
    assert list_architectures("*34", spatial_dims=3) == ["acs_resnet34", "resnet34"]


def test_registered_dimensions_and_the_default(forget):
    forget += ["_test_flat", "_test_volume", "_test_both"]

    @register_architecture("_test_flat")
    def flat(in_channels, n_outputs, image_shape):
        raise NotImplementedError

    @register_architecture("_test_volume", spatial_dims=(3,))
    def volume(in_channels, n_outputs, image_shape):
        raise NotImplementedError

    def both(in_channels, n_outputs, image_shape):
        raise NotImplementedError

    register_architecture("_test_both", spatial_dims=[3, 2])(both)
    assert architecture_spatial_dims("_test_flat") == (2,)
    assert architecture_spatial_dims("_test_volume") == (3,)
    assert architecture_spatial_dims("_test_both") == (2, 3)
    assert "_test_flat" in list_architectures(spatial_dims=2)
    assert "_test_flat" not in list_architectures(spatial_dims=3)
    assert "_test_volume" not in list_architectures(spatial_dims=2)
    assert "_test_volume" in list_architectures(spatial_dims=3)
    # recorded on the factories, where code holding a factory (and plugins) read it
    assert (flat.spatial_dims, volume.spatial_dims, both.spatial_dims) == (
        (2,),
        (3,),
        (2, 3),
    )
    assert architecture_spatial_dims(both) == (2, 3)


def test_a_factory_attribute_is_the_declaration(forget):
    forget += ["_test_declared", "_test_conflict"]

    def declared(in_channels, n_outputs, image_shape):
        raise NotImplementedError

    declared.spatial_dims = (3,)
    register_architecture("_test_declared")(declared)  # no keyword: the attribute
    assert architecture_spatial_dims("_test_declared") == (3,)
    with pytest.raises(ValueError, match=r"already declares spatial_dims=\(3,\)"):
        register_architecture("_test_conflict", spatial_dims=(2,))(declared)
    assert "_test_conflict" not in list_architectures()


@pytest.mark.parametrize("spatial_dims", [(), (4,), (2, 2), "2", (True,), 1, 2.0])
def test_invalid_declarations_are_refused(spatial_dims, forget):
    forget.append("_test_invalid")
    with pytest.raises(
        ValueError, match="spatial_dims of architecture '_test_invalid'"
    ):
        register_architecture("_test_invalid", spatial_dims=spatial_dims)
    assert "_test_invalid" not in list_architectures()


def test_an_unsupported_combination_names_the_choices(forget):
    forget.append("_test_flat_only")

    @register_architecture("_test_flat_only")
    def flat_only(in_channels, n_outputs, image_shape):
        raise NotImplementedError

    message = (
        r"architecture '_test_flat_only' supports 2-D images only; for 3-D volumes "
        r"choose one of \["
    )
    with pytest.raises(ValueError, match=message) as caught:
        check_architecture_dims("_test_flat_only", 3)
    # the built-in 3-D architectures (other tests may have registered more)
    for name in ("acs_resnet18", "acs_resnet34", "resnet18", "resnet34", "simple_cnn"):
        assert f"'{name}'" in str(caught.value)
    assert "'_test_flat_only'" not in str(caught.value).split("choose one of")[1]
    check_architecture_dims("_test_flat_only", 2)  # supported: no error
    with pytest.raises(
        ValueError,
        match=r"'acs_resnet18' supports 3-D volumes only; for 2-D images choose "
        r"one of \[.*'_test_flat_only'.*'resnet18'",
    ):
        check_architecture_dims("acs_resnet18", 2)
    for name in list_architectures(spatial_dims=3):
        check_architecture_dims(name, 3)


@pytest.mark.parametrize("spatial_dims", [1, 4, "3", 3.0, True, None])
def test_requested_dimensions_are_checked(spatial_dims):
    with pytest.raises(ValueError, match=r"spatial_dims must be 2 \(images\) or 3"):
        check_architecture_dims("resnet18", spatial_dims)
    with pytest.raises(ValueError, match=r"spatial_dims must be 2 \(images\) or 3"):
        list_architectures(spatial_dims=spatial_dims or 0)


def test_unknown_names_in_the_dimension_helpers():
    with pytest.raises(ArchitectureNotFoundError, match=r"available: .*acs_resnet18"):
        architecture_spatial_dims("vgg_nonexistent")
    with pytest.raises(ArchitectureNotFoundError):
        check_architecture_dims("vgg_nonexistent", 3)


def test_dimensions_of_factory_callables():
    assert architecture_spatial_dims(build_resnet18) == (2, 3)  # registered

    def flat(in_channels, n_outputs, image_shape):
        raise NotImplementedError

    def volume(in_channels, n_outputs, image_shape):
        raise NotImplementedError

    volume.spatial_dims = (3,)
    assert architecture_spatial_dims(flat) == (2,)
    assert architecture_spatial_dims(volume) == (3,)
    with pytest.raises(ValueError, match=r"flat supports 2-D images only \(a factory"):
        check_architecture_dims(flat, 3)
    with pytest.raises(ValueError, match=r"spatial_dims = \(2, 3\)"):
        check_architecture_dims(flat, 3)
    check_architecture_dims(volume, 3)
    volume.spatial_dims = "3-D"
    with pytest.raises(ValueError, match="spatial_dims of the architecture factory"):
        architecture_spatial_dims(volume)
    with pytest.raises(TypeError, match="registered name or a factory callable"):
        architecture_spatial_dims(3)


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
            register_architecture("_test_linear", spatial_dims=(3,))(build)
        assert architecture_spatial_dims("_test_linear") == (2,)
        with pytest.raises(ValueError, match="non-empty string"):
            register_architecture("")
        X = np.random.RandomState(0).rand(8, 4, 4)
        clf = MedicalCNNClassifier("_test_linear", max_epochs=1).fit(
            X, np.arange(8) % 2
        )
        assert clf.predict(X).shape == (8,)
    finally:
        del _ARCHITECTURES["_test_linear"]
        del registry_module._SPATIAL_DIMS["_test_linear"]


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

VOLUME_PLUGIN_SOURCE = """
    import math

    import torch

    def build_volnet(in_channels, n_outputs, image_shape):
        return torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(in_channels * math.prod(image_shape), n_outputs),
        )

    build_volnet.spatial_dims = (2, 3)

    def build_badnet(in_channels, n_outputs, image_shape):
        raise NotImplementedError

    build_badnet.spatial_dims = (4,)
"""
PLUGIN_NAMES = ("tinynet", "brokennet", "volnet", "badnet")


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
    _install_distribution(
        tmp_path,
        "skmed_volnet",
        "skmed_volnet_plugin",
        VOLUME_PLUGIN_SOURCE,
        {
            "volnet": "skmed_volnet_plugin:build_volnet",
            "badnet": "skmed_volnet_plugin:build_badnet",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in PLUGIN_NAMES:
        registry_module._LOADED_PLUGINS.pop(name, None)
        registry_module._SPATIAL_DIMS.pop(name, None)
    for module in (
        "skmed_tinynet_plugin",
        "skmed_broken_plugin",
        "skmed_volnet_plugin",
    ):
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


def test_plugins_declare_their_dimensions_on_the_factory(plugin_path):
    assert {"tinynet", "volnet", "badnet", "brokennet"} <= set(list_architectures())
    assert "skmed_volnet_plugin" not in sys.modules  # plain listing imports nothing
    assert architecture_spatial_dims("tinynet") == (2,)  # no attribute: 2-D only
    assert architecture_spatial_dims("volnet") == (2, 3)
    net = get_architecture("volnet")(1, 2, (4, 5, 6))
    assert net(torch.zeros(3, 1, 4, 5, 6)).shape == (3, 2)
    with pytest.raises(
        PluginLoadError, match=r"'badnet'.*skmed_volnet.*invalid spatial dimensions"
    ):
        architecture_spatial_dims("badnet")


def test_filtering_by_dimensions_leaves_out_broken_plugins(plugin_path, caplog):
    volumes = list_architectures(spatial_dims=3)
    assert "volnet" in volumes
    assert "tinynet" not in volumes
    # a plugin that fails to import, or declares nonsense, cannot be used: not listed
    assert "brokennet" not in volumes
    assert "badnet" not in volumes
    assert "brokennet" not in list_architectures(spatial_dims=2)
    assert "architecture 'brokennet' left out of the list" in caplog.text
    assert {"tinynet", "volnet"} <= set(list_architectures(spatial_dims=2))
    with pytest.raises(
        ValueError,
        match=r"'tinynet' supports 2-D images only; for 3-D volumes choose one of "
        r"\[.*'volnet'",
    ):
        check_architecture_dims("tinynet", 3)
