"""Every stored parameter and fitted attribute, with hostile values (issue 23).

For each estimator node of three saved models (a calibrated classifier with
string labels, a two-target regressor, and a pipeline of sk_medcnn transformers
and a scikit-learn scaler ending in a classifier), every parameter and fitted
attribute the file stores is replaced, one at a time, by out-of-range,
wrong-type, NaN/inf and huge values. The property: ``load_model`` raises one
``ModelFileError``, or returns a model that predicts finite outputs for real
images. Anything else (another exception, a crash, NaN outputs) fails.

CI runs a seeded sample of the values for each key (a few hundred loads in
all). The whole grid, with the counts, the slowest load and the peak memory::

    SK_MEDCNN_FUZZ_VALUES=all python -m pytest -s -n 0 \
        tests/persistence/test_persistence_values.py
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import resource
import time
import warnings
import zipfile
from collections import Counter

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor
from sk_medcnn.augmentation import RandomFlip
from sk_medcnn.exceptions import ModelFileError
from sk_medcnn.persistence import load_model, save_model
from sk_medcnn.preprocessing import IntensityNormalizer, Resize

ALL = os.environ.get("SK_MEDCNN_FUZZ_VALUES") == "all"
PER_KEY = 3  # values drawn per key in CI

HOSTILE = {
    "minus one": -1,
    "zero": 0,
    "int32 max": 2**31 - 1,
    "int64 max": 2**63 - 1,
    "huge int": 10**30,
    "negative float": -1.5,
    "huge float": 1e308,
    "negative huge float": -1e308,
    "subnormal": 5e-324,
    "nan": {"__float__": "nan"},
    "inf": {"__float__": "inf"},
    "-inf": {"__float__": "-inf"},
    "true": True,
    "null": None,
    "string": "x",
    "empty string": "",
    "long string": "x" * 100_000,
    "empty list": [],
    "list": [1, 2],
    "long list": [0] * 100_000,
    "nested list": [[[[[[[[1]]]]]]]],
    "empty object": {},
    "object": {"a": 1},
    "huge tuple": {"__tuple__": [10**9, 10**9, 3]},
    "negative tuple": {"__tuple__": [-16, 16, 1]},
    "nan scalar": {"__scalar__": {"dtype": "float64", "value": {"__float__": "nan"}}},
    "huge scalar": {"__scalar__": {"dtype": "int64", "value": 2**62}},
    "array of nan": "array:nan",
    "huge array shape": "array:shape",
}

STATS = {"outcomes": Counter(), "slowest": (0.0, ""), "loads": 0}


def _models(X, y):
    labels = np.array(["benign", "lesion"], dtype=object)[y]
    fast = {"max_epochs": 1, "batch_size": 16, "random_state": 0, "device": "cpu"}
    classifier = MedicalCNNClassifier(tta="hflip", **fast).fit(X, labels)
    targets = np.stack([X.mean(axis=(1, 2)), X.std(axis=(1, 2))], axis=1)
    regressor = MedicalCNNRegressor(**fast).fit(X, targets)
    flat = X.reshape(len(X), -1).astype(np.float32)
    pipeline = make_pipeline(
        StandardScaler(),
        MedicalCNNClassifier(image_shape=(16, 16), calibration=None, **fast),
    ).fit(flat, y)
    images = make_pipeline(
        Resize((12, 12)),
        IntensityNormalizer(),
        MedicalCNNClassifier(augmentation=RandomFlip(), **fast),
    ).fit(X, y)
    return {
        "classifier": (classifier, X),
        "regressor": (regressor, X),
        "scaler pipeline": (pipeline, flat),
        "image pipeline": (images, X),
    }


@pytest.fixture(scope="module")
def saved(phantoms, tmp_path_factory):
    X, y = phantoms
    folder = tmp_path_factory.mktemp("values")
    result = {}
    for name, (model, inputs) in _models(X, y).items():
        path = folder / f"{name.replace(' ', '_')}.skmed"
        save_model(model, path)
        result[name] = (path.read_bytes(), inputs[:4])
    yield result
    outcomes = STATS["outcomes"]
    seconds, case = STATS["slowest"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nvalue fuzzing: {STATS['loads']} loads; outcomes {dict(outcomes)}; "
        f"slowest load {seconds:.2f} s ({case}); peak RSS of this process "
        f"{peak:.0f} MB"
    )


def _estimator_nodes(node, path=()):
    """Yield (path, node) for every estimator node in the document's tree."""
    if isinstance(node, dict):
        if set(node) == {"__estimator__"}:
            yield path, node["__estimator__"]
        for key, value in node.items():
            yield from _estimator_nodes(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _estimator_nodes(value, (*path, index))


def _document(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return members, json.loads(members.pop("model.json"))


def _keys():
    """(model, kind) pairs; the keys themselves come from the saved documents."""
    for model in ("classifier", "regressor", "scaler pipeline", "image pipeline"):
        for kind in ("params", "attributes"):
            yield model, kind


def _hostile(name, value, original):
    if value == "array:nan":  # arrays' data are checked like the weights
        return {"__float__": "nan"}
    if value == "array:shape":
        if isinstance(original, dict) and "__ndarray__" in original:
            record = dict(original["__ndarray__"])
            record["shape"] = [2**31, 2**31]
            return {"__ndarray__": record}
        return {"__tuple__": [2**31, 2**31]}
    return value


def _rezip(members, document):
    members = dict(members)
    document["members"] = {
        name: {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        for name, content in members.items()
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        archive.writestr("model.json", json.dumps(document))
    return buffer.getvalue()


def _attempt(path, data, inputs, case):
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = load_model(path)
    except ModelFileError:
        outcome = "ModelFileError"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            method = getattr(model, "predict_proba", model.predict)
            output = np.asarray(method(inputs), dtype=np.float64)
        assert np.all(np.isfinite(output)), f"{case}: loads and predicts {output}"
        outcome = "loaded and predicts"
    seconds = time.perf_counter() - start
    STATS["loads"] += 1
    STATS["outcomes"][outcome] += 1
    if seconds > STATS["slowest"][0]:
        STATS["slowest"] = (seconds, case)
    return outcome


@pytest.mark.parametrize(("model", "kind"), list(_keys()))
def test_hostile_values_give_one_error_or_a_working_model(saved, tmp_path, model, kind):
    data, inputs = saved[model]
    members, document = _document(data)
    nodes = list(_estimator_nodes(document["model"]))
    rng = random.Random(f"{model}/{kind}")  # seeded: CI is reproducible
    outcomes = Counter()
    keys = 0
    for index, (_, node) in enumerate(nodes):
        for key in sorted(node[kind]):
            keys += 1
            names = list(HOSTILE)
            chosen = names if ALL else rng.sample(names, PER_KEY)
            for name in chosen:
                _, copy = _document(data)
                target = list(_estimator_nodes(copy["model"]))[index][1][kind]
                target[key] = _hostile(name, HOSTILE[name], target[key])
                case = f"{model} node {index} {kind}.{key} = {name}"
                try:
                    outcome = _attempt(
                        tmp_path / "hostile.skmed",
                        _rezip(members, copy),
                        inputs,
                        case,
                    )
                except AssertionError:
                    raise
                except BaseException as error:  # anything but the one error
                    pytest.fail(f"{case}: {type(error).__name__}: {error}")
                outcomes[outcome] += 1
    assert keys > 0
    assert outcomes["ModelFileError"] > 0
    print(f"\n{model} {kind}: {keys} keys, {dict(outcomes)}")


def test_the_fuzzed_keys_cover_what_the_format_stores(saved):
    # a new parameter or fitted attribute is fuzzed as soon as it is saved
    _, document = _document(saved["classifier"][0])
    node = next(_estimator_nodes(document["model"]))[1]
    assert set(MedicalCNNClassifier().get_params()) == set(node["params"])
    assert {"classes_", "image_shape_", "input_mean_", "temperature_"} <= set(
        node["attributes"]
    )
