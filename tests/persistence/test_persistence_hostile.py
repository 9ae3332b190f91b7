"""Hostile and broken .skmed files: each gives one ModelFileError, and runs nothing.

Every test loads through ``load_model`` with the unpickling and import machinery
booby-trapped (``no_code`` fixture): a call raises a ``BaseException`` that the
loader's catch-all cannot turn into a ``ModelFileError``, so the test fails.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import io
import json
import os
import pickle
import struct
import sys
import time
import warnings
import zipfile
import zlib

import joblib
import numpy as np
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNet

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.exceptions import ArchitectureNotFoundError, ModelFileError
from sk_medcnn.persistence import _archive, load_model, save_model


class CodeWasRun(BaseException):
    """Raised by the booby traps; not an Exception, so nothing converts it."""


@pytest.fixture(autouse=True)
def no_code(monkeypatch):
    def trap(*args, **kwargs):
        raise CodeWasRun(f"called with {args!r}")

    for module, name in [
        (pickle, "load"),
        (pickle, "loads"),
        (pickle, "Unpickler"),
        (torch, "load"),
        (joblib, "load"),
        (NeuralNet, "__setstate__"),
    ]:
        monkeypatch.setattr(module, name, trap)
    real_import_module = importlib.import_module

    def import_module(name, package=None):
        if name not in sys.modules:
            raise CodeWasRun(f"imported {name}")
        return real_import_module(name, package)

    monkeypatch.setattr(importlib, "import_module", import_module)


@pytest.fixture(scope="module")
def saved(phantoms, tmp_path_factory):
    """The bytes of a saved classifier with string labels, and the images."""
    X, y = phantoms
    labels = np.array(["benign", "lesion"], dtype=object)[y]
    # calibration=None: no held-out split, so "_validation_index" is stored
    # inline as null and its deletion below leaves no orphaned array
    clf = MedicalCNNClassifier(
        max_epochs=1, batch_size=16, calibration=None, random_state=0, device="cpu"
    ).fit(X, labels)
    path = tmp_path_factory.mktemp("saved") / "model.skmed"
    save_model(clf, path)
    return path.read_bytes(), X[:4]


# --- helpers to build hostile files -------------------------------------------------


def read_members(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def build_zip(members, *, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def rewrite(data, edit_document=None, edit_members=None, *, rehash=True):
    """Edit the document and members of a saved file, keeping checksums right."""
    members = read_members(data)
    document = json.loads(members.pop("model.json"))
    if edit_members is not None:
        edit_members(members)
    if rehash:
        document["members"] = {
            name: {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
            for name, content in members.items()
        }
    if edit_document is not None:
        document = edit_document(document) or document
    text = document if isinstance(document, bytes) else json.dumps(document).encode()
    return build_zip({**members, "model.json": text})


def load(tmp_path, data, **kwargs):
    path = tmp_path / "hostile.skmed"
    path.write_bytes(data)
    return load_model(path, **kwargs)


def classifier_node(document):
    return document["model"]["__estimator__"]


class MakeMarker:
    """A pickle payload that creates a marker file when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# --- the baseline -------------------------------------------------------------------


def test_the_unaltered_file_loads_under_the_traps(saved, tmp_path):
    data, X = saved
    model = load(tmp_path, data)
    assert model.predict(X).dtype == object
    assert load(tmp_path, rewrite(data)).predict_proba(X).shape == (4, 2)


# --- code-execution attempts ------------------------------------------------------


def test_pickle_payload_member_is_not_read(saved, tmp_path):
    data, _ = saved
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(MakeMarker(marker))
    for name in ("payload.pkl", "model.joblib", "__init__.py", "../../evil.pkl"):
        hostile = rewrite(
            data,
            edit_members=lambda members, name=name: members.update({name: payload}),
            rehash=False,
        )
        with pytest.raises(ModelFileError, match="unexpected members"):
            load(tmp_path, hostile)
    # declared in the document, with a correct checksum
    hostile = rewrite(data, edit_members=lambda m: m.update({"x.pkl": payload}))
    with pytest.raises(ModelFileError, match=r"unexpected member name 'x\.pkl'"):
        load(tmp_path, hostile)
    # in place of the weights, with a correct checksum
    hostile = rewrite(
        data, edit_members=lambda m: m.update({"network-0.safetensors": payload})
    )
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        load(tmp_path, hostile)
    assert not marker.exists()


def test_a_pickle_named_skmed_is_refused(saved, tmp_path):
    marker = tmp_path / "PWNED"
    for data in (
        pickle.dumps(MakeMarker(marker)),
        pickle.dumps(MakeMarker(marker), protocol=0),
        zlib.compress(pickle.dumps(MakeMarker(marker))),
    ):
        with pytest.raises(ModelFileError, match=r"not a \.skmed model file"):
            load(tmp_path, data)
    buffer = io.BytesIO()
    joblib.dump(MakeMarker(marker), buffer)
    with pytest.raises(ModelFileError, match="looks like a pickle"):
        load(tmp_path, buffer.getvalue())
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    [
        "os.system",
        "builtins.eval",
        "posix.system",
        "subprocess.Popen",
        "sk_medcnn.persistence.load_model",
        "sk_medcnn.classifier.MedicalCNNClassifier",  # only public names are listed
        "skmed_evil_module.Thing",
        "",
    ],
)
def test_classes_off_the_allow_list_are_not_imported(saved, tmp_path, name):
    data, _ = saved
    marker = tmp_path / "PWNED"
    (tmp_path / "skmed_evil_module.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Thing:\n    pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:

        def as_estimator(document):
            classifier_node(document)["class"] = name

        def as_class_reference(document):
            classifier_node(document)["params"]["optimizer"] = {"__class__": name}

        with pytest.raises(ModelFileError, match="not on the allow-list"):
            load(tmp_path, rewrite(data, as_estimator))
        with pytest.raises(ModelFileError, match="not on the allow-list"):
            load(tmp_path, rewrite(data, as_class_reference))
    finally:
        sys.path.remove(str(tmp_path))
    assert "skmed_evil_module" not in sys.modules
    assert not marker.exists()


def test_attributes_cannot_replace_methods_or_dunders(saved, tmp_path):
    data, _ = saved
    for name, match in [
        ("__class__", "invalid name"),
        ("__dict__", "invalid name"),
        ("predict_proba", "not a fitted attribute"),
        ("fit", "not a fitted attribute"),
        ("lr", "not a fitted attribute"),
        ("not an identifier", "invalid name"),
    ]:

        def edit(document, name=name):
            classifier_node(document)["attributes"][name] = "x"

        with pytest.raises(ModelFileError, match=match):
            load(tmp_path, rewrite(data, edit))


# --- broken zips ------------------------------------------------------------------


def test_truncated_files(saved, tmp_path):
    data, _ = saved
    for size in (0, 1, 3, 4, 30, 100, len(data) // 2, len(data) - 22, len(data) - 1):
        with pytest.raises(ModelFileError):
            load(tmp_path, data[:size])


def test_bit_flips_in_every_member_are_detected(saved, tmp_path):
    data, X = saved
    expected = load(tmp_path, data).predict_proba(X)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    for info in infos:
        # the member's data starts after its 30-byte local header, name and extra
        name_length, extra_length = struct.unpack(
            "<HH", data[info.header_offset + 26 : info.header_offset + 30]
        )
        start = info.header_offset + 30 + name_length + extra_length
        for offset in (0, info.compress_size // 2, info.compress_size - 1):
            flipped = bytearray(data)
            flipped[start + offset] ^= 0x10
            if info.compress_type == zipfile.ZIP_STORED:
                with pytest.raises(ModelFileError, match=f"{info.filename}.*CRC"):
                    load(tmp_path, bytes(flipped))
                continue
            # a flip in the padding bits after the last deflate block changes no
            # byte of model.json: such a file loads, and is the same model
            try:
                model = load(tmp_path, bytes(flipped))
            except ModelFileError as error:
                message = str(error)
            else:
                message = info.filename
                np.testing.assert_array_equal(model.predict_proba(X), expected)
            assert info.filename in message


def test_altered_members_with_valid_zip_checksums(saved, tmp_path):
    # re-zipping recomputes the CRC-32; the SHA-256 in model.json still differs
    data, _ = saved

    def change_one_weight(members):
        content = bytearray(members["network-0.safetensors"])
        content[-1] ^= 0x01
        members["network-0.safetensors"] = bytes(content)

    hostile = rewrite(data, edit_members=change_one_weight, rehash=False)
    with pytest.raises(ModelFileError, match="SHA-256"):
        load(tmp_path, hostile)


def test_zip_bombs_and_limits(saved, tmp_path, monkeypatch):
    data, _ = saved
    members = read_members(data)
    # a member of zeros that deflates about 1000-fold
    bomb = {**members, "network-0.safetensors": bytes(2 * 2**20)}
    hostile = build_zip(bomb, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(ModelFileError, match="zip bomb"):
        load(tmp_path, hostile)
    # a central directory that declares a 5 GiB member: refused before reading
    hostile = bytearray(data)
    directory = hostile.rfind(b"PK\x01\x02")
    hostile[directory + 24 : directory + 28] = struct.pack("<I", 0xFFFFFFFE)
    with pytest.raises(ModelFileError, match="limit"):
        load(tmp_path, bytes(hostile))
    # too many members
    many = {**members, **{f"network-{i}.safetensors": b"" for i in range(1, 80)}}
    with pytest.raises(ModelFileError, match="at most 64"):
        load(tmp_path, build_zip(many))
    # too much in all
    monkeypatch.setattr(_archive, "_MAX_TOTAL_BYTES", 10_000)
    with pytest.raises(ModelFileError, match="limit of 10,000"):
        load(tmp_path, data)


def test_zip_oddities(saved, tmp_path):
    data, _ = saved
    members = read_members(data)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        for name, content in members.items():
            archive.writestr(name, content)
        archive.writestr("model.json", members["model.json"])
    with pytest.raises(ModelFileError, match="duplicate members"):
        load(tmp_path, buffer.getvalue())

    with pytest.raises(ModelFileError, match="compression method"):
        load(tmp_path, build_zip(members, compression=zipfile.ZIP_BZIP2))

    encrypted = bytearray(data)  # set the flag in the local and central headers
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = encrypted.find(signature)
        while start >= 0:
            encrypted[start + offset] |= 0x1
            start = encrypted.find(signature, start + 4)
    with pytest.raises(ModelFileError, match="encrypted"):
        load(tmp_path, bytes(encrypted))

    no_document = {k: v for k, v in members.items() if k != "model.json"}
    with pytest.raises(ModelFileError, match=r"no model\.json"):
        load(tmp_path, build_zip(no_document))
    missing = {k: v for k, v in members.items() if k != "arrays.safetensors"}
    with pytest.raises(ModelFileError, match=r"lacks the members \['arrays"):
        load(tmp_path, build_zip(missing))
    with pytest.raises(ModelFileError, match=r"not a \.skmed model file"):
        load(tmp_path, b"GARBAGE" + data)
    with pytest.raises(ModelFileError):
        load(tmp_path, b"PK\x03\x04" + bytes(200))


# --- the JSON document -------------------------------------------------------------


def set_in(path, value):
    """An edit that sets document[path...] = value."""

    def edit(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def delete_in(path):
    def edit(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


MODEL = ("model", "__estimator__")
PARAMS = (*MODEL, "params")
ATTRIBUTES = (*MODEL, "attributes")

DOCUMENT_CASES = {
    "not utf-8": (lambda d: b"\xff\xfe{}", "not valid JSON"),
    "not json": (lambda d: b"{'format': 1}", "not valid JSON"),
    "a list": (lambda d: b"[]", "must hold a JSON object"),
    "NaN constant": (lambda d: b'{"format": NaN}', "NaN is not valid JSON"),
    "duplicate keys": (lambda d: b'{"format": 1, "format": 2}', "duplicate keys"),
    "deep nesting": (lambda d: b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    "huge int": (lambda d: b'{"format_version": ' + b"9" * 5000 + b"}", "JSON"),
    "wrong format": (set_in(("format",), "pickle"), "does not declare format"),
    "version string": (set_in(("format_version",), "1"), "must be an int"),
    "version bool": (set_in(("format_version",), True), "must be an int"),
    "version zero": (set_in(("format_version",), 0), "must be an int >= 1"),
    "newer version": (set_in(("format_version",), 2), "newer than the version"),
    "missing model": (delete_in(("model",)), r"missing \['model'\]"),
    "missing versions": (delete_in(("versions",)), r"missing \['versions'\]"),
    "extra key": (set_in(("payload",), "x"), r"unexpected \['payload'\]"),
    "versions list": (set_in(("versions",), ["1.0"]), "versions must be"),
    "members list": (set_in(("members",), []), "members must be an object"),
    "member record": (
        set_in(("members", "arrays.safetensors"), {"size": "1", "sha256": ""}),
        "record of member",
    ),
    "model a string": (set_in(("model",), "MedicalCNNClassifier"), "estimator node"),
    "estimator extra key": (set_in((*MODEL, "code"), "x"), "must hold the keys"),
    "estimator no params": (delete_in((*MODEL, "params")), "must hold the keys"),
    "class not a string": (set_in((*MODEL, "class"), ["os", "system"]), "allow-list"),
    "params a list": (set_in(PARAMS, []), "params must be a JSON object"),
    "attributes null": (set_in(ATTRIBUTES, None), "attributes must be a JSON"),
    "unknown parameter": (set_in((*PARAMS, "evil"), 1), r"no parameters \['evil'\]"),
    "lr a string": (set_in((*PARAMS, "lr"), "fast"), "invalid parameter: lr must be"),
    "lr negative": (set_in((*PARAMS, "lr"), -1.0), "lr"),
    "max_epochs float": (set_in((*PARAMS, "max_epochs"), 1.5), "max_epochs"),
    "unknown loss": (set_in((*PARAMS, "loss"), "os.system"), "loss"),
    "architecture ref": (
        set_in((*PARAMS, "architecture"), {"__class__": "torch.optim.Adam"}),
        "architecture must be a registry name",
    ),
    "no network": (delete_in((*MODEL, "network")), "needs 'network'"),
    "network elsewhere": (set_in((*MODEL, "network"), "model.json"), "absent"),
    "net_ in json": (set_in((*ATTRIBUTES, "net_"), None), "net_ is restored"),
    "two-key tag": (
        set_in((*PARAMS, "image_shape"), {"__tuple__": [], "__x__": 1}),
        "exactly one key",
    ),
    "unknown tag": (set_in((*PARAMS, "image_shape"), {"__eval__": "1"}), "unknown tag"),
    "tuple of a dict": (set_in((*PARAMS, "image_shape"), {"__tuple__": {}}), "list"),
    "bad float": (set_in((*PARAMS, "lr"), {"__float__": "1e999"}), "__float__"),
    "bad scalar": (
        set_in((*PARAMS, "lr"), {"__scalar__": {"dtype": "object", "value": 1}}),
        "scalar dtype",
    ),
    "scalar overflow": (
        set_in(
            (*PARAMS, "max_epochs"), {"__scalar__": {"dtype": "int8", "value": 999}}
        ),
        "int8 scalar",
    ),
    "bad device": (
        set_in((*PARAMS, "device"), {"__torch_device__": "cuda:99; rm -rf"}),
        "invalid torch device",
    ),
    "unknown device": (
        set_in((*PARAMS, "device"), {"__torch_device__": "warp"}),
        "invalid torch device",
    ),
    "bad random state": (
        set_in((*PARAMS, "random_state"), {"__random_state__": {"keys": [1]}}),
        "RandomState",
    ),
    "dict pairs": (set_in((*PARAMS, "class_weight"), {"__dict__": [[1]]}), "pairs"),
    "unhashable key": (
        set_in((*PARAMS, "class_weight"), {"__dict__": [[[1], 2.0]]}),
        "invalid dict key",
    ),
    "image_shape_ text": (
        set_in((*ATTRIBUTES, "image_shape_"), "16x16"),
        "image_shape_",
    ),
    "image_shape_ 2d": (
        set_in((*ATTRIBUTES, "image_shape_"), {"__tuple__": [16, 16]}),
        "image_shape_",
    ),
    "Pad bomb": (
        lambda d: d.update(
            model={
                "__estimator__": {
                    "class": "sklearn.pipeline.Pipeline",
                    "params": {
                        "steps": [
                            {
                                "__tuple__": [
                                    "pad",
                                    {
                                        "__estimator__": {
                                            "class": "sk_medcnn.preprocessing.Pad",
                                            "params": {"shape": 10**6},
                                            "attributes": {},
                                        }
                                    },
                                ]
                            },
                            {"__tuple__": ["cnn", d["model"]]},
                        ]
                    },
                    "attributes": {},
                }
            }
        ),
        r"at 'pad__shape': shape=1000000 makes images of more than",
    ),
    "image_shape_ huge": (
        set_in((*ATTRIBUTES, "image_shape_"), {"__tuple__": [100_000, 100_000, 1]}),
        "image_shape_",
    ),
    "n_features_in_": (set_in((*ATTRIBUTES, "n_features_in_"), 255), "n_features_in_"),
    "classes_ missing": (delete_in((*ATTRIBUTES, "classes_")), "classes_"),
    "classes_ one label": (
        set_in(
            (*ATTRIBUTES, "classes_"),
            {"__ndarray__": {"dtype": "object", "shape": [1], "data": ["a"]}},
        ),
        "classes_",
    ),
    "classes_ repeated": (
        set_in(
            (*ATTRIBUTES, "classes_"),
            {"__ndarray__": {"dtype": "object", "shape": [2], "data": ["a", "a"]}},
        ),
        "distinct",
    ),
    "object array of dicts": (
        set_in(
            (*ATTRIBUTES, "classes_"),
            {"__ndarray__": {"dtype": "object", "shape": [2], "data": [{}, {}]}},
        ),
        "object array",
    ),
    "array shape mismatch": (
        set_in(
            (*ATTRIBUTES, "classes_"),
            {"__ndarray__": {"dtype": "object", "shape": [3], "data": ["a", "b"]}},
        ),
        "2 values for shape",
    ),
    "array void dtype": (
        set_in(
            (*ATTRIBUTES, "classes_"),
            {"__ndarray__": {"dtype": "V8", "shape": [2], "data": ["a", "b"]}},
        ),
        "unsupported array dtype",
    ),
    "array huge text dtype": (
        set_in(
            (*ATTRIBUTES, "classes_"),
            {"__ndarray__": {"dtype": "<U9999999", "shape": [2], "data": ["a", "b"]}},
        ),
        "would take more than",
    ),
    "array key missing": (
        set_in((*ATTRIBUTES, "input_mean_", "__ndarray__", "key"), "../../etc/passwd"),
        "absent from arrays.safetensors",
    ),
    "array dtype declared wrong": (
        set_in((*ATTRIBUTES, "input_mean_", "__ndarray__", "dtype"), "float32"),
        "the document declares",
    ),
    "array dtype unknown": (
        set_in((*ATTRIBUTES, "input_mean_", "__ndarray__", "dtype"), "object"),
        "the document declares",
    ),
    "array used twice": (
        lambda d: set_in(
            (*ATTRIBUTES, "input_std_"),
            copy.deepcopy(classifier_node(d)["attributes"]["input_mean_"]),
        )(d),
        "a second time",
    ),
    "optional attribute missing": (
        delete_in((*ATTRIBUTES, "_validation_index")),
        None,  # None: it loads, prediction does not need it
    ),
    "history not a list": (
        set_in((*ATTRIBUTES, "history_"), {"__history__": 1}),
        "list",
    ),
    "history a number": (set_in((*ATTRIBUTES, "history_"), 5), "history_ must be"),
    "history of numbers": (
        set_in((*ATTRIBUTES, "history_"), {"__history__": [1, 2]}),
        "history must be",
    ),
    "too deep": (
        lambda d: set_in(
            (*PARAMS, "architecture_params"), json.loads("[" * 200 + "]" * 200)
        )(d),
        "nest more than 64",
    ),
}


@pytest.mark.parametrize("case", list(DOCUMENT_CASES))
def test_document_errors(saved, tmp_path, case):
    data, X = saved
    edit, match = DOCUMENT_CASES[case]

    def apply(document):
        result = edit(document)
        return result if isinstance(result, bytes) else None

    hostile = rewrite(data, apply)
    if match is None:
        assert load(tmp_path, hostile).predict(X).shape == (4,)
        return
    with pytest.raises(ModelFileError, match=match):
        load(tmp_path, hostile)


# --- the weights ----------------------------------------------------------------------


def edit_weights(data, change):
    def edit_members(members):
        tensors = dict(load_tensors(members["network-0.safetensors"]))
        change(tensors)
        members["network-0.safetensors"] = save_tensors(tensors)

    return rewrite(data, edit_members=edit_members)


def first_conv(tensors):
    return sorted(
        n for n, t in tensors.items() if n.startswith("body.") and t.ndim == 4
    )[0]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            lambda t: t.update({first_conv(t): torch.zeros(2, 2, 2, 2)}),
            r"weight 'body\..*' .* has shape \(2, 2, 2, 2\)",
        ),
        (
            lambda t: t.update({first_conv(t): t[first_conv(t)].double()}),
            "dtype torch.float64",
        ),
        (lambda t: t.update({first_conv(t): t[first_conv(t)].half()}), "float16"),
        (lambda t: t.pop(first_conv(t)), "missing"),
        (lambda t: t.update({"body.backdoor": torch.zeros(1)}), "unexpected"),
        (lambda t: t.update({"mean": torch.zeros(3)}), "do not fit architecture"),
        (lambda t: t.update({"std": torch.zeros(1, 1, 1, 1).double()}), "dtype"),
        (lambda t: t.pop("std"), "do not fit architecture"),
    ],
)
def test_weights_of_the_wrong_shape_or_dtype(saved, tmp_path, change, match):
    data, _ = saved
    with pytest.raises(ModelFileError, match=match):
        load(tmp_path, edit_weights(data, change))


def test_wrong_arrays(saved, tmp_path):
    data, _ = saved

    def replace_arrays(content):
        def edit_members(members):
            members["arrays.safetensors"] = content

        return rewrite(data, edit_members=edit_members)

    with pytest.raises(ModelFileError, match=r"arrays\.safetensors is not a valid"):
        load(tmp_path, replace_arrays(b"\x00" * 64))
    from safetensors.numpy import save as save_arrays

    with pytest.raises(ModelFileError, match="the document declares"):
        load(tmp_path, replace_arrays(save_arrays({"a0": np.zeros(2, np.float32)})))
    from safetensors.numpy import load as load_arrays

    arrays = load_arrays(read_members(data)["arrays.safetensors"])
    arrays["extra"] = np.zeros(10)  # the model's own arrays, and one more
    with pytest.raises(ModelFileError, match="nothing refers to"):
        load(tmp_path, replace_arrays(save_arrays(arrays)))


def set_architecture_params(params):
    """An edit that sets architecture_params and the fitted architecture_params_."""

    def edit(document):
        set_in((*PARAMS, "architecture_params"), params)(document)
        set_in((*ATTRIBUTES, "architecture_params_"), params)(document)

    return edit


def test_a_parameter_bomb_is_refused_before_building(saved, tmp_path):
    data, _ = saved
    # 10**6 channels would need terabytes; the meta-device check allocates nothing
    hostile = rewrite(data, set_architecture_params({"width": 10**6}))
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match="expects"):
        load(tmp_path, hostile)
    assert time.perf_counter() - start < 5
    hostile = rewrite(data, set_architecture_params({"depth": 3}))
    with pytest.raises(ModelFileError, match=r"cannot be rebuilt.*depth"):
        load(tmp_path, hostile)


def test_architecture_params_disagreeing_with_the_fit_are_refused(saved, tmp_path):
    data, _ = saved
    hostile = rewrite(data, set_in((*PARAMS, "architecture_params"), {"width": 8}))
    with pytest.raises(ModelFileError, match="architecture_params_"):
        load(tmp_path, hostile)


def test_an_architecture_that_is_not_installed(saved, tmp_path):
    data, _ = saved
    hostile = rewrite(data, set_in((*PARAMS, "architecture"), "vit_huge_plugin"))
    with pytest.raises(ModelFileError, match="'vit_huge_plugin'") as info:
        load(tmp_path, hostile)
    assert isinstance(info.value, ArchitectureNotFoundError)
    assert "'sk_medcnn.architectures' entry-point group" in str(info.value)


def test_a_model_that_cannot_predict_is_refused(phantoms, tmp_path):
    # a scaler's fitted statistics are data the loader cannot check one by one;
    # the blank-image prediction at the end of load_model catches them
    X, y = phantoms
    flat = X.reshape(len(X), -1)
    pipe = make_pipeline(
        StandardScaler(),
        MedicalCNNClassifier(image_shape=(16, 16), max_epochs=1, device="cpu"),
    ).fit(flat, y)
    save_model(pipe, tmp_path / "pipe.skmed")
    data = (tmp_path / "pipe.skmed").read_bytes()
    scaler = ("model", "__estimator__", "params", "steps", 0, "__tuple__", 1)
    hostile = rewrite(
        data, set_in((*scaler, "__estimator__", "attributes", "n_features_in_"), 100)
    )
    with pytest.raises(ModelFileError, match="cannot predict a blank input"):
        load(tmp_path, hostile)
