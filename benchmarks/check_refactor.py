"""Check that a refactor leaves the estimators' results unchanged, to the bit.

Fits fourteen configurations of the estimators with a fixed ``random_state``
on the CPU (the default classifier, the reference CNN as the plain loop trains
it, a ResNet-18, class weights, sample weights, MixUp, early stopping, no
calibration, the regressor, and sample weights with MixUp, early stopping,
focal loss with class weights, and a Huber regressor) and saves every
prediction and every epoch's losses and accuracy. Run it on the code before
and after a change, then compare::

    git worktree add ../before <base commit>
    PYTHONPATH=../before python benchmarks/check_refactor.py --out before.npz
    python benchmarks/check_refactor.py --out after.npz
    python benchmarks/check_refactor.py --compare before.npz after.npz

``--compare`` prints the largest absolute difference of each configuration and
exits 1 when one exceeds ``--tolerance`` (default 1e-6). The data are the first
400 training and 200 validation images of PneumoniaMNIST
(``../shared/data``); ``--quick`` uses lesion phantoms and one epoch instead
(seconds, for the smoke test).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import DEFAULT_DATA

#: What every epoch's history row records, compared too.
HISTORY_KEYS = ("train_loss", "valid_loss", "valid_acc")


def configurations(epochs: int) -> dict[str, tuple[Any, dict[str, Any], bool]]:
    """Return each configuration: the estimator, its fit keywords, regression or not."""
    from sk_medcnn import MedicalCNNClassifier as Classifier
    from sk_medcnn import MedicalCNNRegressor as Regressor
    from sk_medcnn.augmentation import MixUp

    small = {"max_epochs": epochs, "random_state": 0, "batch_size": 32}
    longer = {**small, "max_epochs": epochs + 2}
    plain = {"augmentation": None, "calibration": None, "tta": None}
    return {
        "default": (Classifier(**small), {}, False),
        "reference": (Classifier("simple_cnn", **plain, **small), {}, False),
        "resnet18": (Classifier("resnet18", **small), {}, False),
        "class_weight": (
            Classifier(class_weight="balanced", **small),
            {},
            False,
        ),
        "sample_weight": (Classifier(**small), {"weights": True}, False),
        "mixup": (
            Classifier(augmentation=MixUp(alpha=0.4), **small),
            {},
            False,
        ),
        "early_stopping": (
            Classifier(early_stopping=True, patience=1, **longer),
            {},
            False,
        ),
        "no_calibration": (Classifier(calibration=None, **small), {}, False),
        "regressor": (Regressor(**small), {}, True),
        "regressor_weighted": (Regressor(**small), {"weights": True}, True),
        "weighted_mixup": (
            Classifier(augmentation=MixUp(alpha=0.4), **small),
            {"weights": True},
            False,
        ),
        "weighted_early_stopping": (
            Classifier(early_stopping=True, patience=1, **longer),
            {"weights": True},
            False,
        ),
        "weighted_focal_class_weight": (
            Classifier(loss="focal", class_weight="balanced", **small),
            {"weights": True},
            False,
        ),
        "weighted_huber_early_stopping": (
            Regressor(loss="huber", early_stopping=True, patience=1, **longer),
            {"weights": True},
            True,
        ),
    }


def load(quick: bool, data: Path) -> tuple[Any, Any, Any]:
    """Return training images, labels and validation images."""
    if quick:
        from sk_medcnn.datasets import make_lesion_phantoms

        X, y = make_lesion_phantoms(48, image_size=16, random_state=0)
        return X, y, X[:16]
    arrays = np.load(data)
    return (
        arrays["train_images"][:400],
        arrays["train_labels"].ravel()[:400],
        arrays["val_images"][:200],
    )


def run(quick: bool, data: Path, only: list[str] | None = None) -> dict[str, Any]:
    """Fit every configuration; return predictions and histories by name."""
    torch.set_num_threads(1)
    X, y, X_valid = load(quick, data)
    weights = np.linspace(0.5, 2.0, len(y))
    targets = y.astype(float) + 0.1 * np.arange(len(y)) / len(y)
    results: dict[str, Any] = {}
    for name, (estimator, options, regression) in configurations(
        1 if quick else 3
    ).items():
        if only and name not in only:
            continue
        if quick and name == "resnet18":
            continue  # the phantoms are too small for its stem
        kwargs = {"sample_weight": weights} if options.get("weights") else {}
        estimator.fit(X, targets if regression else y, **kwargs)
        predict = getattr(estimator, "predict_proba", estimator.predict)
        results[name] = np.asarray(predict(X_valid), dtype=np.float64)
        results[f"{name}.history"] = np.array(
            [
                [
                    row.get(key, np.nan)
                    for key in ("train_loss", "valid_loss", "valid_acc")
                ]
                for row in estimator.history_
            ],
            dtype=np.float64,
        )
        print(f"{name}: {results[name].ravel()[:3]}", flush=True)
    return results


def compare(before: Path, after: Path, tolerance: float) -> int:
    """Print each configuration's largest difference; 1 when one is too large."""
    first, second = np.load(before), np.load(after)
    worst = 0.0
    for name in sorted(set(first) | set(second)):
        if name not in first or name not in second:
            print(f"{name}: only in {'after' if name in second else 'before'}")
            worst = np.inf
            continue
        a, b = first[name], second[name]
        if a.shape != b.shape:
            print(f"{name}: shapes {a.shape} and {b.shape}")
            worst = np.inf
            continue
        both_nan = np.isnan(a) & np.isnan(b)
        difference = float(np.max(np.where(both_nan, 0.0, np.abs(a - b)), initial=0.0))
        worst = max(worst, difference)
        print(f"{name}: largest difference {difference:.3g}")
    print(f"largest of all: {worst:.3g} (tolerance {tolerance:g})")
    return 0 if worst <= tolerance else 1


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="save the results here (.npz)")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", nargs="+", help="these configurations only")
    parser.add_argument("--quick", action="store_true", help="phantoms, one epoch")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare, args.tolerance)
    if args.out is None:
        parser.error("give --out (to run) or --compare BEFORE AFTER")
    results = run(args.quick, args.data, args.only)
    np.savez(args.out, **results)
    print(f"saved {len(results) // 2} configurations to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
