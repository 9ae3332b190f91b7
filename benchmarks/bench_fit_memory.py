"""Benchmark: peak memory of fitting the reference CNN on a large uint8 data set.

In a fresh process: import sk_medcnn, note the resident memory (RSS), build
``--n-images`` uint8 images of ``--size`` px in memory (default 50,000 x 64 x
64, 205 MB), then fit ``MedicalCNNClassifier()`` (the defaults: a 10% split
held out for calibration) for ``--epochs`` epochs and predict the first
1,000 images. The process's peak RSS (``VmHWM``) minus the RSS after the
imports is the memory the data and the fit took. Target: at most the size of
the images plus 300 MB, that is no float copy of the data set (a float32 copy
alone would be 4 x 205 MB).

The peak varies from run to run: glibc's malloc raises its mmap threshold
dynamically, after which freed activation buffers stay in its arenas and
fragment (measured with 20,000 images: peaks of 308, 324 and 712 MB over the
imports, and a steady 253 MB in three runs with a fixed threshold). The
measurement therefore runs twice, with glibc's default and with
``MALLOC_MMAP_THRESHOLD_`` fixed at ``--mmap-threshold`` bytes (default 4 MiB:
the activations of larger batches are then mapped and unmapped, small ones
stay on the heap).

Run from the project root::

    python benchmarks/bench_fit_memory.py
    python benchmarks/bench_fit_memory.py --quick    # 2,000 images
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
from benchmarks._common import save_results  # noqa: E402

MARGIN_MB = 300.0
_TUNABLE = "MALLOC_MMAP_THRESHOLD_"


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"{field} is not in /proc/self/status")


def child(
    n_images: int, size: int, epochs: int, memory_format: str = "auto"
) -> dict[str, Any]:
    """The measurement, in this (fresh) process."""
    import numpy as np

    from sk_medcnn import MedicalCNNClassifier

    after_imports = _status_mb("VmRSS")
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(n_images, size, size), dtype=np.uint8)
    y = (np.arange(n_images) % 2).astype(np.int64)
    with_data = _status_mb("VmRSS")
    start = time.perf_counter()
    clf = MedicalCNNClassifier(
        max_epochs=epochs, device="cpu", random_state=0, memory_format=memory_format
    )
    clf.fit(X, y)
    fit_s = time.perf_counter() - start
    clf.predict_proba(X[:1000])
    peak = _status_mb("VmHWM")
    data_mb = X.nbytes / 2**20
    used = peak - after_imports
    return {
        "n_images": n_images,
        "size": size,
        "epochs": epochs,
        "data_mb": data_mb,
        "rss_after_imports_mb": after_imports,
        "rss_with_data_mb": with_data,
        "peak_rss_mb": peak,
        "peak_minus_imports_mb": used,
        "over_data_mb": used - data_mb,
        "fit_s": fit_s,
        "targets": {"margin_mb": MARGIN_MB, "ok": used <= data_mb + MARGIN_MB},
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the measurement in a fresh process and print it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--mmap-threshold", type=int, default=4 * 2**20)
    parser.add_argument(
        "--memory-format",
        choices=("auto", "contiguous", "channels_last"),
        default="auto",
        help="the classifier's training layout (default: its default)",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick and args.n_images == parser.get_default("n_images"):
        args.n_images = 2000
    if args.child:
        print(
            json.dumps(child(args.n_images, args.size, args.epochs, args.memory_format))
        )
        return {}
    command = [
        sys.executable,
        __file__,
        "--child",
        "--n-images",
        str(args.n_images),
        "--size",
        str(args.size),
        "--epochs",
        str(args.epochs),
        "--memory-format",
        args.memory_format,
    ]
    env = {key: value for key, value in os.environ.items() if key != _TUNABLE}
    runs = {}
    for name, extra in (
        ("glibc_default", {}),
        ("fixed_mmap_threshold", {_TUNABLE: str(args.mmap_threshold)}),
    ):
        output = subprocess.run(
            command, check=True, capture_output=True, text=True, env={**env, **extra}
        ).stdout
        runs[name] = json.loads(output.strip().splitlines()[-1])
        run = runs[name]
        print(
            f"{name}: fit on {run['n_images']:,} uint8 images of {args.size}x"
            f"{args.size} ({run['data_mb']:.0f} MB), {args.epochs} epoch(s) in "
            f"{run['fit_s']:.0f} s: RSS after imports "
            f"{run['rss_after_imports_mb']:.0f} MB, peak {run['peak_rss_mb']:.0f}"
            f" MB; peak minus imports {run['peak_minus_imports_mb']:.0f} MB = data "
            f"+ {run['over_data_mb']:.0f} MB (target <= data + {MARGIN_MB:.0f} MB: "
            f"{'met' if run['targets']['ok'] else 'not met'})"
        )
    results = {**runs["glibc_default"], "runs": runs}
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
