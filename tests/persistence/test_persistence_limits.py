"""What loading a hostile .skmed file may cost, and what it may not do (issue 23).

Each test is a regression test for one finding of an adversarial review: a
value that ended the process, a file that cost minutes and gigabytes, a fitted
attribute that was not checked, plugin code that escaped the error handling,
a document that filled the memory, and a setting a file could choose for a
later refit.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import threading
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor, registry
from sk_medcnn.architectures import _resnet
from sk_medcnn.exceptions import ModelFileError
from sk_medcnn.persistence import _archive, _loader, load_model, save_model

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def saved(phantoms, tmp_path_factory):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    path = tmp_path_factory.mktemp("limits") / "model.skmed"
    save_model(clf, path)
    return path.read_bytes()


def rewrite(data, edit=None, edit_members=None):
    """Edit the document (and members) of a saved file, checksums kept right."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members.pop("model.json"))
    if edit_members is not None:
        edit_members(members)
    document["members"] = {
        name: {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        for name, content in members.items()
    }
    if edit is not None:
        edit(document)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        archive.writestr("model.json", json.dumps(document))
    return buffer.getvalue()


def estimator_node(document):
    return document["model"]["__estimator__"]


def load(tmp_path, data):
    path = tmp_path / "hostile.skmed"
    path.write_bytes(data)
    return load_model(path)


# --- 1. values that size resources are bounded -----------------------------------


@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("n_threads", 2**31 - 1, r"n_threads == 2147483647, must be <= 1024"),
        ("n_threads", 0, "n_threads == 0, must be >= 1"),
        ("num_workers", 10**6, r"num_workers == 1000000, must be <= 256"),
    ],
)
def test_a_file_cannot_ask_for_resources_that_end_the_process(
    saved, tmp_path, param, value, match
):
    hostile = rewrite(
        saved, lambda d: estimator_node(d)["params"].__setitem__(param, value)
    )
    with pytest.raises(ModelFileError, match=match):
        load(tmp_path, hostile)


@pytest.mark.parametrize("estimator", [MedicalCNNClassifier, MedicalCNNRegressor])
def test_fit_refuses_huge_thread_and_worker_counts_before_training(phantoms, estimator):
    X, y = phantoms
    with pytest.raises(ValueError, match="n_threads == 2147483647, must be <= 1024"):
        estimator(n_threads=2**31 - 1, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="num_workers == 257, must be <= 256"):
        estimator(num_workers=257, **FAST).fit(X, y)
    estimator(n_threads=1024, **FAST)  # the bound itself is accepted
    assert torch.get_num_threads() >= 1


# --- 2. loading costs what the file justifies ------------------------------------


def test_a_huge_image_shape_is_checked_on_the_meta_device(
    phantoms, tmp_path, monkeypatch
):
    # a ResNet is size-agnostic, so a 8192 x 8192 image_shape_ fits its weights;
    # predicting one blank image of that size took 248 s and 8.6 GiB
    X, y = phantoms
    clf = MedicalCNNClassifier(
        "resnet18",
        architecture_params={"width": 4, "stem": "small"},
        calibration=None,
        **FAST,
    ).fit(X, y)
    save_model(clf, tmp_path / "resnet.skmed")
    data = (tmp_path / "resnet.skmed").read_bytes()

    def enlarge(document):
        attributes = estimator_node(document)["attributes"]
        attributes["image_shape_"] = {"__tuple__": [8192, 8192, 1]}
        attributes["n_features_in_"] = 8192 * 8192

    devices = []
    forward = _resnet.ResNet.forward

    def spy(self, x):
        devices.append(x.device.type)
        return forward(self, x)

    monkeypatch.setattr(_resnet.ResNet, "forward", spy)
    loaded = load(tmp_path, rewrite(data, enlarge))
    assert loaded.image_shape_ == (8192, 8192, 1)
    assert devices  # the network was run ...
    assert set(devices) == {"meta"}  # ... but never on real 8192 x 8192 images
    # an image shape the architecture cannot take is still refused
    devices.clear()
    monkeypatch.setattr(_loader, "_check_network_on_meta", lambda path, est: False)
    small = rewrite(data)
    assert load(tmp_path, small).image_shape_ == (16, 16, 1)
    assert set(devices) == {"cpu"}  # small images: a real blank prediction


def test_the_probe_of_a_large_new_network_runs_on_meta(monkeypatch):
    from sk_medcnn.estimators._network import run_probe as _probe

    body = _resnet.build_resnet18(1, 2, (2048, 2048), width=4)
    body.eval()
    with torch.no_grad():
        output = _probe(body, torch.zeros((1, 1, 2048, 2048)))
    assert output.device.type == "meta"
    assert tuple(output.shape) == (1, 2)
    with torch.no_grad():
        small = _probe(body, torch.zeros((1, 1, 32, 32)))
    assert small.device.type == "cpu"
    assert torch.isfinite(small).all()


# --- 3. temperature_ and the outputs are checked ---------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"__float__": "nan"},
        {"__float__": "inf"},
        0.0,
        -1.0,
        1e308,
        25.0,
        [1.0],
        "1.0",
        True,
        None,
    ],
)
def test_temperature_is_checked_on_load(saved, tmp_path, value):
    hostile = rewrite(
        saved,
        lambda d: estimator_node(d)["attributes"].__setitem__("temperature_", value),
    )
    with pytest.raises(ModelFileError, match=r"temperature_ must be a float in"):
        load(tmp_path, hostile)


def test_a_valid_temperature_still_loads(saved, tmp_path):
    hostile = rewrite(
        saved,
        lambda d: estimator_node(d)["attributes"].__setitem__("temperature_", 20.0),
    )
    assert load(tmp_path, hostile).temperature_ == 20.0


def test_a_network_that_predicts_nan_is_refused(saved, tmp_path):
    def poison(members):
        tensors = dict(load_tensors(members["network-0.safetensors"]))
        last = sorted(name for name in tensors if name.endswith("bias"))[-1]
        tensors[last] = torch.full_like(tensors[last], float("nan"))
        members["network-0.safetensors"] = save_tensors(tensors)

    with pytest.raises(ModelFileError, match="not finite numbers"):
        load(tmp_path, rewrite(saved, edit_members=poison))


# --- 9. plugin code cannot end the program ---------------------------------------


def _install(monkeypatch, factory):
    monkeypatch.setitem(registry._ARCHITECTURES, "limits_plugin", factory)


def _tiny(in_channels, n_outputs, image_shape):
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(in_channels * image_shape[0] * image_shape[1], n_outputs),
    )


@pytest.fixture
def plugin_model(phantoms, tmp_path, monkeypatch):
    X, y = phantoms
    _install(monkeypatch, _tiny)
    clf = MedicalCNNClassifier("limits_plugin", **FAST).fit(X, y)
    path = tmp_path / "plugin.skmed"
    save_model(clf, path)
    return path


@pytest.mark.parametrize("exit_type", [SystemExit, KeyboardInterrupt])
def test_a_plugin_that_tries_to_exit_is_a_model_file_error(
    plugin_model, monkeypatch, exit_type
):
    def hostile(in_channels, n_outputs, image_shape):
        raise exit_type(3)

    _install(monkeypatch, hostile)
    with pytest.raises(ModelFileError, match=rf"raised {exit_type.__name__}\(3\)"):
        load_model(plugin_model)


def test_a_plugin_network_that_exits_in_forward_is_a_model_file_error(
    plugin_model, monkeypatch
):
    class Exiting(torch.nn.Sequential):  # the weights' names of _tiny
        def __init__(self, in_channels, n_outputs, image_shape):
            super().__init__(*_tiny(in_channels, n_outputs, image_shape))
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 1:  # after the build's probe: in the blank prediction
                raise SystemExit("bye")
            return super().forward(x)

    monkeypatch.setitem(registry._ARCHITECTURES, "limits_plugin", Exiting)
    with pytest.raises(ModelFileError, match=r"SystemExit\(bye\)"):
        load_model(plugin_model)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signals reach the main thread only",
)
def test_a_real_ctrl_c_while_loading_still_interrupts(plugin_model, monkeypatch):
    def interrupted(in_channels, n_outputs, image_shape):
        os.kill(os.getpid(), signal.SIGINT)  # as a user pressing Ctrl-C
        return _tiny(in_channels, n_outputs, image_shape)

    _install(monkeypatch, interrupted)
    # Python's own handler, as in a terminal: a run started in the background
    # (`cmd &`) inherits an ignored SIGINT, and then Ctrl-C does nothing anyway
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = signal.getsignal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            load_model(plugin_model)
        assert signal.getsignal(signal.SIGINT) is before  # the handler is restored
    finally:
        signal.signal(signal.SIGINT, inherited)


# --- 11. the document's size and number of values --------------------------------


def test_a_document_of_many_values_is_refused_before_parsing(
    saved, tmp_path, monkeypatch
):
    def parse(*args, **kwargs):
        raise AssertionError("parsed")

    def bomb(document):
        estimator_node(document)["attributes"]["junk_"] = [{}] * 1_100_000

    hostile = rewrite(saved, bomb)
    monkeypatch.setattr(json, "loads", parse)
    with pytest.raises(ModelFileError, match=r"JSON values, more than the limit"):
        load(tmp_path, hostile)


def test_a_document_above_32_mib_is_refused(saved, tmp_path):
    def bomb(document):
        estimator_node(document)["attributes"]["junk_"] = "x" * (33 * 2**20)

    with pytest.raises(ModelFileError, match="would decompress to"):
        load(tmp_path, rewrite(saved, bomb))


def test_save_refuses_a_document_load_would_refuse(phantoms, tmp_path, monkeypatch):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    path = tmp_path / "model.skmed"
    save_model(clf, path)
    before = path.read_bytes()
    monkeypatch.setattr(_archive, "_MAX_DOCUMENT_VALUES", 50)
    with pytest.raises(ValueError, match=r"training history .* joblib"):
        save_model(clf, path)
    assert path.read_bytes() == before  # the previous file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["model.skmed"]


# --- training settings a file may not choose -------------------------------------


def test_a_file_cannot_point_a_refit_at_a_folder(saved, tmp_path, phantoms):
    target = tmp_path / "elsewhere"

    def point(document):
        params = estimator_node(document)["params"]
        params["checkpoint_dir"] = {"__path__": str(target)}
        params["resume"] = True

    loaded = load(tmp_path, rewrite(saved, point))
    assert loaded.checkpoint_dir is None
    assert loaded.resume is False
    X, y = phantoms
    loaded.fit(X, y)
    assert not target.exists()


def test_bounds_hold_for_every_stored_integer_parameter():
    # the parameters that size resources are bounded in both estimators
    for estimator in (MedicalCNNClassifier(), MedicalCNNRegressor()):
        for param, limit in (("n_threads", 1024), ("num_workers", 256)):
            estimator.set_params(**{param: limit + 1})
            with pytest.raises(ValueError, match=f"must be <= {limit}"):
                estimator._parameter_constraints[param](limit + 1, param)
            estimator.set_params(**{param: np.int64(limit)})
            estimator._parameter_constraints[param](np.int64(limit), param)
