"""Benchmark: caching a Pipeline's preprocessing on disk during a GridSearchCV.

A search over the classifier's parameters refits the whole Pipeline for every
candidate and fold, preprocessing included. With scikit-learn's
``Pipeline(memory=...)`` (a ``joblib.Memory`` cache on disk) the fitted
preprocessing steps of a fold are computed once and loaded for the other
candidates. This runs the same search (``Resize`` to ``--size`` px then
``CLAHE``, then ``MedicalCNNClassifier``; 3 learning rates x 3 folds) without
and with the cache (cold: an empty cache directory) and prints the wall
times, the preprocessing time each did (counted inside the transformers) and
the best scores (identical: the cached results are the same arrays).

Run from the project root, alone on the machine::

    python benchmarks/bench_cache.py
    python benchmarks/bench_cache.py --quick
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
from benchmarks._common import DEFAULT_DATA, save_results  # noqa: E402
from sk_medcnn.preprocessing import CLAHE  # noqa: E402


class TimedCLAHE(CLAHE):
    """``CLAHE`` that adds the seconds each of its transforms takes to a file.

    A file, not an attribute: joblib's cache returns a stored copy of the
    fitted step, and the search may run steps in other processes.
    """

    def __init__(
        self, log: str = "", kernel_size: Any = None, clip_limit: float = 0.01
    ):
        super().__init__(kernel_size=kernel_size, clip_limit=clip_limit)
        self.log = log

    def _transform_images(self, images: Any) -> Any:
        # the worker behind both transform and fit_transform
        start = time.perf_counter()
        out = super()._transform_images(images)
        with open(self.log, "a") as log:
            log.write(f"{time.perf_counter() - start}\n")
        return out


def search(memory: str | None, log: str, args: argparse.Namespace) -> Any:
    """The GridSearchCV of the benchmark."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    from sk_medcnn import MedicalCNNClassifier
    from sk_medcnn.preprocessing import Resize

    pipeline = Pipeline(
        [
            ("resize", Resize((args.size, args.size))),
            ("clahe", TimedCLAHE(log=log)),
            (
                "clf",
                MedicalCNNClassifier(
                    max_epochs=args.epochs,
                    lr_schedule=None,
                    calibration=None,
                    tta=None,
                    device="cpu",
                    random_state=0,
                ),
            ),
        ],
        memory=memory,
    )
    return GridSearchCV(
        pipeline,
        {"clf__lr": [3e-4, 1e-3, 3e-3]},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        scoring="roc_auc",
        refit=False,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the search without and with the cache; print and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=3000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="300 images, 32 px")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_images, args.size = 300, 32
    if args.data.exists():
        with np.load(args.data) as data:
            X, y = data["train_images"][: args.n_images], data["train_labels"].ravel()
        y = y[: args.n_images]
        source = str(args.data)
    else:
        from sk_medcnn.datasets import make_lesion_phantoms

        X, y = make_lesion_phantoms(args.n_images, image_size=28, random_state=0)
        source = "lesion phantoms"

    results: dict[str, Any] = {
        "config": {
            "n_images": len(X),
            "size": args.size,
            "epochs": args.epochs,
            "data": source,
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, memory in (("no_cache", None), ("cache", str(Path(tmp) / "cache"))):
            log = str(Path(tmp) / f"{name}.log")
            Path(log).touch()
            grid = search(memory, log, args)
            start = time.perf_counter()
            grid.fit(X, y)
            seconds = time.perf_counter() - start
            calls = [float(v) for v in Path(log).read_text().split()]
            results[name] = {
                "wall_s": seconds,
                "clahe_calls": len(calls),
                "clahe_s": sum(calls),
                "mean_test_scores": [
                    float(v) for v in grid.cv_results_["mean_test_score"]
                ],
            }
    results["saving_s"] = results["no_cache"]["wall_s"] - results["cache"]["wall_s"]
    results["speedup"] = results["no_cache"]["wall_s"] / results["cache"]["wall_s"]
    results["same_scores"] = bool(
        np.allclose(
            results["no_cache"]["mean_test_scores"],
            results["cache"]["mean_test_scores"],
        )
    )
    print(
        f"GridSearchCV of Resize({args.size}) + CLAHE + MedicalCNNClassifier, 3 "
        f"candidates x 3 folds, {len(X)} images, {args.epochs} epoch(s) ({source})\n"
        f"without cache: {results['no_cache']['wall_s']:.1f} s "
        f"({results['no_cache']['clahe_calls']} CLAHE transforms, "
        f"{results['no_cache']['clahe_s']:.1f} s)\n"
        f"with Pipeline(memory=...), cold cache: {results['cache']['wall_s']:.1f} s "
        f"({results['cache']['clahe_calls']} CLAHE transforms, "
        f"{results['cache']['clahe_s']:.1f} s)\n"
        f"saving {results['saving_s']:.1f} s ({results['speedup']:.2f}x); "
        f"same scores: {results['same_scores']}"
    )
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
