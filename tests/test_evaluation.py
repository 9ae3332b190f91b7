"""benchmark_medmnist: fits never see the test split, which is scored once per seed."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline

from sk_medcnn import MedicalCNNClassifier, evaluation
from sk_medcnn.cli import main
from sk_medcnn.datasets import make_lesion_phantoms
from sk_medcnn.evaluation import BenchmarkResult, _flag, benchmark_medmnist
from sk_medcnn.metrics import expected_calibration_error, sensitivity_score
from sk_medcnn.preprocessing import IntensityNormalizer

EVENTS: list[tuple] = []


class SpyClassifier(ClassifierMixin, BaseEstimator):
    """Records every image it is fitted on and every call; predicts from brightness."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y):
        X = np.asarray(X)
        self.seen_ = {image.tobytes() for image in X}
        self.classes_ = np.unique(y)
        EVENTS.append(("fit", self.random_state, len(X)))
        return self

    def predict_proba(self, X):
        X = np.asarray(X)
        EVENTS.append(("predict_proba", self.random_state, len(X)))
        rng = np.random.RandomState(self.random_state)
        brightness = X.reshape(len(X), -1).mean(axis=1)
        logits = np.outer(brightness / 50.0, np.arange(len(self.classes_)))
        logits = logits + rng.normal(0, 1, logits.shape)
        proba = np.exp(logits - logits.max(axis=1, keepdims=True))
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        EVENTS.append(("predict", self.random_state, len(X)))
        rng = np.random.RandomState(self.random_state)
        brightness = np.asarray(X).reshape(len(X), -1).mean(axis=1)
        brightness = brightness + rng.normal(0, 1, brightness.shape)
        edges = np.quantile(brightness, np.linspace(0, 1, len(self.classes_) + 1))
        index = np.clip(np.searchsorted(edges[1:-1], brightness), 0, None)
        return self.classes_[index]


def write_medmnist(path, *, n_classes=2, test=True, seed=0):
    """Phantoms in MedMNIST's layout: (n, 16, 16) uint8, labels (n, 1) uint8."""
    splits = {"train": 60, "val": 20, "test": 30}
    arrays = {}
    for offset, (split, n) in enumerate(splits.items()):
        if split == "test" and not test:
            continue
        X, y = make_lesion_phantoms(n, image_size=16, random_state=seed + offset)
        if n_classes > 2:
            y = np.arange(n) % n_classes
        arrays[f"{split}_images"] = X
        arrays[f"{split}_labels"] = y.astype(np.uint8)[:, None]
    np.savez(path, **arrays)
    return arrays


@pytest.fixture
def npz(tmp_path):
    path = tmp_path / "phantommnist.npz"
    return path, write_medmnist(path)


@pytest.fixture
def events(monkeypatch):
    EVENTS.clear()
    real = evaluation.load_medmnist

    def spy_load(path, split="train", **kwargs):
        EVENTS.append(("load", split))
        return real(path, split, **kwargs)

    monkeypatch.setattr(evaluation, "load_medmnist", spy_load)
    return EVENTS


def test_fit_never_sees_the_test_split_which_is_read_after_every_fit(npz, events):
    path, _ = npz
    result = benchmark_medmnist(SpyClassifier(), path, seeds=(3, 4, 5), n_bootstraps=20)
    fits = [i for i, event in enumerate(events) if event[0] == "fit"]
    test_loads = [i for i, event in enumerate(events) if event == ("load", "test")]
    assert [events[i][1] for i in fits] == [3, 4, 5]  # one fit per seed, seeded
    assert all(events[i][2] == 80 for i in fits)  # train + val
    assert len(test_loads) == 1
    assert test_loads[0] > max(fits)  # read only once every fit is done
    # each model predicts the test split once (probabilities and labels)
    after = events[test_loads[0] + 1 :]
    assert sorted(after) == sorted(
        [
            (kind, seed, 30)
            for seed in (3, 4, 5)
            for kind in ("predict_proba", "predict")
        ]
    )
    assert [row["seed"] for row in result.per_seed] == [3, 4, 5]
    assert result.info["n_train"] == 80
    assert result.info["n_test"] == 30


def test_the_fitted_models_saw_only_training_images(npz, monkeypatch):
    path, arrays = npz
    fitted = []
    real_clone = evaluation.clone

    def keep(estimator):
        model = real_clone(estimator)
        fitted.append(model)
        return model

    monkeypatch.setattr(evaluation, "clone", keep)
    benchmark_medmnist(SpyClassifier(), path, seeds=(0, 1), n_bootstraps=10)
    test_images = {image.tobytes() for image in arrays["test_images"]}
    training = {
        image.tobytes()
        for split in ("train", "val")
        for image in arrays[f"{split}_images"]
    }
    assert len(fitted) == 2
    for model in fitted:
        assert not model.seen_ & test_images
        assert model.seen_ == training


def test_train_on_train_only_leaves_val_out(npz, events):
    path, _ = npz
    benchmark_medmnist(
        SpyClassifier(), path, seeds=(0,), train_on=("train",), n_bootstraps=10
    )
    assert ("load", "val") not in events
    assert events[[e[0] for e in events].index("fit")][2] == 60


def test_no_test_split_says_so_before_any_fit(tmp_path, events):
    path = tmp_path / "trainval.npz"
    write_medmnist(path, test=False)
    with pytest.raises(ValueError, match="holds no test split"):
        benchmark_medmnist(SpyClassifier(), path, seeds=(0,))
    assert events == []  # nothing read, nothing fitted


def test_metrics_match_scikit_learn_and_the_summary_the_seeds(npz):
    path, arrays = npz
    result = benchmark_medmnist(
        SpyClassifier(), path, seeds=(0, 1, 2), n_bootstraps=200
    )
    X_test, y_test = arrays["test_images"], arrays["test_labels"].ravel()
    assert list(result.summary) == [
        "accuracy",
        "auc",
        "balanced_accuracy",
        "sensitivity",
        "specificity",
        "ece",
    ]
    for row in result.per_seed:
        spy = SpyClassifier(random_state=row["seed"]).fit(X_test[:2], [0, 1])
        proba, y_pred = spy.predict_proba(X_test), spy.predict(X_test)
        assert row["accuracy"] == pytest.approx(accuracy_score(y_test, y_pred))
        assert row["auc"] == pytest.approx(roc_auc_score(y_test, proba[:, 1]))
        assert row["balanced_accuracy"] == pytest.approx(
            balanced_accuracy_score(y_test, y_pred)
        )
        assert row["sensitivity"] == pytest.approx(sensitivity_score(y_test, y_pred))
        assert row["ece"] == pytest.approx(
            expected_calibration_error(y_test, proba, n_bins=15)
        )
    for name, summary in result.summary.items():
        values = np.array([row[name] for row in result.per_seed])
        assert summary.mean == pytest.approx(values.mean())
        assert summary.std == pytest.approx(values.std(ddof=1))
        assert summary.seeds_low <= summary.mean <= summary.seeds_high
        assert summary.bootstrap_low <= summary.bootstrap_high
    assert "CI over seeds" in str(result)


def test_multiclass_auc_is_medmnist_one_vs_rest_and_one_seed_has_no_spread(tmp_path):
    path = tmp_path / "threemnist.npz"
    arrays = write_medmnist(path, n_classes=3)
    result = benchmark_medmnist(SpyClassifier(), path, seeds=(7,), n_bootstraps=50)
    assert "sensitivity" not in result.summary
    X_test, y_test = arrays["test_images"], arrays["test_labels"].ravel()
    proba = (
        SpyClassifier(random_state=7).fit(X_test[:3], [0, 1, 2]).predict_proba(X_test)
    )
    expected = roc_auc_score(y_test, proba, multi_class="ovr", average="macro")
    assert result.per_seed[0]["auc"] == pytest.approx(expected)
    summary = result.summary["auc"]
    assert math.isnan(summary.std)
    assert math.isnan(summary.seeds_low)
    assert not math.isnan(summary.bootstrap_low)


def test_bootstrap_is_reproducible(npz):
    path, _ = npz
    first = benchmark_medmnist(SpyClassifier(), path, seeds=(0, 1), n_bootstraps=50)
    second = benchmark_medmnist(SpyClassifier(), path, seeds=(0, 1), n_bootstraps=50)
    assert first.summary == second.summary


@pytest.mark.slow
def test_writes_medmnist_predictions_of_the_fitted_models(npz, tmp_path):
    path, arrays = npz
    estimator = make_pipeline(
        IntensityNormalizer(), MedicalCNNClassifier(max_epochs=1, device="cpu")
    )
    out = tmp_path / "results"
    result = benchmark_medmnist(
        estimator, path, seeds=(0, 1), output_dir=out, n_bootstraps=50
    )
    assert result.info["seed_parameters"] == ["medicalcnnclassifier__random_state"]
    names = sorted(p.name for p in out.iterdir())
    predictions = [name for name in names if name.endswith(".csv") and "@" in name]
    assert len(predictions) == 2
    assert {"per_seed.csv", "summary.csv", "benchmark.json"} <= set(names)
    # MedMNIST's layout: no header, id then one probability per class
    row = result.per_seed[1]
    assert row["predictions"] == (
        f"phantommnist_test_[AUC]{row['auc']:.3f}_[ACC]{row['accuracy']:.3f}@seed1.csv"
    )
    with open(out / row["predictions"], newline="") as file:
        rows = list(csv.reader(file))
    assert [int(r[0]) for r in rows] == list(range(30))
    saved = np.array([[float(v) for v in r[1:]] for r in rows])
    # the same fit again gives the same probabilities
    X = np.concatenate([arrays["train_images"], arrays["val_images"]])
    y = np.concatenate([arrays["train_labels"], arrays["val_labels"]]).ravel()
    refit = clone(estimator).set_params(medicalcnnclassifier__random_state=1).fit(X, y)
    np.testing.assert_array_equal(saved, refit.predict_proba(arrays["test_images"]))
    document = json.loads((out / "benchmark.json").read_text())
    assert document["summary"]["auc"]["mean"] == pytest.approx(
        result.summary["auc"].mean
    )
    assert isinstance(result, BenchmarkResult)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seeds": 0}, TypeError, "seeds must be a sequence"),
        ({"seeds": ()}, ValueError, "non-empty"),
        ({"seeds": (1, 1)}, ValueError, "distinct"),
        ({"seeds": (0.5,)}, ValueError, "sequence of ints"),
        ({"train_on": ("train", "test")}, ValueError, "cannot include 'test'"),
        ({"train_on": ("training",)}, ValueError, "train_on must name"),
        ({"train_on": ()}, ValueError, "train_on must name"),
        ({"n_bootstraps": 0}, ValueError, "n_bootstraps"),
        ({"confidence_level": 1.5}, ValueError, "confidence_level"),
        ({"output_dir": 3}, TypeError, "output_dir"),
    ],
)
def test_bad_parameters_are_named(npz, events, kwargs, error, match):
    path, _ = npz
    with pytest.raises(error, match=match):
        benchmark_medmnist(SpyClassifier(), path, **kwargs)
    assert events == []


def test_bad_estimator_and_files_are_named(npz, tmp_path):
    path, _ = npz
    with pytest.raises(TypeError, match="predict_proba"):
        benchmark_medmnist(object(), path)
    with pytest.raises(FileNotFoundError, match="No MedMNIST file"):
        benchmark_medmnist(SpyClassifier(), tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"MedMNIST \.npz archive"):
        benchmark_medmnist(SpyClassifier(), tmp_path / "junk.npz")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        benchmark_medmnist(SpyClassifier(), path, output_dir=tmp_path / "file")


def test_medmnist_flags():
    from pathlib import Path

    assert _flag(Path("pneumoniamnist.npz")) == "pneumoniamnist"
    assert _flag(Path("pneumoniamnist_64.npz")) == "pneumoniamnist_64"
    assert _flag(Path("retinamnist_28_trainval.npz")) == "retinamnist"


@pytest.mark.slow
def test_cli_benchmark_writes_the_results(npz, tmp_path, capsys):
    path, _ = npz
    out = tmp_path / "bench"
    code = main(
        [
            "benchmark",
            str(path),
            "--output",
            str(out),
            "--seeds",
            "0",
            "--epochs",
            "1",
            "--bootstraps",
            "20",
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "the test split is read after the last fit" in printed
    assert "Balanced accuracy" in printed
    assert (out / "summary.csv").is_file()


def test_cli_benchmark_without_a_test_split_says_so(tmp_path, capsys):
    path = tmp_path / "trainval.npz"
    write_medmnist(path, test=False)
    code = main(["benchmark", str(path), "--output", str(tmp_path / "out")])
    assert code == 1
    assert "holds no test split" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_benchmark_refuses_a_folder_and_a_bad_tta(tmp_path, capsys):
    assert main(["benchmark", str(tmp_path), "--output", str(tmp_path / "o")]) == 1
    assert "MedMNIST .npz" in capsys.readouterr().err
    path = tmp_path / "x.npz"
    write_medmnist(path)
    code = main(["benchmark", str(path), "--output", str(tmp_path), "--tta", "spin"])
    assert code == 2  # a bad option value, as documented in docs/cli.rst
    assert "--tta" in capsys.readouterr().err


def test_cli_benchmark_help_shows_the_defaults(capsys):
    assert main(["benchmark", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--output" in text
    assert "(default: auto)" in text
    assert "(default: [0, 1, 2])" in text
