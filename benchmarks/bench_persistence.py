"""Benchmark: the safe ``.skmed`` format against ``joblib.dump``, size and load time.

For each network (the reference CNN ``simple_cnn`` and ResNet-18, whose small-image
stem is chosen for 28x28 inputs), a ``MedicalCNNClassifier`` is fitted for one
epoch on synthetic 28x28x1 images (the weights' size does not depend on the data),
then saved with :func:`sk_medcnn.persistence.save_model` and with ``joblib.dump``
(uncompressed, its default). Reported per network and format: the file size, and
the median save and load times over ``--repeats`` (the file is in the page cache,
so these are CPU costs, not disk costs), with the ratios ``.skmed / joblib``.
Every load is checked to predict exactly as the fitted model does.

``load_model`` does more than ``joblib.load``: it checks the zip limits and the
SHA-256 of every member, validates the JSON document, rebuilds the network from
the registry and predicts one blank image before returning.

Run from the project root::

    python benchmarks/bench_persistence.py                  # 20 repeats
    python benchmarks/bench_persistence.py --quick          # 2 repeats, a smoke run
    python benchmarks/bench_persistence.py --json reports/bench_persistence.json

Timings need quiet cores: the header prints the load average; torch runs on one
thread (``--threads``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
from benchmarks._common import require_at_least, save_results  # noqa: E402
from sk_medcnn import MedicalCNNClassifier, __version__  # noqa: E402
from sk_medcnn.persistence import load_model, save_model  # noqa: E402

CASES = ("simple_cnn", "resnet18")
LABELS = {"simple_cnn": "simple_cnn 28x28x1", "resnet18": "ResNet-18 28x28x1"}
FORMATS = ("skmed", "joblib")


def fit_model(architecture: str, n_images: int, seed: int = 0) -> tuple[Any, Any]:
    """Fit one epoch on random 28x28 images; return the model and some images."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n_images, 28, 28), dtype=np.uint8)
    y = np.arange(n_images) % 2
    model = MedicalCNNClassifier(
        architecture, max_epochs=1, batch_size=16, device="cpu", random_state=seed
    ).fit(X, y)
    return model, X[:16]


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def measure(
    model: Any, X: Any, folder: Path, *, repeats: int
) -> dict[str, dict[str, float]]:
    """Size, median save and load time of both formats; check the predictions."""
    expected = model.predict_proba(X)
    savers = {
        "skmed": (
            folder / "model.skmed",
            lambda path: save_model(model, path),
            load_model,
        ),
        "joblib": (
            folder / "model.joblib",
            lambda path: joblib.dump(model, path),
            joblib.load,
        ),
    }
    times: dict[str, dict[str, list[float]]] = {
        name: {"save": [], "load": []} for name in FORMATS
    }
    for repeat in range(repeats + 1):  # the first round warms up, uncounted
        # alternate the order, so that drift does not favour one format
        order = FORMATS if repeat % 2 == 0 else FORMATS[::-1]
        for name in order:
            path, save, load = savers[name]
            save_seconds, _ = _timed(lambda: save(path))  # noqa: B023
            load_seconds, loaded = _timed(lambda: load(path))  # noqa: B023
            if not np.array_equal(loaded.predict_proba(X), expected):
                raise AssertionError(f"{name} changed the predictions")
            if repeat > 0:
                times[name]["save"].append(save_seconds)
                times[name]["load"].append(load_seconds)
    results: dict[str, dict[str, float]] = {}
    for name in FORMATS:
        path = savers[name][0]
        results[name] = {
            "bytes": path.stat().st_size,
            "save_ms": 1000 * statistics.median(times[name]["save"]),
            "load_ms": 1000 * statistics.median(times[name]["load"]),
        }
    results["ratio"] = {
        key: results["skmed"][key] / results["joblib"][key]
        for key in ("bytes", "save_ms", "load_ms")
    }
    results["n_parameters"] = {
        "count": sum(p.numel() for p in model.net_.module_.parameters())
    }
    return results


def format_table(results: dict[str, Any]) -> str:
    config = results["config"]
    lines = [
        f".skmed (sk_medcnn.persistence) vs joblib.dump: median of "
        f"{config['repeats']} save/load round(s), {config['threads']} torch thread(s)",
        f"sk_medcnn {config['sk_medcnn']}, torch {config['torch']}, scikit-learn "
        f"{config['sklearn']}, numpy {config['numpy']}, joblib {config['joblib']}, "
        f"{config['cpu_count']} CPUs, load average before {config['load_average']}",
        "",
        f"{'network':<22}{'parameters':>12}{'format':>9}{'size MB':>10}"
        f"{'save ms':>10}{'load ms':>10}",
    ]
    for case in config["cases"]:
        row = results[case]
        for name in (*FORMATS, "ratio"):
            figures = row[name]
            label = LABELS[case] if name == "skmed" else ""
            count = f"{row['n_parameters']['count']:,}" if name == "skmed" else ""
            if name == "ratio":
                lines.append(
                    f"{'':<22}{'':>12}{'ratio':>9}{figures['bytes']:>9.3f}x"
                    f"{figures['save_ms']:>9.2f}x{figures['load_ms']:>9.2f}x"
                )
            else:
                lines.append(
                    f"{label:<22}{count:>12}{name:>9}{figures['bytes'] / 1e6:>10.2f}"
                    f"{figures['save_ms']:>10.1f}{figures['load_ms']:>10.1f}"
                )
    lines.append("(ratio = .skmed / joblib; sizes in MB of 10^6 bytes)")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=None, help="default 20")
    parser.add_argument(
        "--quick", action="store_true", help="2 repeats, 16 images: a smoke run"
    )
    parser.add_argument(
        "--n-images", type=int, default=None, help="training images (default 64)"
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=CASES,
        default=list(CASES),
        help="which networks (default: all)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", type=Path, default=None, help="save the results")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 20
    if args.n_images is None:
        args.n_images = 16 if args.quick else 64
    require_at_least(parser, args, ("repeats", "n_images", "threads"))
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and return the results."""
    args = parse_args(argv)
    load_average = round(os.getloadavg()[0], 2)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        results: dict[str, Any] = {
            "config": {
                "repeats": args.repeats,
                "n_images": args.n_images,
                "cases": list(args.cases),
                "threads": args.threads,
                "load_average": load_average,
                "sk_medcnn": __version__,
                "torch": torch.__version__,
                "sklearn": sklearn.__version__,
                "numpy": np.__version__,
                "joblib": joblib.__version__,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpu_count": os.cpu_count(),
            }
        }
        with tempfile.TemporaryDirectory() as folder:
            for case in args.cases:
                model, X = fit_model(case, args.n_images)
                results[case] = measure(model, X, Path(folder), repeats=args.repeats)
    finally:
        torch.set_num_threads(threads)
    print(format_table(results))
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
