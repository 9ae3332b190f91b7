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
    print(f"load average after: {_load()}")
    return results


if __name__ == "__main__":
    main()
