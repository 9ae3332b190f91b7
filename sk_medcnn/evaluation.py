"""Evaluation on an official test split that no choice of the model can see.

:func:`benchmark_medmnist` trains clones of an estimator on a MedMNIST file's
train (and validation) split over several seeds, then reads the test split, once,
and scores every fitted model on it: per-image predictions in the MedMNIST
evaluator's CSV layout and a table of ACC, AUC, balanced accuracy, sensitivity,
specificity and ECE with confidence intervals over seeds and by bootstrap.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import warnings
import zipfile
from collections.abc import Sequence
from numbers import Integral
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state

from ._version import __version__
from .datasets import load_medmnist
from .metrics import expected_calibration_error
from .utils._files import atomic_open
from .utils._validation import open_fraction, positive_int, random_state_like

__all__ = ["BenchmarkResult", "MetricSummary", "benchmark_medmnist"]

#: The metrics of the table, in order, with their printed names.
METRICS = {
    "accuracy": "ACC",
    "auc": "AUC",
    "balanced_accuracy": "Balanced accuracy",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ece": "ECE",
}
#: Metrics defined for two classes only.
_BINARY_ONLY = ("sensitivity", "specificity")
_TRAIN_SPLITS = ("train", "val")


class MetricSummary(NamedTuple):
    """One metric over the seeds, with its two confidence intervals.

    ``mean`` and ``std`` (ddof=1; NaN for one seed) are over the seeds;
    ``seeds_low``/``seeds_high`` is Student's t interval of the mean over seeds
    (NaN for one seed); ``bootstrap_low``/``bootstrap_high`` is the percentile
    interval of the same mean over stratified resamples of the test images.
    """

    mean: float
    std: float
    seeds_low: float
    seeds_high: float
    bootstrap_low: float
    bootstrap_high: float


class BenchmarkResult:
    """What :func:`benchmark_medmnist` measured; ``print`` shows the table.

    Attributes
    ----------
    summary : dict of str to MetricSummary
        Per metric (``"accuracy"``, ``"auc"``, ``"balanced_accuracy"``,
        ``"sensitivity"`` and ``"specificity"`` for two classes, ``"ece"``),
        the mean over seeds and its intervals.
    per_seed : list of dict
        One dict per seed: ``"seed"``, ``"fit_seconds"``, each metric's value on
        the test split and ``"predictions"`` (the CSV file, or None).
    info : dict
        The file, the splits trained on and their sizes, the classes, the
        number of test images, the bootstrap settings and the versions.
    files : list of pathlib.Path
        The files written to ``output_dir`` (empty without one).
    """

    def __init__(
        self,
        summary: dict[str, MetricSummary],
        per_seed: list[dict[str, Any]],
        info: dict[str, Any],
        files: list[Path],
    ) -> None:
        self.summary = summary
        self.per_seed = per_seed
        self.info = info
        self.files = files

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-serialisable data.

        Returns
        -------
        result : dict
            Keys ``"info"``, ``"summary"`` (metric -> the fields of
            :class:`MetricSummary`) and ``"per_seed"``.
        """
        return {
            "info": self.info,
            "summary": {name: row._asdict() for name, row in self.summary.items()},
            "per_seed": self.per_seed,
        }

    def __str__(self) -> str:
        info = self.info
        percent = f"{100 * info['confidence_level']:g}%"
        seeds = ", ".join(str(row["seed"]) for row in self.per_seed)
        lines = [
            f"{info['data']}: trained on {' + '.join(info['train_on'])} "
            f"({info['n_train']} images), scored once per seed on the test split "
            f"({info['n_test']} images)",
            f"{len(self.per_seed)} seed(s): {seeds}; {percent} CI over seeds "
            f"(t) and by bootstrap ({info['n_bootstraps']} stratified resamples of "
            "the test images)",
            "",
            f"{'metric':<19}{'mean':>7}{'sd':>7}   {'CI over seeds':<17}  bootstrap CI",
        ]

        def interval(low: float, high: float) -> str:
            return "-" if math.isnan(low) else f"[{low:.3f}, {high:.3f}]"

        for name, row in self.summary.items():
            sd = "-" if math.isnan(row.std) else f"{row.std:.3f}"
            lines.append(
                f"{METRICS[name]:<19}{row.mean:>7.3f}{sd:>7}   "
                f"{interval(row.seeds_low, row.seeds_high):<17}  "
                f"{interval(row.bootstrap_low, row.bootstrap_high)}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence):
        raise TypeError(
            f"seeds must be a sequence of ints such as (0, 1, 2); got {seeds!r}."
        )
    if not seeds or not all(
        isinstance(seed, Integral) and not isinstance(seed, bool) for seed in seeds
    ):
        raise ValueError(
            f"seeds must be a non-empty sequence of ints such as (0, 1, 2); got "
            f"{seeds!r}."
        )
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct; got {list(seeds)!r}.")
    return [int(seed) for seed in seeds]


def _check_train_on(train_on: Any) -> tuple[str, ...]:
    if isinstance(train_on, str):
        train_on = (train_on,)
    if not isinstance(train_on, Sequence) or not train_on:
        raise ValueError(
            f"train_on must name splits from {list(_TRAIN_SPLITS)}, e.g. "
            f"('train', 'val'); got {train_on!r}."
        )
    if "test" in train_on:
        raise ValueError(
            "train_on cannot include 'test': the test split is scored, never "
            "trained on."
        )
    unknown = [split for split in train_on if split not in _TRAIN_SPLITS]
    if unknown or len(set(train_on)) != len(train_on):
        raise ValueError(
            f"train_on must name distinct splits from {list(_TRAIN_SPLITS)}; got "
            f"{list(train_on)!r}."
        )
    return tuple(train_on)


def _splits_in(path: Path) -> list[str]:
    """List the splits of a MedMNIST ``.npz`` file from its key names only."""
    if not path.is_file():
        raise FileNotFoundError(f"No MedMNIST file at {str(path)!r}.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = {Path(name).stem for name in archive.namelist()}
    except zipfile.BadZipFile as error:
        raise ValueError(
            f"Could not read {str(path)!r} as a MedMNIST .npz archive: {error}"
        ) from error
    return [
        split
        for split in ("train", "val", "test")
        if {f"{split}_images", f"{split}_labels"} <= names
    ]


def _seed_params(estimator: BaseEstimator) -> list[str]:
    """List the ``random_state`` parameters of ``estimator`` and its nested ones."""
    return sorted(
        name
        for name in estimator.get_params(deep=True)
        if name == "random_state" or name.endswith("__random_state")
    )


def _auc(truth: NDArray[np.bool_], score: NDArray[np.float64]) -> float:
    """ROC AUC as the Mann-Whitney U statistic (ties count one half)."""
    n_positive = int(truth.sum())
    n_negative = len(truth) - n_positive
    if n_positive == 0 or n_negative == 0:
        return math.nan
    ranks = stats.rankdata(score)
    return float(
        (ranks[truth].sum() - n_positive * (n_positive + 1) / 2)
        / (n_positive * n_negative)
    )


def _test_metrics(
    y_true: NDArray[Any],
    proba: NDArray[np.float64],
    y_pred: NDArray[Any],
    classes: NDArray[Any],
    n_bins: int,
) -> dict[str, float]:
    """Compute the table's metrics for one model's test predictions.

    AUC is MedMNIST's: for two classes, that of the second class's probability;
    otherwise the mean over classes of the one-vs-rest AUCs.
    """
    correct = y_pred == y_true
    present = [label for label in classes if np.any(y_true == label)]
    recalls = [float(np.mean(correct[y_true == label])) for label in present]
    if len(classes) == 2:
        auc = _auc(y_true == classes[1], proba[:, 1])
    else:
        auc = float(
            np.mean(
                [_auc(y_true == label, proba[:, i]) for i, label in enumerate(classes)]
            )
        )
    result = {
        "accuracy": float(np.mean(correct)),
        "auc": auc,
        "balanced_accuracy": float(np.mean(recalls)),
    }
    if len(classes) == 2:
        positive = y_true == classes[1]
        result["sensitivity"] = (
            float(np.mean(correct[positive])) if positive.any() else math.nan
        )
        result["specificity"] = (
            float(np.mean(correct[~positive])) if (~positive).any() else math.nan
        )
    result["ece"] = expected_calibration_error(
        y_true, proba, n_bins=n_bins, labels=classes
    )
    return result


def _stratified_resamples(
    y_true: NDArray[Any], n_resamples: int, rng: np.random.RandomState
) -> NDArray[np.intp]:
    """Bootstrap resamples of the indices that keep every class's count."""
    parts = []
    for label in np.unique(y_true):
        members = np.flatnonzero(y_true == label)
        parts.append(members[rng.randint(0, len(members), (n_resamples, len(members)))])
    return np.concatenate(parts, axis=1)


def _summarise(
    values: NDArray[np.float64], replicates: NDArray[np.float64], confidence: float
) -> MetricSummary:
    """Mean over seeds, t interval, and bootstrap percentile interval."""
    mean = float(np.mean(values))
    n_seeds = len(values)
    std = float(np.std(values, ddof=1)) if n_seeds > 1 else math.nan
    seeds_low = seeds_high = math.nan
    if n_seeds > 1:
        half = stats.t.ppf((1 + confidence) / 2, n_seeds - 1) * std / math.sqrt(n_seeds)
        seeds_low, seeds_high = mean - half, mean + half
    defined = replicates[~np.isnan(replicates)]
    boot_low = boot_high = math.nan
    if len(defined):
        alpha = (1 - confidence) / 2
        boot_low, boot_high = (
            float(q) for q in np.quantile(defined, [alpha, 1 - alpha])
        )
    return MetricSummary(
        mean, std, float(seeds_low), float(seeds_high), boot_low, boot_high
    )


def _flag(path: Path) -> str:
    """MedMNIST's ``{flag}{size_flag}`` from a file name such as ``bloodmnist_64``."""
    parts = path.stem.split("_")
    if len(parts) > 1 and parts[1].isdigit() and parts[1] != "28":
        return f"{parts[0]}_{parts[1]}"
    return parts[0]


def _json_safe(value: Any) -> Any:
    """Replace NaN (an undefined metric or interval) by None, which JSON has."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _write_predictions(path: Path, proba: NDArray[np.float64]) -> None:
    """Write ``id,prob_0,...,prob_k`` rows without a header, as MedMNIST does."""
    with atomic_open(path, "w", newline="") as file:
        writer = csv.writer(file)
        for index, row in enumerate(proba):
            writer.writerow([index, *(repr(float(value)) for value in row)])


def _check_benchmark_inputs(
    estimator: Any,
    path: str | os.PathLike[str],
    train_on: tuple[str, ...],
    output_dir: Any,
) -> tuple[Path, Path | None]:
    """Check the estimator, the file's splits and ``output_dir``; return both paths."""
    if not isinstance(estimator, BaseEstimator) or not hasattr(
        estimator, "predict_proba"
    ):
        raise TypeError(
            "estimator must be a scikit-learn classifier with predict_proba; got "
            f"{type(estimator).__name__}."
        )
    if output_dir is not None and not isinstance(output_dir, str | os.PathLike):
        raise TypeError(
            f"output_dir must be None or a path; got {type(output_dir).__name__}."
        )
    path = Path(path)
    available = _splits_in(path)
    if "test" not in available:
        raise ValueError(
            f"{str(path)!r} holds no test split (no test_images / test_labels; its "
            f"splits: {available}). benchmark_medmnist scores the official test "
            "split; the project's shared data files keep it out on purpose, for "
            "independent evaluation. Tune on the validation split or by "
            "cross-validation instead (sk-medcnn evaluate --split val)."
        )
    missing = [split for split in train_on if split not in available]
    if missing:
        raise ValueError(
            f"train_on names {missing}, which {str(path)!r} does not hold; its "
            f"splits: {available}."
        )
    out = None
    if output_dir is not None:
        out = Path(output_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"output_dir={str(out)!r} is a file, not a folder.")
    return path, out


def _fit_per_seed(
    estimator: BaseEstimator,
    path: Path,
    train_on: tuple[str, ...],
    seeds: list[int],
    seed_params: list[str],
) -> tuple[list[Any], list[float], int]:
    """Fit one clone per seed on the training splits only; return models, times, n."""
    parts = [load_medmnist(path, split) for split in train_on]
    X_train = np.concatenate([X for X, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    if y_train.ndim != 1:
        raise ValueError(
            f"{str(path)!r} holds multi-label targets of shape {y_train.shape}; "
            "benchmark_medmnist scores single-label tasks."
        )
    del parts
    models, fit_seconds = [], []
    for seed in seeds:
        model = clone(estimator)
        if seed_params:
            model.set_params(**dict.fromkeys(seed_params, seed))
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_seconds.append(time.perf_counter() - start)
        models.append(model)
    return models, fit_seconds, len(y_train)


def _score_test_split(
    path: Path,
    models: list[Any],
    seeds: list[int],
    fit_seconds: list[float],
    n_bins: int,
) -> tuple[
    NDArray[Any],
    NDArray[Any],
    list[dict[str, Any]],
    list[NDArray[np.float64]],
    list[NDArray[Any]],
]:
    """Read the test split now and score each fitted model on it once."""
    X_test, y_test = load_medmnist(path, "test")
    if y_test.ndim != 1:
        raise ValueError(
            f"test_labels in {str(path)!r} are multi-label; benchmark_medmnist "
            "scores single-label tasks."
        )
    classes = np.asarray(models[0].classes_)
    per_seed: list[dict[str, Any]] = []
    probas: list[NDArray[np.float64]] = []
    predictions: list[NDArray[Any]] = []
    for seed, model, seconds in zip(seeds, models, fit_seconds, strict=True):
        if not np.array_equal(np.asarray(model.classes_), classes):
            raise ValueError(
                f"the fit of seed {seed} learned classes "
                f"{np.asarray(model.classes_).tolist()}, the first "
                f"{classes.tolist()}; they must agree."
            )
        proba = np.asarray(model.predict_proba(X_test), dtype=np.float64)
        y_pred = np.asarray(model.predict(X_test))
        probas.append(proba)
        predictions.append(y_pred)
        scores = _test_metrics(y_test, proba, y_pred, classes, n_bins)
        per_seed.append({"seed": seed, "fit_seconds": round(seconds, 3), **scores})
    return y_test, classes, per_seed, probas, predictions


def _bootstrap_summary(
    y_test: NDArray[Any],
    classes: NDArray[Any],
    per_seed: list[dict[str, Any]],
    probas: list[NDArray[np.float64]],
    predictions: list[NDArray[Any]],
    *,
    n_bootstraps: int,
    confidence_level: float,
    n_bins: int,
    random_state: int | np.random.RandomState | None,
) -> tuple[list[str], dict[str, MetricSummary]]:
    """Resample the test images and summarise every metric over the seeds."""
    names = list(per_seed[0].keys() - {"seed", "fit_seconds"})
    names = [name for name in METRICS if name in names]
    rng = check_random_state(random_state)
    resamples = _stratified_resamples(y_test, n_bootstraps, rng)
    replicates = np.full((n_bootstraps, len(per_seed), len(names)), np.nan)
    for draw, index in enumerate(resamples):
        for column, (proba, y_pred) in enumerate(zip(probas, predictions, strict=True)):
            scores = _test_metrics(
                y_test[index], proba[index], y_pred[index], classes, n_bins
            )
            replicates[draw, column] = [scores[name] for name in names]
    with warnings.catch_warnings():  # a metric undefined for every seed: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        boot_means = np.nanmean(replicates, axis=1)
    summary = {
        name: _summarise(
            np.array([row[name] for row in per_seed]),
            boot_means[:, i],
            confidence_level,
        )
        for i, name in enumerate(names)
    }
    return names, summary


def _write_tables(
    out: Path,
    path: Path,
    per_seed: list[dict[str, Any]],
    probas: list[NDArray[np.float64]],
    names: list[str],
    summary: dict[str, MetricSummary],
) -> list[Path]:
    """Write the per-seed predictions, ``per_seed.csv`` and ``summary.csv``."""
    files: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    flag = _flag(path)
    for row, proba in zip(per_seed, probas, strict=True):
        name = (
            f"{flag}_test_[AUC]{row['auc']:.3f}_[ACC]{row['accuracy']:.3f}"
            f"@seed{row['seed']}.csv"
        )
        _write_predictions(out / name, proba)
        row["predictions"] = name
        files.append(out / name)
    columns = ["seed", "fit_seconds", *names, "predictions"]
    with atomic_open(out / "per_seed.csv", "w", newline="") as file:
        table = csv.DictWriter(file, fieldnames=columns)
        table.writeheader()
        table.writerows(per_seed)
    files.append(out / "per_seed.csv")
    with atomic_open(out / "summary.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["metric", *MetricSummary._fields])
        for name, summary_row in summary.items():
            writer.writerow([name, *summary_row])
    files.append(out / "summary.csv")
    return files


def benchmark_medmnist(
    estimator: BaseEstimator,
    path: str | os.PathLike[str],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    train_on: Sequence[str] = ("train", "val"),
    output_dir: str | os.PathLike[str] | None = None,
    n_bootstraps: int = 1000,
    confidence_level: float = 0.95,
    n_bins: int = 15,
    random_state: int | np.random.RandomState | None = 0,
) -> BenchmarkResult:
    """Train on a MedMNIST file's train (+ val) split per seed; score its test once.

    For every seed, a clone of ``estimator`` with that seed as its
    ``random_state`` (and its nested estimators') is fitted on the splits of
    ``train_on``. Only when every fit has finished is the test split read; each
    fitted model then predicts it once. Nothing the estimator chooses (early
    stopping, a temperature, a threshold, ``tta="auto"``) can see a test
    image: selection on the test split is impossible by construction.

    Parameters
    ----------
    estimator : estimator
        An unfitted classifier with ``predict_proba`` (a
        :class:`~sk_medcnn.MedicalCNNClassifier`, a Pipeline ending in one, a
        search, ...). It is cloned, never fitted itself.
    path : str or path-like
        A MedMNIST ``.npz`` file with ``train_*``, ``val_*`` (if trained on) and
        ``test_images``/``test_labels`` (see
        :func:`sk_medcnn.datasets.load_medmnist`). Single-label tasks only.
    seeds : sequence of int, default=(0, 1, 2)
        One fit per seed; distinct values.
    train_on : sequence of {"train", "val"}, default=("train", "val")
        The splits to train on, concatenated in this order. The estimator's own
        held-out split (early stopping, calibration) is drawn from them.
    output_dir : str or path-like, default=None
        A folder (created if needed) for the per-seed predictions, in the
        MedMNIST evaluator's layout (rows ``id,prob_0,...,prob_k`` without a
        header; ``id`` is the row of the test split in the file; named
        ``{flag}_test_[AUC]0.xxx_[ACC]0.xxx@seed{seed}.csv``, which
        ``medmnist.Evaluator.parse_and_evaluate`` reads), and the tables
        ``per_seed.csv``, ``summary.csv`` and ``benchmark.json``. Nothing is
        written until every score is computed.
    n_bootstraps : int, default=1000
        Resamples of the test images for the bootstrap intervals.
    confidence_level : float, default=0.95
        Coverage of both intervals, in (0, 1).
    n_bins : int, default=15
        Bins of the expected calibration error (top-label, uniform).
    random_state : int, RandomState instance or None, default=0
        Seeds the bootstrap resampling (not the fits: those take ``seeds``).

    Returns
    -------
    result : BenchmarkResult
        The table (``result.summary``), the per-seed scores and the files
        written; ``print(result)`` shows the table.

    Raises
    ------
    ValueError
        If the file has no test split (the shared data files of the project
        hold none: they keep it for independent evaluation), lacks a split of
        ``train_on``, holds multi-label targets, or a parameter is invalid.
    TypeError
        If ``estimator`` has no ``predict_proba``.

    See Also
    --------
    sk_medcnn.metrics.clinical_report : Binary metrics with bootstrap intervals.

    Notes
    -----
    The labels scored (ACC, balanced accuracy, sensitivity, specificity) are
    those of ``estimator.predict``, so a threshold or rule the estimator
    learned in ``fit`` applies; AUC and ECE come from ``predict_proba``. AUC is
    MedMNIST's [1]_: for two classes that of the second class's probability,
    else the mean of the one-vs-rest AUCs. Sensitivity and specificity take
    the second class as positive and appear for two classes only. The interval
    over seeds is Student's t interval of the mean (it describes the spread of
    training); the bootstrap one is the percentile interval of the mean over
    seeds when the test images are resampled within each class (the same
    resamples for every seed and metric; it describes the finite test set).

    References
    ----------
    .. [1] J. Yang et al., "MedMNIST v2 - A large-scale lightweight benchmark
       for 2D and 3D biomedical image classification", Scientific Data 10:41,
       2023.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from sk_medcnn import MedicalCNNClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.evaluation import benchmark_medmnist
    >>> X, y = make_lesion_phantoms(120, image_size=16, random_state=0)
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "phantoms.npz"
    >>> np.savez(path, train_images=X[:80], train_labels=y[:80, None],
    ...          test_images=X[80:], test_labels=y[80:, None])
    >>> result = benchmark_medmnist(
    ...     MedicalCNNClassifier(max_epochs=1, device="cpu"), path,
    ...     seeds=(0, 1), train_on=("train",), n_bootstraps=100)
    >>> sorted(result.summary)
    ['accuracy', 'auc', 'balanced_accuracy', 'ece', 'sensitivity', 'specificity']
    >>> folder.cleanup()
    """
    seeds = _check_seeds(seeds)
    train_on = _check_train_on(train_on)
    positive_int(n_bootstraps, "n_bootstraps")
    open_fraction(confidence_level, "confidence_level")
    positive_int(n_bins, "n_bins")
    random_state_like(random_state, "random_state")
    path, out = _check_benchmark_inputs(estimator, path, train_on, output_dir)
    seed_params = _seed_params(estimator)
    models, fit_seconds, n_train = _fit_per_seed(
        estimator, path, train_on, seeds, seed_params
    )
    y_test, classes, per_seed, probas, predictions = _score_test_split(
        path, models, seeds, fit_seconds, n_bins
    )
    names, summary = _bootstrap_summary(
        y_test,
        classes,
        per_seed,
        probas,
        predictions,
        n_bootstraps=n_bootstraps,
        confidence_level=confidence_level,
        n_bins=n_bins,
        random_state=random_state,
    )
    info = {
        "data": str(path),
        "train_on": list(train_on),
        "n_train": int(n_train),
        "n_test": len(y_test),
        "classes": classes.tolist(),
        "seeds": seeds,
        "seed_parameters": seed_params,
        "n_bootstraps": int(n_bootstraps),
        "confidence_level": float(confidence_level),
        "n_bins": int(n_bins),
        "estimator": repr(estimator),
        "sk_medcnn": __version__,
    }
    # files, once everything is computed
    for row in per_seed:
        row["predictions"] = None
    files = (
        []
        if out is None
        else _write_tables(out, path, per_seed, probas, names, summary)
    )
    result = BenchmarkResult(summary, per_seed, info, files)
    if out is not None:
        with atomic_open(out / "benchmark.json", "w") as file:
            json.dump(_json_safe(result.to_dict()), file, indent=2, allow_nan=False)
            file.write("\n")
        files.append(out / "benchmark.json")
    return result
