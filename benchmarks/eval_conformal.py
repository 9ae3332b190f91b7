"""Evidence for ConformalClassifier: empirical coverage over many random splits.

For each data set (PneumoniaMNIST, binary; RetinaMNIST, 5 ordinal grades) and
seed, a ``MedicalCNNClassifier`` with the library's defaults is fitted on the
official train split and predicts the official validation split once. The
validation split is then cut at random ``--splits`` times into a calibration
half and a test half; each time a ``ConformalClassifier(cv="prefit")`` is
calibrated on the first half and its sets are scored on the second. Reported
per data set, ``alpha`` and score method: the mean, standard deviation and 5th
percentile of the coverage over the splits against the finite-sample bounds
``[1 - alpha, 1 - alpha + 1 / (n_calibration + 1)]`` (the upper one holds for
``lac`` without ties), the mean set size and the referral rate (sets that are not
a single class). The test splits are never read.

Run from the project root::

    python benchmarks/eval_conformal.py --json reports/eval_conformal.json
    python benchmarks/eval_conformal.py --quick      # phantoms, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import IMAGE_DATA, save_results
from sk_medcnn import ConformalClassifier, MedicalCNNClassifier
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.metrics import mean_set_size, referral_rate, set_coverage

DATA = IMAGE_DATA


class _Precomputed(ClassifierMixin, BaseEstimator):
    """The fitted network's validation probabilities, looked up by row index."""

    def __init__(self, proba: Any = None, classes: Any = None) -> None:
        self.proba = proba
        self.classes = classes

    def fit(self, X: Any, y: Any) -> _Precomputed:
        self.classes_ = np.asarray(self.classes)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.proba[np.asarray(X)[:, 0]]


def _data(name: str, quick: bool) -> tuple[np.ndarray, ...]:
    if quick:
        X, y = make_lesion_phantoms(400, image_size=16, random_state=0)
        return X[:240], y[:240], X[240:], y[240:]
    path = DATA[name]
    X_train, y_train = load_medmnist(path, "train")
    X_val, y_val = load_medmnist(path, "val")
    return X_train, y_train, X_val, y_val


def _splits(
    proba: np.ndarray,
    y: np.ndarray,
    classes: np.ndarray,
    alpha: float,
    method: str,
    n_splits: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    model = _Precomputed(proba, classes).fit(None, None)
    rows = np.arange(len(y))[:, None]
    n_calibration = len(y) // 2
    coverages, sizes, referrals = [], [], []
    for _ in range(n_splits):
        order = rng.permutation(len(y))
        calibration, test = order[:n_calibration], order[n_calibration:]
        conformal = ConformalClassifier(model, alpha=alpha, method=method, cv="prefit")
        conformal.fit(rows[calibration], y[calibration])
        sets = conformal.predict_set(rows[test])
        coverages.append(set_coverage(y[test], sets, labels=classes))
        sizes.append(mean_set_size(sets))
        referrals.append(referral_rate(sets))
    coverage = np.asarray(coverages)
    return {
        "alpha": alpha,
        "method": method,
        "n_calibration": n_calibration,
        "n_test": len(y) - n_calibration,
        "coverage_mean": float(coverage.mean()),
        "coverage_std": float(coverage.std(ddof=1)),
        "coverage_p5": float(np.quantile(coverage, 0.05)),
        "bound_low": 1 - alpha,
        "bound_high": 1 - alpha + 1 / (n_calibration + 1),
        "set_size": float(np.mean(sizes)),
        "referral_rate": float(np.mean(referrals)),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATA), choices=DATA)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--splits", type=int, default=1000)
    parser.add_argument("--alphas", nargs="+", type=float, default=[0.05, 0.1])
    parser.add_argument("--quick", action="store_true", help="phantoms, 1 epoch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"rows": [], "models": []}
    print(
        f"{'data':<15}{'seed':>5}{'alpha':>7}{'method':>7}{'coverage':>10}"
        f"{'std':>7}{'p5':>7}{'bounds':>15}{'size':>7}{'refer':>7}"
    )
    for name in args.datasets:
        if not args.quick and not DATA[name].exists():
            print(f"{name}: {DATA[name]} is absent; skipped")
            continue
        X_train, y_train, X_val, y_val = _data(name, args.quick)
        for seed in args.seeds:
            params = {"random_state": seed}
            if args.quick:
                params.update(max_epochs=1, device="cpu")
            start = time.perf_counter()
            clf = MedicalCNNClassifier(**params).fit(X_train, y_train)
            seconds = time.perf_counter() - start
            proba = clf.predict_proba(X_val)
            auc = (
                roc_auc_score(y_val, proba[:, 1])
                if proba.shape[1] == 2
                else roc_auc_score(y_val, proba, multi_class="ovr")
            )
            accuracy = accuracy_score(y_val, clf.classes_[proba.argmax(axis=1)])
            results["models"].append(
                {
                    "data": name,
                    "seed": seed,
                    "val_auc": float(auc),
                    "val_acc": float(accuracy),
                    "fit_seconds": seconds,
                }
            )
            rng = np.random.default_rng(seed)
            for alpha in args.alphas:
                for method in ("lac", "aps"):
                    row = _splits(
                        proba, y_val, clf.classes_, alpha, method, args.splits, rng
                    )
                    row.update(data=name, seed=seed)
                    results["rows"].append(row)
                    bounds = f"[{row['bound_low']:.3f}, {row['bound_high']:.3f}]"
                    print(
                        f"{name:<15}{seed:>5}{alpha:>7.2f}{method:>7}"
                        f"{row['coverage_mean']:>10.4f}{row['coverage_std']:>7.3f}"
                        f"{row['coverage_p5']:>7.3f}{bounds:>15}"
                        f"{row['set_size']:>7.2f}{row['referral_rate']:>7.3f}"
                    )
            print(
                f"{name} seed {seed}: validation AUC {auc:.4f}, ACC {accuracy:.4f}, "
                f"fit {seconds:.0f} s"
            )
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
