"""Evidence for the explanation-quality scores: five map methods, nine scores.

For each data set a ``MedicalCNNClassifier`` with the library's defaults but
``max_epochs=10`` is fitted on a training split and its maps are scored by
:func:`sk_medcnn.metrics.explanation_score` on validation images, for the true
class of each image:

- ``pneumoniamnist``: the official train split; ``--n-val`` images of the
  official validation split (a fixed random subset when fewer than 524;
  faithfulness and randomisation only: there are no masks);
- ``phantoms``: 28 x 28 lesion phantoms, 1000 for training and ``--n-val`` new
  ones for validation, half with a lesion. The randomisation scores use every
  validation image; faithfulness and localisation the images with a lesion,
  whose mask is the truth the maps are compared with (an image without one has
  no truth to find).

``deletion_blur`` is deletion with ``baseline="blur"`` instead of the
default ``"mean"``. Two reference rows frame the methods: ``random`` (a map
of uniform noise, what chance scores) and, on phantoms, ``truth`` (the lesion
mask, blurred with sigma 1 px: what knowing the answer scores). The test
splits are never read.

Run from the project root::

    python benchmarks/eval_explanation_quality.py \
        --json reports/eval_explanation_quality.json
    python benchmarks/eval_explanation_quality.py --quick   # phantoms, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from sklearn.metrics import accuracy_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import DEFAULT_DATA, require_at_least, save_results
from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.metrics import explanation_score

METHODS = ["gradcam", "hirescam", "gradient", "smoothgrad", "integrated_gradients"]
FAITHFULNESS = ["road", "deletion", "deletion_blur", "insertion"]
#: columns that are a metric with another option: deletion to a blurred image
VARIANTS = {"deletion_blur": ("deletion", {"baseline": "blur"})}
RANDOMISATION = ["randomisation", "data_randomisation"]
LOCALISATION = ["mass_in_mask", "pointing_game", "auprc"]


def _random_maps(estimator: Any, X: Any, target: Any = None) -> np.ndarray:
    """Uniform noise maps: what a method that knows nothing scores."""
    return np.random.RandomState(0).random_sample(np.shape(X)[:3])


def _truth_maps(X_val: np.ndarray, masks: np.ndarray) -> Any:
    """Maps that know the lesion (its mask, blurred) for the images of X_val."""
    lookup = {image.tobytes(): mask for image, mask in zip(X_val, masks, strict=True)}

    def explain(estimator: Any, X: Any, target: Any = None) -> np.ndarray:
        maps = np.array([lookup[image.tobytes()] for image in X], dtype=np.float64)
        return gaussian_filter(maps, sigma=(0, 1, 1))

    return explain


def _load(name: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """Return the train and validation data (and masks) of one data set."""
    if args.quick or name == "phantoms":
        n_train, size = (200, 16) if args.quick else (1000, 28)
        X, y = make_lesion_phantoms(n_train, image_size=size, random_state=args.seed)
        X_val, y_val, masks_val = make_lesion_phantoms(
            args.n_val, image_size=size, return_masks=True, random_state=args.seed + 1
        )
        quick = {"max_epochs": 2, "device": "cpu"}
        return {
            "train": (X, y),
            "val": (X_val, y_val),
            "masks": masks_val,
            # an image without a lesion has no truth to find: faithfulness and
            # localisation are scored on the images with one
            "with_truth": y_val == 1,
            "params": quick if args.quick else {"max_epochs": args.max_epochs},
        }
    if not DEFAULT_DATA.exists():
        print(f"{name}: {DEFAULT_DATA} is absent; skipped")
        return None
    X_train, y_train = load_medmnist(DEFAULT_DATA, "train")
    X_val, y_val = load_medmnist(DEFAULT_DATA, "val")
    if args.n_val < len(X_val):
        rows = np.sort(
            np.random.RandomState(args.seed).choice(len(X_val), args.n_val, False)
        )
        X_val, y_val = X_val[rows], y_val[rows]
    return {
        "train": (X_train, y_train),
        "val": (X_val, y_val),
        "masks": None,
        "with_truth": np.ones(len(X_val), dtype=bool),
        "params": {"max_epochs": args.max_epochs},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["pneumoniamnist", "phantoms"],
        choices=["pneumoniamnist", "phantoms"],
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-val", type=int, default=200, help="images scored")
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument(
        "--refit-epochs",
        type=int,
        default=10,
        help="epochs of the clone fitted on permuted labels (data_randomisation)",
    )
    parser.add_argument("--quick", action="store_true", help="phantoms, seconds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    require_at_least(parser, args, ["n_val", "max_epochs", "refit_epochs", "threads"])
    torch.set_num_threads(args.threads)
    method_params: dict[str, Any] = {}
    if args.quick:
        args.n_val = min(args.n_val, 24)
        args.refit_epochs = 1
        method_params = {
            "smoothgrad": {"n_samples": 4},
            "integrated_gradients": {"n_steps": 8},
        }
    results: dict[str, Any] = {
        "seed": args.seed,
        "quick": args.quick,
        "datasets": {},
    }
    for name in args.datasets:
        data = _load(name, args)
        if data is None:
            continue
        X_train, y_train = data["train"]
        X_val, y_val = data["val"]
        masks = data["masks"]
        start = time.perf_counter()
        clf = MedicalCNNClassifier(random_state=args.seed, **data["params"])
        clf.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - start
        proba = clf.predict_proba(X_val)[:, 1]
        model = {
            "params": data["params"],
            "fit_seconds": fit_seconds,
            "n_train": len(X_train),
            "n_val": len(X_val),
            "val_accuracy": float(accuracy_score(y_val, proba >= 0.5)),
        }
        if len(np.unique(y_val)) == 2:
            model["val_auc"] = float(roc_auc_score(y_val, proba))
        print(
            f"\n{name}: fit {fit_seconds:.0f} s on {len(X_train)} images; "
            f"{len(X_val)} validation images, ACC {model['val_accuracy']:.3f}"
            + (f", AUC {model['val_auc']:.3f}" if "val_auc" in model else "")
        )
        metrics = FAITHFULNESS + RANDOMISATION
        methods: dict[str, Any] = {method: method for method in METHODS}
        methods["random"] = _random_maps
        if masks is not None:
            metrics += LOCALISATION
            methods["truth"] = _truth_maps(X_val, masks)
            model["n_with_truth"] = int(data["with_truth"].sum())
        scores: dict[str, dict[str, float]] = {}
        seconds: dict[str, dict[str, float]] = {}
        for label, method in methods.items():
            scores[label], seconds[label] = {}, {}
            for metric in metrics:
                if label in ("random", "truth") and metric in RANDOMISATION:
                    continue  # these maps do not depend on a model
                rows = slice(None) if metric in RANDOMISATION else data["with_truth"]
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # blank CAMs
                    value = explanation_score(
                        clf,
                        X_val[rows],
                        y_val[rows],
                        method=method,
                        metric=VARIANTS.get(metric, (metric, {}))[0],
                        **VARIANTS.get(metric, (metric, {}))[1],
                        masks=None if masks is None else masks[rows],
                        method_params=method_params.get(label),
                        max_epochs=args.refit_epochs,
                        random_state=args.seed,
                    )
                scores[label][metric] = float(value)
                seconds[label][metric] = time.perf_counter() - start
            print(
                f"{label:22s} "
                + " ".join(f"{m}={v:.3f}" for m, v in scores[label].items())
                + f"  ({sum(seconds[label].values()):.0f} s)",
                flush=True,
            )
        results["datasets"][name] = {
            "model": model,
            "metrics": metrics,
            "scores": scores,
            "seconds": seconds,
        }
    print()
    print(markdown_table(results))
    save_results(results, args.json)
    return results


def markdown_table(results: dict[str, Any]) -> str:
    """Return the scores as one table per data set (methods by metrics)."""
    lines = []
    for name, found in results["datasets"].items():
        metrics = found["metrics"]
        lines.append(f"{name}:")
        lines.append("| method | " + " | ".join(metrics) + " |")
        lines.append("|---" * (len(metrics) + 1) + "|")
        for label, row in found["scores"].items():
            cells = [f"{row[m]:.3f}" if m in row else "-" for m in metrics]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
