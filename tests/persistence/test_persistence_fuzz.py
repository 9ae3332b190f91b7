"""Property-based fuzzing of load_model with mutated .skmed files (hypothesis).

Three mutators, each bounded (``max_examples``, derandomised so CI is
reproducible): byte-level edits of the whole file (bit flips, truncations,
insertions, deletions, overwrites, aimed at the zip headers as often as at the
data), edits of the JSON document's values (any node replaced, removed or added,
then re-zipped with valid checksums), and character edits of the JSON text.

The property: ``load_model`` either raises one ``ModelFileError`` or returns a
model that predicts; a byte-level edit that loads must give the original
predictions (every member is covered by a CRC-32 and a SHA-256). Unpickling and
imports are booby-trapped with a ``BaseException`` the loader cannot swallow.
Counts of inputs and outcomes are printed (``pytest -s``) and shown per test by
``--hypothesis-show-statistics``.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import sys
import warnings
import zipfile
from collections import Counter

import joblib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.pipeline import make_pipeline
from skorch import NeuralNet

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.augmentation import RandomFlip
from sk_medcnn.exceptions import ModelFileError
from sk_medcnn.persistence import ModelVersionWarning, load_model, save_model
from sk_medcnn.preprocessing import IntensityNormalizer

# a longer, random search: SK_MEDCNN_FUZZ_EXAMPLES=5000 pytest -s tests/persistence
EXAMPLES = int(os.environ.get("SK_MEDCNN_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="SK_MEDCNN_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


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
def original(phantoms, tmp_path_factory):
    """A saved pipeline with string labels, its bytes and its predictions."""
    X, y = phantoms
    labels = np.array(["benign", "malignant"], dtype=object)[y]
    pipe = make_pipeline(
        IntensityNormalizer(per_image=False),
        MedicalCNNClassifier(
            augmentation=[RandomFlip()],
            class_weight={"benign": 1.0, "malignant": 2.0},
            random_state=np.random.RandomState(0),
            max_epochs=1,
            batch_size=16,
            device="cpu",
        ),
    ).fit(X, labels)
    folder = tmp_path_factory.mktemp("fuzz")
    save_model(pipe, folder / "original.skmed")
    data = (folder / "original.skmed").read_bytes()
    return {
        "data": data,
        "X": X[:8],
        "proba": pipe.predict_proba(X[:8]),
        "path": folder / "mutated.skmed",
    }


def attempt(original, data, outcomes):
    """Load ``data``; return the model or None, counting the outcome."""
    original["path"].write_bytes(data)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load_model(original["path"])
    except ModelFileError as error:
        # "checked": raised by a check of its own; otherwise the error it wraps
        cause = type(error.__cause__).__name__ if error.__cause__ else "checked"
        outcome = f"ModelFileError ({cause})"
        if "cannot be loaded:" in str(error):  # the loader's catch-all
            outcome = f"ModelFileError (catch-all, {cause})"
            open(f"/tmp/catchall-{sum(outcomes.values())}.skmed", "wb").write(data)
        model = None
    else:
        outcome = "loaded"
        if any(issubclass(w.category, ModelVersionWarning) for w in caught):
            outcome = "loaded, with a ModelVersionWarning"
    outcomes[outcome] += 1
    event(outcome)
    return model


def report(name, outcomes):
    total = sum(outcomes.values())
    print(f"\n{name}: {total} inputs: {dict(outcomes.most_common())}")
    return total


# --- byte-level mutations of the whole file -------------------------------------------


def regions(data):
    """Where to aim: the first local header, the JSON member, the central directory."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        document = archive.getinfo("model.json")
    end = len(data)
    directory = data.rfind(b"PK\x01\x02", 0, end)
    directory = data.rfind(b"PK\x01\x02", 0, directory)  # the first entries too
    return [
        (0, 64),
        (document.header_offset, document.header_offset + 64 + document.compress_size),
        (max(directory - 64, 0), end),
        (0, end),
    ]


@st.composite
def byte_mutations(draw, data):
    start, stop = draw(st.sampled_from(regions(data)))
    position = draw(st.integers(start, stop - 1))
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
    if kind == "flip":
        bits = draw(st.lists(st.integers(0, 7), min_size=1, max_size=8))
        mutated = bytearray(data)
        for offset, bit in enumerate(bits):
            mutated[min(position + offset, len(data) - 1)] ^= 1 << bit
        return kind, bytes(mutated)
    if kind == "truncate":
        return kind, data[:position]
    if kind == "insert":
        chunk = draw(st.binary(min_size=1, max_size=16))
        return kind, data[:position] + chunk + data[position:]
    if kind == "delete":
        length = draw(st.integers(1, 64))
        return kind, data[:position] + data[position + length :]
    chunk = draw(st.binary(min_size=1, max_size=16))
    return kind, data[:position] + chunk + data[position + len(chunk) :]


def test_byte_mutations(original):
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(st.data())
    def fuzz(data):
        kind, mutated = data.draw(byte_mutations(original["data"]), label="mutation")
        event(f"mutation: {kind}")
        model = attempt(original, mutated, outcomes)
        if model is not None:
            # the edit hit bytes that carry no content (zip timestamps, padding)
            np.testing.assert_array_equal(
                model.predict_proba(original["X"]), original["proba"]
            )

    fuzz()
    total = report("byte mutations", outcomes)
    assert total >= 100
    assert outcomes["loaded"] < total


# --- edits of the JSON document's values ---

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "__tuple__",
            "__class__",
            "__estimator__",
            "os.system",
            "builtins.eval",
            "sk_medcnn.MedicalCNNClassifier",
            "sklearn.pipeline.Pipeline",
            "a0",
            "network-0.safetensors",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "__tuple__",
                    "__dict__",
                    "__ndarray__",
                    "__scalar__",
                    "__class__",
                    "__estimator__",
                    "__history__",
                    "__random_state__",
                    "__torch_device__",
                    "__float__",
                    "class",
                    "params",
                    "attributes",
                    "network",
                    "key",
                    "dtype",
                    "shape",
                    "data",
                    "value",
                ]
            )
            | st.text(max_size=6),
            children,
            max_size=3,
        )
    ),
    max_leaves=6,
)


def node_paths(node, path=()):
    """Every path into the document, except the per-batch history entries."""
    yield path
    if isinstance(node, dict):
        for key, child in node.items():
            if key != "batches":
                yield from node_paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from node_paths(child, (*path, index))


def read_document(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return members, members.pop("model.json")


def rezip(members, document_bytes):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        archive.writestr("model.json", document_bytes)
    return buffer.getvalue()


def check_loaded(model, original):
    proba = model.predict_proba(original["X"])
    assert proba.shape == original["proba"].shape
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_document_mutations(original):
    outcomes: Counter[str] = Counter()
    members, text = read_document(original["data"])
    paths = sorted(node_paths(json.loads(text)), key=repr)

    @FUZZ
    @given(st.data())
    def fuzz(data):
        mutate_document(original, members, text, paths, data, outcomes)

    fuzz()
    total = report("JSON value mutations", outcomes)
    assert total >= 100
    assert outcomes["loaded"] > 0  # some edits are harmless (the history, lr)
    assert outcomes["loaded"] < total


def mutate_document(original, members, text, paths, data, outcomes):
    document = json.loads(text)
    path = data.draw(st.sampled_from(paths), label="path")
    operation = data.draw(st.sampled_from(["replace", "delete", "add"]))
    event(f"operation: {operation}")
    if not path:
        document = data.draw(json_values)
    else:
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if operation == "replace":
            parent[path[-1]] = data.draw(json_values, label="value")
        elif operation == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=8), label="key")] = data.draw(json_values)
        else:
            parent.insert(path[-1], data.draw(json_values, label="value"))
    mutated = rezip(members, json.dumps(document).encode())
    model = attempt(original, mutated, outcomes)
    if model is not None:
        check_loaded(model, original)


# --- edits of the JSON text ---


def test_document_text_mutations(original):
    outcomes: Counter[str] = Counter()
    members, text = read_document(original["data"])

    @FUZZ
    @given(st.data())
    def fuzz(data):
        mutate_text(original, members, text, data, outcomes)

    fuzz()
    total = report("JSON text mutations", outcomes)
    assert total >= 100


def mutate_text(original, members, text, data, outcomes):
    edits = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, len(text) - 1),
                st.integers(0, 3),
                st.binary(max_size=4)
                | st.sampled_from([b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\"]),
            ),
            min_size=1,
            max_size=4,
        ),
        label="edits",
    )
    for position, length, chunk in edits:
        text = text[:position] + chunk + text[position + length :]
    model = attempt(original, rezip(members, text), outcomes)
    if model is not None:
        check_loaded(model, original)


# --- not a model file at all ---


def test_random_bytes(original):
    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=max(EXAMPLES * 2 // 3, 1))
    @given(
        st.binary(max_size=512)
        | st.binary(max_size=512).map(lambda tail: b"PK\x03\x04" + tail)
    )
    def fuzz(data):
        assert attempt(original, data, outcomes) is None

    fuzz()
    assert report("random bytes", outcomes) >= 50
