"""The performance suite: ``python -m benchmarks`` (or ``make bench``).

Runs each case in its own process (so that memory high-water marks and torch
thread settings do not leak from one case into the next), prints each case's
own table as it goes, saves every case's JSON under ``--output`` and ends with
one table of the targets: the figure reached, the target and whether it is
met. Cases and their scripts (each also runs alone; see its ``--help``):

===============  ======================  ===========================================
case             script                  what it measures against what
===============  ======================  ===========================================
fit              bench_fit.py            reference CNN, 10 epochs: fit time, train
                                         and predict images/s, one-image latency,
                                         peak RSS; vs the plain PyTorch loop
augmentation     bench_augmentation.py   epoch time with flip + rotation + affine +
                                         intensity vs without; vs scikit-image
models           bench_models.py         ResNet-18 at 28/64 px in fp32, bf16 and
                                         channels-last vs the plain fp32 loop, with
                                         validation AUC fp32 vs bf16; scaling of
                                         simple_cnn and ResNet-18 from 28 to 224 px
                                         with FLOPs and the fraction of the peak
search           bench_search.py         GridSearchCV n_jobs=1 vs n_jobs=2
preprocessing    bench_preprocessing.py  Resize, IntensityNormalizer, CLAHE on
                                         10,000 images vs per-image loops
memory           bench_fit_memory.py     peak RSS of fit on 50,000 64x64 uint8
                                         images vs their size
===============  ======================  ===========================================

``--smoke`` runs every case on tiny settings (seconds each, figures
meaningless) to check that the suite works; CI runs it. Timings need quiet
cores: run the full suite alone on the machine.

Examples, from the project root::

    python -m benchmarks                           # everything (~30 min, 2 cores)
    python -m benchmarks --cases fit search        # some cases
    python -m benchmarks --smoke --output /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parent

# case -> (script, arguments of the full run, arguments of the smoke run)
CASES: dict[str, tuple[str, list[str], list[str]]] = {
    "fit": (
        "bench_fit.py",
        ["--repeats", "3"],
        [
            "--synthetic",
            "--epochs",
            "1",
            "--n-train",
            "128",
            "--n-valid",
            "64",
            "--predict-calls",
            "2",
            "--latency-calls",
            "5",
            "--quiet-timeout",
            "0",
            "--max-retries",
            "0",
            "--no-rss-subprocess",
        ],
    ),
    "augmentation": ("bench_augmentation.py", [], ["--quick"]),
    "models": ("bench_models.py", [], ["--quick", "--accuracy-epochs", "0"]),
    "search": ("bench_search.py", [], ["--quick"]),
    "preprocessing": ("bench_preprocessing.py", [], ["--quick"]),
    "memory": ("bench_fit_memory.py", [], ["--quick", "--n-images", "500"]),
}


def _get(results: dict[str, Any], *keys: str) -> Any:
    value: Any = results
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _best_resnet_ratio(results: dict[str, Any]) -> float | None:
    rows = _get(results, "resnet18", "rows") or []
    return max((row["best_ratio"] for row in rows), default=None)


# (case, target, how to read the figure, comparison, threshold, unit)
TARGETS: list[tuple[str, str, Callable[[dict[str, Any]], Any], str, float, str]] = [
    (
        "fit",
        "fit time / plain loop",
        lambda r: _get(r, "ratios", "fit_time_s"),
        "<=",
        1.0,
        "x",
    ),
    (
        "fit",
        "predict_proba images/s / plain one-batch call",
        lambda r: _get(r, "ratios", "predict_images_per_s"),
        ">=",
        1.5,
        "x",
    ),
    (
        "fit",
        "one-image latency",
        lambda r: _get(r, "sk_medcnn", "latency_ms"),
        "<=",
        0.3,
        " ms",
    ),
    (
        "augmentation",
        "epoch time with augmentation / without",
        lambda r: _get(r, "overhead", "ratio"),
        "<=",
        1.25,
        "x",
    ),
    (
        "models",
        "ResNet-18 best option / plain fp32 loop",
        _best_resnet_ratio,
        ">=",
        1.5,
        "x",
    ),
    (
        "models",
        "|AUC bf16 - AUC fp32| (ResNet-18)",
        lambda r: (
            None
            if _get(r, "resnet18", "accuracy", "auc_difference") is None
            else abs(r["resnet18"]["accuracy"]["auc_difference"])
        ),
        "<=",
        0.005,
        "",
    ),
    (
        "search",
        "GridSearchCV n_jobs=2 speedup",
        lambda r: r.get("speedup"),
        ">=",
        1.6,
        "x",
    ),
    (
        "memory",
        "fit peak RSS over imports - data size",
        lambda r: r.get("over_data_mb"),
        "<=",
        300.0,
        " MB",
    ),
    (
        "memory",
        "the same, MALLOC_MMAP_THRESHOLD_ fixed",
        lambda r: _get(r, "runs", "fixed_mmap_threshold", "over_data_mb"),
        "<=",
        300.0,
        " MB",
    ),
]


def run_case(name: str, smoke: bool, output: Path) -> dict[str, Any] | None:
    """Run one case's script in a fresh process; return its JSON results."""
    script, full, quick = CASES[name]
    json_path = output / f"{name}.json"
    json_path.unlink(missing_ok=True)  # never report a previous run's figures
    command = [
        sys.executable,
        str(HERE / script),
        *(quick if smoke else full),
        "--json",
        str(json_path),
    ]
    print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=PROJECT_ROOT, check=False)
    print(f"=== {name}: {time.perf_counter() - start:.0f} s", flush=True)
    if completed.returncode != 0 or not json_path.exists():
        print(f"=== {name} FAILED (exit status {completed.returncode})", flush=True)
        return None
    results: dict[str, Any] = json.loads(json_path.read_text())
    return results


def summarise(results: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """One row per target of the cases that ran."""
    rows = []
    for case, label, read, comparison, threshold, unit in TARGETS:
        if case not in results:
            continue
        figure = None if results[case] is None else read(results[case])
        met = None
        if figure is not None:
            met = figure <= threshold if comparison == "<=" else figure >= threshold
        rows.append(
            {
                "case": case,
                "target": label,
                "figure": figure,
                "comparison": comparison,
                "threshold": threshold,
                "unit": unit,
                "met": met,
                "failed": results[case] is None,
            }
        )
    return rows


def format_summary(rows: list[dict[str, Any]]) -> str:
    """The targets table as text."""
    lines = [
        f"{'case':<13} {'target':<46} {'figure':>10} {'target':>10}  met",
        "-" * 87,
    ]
    for row in rows:
        figure = (
            f"{row['figure']:.3g}"
            if row["figure"] is not None
            else ("failed" if row["failed"] else "not run")
        )
        verdict = {True: "yes", False: "NO", None: "-"}[row["met"]]
        lines.append(
            f"{row['case']:<13} {row['target']:<46} {figure + row['unit']:>10} "
            f"{row['comparison']} {row['threshold']:g}{row['unit']:<4} {verdict}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen cases; return 1 if one failed to run, else 0."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cases", nargs="+", choices=tuple(CASES), default=None)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny settings: checks the suite runs"
    )
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "reports" / "benchmarks"
    )
    args = parser.parse_args(argv)
    cases = args.cases or list(CASES)
    args.output.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; python {platform.python_version()}"
        + ("; SMOKE RUN: figures are meaningless" if args.smoke else "")
    )
    results = {name: run_case(name, args.smoke, args.output) for name in cases}
    rows = summarise(results)
    print("\n" + format_summary(rows))
    summary_path = args.output / "summary.json"
    summary_path.write_text(
        json.dumps({"smoke": args.smoke, "targets": rows}, indent=2) + "\n"
    )
    print(f"\nresults in {args.output}")
    return 1 if any(value is None for value in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
