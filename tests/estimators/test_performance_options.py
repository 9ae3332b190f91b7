"""precision, memory_format and n_threads: what they change, and what they keep."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor, load_model, save_model
from sk_medcnn.utils._network import ImageNetwork, _avoid_strided_pointwise_convolutions
from sk_medcnn.utils._runtime import torch_threads

PLAIN = {"lr_schedule": None, "calibration": None, "tta": None}
FAST = {"max_epochs": 2, "batch_size": 16, "random_state": 0, "device": "cpu", **PLAIN}
FAST_NOCAL = {"batch_size": 16, "random_state": 0, "device": "cpu", "tta": None}


def _conv_output_dtypes(clf, X):
    """Dtypes of every convolution's output during one predict_proba call."""
    seen = []
    handles = [
        module.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
        for module in clf.net_.module_.body.modules()
        if isinstance(module, nn.Conv2d)
    ]
    try:
        proba = clf.predict_proba(X)
    finally:
        for handle in handles:
            handle.remove()
    return set(seen), proba


def test_bf16_runs_the_convolutions_in_bfloat16_and_returns_float_scores(
    separable_images,
):
    X, y = separable_images
    clf = MedicalCNNClassifier(
        precision="bf16", max_epochs=6, lr=3e-3, random_state=0, **PLAIN
    ).fit(X, y)
    dtypes, proba = _conv_output_dtypes(clf, X)
    assert dtypes == {torch.bfloat16}
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert all(p.dtype == torch.float32 for p in clf.net_.module_.parameters())
    assert clf.score(X, y) >= 0.95  # it learns in bfloat16 too

    fp32 = MedicalCNNClassifier(max_epochs=6, lr=3e-3, random_state=0, **PLAIN)
    dtypes, _ = _conv_output_dtypes(fp32.fit(X, y), X)
    assert dtypes == {torch.float32}


def _layout_recorder(record):
    """simple_cnn, recording its second convolution's weight layout in training."""
    from sk_medcnn import get_architecture

    def build(in_channels, n_outputs, image_shape):
        body = get_architecture("simple_cnn")(in_channels, n_outputs, image_shape)
        conv = next(  # with one input channel both layouts are the same
            m for m in body.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1
        )

        def hook(module, args):
            if module.training:
                last = torch.channels_last
                record.add(module.weight.is_contiguous(memory_format=last))

        conv.register_forward_pre_hook(hook)
        return body

    return build


@pytest.mark.parametrize(
    ("memory_format", "channels_last"),
    [("contiguous", False), ("channels_last", True), ("auto", True)],
)
def test_memory_format_is_the_training_layout(phantoms, memory_format, channels_last):
    X, y = phantoms
    record = set()
    clf = MedicalCNNClassifier(
        _layout_recorder(record), memory_format=memory_format, **FAST
    )
    clf.fit(X, y)
    assert record == {channels_last}
    assert clf.memory_format_ == ("channels_last" if channels_last else "contiguous")


@pytest.mark.parametrize(
    ("architecture", "params", "spatial_dims", "expected"),
    [
        ("simple_cnn", {}, 2, "channels_last"),
        ("simple_cnn", {"batch_norm": True, "padding": "valid"}, 2, "channels_last"),
        ("resnet18", {"width": 4}, 2, "contiguous"),  # strided kernels: not scanned
        ("simple_cnn", {"width": 2}, 3, "channels_last"),  # channels_last_3d
        ("resnet18", {"width": 4}, 3, "contiguous"),
    ],
)
def test_auto_trains_channels_last_only_what_the_scan_covered(
    architecture, params, spatial_dims, expected
):
    from sk_medcnn.datasets import make_lesion_phantoms

    X, y = make_lesion_phantoms(
        n_samples=24, image_size=24, spatial_dims=spatial_dims, random_state=0
    )
    clf = MedicalCNNClassifier(
        architecture, architecture_params=params, **{**FAST, "max_epochs": 1}
    ).fit(X, y)
    assert clf.memory_format_ == expected
    assert clf.net_.module_.memory_format == "channels_last"  # predicts in it


def test_auto_resolution_rules():
    from sk_medcnn.architectures import build_simple_cnn
    from sk_medcnn.estimators._layout import (
        resolve_memory_format,
        scanned_for_channels_last,
    )

    body = build_simple_cnn(1, 2, (28, 28))
    cpu = torch.device("cpu")
    assert resolve_memory_format("auto", body, cpu) == "channels_last"
    # GPUs and data-parallel training were not compared: NCHW, as before
    assert resolve_memory_format("auto", body, torch.device("cuda")) == "contiguous"
    assert resolve_memory_format("auto", body, cpu, distributed=True) == "contiguous"
    # an explicit layout is the user's choice
    for layout in ("contiguous", "channels_last"):
        assert resolve_memory_format(layout, nn.Conv2d(8, 16, 1, stride=2), cpu) == (
            layout
        )

    class MyConv(nn.Conv2d):  # a subclass may compute otherwise
        pass

    assert scanned_for_channels_last(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()))
    from sk_medcnn.architectures import GlobalPool

    class MyPool(GlobalPool):
        pass

    for pool in ("max", "avg"):  # the volumes' default head is scanned
        assert scanned_for_channels_last(
            build_simple_cnn(1, 2, (8,) * 3, global_pool=pool)
        )
    assert not scanned_for_channels_last(nn.Sequential(MyPool()))
    for unscanned in (
        MyConv(1, 4, 3),
        nn.Conv2d(1, 4, 3, stride=2),
        nn.Conv2d(8, 16, 1),  # a kernel size the scan did not cover
        nn.Conv2d(4, 4, 3, groups=2),
        nn.Conv2d(1, 4, 3, dilation=2),
        nn.MaxPool2d(4),
        nn.AvgPool2d(2),
        nn.GELU(),
        nn.Conv3d(1, 4, 3, stride=2),
        nn.MaxPool3d(4),
    ):
        assert not scanned_for_channels_last(nn.Sequential(unscanned)), unscanned


def test_channels_last_matches_the_contiguous_network(phantoms):
    X, y = phantoms
    plain = MedicalCNNClassifier(memory_format="contiguous", **FAST).fit(X, y)
    last = MedicalCNNClassifier(memory_format="channels_last", **FAST).fit(X, y)
    weights = [
        module.weight
        for module in last.net_.module_.body.modules()
        if isinstance(module, nn.Conv2d)
    ]
    assert all(
        w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
        for w in weights
        if w.shape[1] > 1
    )
    # the same function, computed by other kernels: equal up to rounding
    np.testing.assert_allclose(
        last.predict_proba(X), plain.predict_proba(X), rtol=0, atol=2e-3
    )


def test_channels_last_resnet_with_strided_pointwise_convolutions_trains(phantoms):
    # torch 2.13's oneDNN backward of a channels-last 1x1 stride-2 convolution
    # with few channels (8 -> 16, 16 px, odd batches, two threads) corrupts the
    # heap; the rewrite to stride 1 on a subsampled input avoids that kernel
    X, y = phantoms
    clf = MedicalCNNClassifier(
        "resnet18",
        architecture_params={"width": 8},
        memory_format="channels_last",
        n_threads=2,
        **{**FAST, "max_epochs": 1},
    )
    assert clf.fit(X[:41], y[:41]).predict_proba(X).shape == (len(X), 2)
    strided = [
        module
        for module in clf.net_.module_.body.modules()
        if isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)
    ]
    assert strided
    assert all(module.stride == (1, 1) for module in strided)


def test_strided_pointwise_rewrite_computes_the_same_function():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 1, stride=2, bias=True)
    body = nn.Sequential(conv)
    x = torch.randn(5, 8, 15, 16)
    expected = conv(x)
    _avoid_strided_pointwise_convolutions(body.to(memory_format=torch.channels_last))
    got = body(x.contiguous(memory_format=torch.channels_last))
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # and its weights and their names are unchanged
    assert list(body.state_dict()) == ["0.weight", "0.bias"]


@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])
@pytest.mark.parametrize("channels", [1, 3])
def test_standardised_input_has_the_plain_strides_of_its_layout(
    memory_format, channels
):
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(x.stride())
            return x.mean(dim=(2, 3))[:, :1].repeat(1, 2)

    mean, std = np.full(channels, 10.0), np.full(channels, 2.0)
    net = ImageNetwork(Probe(), mean, std, memory_format=memory_format)
    images = torch.rand(4, 6, 5, channels) * 255
    net(images)
    with torch.inference_mode():
        net(images)
    expected = (
        (channels * 30, 30, 5, 1)
        if memory_format == "contiguous"
        else (30 * channels, 1, 5 * channels, channels)
    )
    assert seen == [expected, expected]
    # with autograd on the input (saliency maps) the values are the same
    wanted = images.permute(0, 3, 1, 2).sub(10.0).div(2.0)
    grad_images = images.clone().requires_grad_()
    out = _capture_input(net, grad_images)
    torch.testing.assert_close(out, wanted)


def _capture_input(net, images):
    captured = []
    handle = net.body.register_forward_pre_hook(lambda m, a: captured.append(a[0]))
    try:
        net(images)
    finally:
        handle.remove()
    return captured[0].detach()


def test_n_threads_is_used_while_fitting_and_predicting_then_restored(phantoms):
    X, y = phantoms
    during = []

    def build(in_channels, n_outputs, image_shape):
        class Recorder(nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = nn.Linear(in_channels, n_outputs)

            def forward(self, x):
                during.append(torch.get_num_threads())
                return self.linear(x.mean(dim=(2, 3)))

        return Recorder()

    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    clf = MedicalCNNClassifier(build, n_threads=wanted, **FAST).fit(X, y)
    assert torch.get_num_threads() == before
    fit_threads = set(during[1:])  # the first call is the shape probe
    during.clear()
    clf.predict_proba(X)
    assert torch.get_num_threads() == before
    assert fit_threads == {wanted}
    assert set(during) == {wanted}


def test_torch_threads_restores_after_an_error():
    before = torch.get_num_threads()
    inside = []

    def fail():
        with torch_threads(1):
            inside.append(torch.get_num_threads())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert inside == [1]
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("estimator", [MedicalCNNClassifier, MedicalCNNRegressor])
@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("precision", "fp16", "precision"),
        ("precision", "float32", "precision"),
        ("memory_format", "nhwc", "memory_format"),
        ("n_threads", 0, "n_threads"),
        ("n_threads", 1.5, "n_threads"),
    ],
)
def test_bad_values_name_the_parameter(estimator, name, value, match, phantoms):
    X, y = phantoms
    with pytest.raises((ValueError, TypeError), match=match):
        estimator(**{name: value}).fit(X, y.astype(float))


def test_regressor_trains_in_bf16_and_channels_last(phantoms):
    X, y = phantoms
    reg = MedicalCNNRegressor(
        precision="bf16",
        memory_format="channels_last",
        max_epochs=2,
        batch_size=16,
        random_state=0,
        device="cpu",
    ).fit(X, y.astype(float))
    prediction = reg.predict(X)
    assert prediction.dtype == np.float64
    assert np.isfinite(prediction).all()


@pytest.mark.parametrize(
    "options",
    [{"precision": "bf16"}, {"memory_format": "channels_last"}],
    ids=["bf16", "channels_last"],
)
def test_options_survive_pickle_and_the_safe_format(options, phantoms, tmp_path):
    X, y = phantoms
    clf = MedicalCNNClassifier(**options, **FAST).fit(X, y)
    expected = clf.predict_proba(X)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    path = tmp_path / "model.skmed"
    save_model(clf, path)
    loaded = load_model(path)
    assert {key: loaded.get_params()[key] for key in options} == options
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=0, atol=1e-6)


def test_old_pickles_without_the_options_still_predict(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(X)
    state = clf.__getstate__()
    for name in ("precision", "memory_format", "n_threads", "distributed"):
        del state[name]
    del state["memory_format_"]
    module = state["net_"].module_
    del module.precision, module.memory_format  # back to the class defaults
    old = MedicalCNNClassifier.__new__(MedicalCNNClassifier)
    old.__setstate__(state)
    assert old.get_params()["precision"] == "fp32"
    np.testing.assert_array_equal(old.predict_proba(X), expected)


def test_saliency_and_grad_cam_work_in_bf16_and_channels_last(phantoms):
    from sk_medcnn.inspection import grad_cam, saliency_map

    X, y = phantoms
    clf = MedicalCNNClassifier(
        precision="bf16", memory_format="channels_last", **FAST
    ).fit(X, y)
    for explain in (grad_cam, saliency_map):
        maps = explain(clf, X[:3])
        assert maps.shape[:3] == (3, 16, 16)
        assert np.isfinite(maps).all()
        assert maps.dtype.kind == "f"


def test_fit_warnings_point_at_the_callers_line():
    # fit runs its body one call deeper (inside the n_threads block): warnings
    # must still name the user's line, not the package's
    X = np.random.RandomState(0).rand(6, 10)  # 10 values per row: not a square
    y = np.array([0, 0, 0, 0, 0, 1])  # one sample of class 1: no stratified split
    clf = MedicalCNNClassifier(max_epochs=1, calibration="temperature", **FAST_NOCAL)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf.fit(X, y)
    messages = {
        str(w.message)[:25]: Path(w.filename).name
        for w in record
        if "not a square number" in str(w.message)
        or "cannot be stratified" in str(w.message)
    }
    assert len(messages) == 2
    assert set(messages.values()) == {Path(__file__).name}


def test_fitted_cpu_networks_predict_in_channels_last_with_the_same_function(
    phantoms,
):
    import copy

    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    module = clf.net_.module_
    assert module.memory_format == "channels_last"
    weights = [m.weight for m in module.body.modules() if isinstance(m, nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    nchw = copy.deepcopy(module)
    nchw.body = nchw.body.to(memory_format=torch.contiguous_format)
    nchw.memory_format = "contiguous"
    images = torch.from_numpy(np.asarray(X[..., None], dtype=np.float32))
    with torch.inference_mode():
        torch.testing.assert_close(module(images), nchw(images), rtol=1e-4, atol=1e-5)


def _conv_weights(module):
    return [m.weight for m in module.body.modules() if isinstance(m, nn.Conv2d)]


def test_inference_layout_predicts_in_channels_last_then_restores_the_weights():
    from sk_medcnn import get_architecture

    torch.manual_seed(0)
    body = get_architecture("simple_cnn")(3, 2, (12, 12))
    module = ImageNetwork(body, np.zeros(3), np.ones(3)).eval()
    weights = _conv_weights(module)
    before = [w.detach().clone() for w in weights]
    images = torch.rand(5, 12, 12, 3)
    with torch.inference_mode():
        expected = module(images)
    with module.inference_layout(), torch.inference_mode():
        assert module.memory_format == "channels_last"
        assert all(
            w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
            for w in weights
        )
        got = module(images)
    # the same function by other kernels; then the same parameters, exactly
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert module.memory_format == "contiguous"
    assert _conv_weights(module) == weights  # the optimizer's parameter objects
    assert all(w.is_contiguous() for w in weights)
    for weight, old in zip(weights, before, strict=True):
        assert torch.equal(weight, old)


def test_inference_layout_switches_back_after_an_error():
    from sk_medcnn import get_architecture

    body = get_architecture("simple_cnn")(3, 2, (12, 12))
    module = ImageNetwork(body, np.zeros(3), np.ones(3))
    with pytest.raises(RuntimeError, match="boom"), module.inference_layout():
        raise RuntimeError("boom")
    assert module.memory_format == "contiguous"
    assert all(w.is_contiguous() for w in _conv_weights(module))


def test_inference_layout_leaves_a_channels_last_network_alone():
    from sk_medcnn import get_architecture

    body = get_architecture("simple_cnn")(3, 2, (12, 12))
    module = ImageNetwork(body, np.zeros(3), np.ones(3), memory_format="channels_last")
    with module.inference_layout():
        assert module.memory_format == "channels_last"
    assert module.memory_format == "channels_last"
    last = torch.channels_last
    assert all(w.is_contiguous(memory_format=last) for w in _conv_weights(module))


def _layouts_by_mode(record):
    """An architecture that records (training, channels-last) at its second conv."""
    from sk_medcnn import get_architecture

    def build(in_channels, n_outputs, image_shape):
        body = get_architecture("simple_cnn")(in_channels, n_outputs, image_shape)
        conv = next(  # with one input channel both layouts are the same
            m for m in body.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1
        )

        def hook(module, args):
            # not the one-image probe that checks the output size, nor the
            # passes after training (in inference mode; skorch's use no_grad)
            if len(args[0]) == 1 or torch.is_inference_mode_enabled():
                return
            last = module.weight.is_contiguous(memory_format=torch.channels_last)
            record.add((module.training, last and not module.weight.is_contiguous()))

        conv.register_forward_pre_hook(hook)
        return body

    return build


def test_validation_runs_in_channels_last_and_training_is_unchanged(
    phantoms, monkeypatch
):
    from skorch import NeuralNet

    from sk_medcnn._engine import ImageNet

    X, y = phantoms
    params = {
        **FAST,
        "early_stopping": True,
        "max_epochs": 3,
        "ood_false_alarm_rate": None,
        "memory_format": "contiguous",  # "auto" trains simple_cnn channels-last
    }
    record = set()
    new = MedicalCNNClassifier(_layouts_by_mode(record), **params).fit(X, y)
    # training batches in NCHW, the per-epoch validation in channels-last
    assert record == {(True, False), (False, True)}
    with monkeypatch.context() as patch:  # skorch's own validation pass: NCHW
        patch.setattr(ImageNet, "run_single_epoch", NeuralNet.run_single_epoch)
        record.clear()
        old = MedicalCNNClassifier(_layouts_by_mode(record), **params).fit(X, y)
    assert record == {(True, False), (False, False)}
    # the same training; validation losses equal up to rounding
    assert new.history_[:, "train_loss"] == old.history_[:, "train_loss"]
    np.testing.assert_allclose(
        new.history_[:, "valid_loss"], old.history_[:, "valid_loss"], atol=1e-6
    )
    for name, tensor in new.net_.module_.state_dict().items():
        assert torch.equal(tensor, old.net_.module_.state_dict()[name]), name
    np.testing.assert_array_equal(new.predict_proba(X), old.predict_proba(X))


def test_bf16_volumes_never_run_channels_last_on_the_cpu():
    # torch 2.13's bfloat16 channels_last_3d convolutions return wrong values
    # (gradients of 1e16) for small volumes: benchmarks/check_channels_last.py
    from sk_medcnn.architectures import build_simple_cnn
    from sk_medcnn.estimators._layout import resolve_memory_format

    body = build_simple_cnn(1, 2, (8, 8, 8), width=2)
    cpu = torch.device("cpu")
    volumes = {"spatial_dims": 3, "precision": "bf16"}
    assert resolve_memory_format("auto", body, cpu, **volumes) == "contiguous"
    assert resolve_memory_format("auto", body, cpu, spatial_dims=3) == "channels_last"
    assert resolve_memory_format("channels_last", body, cpu, precision="bf16") == (
        "channels_last"  # images: scanned, fine
    )
    with pytest.raises(ValueError, match="memory_format='channels_last' with"):
        resolve_memory_format("channels_last", body, cpu, **volumes)
    mean, std = np.zeros(1), np.ones(1)
    net = ImageNetwork(body, mean, std, precision="bf16", spatial_dims=3)
    net.to_inference_layout()
    assert net.memory_format == "contiguous"
    with net.inference_layout():
        assert net.memory_format == "contiguous"
    assert not any(
        w.is_contiguous(memory_format=torch.channels_last_3d) and not w.is_contiguous()
        for w in net.parameters()
        if w.ndim == 5
    )


def test_explicit_channels_last_bf16_volumes_is_an_error_naming_both(phantoms):
    from sk_medcnn.datasets import make_lesion_phantoms

    X, y = make_lesion_phantoms(24, image_size=16, spatial_dims=3, random_state=0)
    clf = MedicalCNNClassifier(
        memory_format="channels_last", precision="bf16", **{**FAST, "max_epochs": 1}
    )
    with pytest.raises(ValueError, match="precision='bf16'"):
        clf.fit(X, y)
    auto = MedicalCNNClassifier(precision="bf16", **{**FAST, "max_epochs": 1})
    assert auto.fit(X, y).memory_format_ == "contiguous"
