"""Evidence for volumes: 3-D networks on VesselMNIST3D, cross-validated and validated.

VesselMNIST3D (MedMNIST v2) holds 28^3 MRA volumes of brain-vessel segments,
vessel (0) or aneurysm (1), 11% positive. For each architecture and seed:

- **CV**: stratified 5-fold cross-validation on the official train split
  (1,335 volumes): each fold's model is fitted on four fifths and scores the
  fifth it never saw;
- **validation**: a model fitted on the whole train split scores the official
  validation split (191 volumes).

Reported: ROC AUC, accuracy, balanced accuracy, sensitivity and specificity
at the model's ``predict`` (argmax of the calibrated probabilities), and the
fit time. The models use the library's defaults, given volumes
(``spatial_dims`` inferred); ``--architectures`` adds others. ``defaults``
means the defaults of the code that ran the fit: the results file's ``note``
says which (fits before ``class_weight="auto"`` and ``lr_schedule="auto"``
trained unweighted with cosine annealing; since, VesselMNIST3D trains with
balanced class weights and a one-cycle warm-up, which a spec can name:
``defaults:class_weight=balanced,lr_schedule=onecycle``). The test split
is never read.

Run from the project root::

    python benchmarks/eval_volumes.py --json reports/eval_volumes.json
    python benchmarks/eval_volumes.py --seeds 0 --folds 0   # validation only
    python benchmarks/eval_volumes.py --quick               # phantoms, seconds
    python benchmarks/eval_volumes.py --seeds 0 --splits cv --only-folds 0 1 2 \
        --architectures defaults:augmentation=flips        # a screen by fold

``--json FILE --resume`` keeps the fits already saved in FILE (it is written after
every fit) and runs the others: a long run can stop and go on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn.pipeline import make_pipeline

from benchmarks._common import DATA_FILES, save_results
from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.augmentation import RandomFlip, default_augmentation
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms

VESSEL = DATA_FILES["vesselmnist3d"]


def scores(
    y_true: np.ndarray, proba: np.ndarray, fit_seconds: float
) -> dict[str, float]:
    """The figures of one fitted model on one held-out set (binary labels)."""
    predicted = proba.argmax(axis=1)
    return {
        "auc": float(roc_auc_score(y_true, proba[:, 1])),
        "acc": float(accuracy_score(y_true, predicted)),
        "balanced_acc": float(balanced_accuracy_score(y_true, predicted)),
        "sensitivity": float(recall_score(y_true, predicted, pos_label=1)),
        "specificity": float(recall_score(y_true, predicted, pos_label=0)),
        "fit_seconds": float(fit_seconds),
    }


def fit_and_score(
    params: dict[str, Any],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
) -> dict[str, float]:
    model = MedicalCNNClassifier(**params)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. small held-out splits
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        proba = model.predict_proba(X_test)
    return scores(y_test, proba, seconds)


def summarise(runs: list[dict[str, float]]) -> dict[str, list[float]]:
    """Mean and standard deviation of every figure over runs."""
    keys = runs[0].keys()
    return {
        key: [
            float(np.mean([run[key] for run in runs])),
            float(np.std([run[key] for run in runs])),
        ]
        for key in keys
    }


def _strengths(brightness: float, contrast: float, noise: float) -> Any:
    """The 3-D default's affine map, then these intensity changes and noise."""
    return default_augmentation(spatial_dims=3).set_params(
        randomintensity__brightness=brightness,
        randomintensity__contrast=contrast,
        randomintensity__gamma=contrast,
        randomnoise__std=noise,
    )


def _flips_then(augmentation: Any) -> Any:
    """Random flips on every axis, then ``augmentation``."""
    return make_pipeline(
        RandomFlip(axes=("horizontal", "vertical", "depth")), augmentation
    )


#: ``augmentation=NAME`` in a model spec: named augmentations, fixed so that a
#: saved fit's key keeps meaning what it was trained with
AUGMENTATIONS: dict[str, Callable[[], Any]] = {
    # the default since 2026-12-07, as images have it
    "moderate": lambda: _strengths(0.15, 0.3, 0.02),
    # the volumes' default until 2026-12-07: stronger intensity changes and noise
    "strong": lambda: _strengths(0.2, 0.4, 0.04),
    # random flips on every axis, then the default (or "strong")
    "flips": lambda: _flips_then(default_augmentation(spatial_dims=3)),
    "flips_strong": lambda: _flips_then(_strengths(0.2, 0.4, 0.04)),
}


def parse_model(spec: str) -> dict[str, Any]:
    """Estimator parameters from ``"defaults"`` or ``"name[:key=value,...]"``.

    ``resnet18:stem=imagenet,width=32`` is ``architecture="resnet18"`` with those
    ``architecture_params``; ``defaults:augmentation=none`` changes an estimator
    parameter (``none`` is None; numbers are read as numbers;
    ``augmentation=`` also takes a name from ``AUGMENTATIONS``).
    """
    name, _, options = spec.partition(":")
    values: dict[str, Any] = {}
    for option in filter(None, options.split(",")):
        key, _, text = option.partition("=")
        value: Any = text
        if text.lower() == "none":
            value = None
        else:
            try:
                value = float(text) if "." in text else int(text)
            except ValueError:
                pass
        values[key] = value
    preset = values.get("augmentation")
    if isinstance(preset, str) and preset in AUGMENTATIONS:
        values["augmentation"] = AUGMENTATIONS[preset]()
    if name == "defaults":
        return values
    return {"architecture": name, "architecture_params": values or None}


def load(args: argparse.Namespace) -> tuple[np.ndarray, ...]:
    if args.quick:
        X, y = make_lesion_phantoms(
            96, image_size=16, spatial_dims=3, lesion_radius=(2, 3), random_state=0
        )
        return X[:64], y[:64], X[64:], y[64:]
    X_train, y_train = load_medmnist(args.data, "train")
    X_val, y_val = load_medmnist(args.data, "val")
    return X_train, y_train.ravel(), X_val, y_val.ravel()


def run_key(architecture: str, seed: int, split: str, fold: int | None) -> str:
    """The key of one fitted model in the saved results (what ``--resume`` skips)."""
    where = "validation" if split == "validation" else f"cv fold {fold}"
    return f"{architecture} | seed {seed} | {where}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=VESSEL)
    parser.add_argument(
        "--architectures",
        nargs="+",
        default=["defaults"],
        help="'defaults' (the library's, 'defaults:augmentation=none' to change a "
        "parameter), or 3-D architecture names ('resnet18:stem=imagenet' to set "
        "architecture_params)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5, help="0: validation only")
    parser.add_argument(
        "--only-folds",
        nargs="+",
        type=int,
        default=None,
        metavar="FOLD",
        help="run only these folds (0 to --folds - 1) of each seed's partition, "
        "e.g. a quick screen paired by fold with an earlier run",
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=("cv", "validation"),
        default=["cv", "validation"],
        help="cross-validation on the train split, the validation split, or both",
    )
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--quick", action="store_true", help="phantoms, seconds")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the fits already saved in --json and run only the others",
    )
    args = parser.parse_args(argv)
    if not args.quick and not args.data.exists():
        parser.error(f"{args.data} is absent (see ../shared/data/README.md)")
    if args.only_folds is not None:
        if "cv" not in args.splits or args.folds < 2:
            parser.error(
                "--only-folds needs cross-validation (--splits cv, --folds >= 2)"
            )
        wrong = sorted({f for f in args.only_folds if not 0 <= f < args.folds})
        if wrong:
            parser.error(
                f"--only-folds {wrong} outside 0 to {args.folds - 1} (--folds "
                f"{args.folds})"
            )
    if args.resume and args.json is None:
        parser.error("--resume needs --json (the file whose fits are kept)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    X_train, y_train, X_val, y_val = load(args)
    print(
        f"train {X_train.shape} ({y_train.mean():.1%} positive), "
        f"validation {X_val.shape} ({y_val.mean():.1%} positive)"
    )
    done: dict[str, dict[str, float]] = {}
    results: dict[str, Any] = {"data": str(args.data), "quick": args.quick}
    if args.resume and args.json.exists():
        saved = json.loads(args.json.read_text())
        done = saved.get("runs", {})
        if "note" in saved:  # what the saved fits' keys mean, kept
            results["note"] = saved["note"]
        print(f"resuming: {len(done)} fits kept from {args.json}")
    results["runs"] = done

    def run_once(key: str, *data: np.ndarray) -> dict[str, float]:
        if key not in done:
            done[key] = fit_and_score(params, *data)
            save_results(results, args.json)  # after every fit: a stop loses one
            print(f"{key}: {done[key]}", flush=True)
        return done[key]

    for architecture in args.architectures:
        params: dict[str, Any] = {"device": "cpu", **parse_model(architecture)}
        if args.max_epochs is not None:
            params["max_epochs"] = args.max_epochs
        if args.quick:
            params["max_epochs"] = args.max_epochs or 3
        cv_runs, val_runs = [], []
        for seed in args.seeds:
            params["random_state"] = seed
            if "cv" in args.splits and args.folds >= 2:
                folds = StratifiedKFold(args.folds, shuffle=True, random_state=seed)
                for fold, (train, test) in enumerate(folds.split(X_train, y_train)):
                    if args.only_folds is not None and fold not in args.only_folds:
                        continue
                    key = run_key(architecture, seed, "cv", fold)
                    cv_runs.append(
                        run_once(
                            key,
                            X_train[train],
                            y_train[train],
                            X_train[test],
                            y_train[test],
                        )
                    )
            if "validation" in args.splits:
                key = run_key(architecture, seed, "validation", None)
                val_runs.append(run_once(key, X_train, y_train, X_val, y_val))
        results[architecture] = {
            "cv": summarise(cv_runs) if cv_runs else None,
            "cv_runs": cv_runs,
            "validation": summarise(val_runs) if val_runs else None,
            "validation_runs": val_runs,
        }
    print()
    print(
        "| model | split | AUC | ACC | balanced ACC | sensitivity | specificity "
        "| fit (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for architecture in args.architectures:
        for split in ("cv", "validation"):
            summary = results[architecture][split]
            if summary is None:
                continue
            runs = len(results[architecture][f"{split}_runs"])
            cells = " | ".join(
                f"{summary[key][0]:.3f} ± {summary[key][1]:.3f}"
                for key in ("auc", "acc", "balanced_acc", "sensitivity", "specificity")
            )
            fits = "1 fit" if runs == 1 else f"{runs} fits"
            print(
                f"| {architecture} | {split} ({fits}) | {cells} | "
                f"{summary['fit_seconds'][0]:.0f} |"
            )
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
