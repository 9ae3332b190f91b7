"""Benchmark: one-image ``predict_proba`` latency against the bare network forward.

Fits ``MedicalCNNClassifier`` on 28x28 grayscale images as ``bench_fit.py``
does (``simple_cnn``, no augmentation, no calibration, no test-time views; the
out-of-distribution score is learned, as by default), then alternates, round
after round, two timed loops over the same one-image inputs:

- ``predict_proba(X[i:i + 1])``, the whole public call;
- the bare network, ``net_.module_(x)`` under ``torch.inference_mode()`` on
  the image already converted to a float32 tensor: the floor any wrapper
  starts from, measured the same way in the same process.

It prints each round's medians, the median over rounds, the difference (the
library's own cost) and the ratio. ``--threads`` lists the torch thread counts
to time the bare forward with (one image: the library leaves torch's setting
alone). The figures move with the load of the machine: the script prints
``/proc/loadavg`` before and after. To compare two versions of the library,
run it alternately with each on ``PYTHONPATH``::

    PYTHONPATH=../main python benchmarks/bench_latency.py
    python benchmarks/bench_latency.py
    python benchmarks/bench_latency.py --quick     # synthetic images, seconds
    python benchmarks/bench_latency.py --ood-baseline --threads 2

``--ood-baseline`` also times the out-of-distribution score against its former
implementation, in alternating rounds in the same process: the library's
``mahalanobis_score`` (torch's float64 matrix product) against
:func:`einsum_mahalanobis` (``numpy.einsum`` over each class mean), each
swapped into ``predict_proba`` in turn; it prints ``predict_proba`` on the
validation images (images/s) and on one image (ms) with each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(PROJECT_ROOT))  # after PYTHONPATH: another checkout may come first
from benchmarks._common import DEFAULT_DATA  # noqa: E402


def load_images(path: Path | None, n_train: int) -> tuple[Any, Any, Any, str]:
    """Return uint8 training images, labels and validation images, and their source."""
    if path is not None and path.exists():
        data = np.load(path)
        X, y = data["train_images"][:n_train], data["train_labels"][:n_train].ravel()
        return X, y, data["val_images"], str(path)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(n_train + 64, 28, 28), dtype=np.uint8)
    y = (X[:, 10:18, 10:18].mean(axis=(1, 2)) > 127).astype(np.int64)
    return X[:n_train], y[:n_train], X[n_train:], "synthetic"


def median_ms(call: Callable[[int], Any], n_calls: int) -> float:
    """Median wall time of ``call(i)`` for ``i`` in ``range(n_calls)``, in ms."""
    for i in range(min(10, n_calls)):  # warm this loop's path
        call(i)
    times = []
    for i in range(n_calls):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def einsum_mahalanobis(
    features: np.ndarray, location: np.ndarray, precision: np.ndarray
) -> np.ndarray:
    """The out-of-distribution score as sk_medcnn computed it before 2026-12-06.

    The smallest Mahalanobis distance to a class mean, with ``numpy.einsum``
    summing the quadratic form term by term; non-finite features score
    ``inf``. The baseline of ``--ood-baseline``: same values as
    ``sk_medcnn._ood.mahalanobis_score`` to rounding.
    """
    features = np.asarray(features, dtype=np.float64)
    nearest = np.full(len(features), np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        for mean in location:
            diff = features - mean
            squared = np.einsum("ij,jk,ik->i", diff, precision, diff)
            nearest = np.fmin(nearest, squared)
    score = np.sqrt(np.clip(nearest, 0.0, None))
    score[~np.all(np.isfinite(features), axis=1)] = np.inf
    return np.where(np.isnan(score), np.inf, score)


def compare_ood_scores(
    estimator: Any, X_new: np.ndarray, rounds: int, calls: int
) -> dict[str, dict[str, float]]:
    """``predict_proba`` with each out-of-distribution score, alternating rounds.

    Returns, for ``"torch"`` (the library's) and ``"einsum"``
    (:func:`einsum_mahalanobis`), the median over rounds of the throughput on
    ``X_new`` (images/s, 5 calls a round) and of the one-image latency (ms,
    ``calls`` calls a round).
    """
    from sk_medcnn.estimators import _ood

    library = _ood.mahalanobis_score
    versions = {"torch": library, "einsum": einsum_mahalanobis}
    per_s: dict[str, list[float]] = {name: [] for name in versions}
    one_ms: dict[str, list[float]] = {name: [] for name in versions}
    one = X_new[:1]
    try:
        for _ in range(rounds):
            for name, score in versions.items():
                _ood.mahalanobis_score = score  # type: ignore[assignment]
                estimator.predict_proba(X_new)  # warm this version's path
                start = time.perf_counter()
                for _ in range(5):
                    estimator.predict_proba(X_new)
                per_s[name].append(5 * len(X_new) / (time.perf_counter() - start))
                one_ms[name].append(
                    median_ms(lambda i: estimator.predict_proba(one), calls)
                )
    finally:
        _ood.mahalanobis_score = library
    return {
        name: {
            "images_per_s": statistics.median(per_s[name]),
            "one_image_ms": statistics.median(one_ms[name]),
        }
        for name in versions
    }


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--calls", type=int, default=1500, help="calls per loop")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="synthetic, tiny")
    parser.add_argument(
        "--ood-baseline",
        action="store_true",
        help="also time the OOD score against its numpy einsum baseline",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.data, args.n_train, args.calls, args.rounds = None, 96, 20, 2

    import sk_medcnn
    from sk_medcnn import MedicalCNNClassifier

    X, y, X_new, source = load_images(args.data, args.n_train)
    estimator = MedicalCNNClassifier(
        architecture="simple_cnn",
        max_epochs=args.epochs,
        batch_size=32,
        lr_schedule=None,
        calibration=None,
        tta=None,
        augmentation=None,
        random_state=0,
        device="cpu",
    ).fit(X, y)
    images = [X_new[i % len(X_new)][np.newaxis] for i in range(args.calls)]
    tensors = [
        torch.from_numpy(image[..., np.newaxis].astype(np.float32)) for image in images
    ]
    module = estimator.net_.module_

    def bare(i: int) -> None:
        with torch.inference_mode():
            module(tensors[i])

    threads = torch.get_num_threads()
    print(
        f"one-image latency: simple_cnn, {X.shape[1]}x{X.shape[2]} images ({source}), "
        f"torch {torch.__version__}, {threads} thread(s), {args.calls} calls x "
        f"{args.rounds} rounds; load average {_load()}; sk_medcnn from "
        f"{Path(sk_medcnn.__file__).parent}"
    )
    print(
        f"{'round':>5}  {'predict_proba ms':>16}  {'bare forward ms':>15}  {'ratio':>6}"
    )
    proba, forward, n_calls = [], [], args.calls
    for round_ in range(args.rounds):
        proba.append(
            median_ms(lambda i: estimator.predict_proba(images[i]), args.calls)
        )
        forward.append(median_ms(bare, n_calls))
        print(
            f"{round_:>5}  {proba[-1]:>16.3f}  {forward[-1]:>15.3f}  "
            f"{proba[-1] / forward[-1]:>5.2f}x"
        )
    results: dict[str, Any] = {
        "predict_proba_ms": statistics.median(proba),
        "bare_forward_ms": statistics.median(forward),
    }
    results["overhead_ms"] = results["predict_proba_ms"] - results["bare_forward_ms"]
    print(
        f"median  {results['predict_proba_ms']:>16.3f}  "
        f"{results['bare_forward_ms']:>15.3f}  "
        f"{results['predict_proba_ms'] / results['bare_forward_ms']:>5.2f}x; "
        f"the library's own cost {results['overhead_ms']:.3f} ms"
    )
    for n_threads in args.threads:
        torch.set_num_threads(n_threads)
        figure = statistics.median(median_ms(bare, args.calls) for _ in range(2))
        results[f"bare_forward_{n_threads}_threads_ms"] = figure
        print(f"bare forward with {n_threads} thread(s): {figure:.3f} ms")
    torch.set_num_threads(threads)
    if args.ood_baseline:
        torch.set_num_threads(args.threads[-1])
        ood = compare_ood_scores(estimator, X_new, args.rounds, args.calls)
        torch.set_num_threads(threads)
        results["ood_score"] = ood
        for name, figures in ood.items():
            print(
                f"OOD score by {name:<6} ({args.threads[-1]} thread(s)): "
                f"predict_proba {figures['images_per_s']:,.0f} images/s on "
                f"{len(X_new)} images, one image {figures['one_image_ms']:.3f} ms"
            )
        print(
            "torch / einsum throughput: "
            f"{ood['torch']['images_per_s'] / ood['einsum']['images_per_s']:.2f}x"
        )
    print(f"load average after: {_load()}")
    return results


if __name__ == "__main__":
    main()
