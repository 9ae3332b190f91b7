"""The safe model format: round trips, refusals when saving, atomic writes, versions."""

from __future__ import annotations

import io
import json
import pickle
import sys
import textwrap
import warnings
import zipfile
from importlib.metadata import EntryPoint

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    Binarizer,
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    RobustScaler,
    StandardScaler,
)

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor, registry
from sk_medcnn.augmentation import (
    MixUp,
    RandomAffine,
    RandomErasing,
    RandomFlip,
    RandomIntensity,
    RandomNoise,
    RandomRotation,
)
from sk_medcnn.exceptions import ArchitectureNotFoundError, ModelFileError
from sk_medcnn.io import ImageLoader
from sk_medcnn.persistence import (
    FORMAT_VERSION,
    ModelVersionWarning,
    load_model,
    save_model,
)
from sk_medcnn.preprocessing import (
    CLAHE,
    CenterCrop,
    IntensityNormalizer,
    IntensityWindow,
    Pad,
    Resize,
    ToGrayscale,
    ToRGB,
)

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0, "device": "cpu"}


# --- helpers ----------------------------------------------------------------------


def assert_same_value(first, second, where="model"):
    """Compare parameters and fitted attributes recursively, types included."""
    if isinstance(first, BaseEstimator):
        assert type(second) is type(first), where
        assert_same_state(first, second, where)
    elif isinstance(first, np.ndarray):
        assert type(second) is np.ndarray, where
        assert second.dtype == first.dtype, where
        np.testing.assert_array_equal(second, first, err_msg=where)
    elif isinstance(first, np.random.RandomState):
        assert type(second) is np.random.RandomState, where
        for a, b in zip(first.get_state(), second.get_state(), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(first, dict):
        assert type(second) is dict, where
        assert list(second) == list(first), where
        for key in first:
            assert_same_value(first[key], second[key], f"{where}[{key!r}]")
    elif isinstance(first, list | tuple):
        assert type(second) is type(first), where
        assert len(second) == len(first), where
        for i, (a, b) in enumerate(zip(first, second, strict=True)):
            assert_same_value(a, b, f"{where}[{i}]")
    elif isinstance(first, float) and np.isnan(first):
        assert type(second) is type(first), where
        assert np.isnan(second), where
    else:
        assert type(second) is type(first), where
        assert second == first, where


def assert_same_state(original, loaded, where="model"):
    """Same parameters and fitted attributes; the network is compared by output."""
    assert_same_value(
        original.get_params(deep=False), loaded.get_params(deep=False), where
    )
    skipped = {"net_", "history_", "device_"}
    names = {name for name in vars(original) if name not in skipped}
    assert names == {name for name in vars(loaded) if name not in skipped}, where
    for name in names:
        assert_same_value(getattr(original, name), getattr(loaded, name), where + name)
    if hasattr(original, "history_"):
        assert loaded.history_.to_list() == original.history_.to_list()


def round_trip(model, tmp_path, **kwargs):
    path = tmp_path / "model.skmed"
    save_model(model, path, **kwargs)
    return load_model(path, **kwargs)


# --- round trips ------------------------------------------------------------------


def test_classifier_round_trip_is_exact(phantoms, tmp_path):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    loaded = round_trip(clf, tmp_path)
    assert type(loaded) is MedicalCNNClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert_same_state(clf, loaded)
    assert loaded.device_ == "cpu"
    assert str(loaded.net_.device) == "cpu"
    # the loaded model is a normal estimator: it clones and refits
    refit = clone(loaded).fit(X, y)
    np.testing.assert_array_equal(refit.predict_proba(X), clf.predict_proba(X))


def test_a_pickle_suffix_warns_but_the_file_is_the_safe_format(phantoms, tmp_path):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    path = tmp_path / "model.joblib"
    with pytest.warns(UserWarning, match=r"ends in \.joblib.*name it \.skmed"):
        save_model(clf, path)
    loaded = load_model(path)  # still the safe format, whatever the name
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("dtype", [object, str])
def test_string_labels_round_trip(phantoms, tmp_path, dtype):
    X, y = phantoms
    labels = np.array(["no lesion", "lésion ✓"], dtype=dtype)[y]
    clf = MedicalCNNClassifier(**FAST).fit(X, labels)
    loaded = round_trip(clf, tmp_path)
    assert loaded.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("two_d", [False, True])
def test_regressor_round_trip_is_exact(phantoms, tmp_path, two_d):
    X, _ = phantoms
    target = X.mean(axis=(1, 2)).astype(np.float64)
    y = np.column_stack([target, -target]) if two_d else target
    reg = MedicalCNNRegressor(**FAST).fit(X, y)
    loaded = round_trip(reg, tmp_path)
    prediction = loaded.predict(X)
    assert prediction.shape == y.shape
    np.testing.assert_array_equal(prediction, reg.predict(X))
    assert_same_state(reg, loaded)


def test_unusual_parameters_round_trip(phantoms, tmp_path):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        architecture_params={"width": 8},
        optimizer=torch.optim.SGD,
        lr=np.float64(0.01),
        lr_schedule="cosine",
        early_stopping=True,
        validation_fraction=0.25,
        class_weight={0: 2.0, 1: 1.0},
        image_shape=(16, 16),
        device=torch.device("cpu"),
        random_state=np.random.RandomState(7),
        max_epochs=2,
        batch_size=16,
    ).fit(X.reshape(len(X), -1), y)
    loaded = round_trip(clf, tmp_path)
    assert_same_state(clf, loaded)
    assert loaded.optimizer is torch.optim.SGD
    assert type(loaded.lr) is np.float64
    assert loaded._validation_index is not None
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_calibration_tta_round_trip_and_checkpoint_dir_is_not_kept(phantoms, tmp_path):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        calibration="temperature",
        early_stopping=True,
        tta="hflip+vflip",
        checkpoint_dir=tmp_path / "checkpoints",
        **{**FAST, "max_epochs": 2},
    ).fit(X, y)
    assert clf.temperature_ != 1.0
    loaded = round_trip(clf, tmp_path)
    # a file must not choose where a later refit writes or what it resumes from
    assert loaded.checkpoint_dir is None
    assert loaded.resume is False
    assert_same_state(clf.set_params(checkpoint_dir=None), loaded)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # the file itself keeps what was fitted with, for the record
    with zipfile.ZipFile(tmp_path / "model.skmed") as archive:
        document = json.loads(archive.read("model.json"))
    params = document["model"]["__estimator__"]["params"]
    assert params["checkpoint_dir"] == {"__path__": str(tmp_path / "checkpoints")}


def test_pipeline_of_image_transformers_and_augmenters(phantoms, tmp_path):
    X, y = phantoms
    augmenters = [
        RandomFlip(("horizontal", "vertical")),
        RandomRotation(10),
        RandomAffine((0.1, 0.1), scale=(0.9, 1.1)),
        RandomIntensity(0.1, gamma=0.1),
        RandomNoise("gaussian", std=0.01),
        RandomErasing(p=0.5),
    ]
    pipe = make_pipeline(
        Pad(18),
        CenterCrop(16),
        Resize((20, 20)),
        IntensityWindow(level=100, width=200),
        CLAHE(),
        ToRGB(),
        ToGrayscale(),
        IntensityNormalizer(per_image=False),
        RandomFlip(random_state=0),  # an augmenter as a step: transform is identity
        MedicalCNNClassifier(
            augmentation=[make_pipeline(*augmenters), MixUp(0.2)], **FAST
        ),
    ).fit(X, y)
    loaded = round_trip(pipe, tmp_path)
    assert type(loaded) is Pipeline
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    for (name, step), (_, loaded_step) in zip(pipe.steps, loaded.steps, strict=True):
        assert_same_state(step, loaded_step, name)


def test_pipeline_from_image_files(phantoms, tmp_path):
    iio = pytest.importorskip("imageio.v3")
    X, y = phantoms
    paths = []
    for i, image in enumerate(X[:24]):
        paths.append(tmp_path / f"{i}.png")
        iio.imwrite(paths[-1], image)
    pipe = make_pipeline(
        ImageLoader(shape=(16, 16), channels=1),
        IntensityNormalizer(),
        MedicalCNNClassifier(**FAST),
    ).fit(paths, y[:24])
    loaded = round_trip(pipe, tmp_path)
    assert isinstance(loaded[0], ImageLoader)
    np.testing.assert_array_equal(
        loaded.predict_proba(paths), pipe.predict_proba(paths)
    )


def test_pipeline_with_sklearn_scalers(phantoms, tmp_path):
    X, y = phantoms
    flat = X.reshape(len(X), -1).astype(np.float64)
    pipe = make_pipeline(
        RobustScaler(quantile_range=(10.0, 90.0)),
        MaxAbsScaler(),
        Normalizer(),
        StandardScaler(),
        MinMaxScaler(feature_range=(0, 255)),
        "passthrough",
        MedicalCNNClassifier(image_shape=(16, 16), **FAST),
    ).fit(flat, y)
    loaded = round_trip(pipe, tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(flat), pipe.predict_proba(flat))
    for (name, step), (_, loaded_step) in zip(pipe.steps, loaded.steps, strict=True):
        if step != "passthrough":
            assert_same_state(step, loaded_step, name)
    binarized = Pipeline(
        [("binarizer", Binarizer(threshold=100)), ("cnn", clone(pipe[-1]))]
    ).fit(flat, y)
    reloaded = round_trip(binarized, tmp_path)
    np.testing.assert_array_equal(
        reloaded.predict_proba(flat), binarized.predict_proba(flat)
    )


def test_nested_pipeline_and_feature_names(phantoms, tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = phantoms
    frame = pd.DataFrame(X.reshape(len(X), -1), columns=[f"p{i}" for i in range(256)])
    pipe = make_pipeline(
        StandardScaler(),
        make_pipeline(
            MinMaxScaler(), MedicalCNNClassifier(image_shape=(16, 16), **FAST)
        ),
    ).fit(frame, y)
    loaded = round_trip(pipe, tmp_path)
    assert_same_state(pipe[0], loaded[0])
    assert loaded[0].feature_names_in_.dtype == object
    np.testing.assert_array_equal(
        loaded.predict_proba(frame), pipe.predict_proba(frame)
    )


def test_same_model_same_bytes(phantoms, tmp_path):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    save_model(clf, tmp_path / "first.skmed")
    save_model(clf, tmp_path / "second.skmed")
    first = (tmp_path / "first.skmed").read_bytes()
    assert first == (tmp_path / "second.skmed").read_bytes()
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert sorted(archive.namelist()) == [
            "arrays.safetensors",
            "model.json",
            "network-0.safetensors",
        ]
        document = json.loads(archive.read("model.json"))
    assert document["format_version"] == FORMAT_VERSION
    assert set(document["versions"]) >= {"sk_medcnn", "torch", "sklearn", "numpy"}
    assert document["model"]["__estimator__"]["class"] == (
        "sk_medcnn.MedicalCNNClassifier"
    )


def test_pickle_and_joblib_keep_working(phantoms, tmp_path):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(clf)).predict_proba(X), expected
    )
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


def test_the_allow_list_is_what_we_reviewed():
    # a class added to sk_medcnn's public transformers joins the allow-list; this
    # test makes that a decision: its parameters and fitted state must be data
    from sk_medcnn.persistence import _ALLOWED_CLASS_REFERENCES, _ALLOWED_ESTIMATORS

    ours = {
        "MedicalCNNClassifier",
        "MedicalCNNRegressor",
        "augmentation.MixUp",
        "augmentation.RandomAffine",
        "augmentation.RandomErasing",
        "augmentation.RandomFlip",
        "augmentation.RandomIntensity",
        "augmentation.RandomNoise",
        "augmentation.RandomRotation",
        "io.ImageLoader",
        "preprocessing.CLAHE",
        "preprocessing.CenterCrop",
        "preprocessing.IntensityNormalizer",
        "preprocessing.IntensityWindow",
        "preprocessing.Pad",
        "preprocessing.Resample",  # numbers, tuples, None and a str; fitted: shapes
        "preprocessing.Resize",
        "preprocessing.ToGrayscale",
        "preprocessing.ToRGB",
    }
    sklearn_classes = {
        "pipeline.Pipeline",
        "preprocessing.Binarizer",
        "preprocessing.MaxAbsScaler",
        "preprocessing.MinMaxScaler",
        "preprocessing.Normalizer",
        "preprocessing.RobustScaler",
        "preprocessing.StandardScaler",
    }
    assert set(_ALLOWED_ESTIMATORS) == {f"sk_medcnn.{name}" for name in ours} | {
        f"sklearn.{name}" for name in sklearn_classes
    }
    for name, cls in _ALLOWED_ESTIMATORS.items():
        assert name.rsplit(".", 1)[1] == cls.__name__
    assert {"torch.optim.SGD", "torch.optim.Adam", "torch.optim.AdamW"} <= set(
        _ALLOWED_CLASS_REFERENCES
    )
    for cls in _ALLOWED_CLASS_REFERENCES.values():
        assert issubclass(cls, torch.optim.Optimizer)


# --- what the format refuses, at save time -------------------------------------------


@pytest.fixture(scope="module")
def fitted(phantoms):
    X, y = phantoms
    return MedicalCNNClassifier(**FAST).fit(X, y)


def tiny_factory(in_channels, n_outputs, image_shape):
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(in_channels * image_shape[0] * image_shape[1], n_outputs),
    )


class MyLoss(torch.nn.CrossEntropyLoss):
    pass


class MyAdam(torch.optim.Adam):
    pass


def test_refuses_a_callable_architecture(phantoms, tmp_path):
    X, y = phantoms
    clf = MedicalCNNClassifier(tiny_factory, **FAST).fit(X, y)
    with pytest.raises(TypeError, match=r"'architecture'.*register_architecture"):
        save_model(clf, tmp_path / "model.skmed")
    pipe = make_pipeline(Resize(16), clf)
    with pytest.raises(TypeError, match="'medicalcnnclassifier__architecture'"):
        save_model(pipe.fit(X, y), tmp_path / "model.skmed")
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_module_loss_and_a_custom_optimizer(phantoms, tmp_path):
    X, y = phantoms
    pipe = make_pipeline(MedicalCNNClassifier(loss=MyLoss(), **FAST)).fit(X, y)
    with pytest.raises(TypeError, match=r"'medicalcnnclassifier__loss'.*torch module"):
        save_model(pipe, tmp_path / "model.skmed")
    clf = MedicalCNNClassifier(optimizer=MyAdam, **FAST).fit(X, y)
    with pytest.raises(TypeError, match=r"'optimizer'.*MyAdam.*allow-list"):
        save_model(clf, tmp_path / "model.skmed")
    assert list(tmp_path.iterdir()) == []


def test_refuses_classes_off_the_allow_list(fitted, phantoms, tmp_path):
    X, y = phantoms
    flat = X.reshape(len(X), -1)
    pipe = Pipeline(
        [("log", FunctionTransformer(np.log1p)), ("cnn", clone(fitted))]
    ).fit(flat, y)
    with pytest.raises(TypeError, match=r"'log'.*FunctionTransformer.*func"):
        save_model(pipe, tmp_path / "model.skmed")

    class MyScaler(StandardScaler):
        pass

    pipe = Pipeline([("scale", MyScaler()), ("cnn", clone(fitted))]).fit(flat, y)
    with pytest.raises(TypeError, match=r"'scale'.*MyScaler.*allow-list"):
        save_model(pipe, tmp_path / "model.skmed")
    assert list(tmp_path.iterdir()) == []


def test_refuses_what_is_not_a_fitted_cnn_model(fitted, phantoms, tmp_path):
    X, y = phantoms
    with pytest.raises(NotFittedError):
        save_model(MedicalCNNClassifier(), tmp_path / "model.skmed")
    with pytest.raises(TypeError, match="MedicalCNNClassifier or MedicalCNNRegressor"):
        save_model(StandardScaler().fit(X.reshape(len(X), -1)), tmp_path / "a.skmed")
    search = GridSearchCV(clone(fitted), {"lr": [1e-3]}, cv=2).fit(X, y)
    with pytest.raises(TypeError, match="best_estimator_"):
        save_model(search, tmp_path / "model.skmed")
    assert list(tmp_path.iterdir()) == []


# --- trusted classes -------------------------------------------------------------


class ShiftImages(TransformerMixin, BaseEstimator):
    """A user's transformer whose parameters and fitted state are plain data."""

    def __init__(self, shift=1.0):
        self.shift = shift

    def fit(self, X, y=None):
        self.mean_ = np.asarray(X, dtype=np.float64).mean(axis=0)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float64) - self.mean_ + self.shift


def test_trusted_classes_round_trip(fitted, phantoms, tmp_path):
    X, y = phantoms
    flat = X.reshape(len(X), -1)
    pipe = Pipeline([("shift", ShiftImages(2.0)), ("cnn", clone(fitted))]).fit(flat, y)
    path = tmp_path / "model.skmed"
    with pytest.raises(TypeError, match=r"ShiftImages.*trusted="):
        save_model(pipe, path)
    save_model(pipe, path, trusted=[ShiftImages])
    with pytest.raises(ModelFileError, match=r"ShiftImages.*nothing was imported"):
        load_model(path)
    loaded = load_model(path, trusted=[ShiftImages])
    np.testing.assert_array_equal(loaded.predict_proba(flat), pipe.predict_proba(flat))
    assert_same_state(pipe[0], loaded[0])


def test_trusted_must_list_classes(fitted, tmp_path):
    path = tmp_path / "model.skmed"
    save_model(fitted, path)
    with pytest.raises(TypeError, match="CVE-2024-37065"):
        load_model(path, trusted=True)
    with pytest.raises(TypeError, match="not their names"):
        load_model(path, trusted=["tests.ShiftImages"])
    with pytest.raises(TypeError, match="list of classes"):
        save_model(fitted, path, trusted="ShiftImages")


# --- atomic writes -----------------------------------------------------------------


def test_a_failed_write_leaves_the_previous_file(
    fitted, phantoms, tmp_path, monkeypatch
):
    import safetensors.numpy

    X, y = phantoms
    path = tmp_path / "model.skmed"
    save_model(fitted, path)
    before = path.read_bytes()
    other = MedicalCNNClassifier(**{**FAST, "random_state": 1}).fit(X, y)

    calls = []

    def failing_save(*args, **kwargs):
        # the network member is already in the temporary zip at this point
        calls.append(sorted(p.name for p in tmp_path.iterdir()))
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(other, path)
    assert len(calls[0]) == 2  # the target and the half-written temporary file
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.skmed"]
    monkeypatch.undo()
    np.testing.assert_array_equal(
        load_model(path).predict_proba(X), fitted.predict_proba(X)
    )
    # a refusal leaves it too
    with pytest.raises(TypeError):
        save_model(MedicalCNNClassifier(tiny_factory, **FAST).fit(X, y), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.skmed"]


# --- plugins and versions ------------------------------------------------------------

PLUGIN_SOURCE = """
import torch

def build_persistnet(in_channels, n_outputs, image_shape, *, hidden=4):
    return torch.nn.Sequential(
        torch.nn.Conv2d(in_channels, hidden, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(hidden, n_outputs),
    )
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A real installed distribution providing the architecture 'persistnet'."""
    root = tmp_path / "site"
    info = root / "skmed_persistnet-0.1.dist-info"
    info.mkdir(parents=True)
    (root / "skmed_persistnet_plugin.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: skmed_persistnet\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[sk_medcnn.architectures]\n"
        "persistnet = skmed_persistnet_plugin:build_persistnet\n"
    )
    (info / "RECORD").write_text("")
    monkeypatch.syspath_prepend(str(root))
    yield "persistnet"
    registry._LOADED_PLUGINS.pop("persistnet", None)
    sys.modules.pop("skmed_persistnet_plugin", None)


def test_plugin_architecture_loads_when_installed(
    plugin, phantoms, tmp_path, monkeypatch
):
    X, y = phantoms
    clf = MedicalCNNClassifier(plugin, architecture_params={"hidden": 3}, **FAST)
    clf.fit(X, y)
    path = tmp_path / "model.skmed"
    save_model(clf, path)
    registry._LOADED_PLUGINS.pop(plugin)
    sys.modules.pop("skmed_persistnet_plugin")
    loaded = load_model(path)  # imports the plugin through its entry point
    assert "skmed_persistnet_plugin" in sys.modules
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))

    # uninstalled: the error names the architecture and the entry-point group
    registry._LOADED_PLUGINS.pop(plugin)
    monkeypatch.setattr(registry._architectures, "_plugin_entry_points", dict)
    with pytest.raises(ModelFileError, match=r"'persistnet'.*sk_medcnn\.architectures"):
        load_model(path)
    with pytest.raises(ArchitectureNotFoundError, match="persistnet"):
        load_model(path)


def test_a_broken_plugin_is_a_model_file_error(fitted, tmp_path, monkeypatch):
    path = tmp_path / "model.skmed"
    save_model(fitted, path)

    def rename(document):
        document["model"]["__estimator__"]["params"]["architecture"] = "brokennet"

    rewrite_document(path, rename)
    broken = EntryPoint(
        "brokennet", "skmed_no_such_module:build", "sk_medcnn.architectures"
    )
    monkeypatch.setattr(
        registry._architectures, "_plugin_entry_points", lambda: {"brokennet": broken}
    )
    with pytest.raises(ModelFileError, match="'brokennet', whose plugin failed"):
        load_model(path)


def test_in_process_architecture_needs_registering(phantoms, tmp_path, monkeypatch):
    X, y = phantoms
    monkeypatch.setitem(registry._ARCHITECTURES, "persistence_tiny", tiny_factory)
    clf = MedicalCNNClassifier("persistence_tiny", **FAST).fit(X, y)
    save_model(clf, tmp_path / "model.skmed")
    loaded = load_model(tmp_path / "model.skmed")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    monkeypatch.delitem(registry._ARCHITECTURES, "persistence_tiny")
    with pytest.raises(ModelFileError, match="register_architecture"):
        load_model(tmp_path / "model.skmed")


def rewrite_document(path, edit):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members["model.json"])
    edit(document)
    members["model.json"] = json.dumps(document).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def rewrite_versions(path, **versions):
    rewrite_document(path, lambda document: document["versions"].update(versions))


@pytest.mark.parametrize(
    ("versions", "warned"),
    [
        ({"sk_medcnn": "0.0.1"}, "sk_medcnn 0.0.1"),
        ({"sk_medcnn": "99.1"}, "sk_medcnn 99.1"),
        ({"torch": "1.13.1"}, "torch 1.13.1"),
        ({"torch": "2.0.0"}, None),  # same major version
        ({"sklearn": "0.24.2"}, None),  # no sklearn step in this model
        ({"numpy": "1.26.0", "python": "3.10.0"}, None),  # recorded only
    ],
)
def test_version_mismatches_that_matter_warn(fitted, tmp_path, versions, warned):
    path = tmp_path / "model.skmed"
    save_model(fitted, path)
    rewrite_versions(path, **versions)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model(path)
    messages = [str(w.message) for w in caught if w.category is ModelVersionWarning]
    if warned is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert warned in messages[0]
        assert issubclass(ModelVersionWarning, UserWarning)
        assert caught[0].filename == __file__  # points at the caller


def test_errors_in_files_of_other_releases_say_so(fitted, tmp_path):
    path = tmp_path / "model.skmed"
    save_model(fitted, path)

    def future(document):
        document["versions"]["sk_medcnn"] = "0.9.0"
        document["model"]["__estimator__"]["params"]["new_option"] = True

    rewrite_document(path, future)
    with pytest.raises(ModelFileError, match=r"new_option.*written by sk_medcnn 0\.9"):
        load_model(path)


def test_sklearn_version_warns_for_sklearn_steps(fitted, phantoms, tmp_path):
    X, y = phantoms
    flat = X.reshape(len(X), -1)
    pipe = make_pipeline(StandardScaler(), clone(fitted)).fit(flat, y)
    path = tmp_path / "model.skmed"
    save_model(pipe, path)
    rewrite_versions(path, sklearn="1.5.0")
    with pytest.warns(ModelVersionWarning, match="sklearn 1.5.0"):
        load_model(path)


def test_load_model_arguments(fitted, tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.skmed")
    with pytest.raises(IsADirectoryError):
        load_model(tmp_path)
    save_model(fitted, tmp_path / "model.skmed")
    with pytest.raises(ValueError, match="device"):
        load_model(tmp_path / "model.skmed", device="not-a-device")
