"""Benchmark: GridSearchCV over the reference CNN with n_jobs=1 and n_jobs=2.

The same search (``lr`` x ``batch_size``, 4 candidates, 2-fold stratified CV,
so 8 fits and the refit) runs with ``n_jobs=1`` in this process (torch's
default threads: one per core) and with ``n_jobs=2`` on joblib's default
process backend (loky). No ``n_threads`` is set: loky starts its workers with
``OMP_NUM_THREADS`` = cores // n_jobs, which torch reads, so two workers on
two cores use one thread each instead of oversubscribing them. The workers
are started (and torch imported in them) before the timed search, as they
are for every search after a session's first; their start-up time is printed
separately. Target: ``n_jobs=2`` at least 1.6x faster.

The mean test scores of the two searches are printed too: each fit is seeded,
so they differ only by the rounding of one against two threads per fit.

Run from the project root, alone on the machine::

    python benchmarks/bench_search.py
    python benchmarks/bench_search.py --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
from benchmarks._common import DEFAULT_DATA, save_results  # noqa: E402

SPEEDUP_MIN = 1.6


def _worker_threads(_: int) -> tuple[int, int]:
    import torch as worker_torch

    return os.getpid(), worker_torch.get_num_threads()


def load(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    """Images and labels: the PneumoniaMNIST train split, or phantoms."""
    if args.data.exists():
        with np.load(args.data) as data:
            X, y = data["train_images"], data["train_labels"].ravel()
        source = str(args.data)
    else:
        from sk_medcnn.datasets import make_lesion_phantoms

        X, y = make_lesion_phantoms(args.n_images, image_size=28, random_state=0)
        source = "lesion phantoms (the PneumoniaMNIST file is absent)"
    return X[: args.n_images], y[: args.n_images], source


def make_search(n_jobs: int, epochs: int, n_threads: int | None = None) -> Any:
    """The search: 4 candidates x 2 folds of the reference CNN."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from sk_medcnn import MedicalCNNClassifier

    clf = MedicalCNNClassifier(
        max_epochs=epochs,
        lr_schedule=None,
        calibration=None,
        tta=None,
        device="cpu",
        n_threads=n_threads,
        random_state=0,
    )
    return GridSearchCV(
        clf,
        {"lr": [1e-3, 3e-3], "batch_size": [32, 64]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        scoring="roc_auc",
        n_jobs=n_jobs,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both searches, print the figures and return them."""
    import joblib

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=2400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="256 images, 1 epoch")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_images, args.epochs = 256, 1
    X, y, source = load(args)

    start = time.perf_counter()
    workers = joblib.Parallel(n_jobs=2)(
        joblib.delayed(_worker_threads)(i) for i in range(4)
    )
    startup_s = time.perf_counter() - start
    worker_threads = sorted({threads for _, threads in workers})

    timings: dict[int, float] = {}
    scores: dict[int, list[float]] = {}
    for n_jobs in (1, 2):
        search = make_search(n_jobs, args.epochs)
        start = time.perf_counter()
        search.fit(X, y)
        timings[n_jobs] = time.perf_counter() - start
        scores[n_jobs] = [float(v) for v in search.cv_results_["mean_test_score"]]
    speedup = timings[1] / timings[2]
    # what the thread limit saves: two workers with two threads each
    start = time.perf_counter()
    make_search(2, args.epochs, n_threads=os.cpu_count() or 1).fit(X, y)
    oversubscribed = time.perf_counter() - start
    # the ceiling for any n_jobs speedup: how well one fit uses both cores
    single: dict[int, float] = {}
    for threads in (1, torch.get_num_threads()):
        clf = make_search(1, args.epochs, n_threads=threads).estimator
        start = time.perf_counter()
        clf.fit(X[: len(X) // 2], y[: len(y) // 2])
        single[threads] = time.perf_counter() - start
    results = {
        "config": {
            "n_images": len(X),
            "epochs": args.epochs,
            "data": source,
            "torch": torch.__version__,
            "threads_in_this_process": torch.get_num_threads(),
            "threads_per_worker": worker_threads,
            "cpu_count": os.cpu_count(),
        },
        "worker_startup_s": startup_s,
        "n_jobs_1_s": timings[1],
        "n_jobs_2_s": timings[2],
        "speedup": speedup,
        "n_jobs_2_oversubscribed_s": oversubscribed,
        "one_fit_s_by_threads": single,
        "thread_scaling": single[1] / single[torch.get_num_threads()],
        "mean_test_scores": scores,
        "max_score_difference": float(
            np.max(np.abs(np.subtract(scores[1], scores[2])))
        ),
        "targets": {"speedup_min": SPEEDUP_MIN, "speedup_ok": speedup >= SPEEDUP_MIN},
    }
    print(
        f"GridSearchCV, 4 candidates x 2 folds + refit, {len(X)} images, "
        f"{args.epochs} epochs each ({source})\n"
        f"n_jobs=1 ({torch.get_num_threads()} torch threads): {timings[1]:.1f} s\n"
        f"n_jobs=2 (torch threads per worker: {worker_threads}): {timings[2]:.1f} s\n"
        f"speedup {speedup:.2f}x (target >= {SPEEDUP_MIN}x: "
        f"{'met' if speedup >= SPEEDUP_MIN else 'not met'}); worker start-up "
        f"before the search {startup_s:.1f} s; largest difference of the mean "
        f"test scores {results['max_score_difference']:.4f}\n"
        f"n_jobs=2 with {os.cpu_count()} torch threads per worker (oversubscribed): "
        f"{oversubscribed:.1f} s\n"
        f"one fit on half the images: 1 thread {single[1]:.2f} s, "
        f"{torch.get_num_threads()} threads {single[torch.get_num_threads()]:.2f} s "
        f"({results['thread_scaling']:.2f}x): the threads of one fit already use the "
        "cores this well, which bounds what n_jobs can add"
    )
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
