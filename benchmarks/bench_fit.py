"""Benchmark: sk_medcnn's MedicalCNNClassifier against a plain PyTorch loop.

Both sides train the same network (``SimpleCNN(1, 2, (28, 28))``, the
``simple_cnn`` architecture) on the same images (the PneumoniaMNIST train split,
or synthetic images of the same size), with the same epochs, batch size (32),
optimizer (Adam, lr 1e-3) and loss (cross-entropy), in one process and with
the same torch thread count. Each side starts from the same uint8 arrays, so
turning them into float tensors is timed on both sides.

The plain side is the loop a user writes by hand: fp32, NCHW, the whole data
set preloaded as a float tensor scaled by 1/255, ``torch.randperm`` batches,
``model.train()`` / ``zero_grad`` / ``backward`` / ``step``; inference in
``model.eval()`` under ``torch.inference_mode()`` in one batch of the whole set
(``--plain-predict-batch-size`` sets another).

Reported per side (medians over ``--repeats``; the order of the two sides
alternates between repeats so that drift does not favour one of them):

- fit time and training images per second;
- ``predict_proba`` images per second on the whole validation split in one
  call (median of ``--predict-calls`` such calls);
- single-image ``predict_proba`` latency, median of 200 calls;
- memory, measured in one fresh process per side that runs only that side's
  imports, data loading, warm-up, fit and predict (after the timed repeats):
  the peak RSS growth during ``fit`` (the kernel's high-water mark is reset
  before ``fit`` through ``/proc/self/clear_refs``, so the figure is the
  phase's own peak minus the RSS when it started) and the process's peak RSS
  (``VmHWM``, imports included). The peak of the timing process is a
  high-water mark over both sides, and memory one side frees is reused by the
  other, so those in-process figures are only printed as a note or saved;
- validation accuracy, a sanity check that both sides learn.

On a shared machine, other processes on the cores slow torch's threads down by
up to 10x. Each run therefore records the share of the CPU that other processes
used during it (``/proc/stat`` minus this process's CPU time); a run above
``--max-foreign-cpu`` is discarded and retried (``--max-retries``), and each
run first waits up to ``--quiet-timeout`` seconds for quiet cores.
``--sweep-inference-batch`` also times sk_medcnn's ``predict_proba`` for
several values of its private ``_INFERENCE_BATCH_SIZE``.

Run from the project root::

    python benchmarks/bench_fit.py                 # 10 epochs, 1 repeat
    python benchmarks/bench_fit.py --repeats 3 --json reports/bench_fit.json
    python benchmarks/bench_fit.py --quick         # 1 epoch, 512 images
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
from benchmarks._common import DEFAULT_DATA, require_at_least, save_results  # noqa: E402

N_TRAIN_FULL, N_VALID_FULL, IMAGE_SIZE = 4708, 524, 28
BATCH_SIZE = 32
LR = 1e-3
PLAIN_PREDICT_BATCH_SIZE = 0  # one batch of the whole set
INFERENCE_SWEEP = (16, 32, 64, 128, 256)
SIDES = ("plain", "sk_medcnn")
TARGETS = {
    "fit_time_ratio_max": 1.0,
    "predict_throughput_ratio_min": 1.5,
    "latency_ms_max": 0.3,
}

# (key, label, format) of the table rows
ROWS: tuple[tuple[str, str, str], ...] = (
    ("fit_time_s", "fit time (s)", "{:.2f}"),
    ("train_images_per_s", "train images/s", "{:,.0f}"),
    ("predict_images_per_s", "predict_proba images/s", "{:,.0f}"),
    ("latency_ms", "single-image latency (ms)", "{:.3f}"),
    ("fit_rss_growth_mb", "fit: peak RSS growth (MB)", "{:.1f}"),
    ("process_peak_rss_mb", "peak RSS of the process (MB)", "{:.1f}"),
    ("valid_accuracy", "validation accuracy", "{:.3f}"),
)


# --- data -----------------------------------------------------------------------
def load_data(
    path: Path | None, *, n_train: int, n_valid: int, seed: int = 0
) -> tuple[dict[str, NDArray[Any]], str]:
    """Return uint8 images ``(n, 28, 28)`` and int64 labels, and their source."""
    if path is not None and path.exists():
        with np.load(path) as data:
            arrays = {
                "X_train": data["train_images"],
                "y_train": data["train_labels"].ravel().astype(np.int64),
                "X_valid": data["val_images"],
                "y_valid": data["val_labels"].ravel().astype(np.int64),
            }
        source = str(path)
    else:
        n_total = N_TRAIN_FULL + N_VALID_FULL
        try:
            from sk_medcnn.datasets import make_lesion_phantoms

            images, labels = make_lesion_phantoms(
                n_total, image_size=IMAGE_SIZE, random_state=seed
            )
            source = "synthetic (make_lesion_phantoms)"
        except ImportError:
            rng = np.random.default_rng(seed)
            images = rng.integers(
                0, 256, (n_total, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8
            )
            labels = rng.integers(0, 2, n_total)
            source = "synthetic (random uint8)"
        arrays = {
            "X_train": images[:N_TRAIN_FULL],
            "y_train": labels[:N_TRAIN_FULL].astype(np.int64),
            "X_valid": images[N_TRAIN_FULL:],
            "y_valid": labels[N_TRAIN_FULL:].astype(np.int64),
        }
    rng = np.random.default_rng(seed)
    for split, n_wanted in (("train", n_train), ("valid", n_valid)):
        n_available = len(arrays[f"X_{split}"])
        if n_wanted < n_available:
            keep = np.sort(rng.choice(n_available, n_wanted, replace=False))
            arrays[f"X_{split}"] = arrays[f"X_{split}"][keep]
            arrays[f"y_{split}"] = arrays[f"y_{split}"][keep]
    arrays = {key: np.ascontiguousarray(value) for key, value in arrays.items()}
    return arrays, source


# --- memory -----------------------------------------------------------------------
def _proc_status_mb(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` of this process from ``/proc/self/status`` (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**10
    raise OSError(f"{field} not in /proc/self/status")


def _peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM``, else ``ru_maxrss``.

    ``VmHWM`` belongs to the process's own memory map; ``ru_maxrss`` of a
    process started by ``subprocess`` can be the parent's RSS at the fork.
    """
    try:
        return _proc_status_mb("VmHWM")
    except OSError:
        scale = 2**20 if sys.platform == "darwin" else 2**10  # bytes on macOS
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


class PhasePeak:
    """Peak RSS growth of a block: high-water mark reset at entry (Linux).

    Writing ``5`` to ``/proc/self/clear_refs`` resets the kernel's peak RSS
    (``VmHWM``) to the current RSS, so the peak at exit is the block's own.
    Where that is not possible, ``growth_mb`` is None.
    """

    process_peak_mb = 0.0  # the process-wide high-water mark, across resets

    @classmethod
    def process_peak(cls) -> float:
        """The peak RSS of this process so far, across resets (MB)."""
        cls.process_peak_mb = max(cls.process_peak_mb, _peak_rss_mb())
        return cls.process_peak_mb

    def __enter__(self) -> PhasePeak:
        PhasePeak.process_peak()
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
            self.start_mb: float | None = _proc_status_mb("VmRSS")
        except OSError:
            self.start_mb = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        peak = _peak_rss_mb()
        PhasePeak.process_peak()
        self.growth_mb = None if self.start_mb is None else peak - self.start_mb


# --- other processes on the cores ------------------------------------------------
def _machine_cpu_seconds() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    ticks = os.sysconf("SC_CLK_TCK")
    return busy / ticks, (busy + idle + iowait) / ticks


class ForeignLoad:
    """Share of the machine's CPU capacity used by other processes in a block.

    Busy CPU time of the whole machine (``/proc/stat``) minus this process's
    own CPU time, over the block's total CPU capacity: 0 on a quiet machine,
    0.5 when another process keeps one of two cores busy. ``share`` is None
    where ``/proc/stat`` is missing.
    """

    def __enter__(self) -> ForeignLoad:
        try:
            self._machine: tuple[float, float] | None = _machine_cpu_seconds()
        except OSError:
            self._machine = None
        self._own = time.process_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        own = time.process_time() - self._own
        if self._machine is None:
            self.share: float | None = None
            return
        busy, total = (
            end - start
            for end, start in zip(_machine_cpu_seconds(), self._machine, strict=True)
        )
        self.share = max(0.0, busy - own) / total if total > 0 else 0.0


def wait_for_quiet(threshold: float, timeout: float, window: float = 2.0) -> float:
    """Wait until other processes use < ``threshold`` of the CPU for ``window`` s.

    Returns the seconds waited (at most about ``timeout``).
    """
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        with ForeignLoad() as load:
            time.sleep(window)
        if load.share is None or load.share < threshold:
            break
    return time.perf_counter() - start


# --- the plain PyTorch side ---------------------------------------------------------
def _build_simple_cnn() -> nn.Module:
    from sk_medcnn.architectures import SimpleCNN

    return SimpleCNN(1, 2, (IMAGE_SIZE, IMAGE_SIZE))


def _to_float_nchw(images: NDArray[np.uint8]) -> torch.Tensor:
    return torch.from_numpy(images).float().div_(255.0).unsqueeze(1)


class PlainSide:
    """The hand-written loop: fp32, NCHW, preloaded float data, randperm batches."""

    name = "plain"

    def __init__(self, seed: int, predict_batch_size: int) -> None:
        self.seed = seed
        self.predict_batch_size = predict_batch_size
        self.model: nn.Module | None = None

    def fit(self, X: NDArray[np.uint8], y: NDArray[np.int64], epochs: int) -> None:
        torch.manual_seed(self.seed)
        model = _build_simple_cnn()
        images = _to_float_nchw(X)
        targets = torch.from_numpy(y)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        criterion = nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(self.seed)
        n_samples = len(images)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(n_samples, generator=generator)
            for start in range(0, n_samples, BATCH_SIZE):
                index = order[start : start + BATCH_SIZE]
                optimizer.zero_grad()
                loss = criterion(model(images[index]), targets[index])
                loss.backward()
                optimizer.step()
        self.model = model

    def predict_proba(self, X: NDArray[np.uint8]) -> NDArray[np.float32]:
        assert self.model is not None
        self.model.eval()
        outputs = []
        with torch.inference_mode():
            images = _to_float_nchw(X)
            step = self.predict_batch_size or len(images)
            for start in range(0, len(images), step):
                logits = self.model(images[start : start + step])
                outputs.append(torch.softmax(logits, dim=1))
        return torch.cat(outputs).numpy()

    def classes(self) -> NDArray[Any]:
        return np.array([0, 1])

    def warm_up(self, X: NDArray[np.uint8], y: NDArray[np.int64]) -> None:
        model = _build_simple_cnn()
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        images, targets = (
            _to_float_nchw(X[:BATCH_SIZE]),
            torch.from_numpy(y[:BATCH_SIZE]),
        )
        optimizer.zero_grad()
        nn.CrossEntropyLoss()(model(images), targets).backward()
        optimizer.step()
        self.model = model
        self.predict_proba(X[:BATCH_SIZE])
        self.predict_proba(X[:1])
        self.model = None


# --- the sk_medcnn side ---------------------------------------------------------------
class SkMedCNNSide:
    """``MedicalCNNClassifier(architecture="simple_cnn", ...)``."""

    name = "sk_medcnn"

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.estimator: Any = None

    def _make(self, epochs: int) -> Any:
        from sk_medcnn import MedicalCNNClassifier

        return MedicalCNNClassifier(
            architecture="simple_cnn",
            max_epochs=epochs,
            batch_size=BATCH_SIZE,
            lr=LR,
            optimizer="adam",
            # the plain loop's training: constant learning rate, every image
            # trained on, no augmentation, one view at prediction (the defaults
            # hold 10% out for calibration, augment every batch and average 5
            # test-time views: work the plain loop does not do)
            lr_schedule=None,
            calibration=None,
            tta=None,
            augmentation=None,
            random_state=self.seed,
            device="cpu",
        )

    def fit(self, X: NDArray[np.uint8], y: NDArray[np.int64], epochs: int) -> None:
        self.estimator = self._make(epochs).fit(X, y)

    def predict_proba(self, X: NDArray[np.uint8]) -> NDArray[np.float64]:
        return self.estimator.predict_proba(X)

    def classes(self) -> NDArray[Any]:
        return self.estimator.classes_

    def warm_up(self, X: NDArray[np.uint8], y: NDArray[np.int64]) -> None:
        self.estimator = self._make(1).fit(X[:BATCH_SIZE], y[:BATCH_SIZE])
        self.predict_proba(X[:BATCH_SIZE])
        self.predict_proba(X[:1])
        self.estimator = None


def make_side(name: str, seed: int, plain_predict_batch_size: int) -> Any:
    if name == "plain":
        return PlainSide(seed, plain_predict_batch_size)
    return SkMedCNNSide(seed)


# --- measuring ------------------------------------------------------------------------
def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def measure_side(
    side: Any,
    data: dict[str, NDArray[Any]],
    *,
    epochs: int,
    predict_calls: int,
    latency_calls: int,
) -> dict[str, float | None]:
    """Warm up, then fit, predict and time one side once."""
    X_train, y_train = data["X_train"], data["y_train"]
    X_valid, y_valid = data["X_valid"], data["y_valid"]
    side.warm_up(X_train, y_train)

    with ForeignLoad() as fit_load, PhasePeak() as fit_memory:
        fit_time, _ = _timed(lambda: side.fit(X_train, y_train, epochs))

    with ForeignLoad() as predict_load:
        proba = side.predict_proba(X_valid)  # warm the whole-split path
        predict_times = [
            _timed(lambda: side.predict_proba(X_valid))[0] for _ in range(predict_calls)
        ]
        single_images = [X_valid[i % len(X_valid)][None] for i in range(latency_calls)]
        for image in single_images[:10]:  # warm the single-image path
            side.predict_proba(image)
        latencies = [
            _timed(lambda image=image: side.predict_proba(image))[0]
            for image in single_images
        ]
    predicted = side.classes()[np.argmax(proba, axis=1)]

    loads = [load.share for load in (fit_load, predict_load) if load.share is not None]
    return {
        "fit_time_s": fit_time,
        "train_images_per_s": len(X_train) * epochs / fit_time,
        "predict_images_per_s": len(X_valid) / statistics.median(predict_times),
        "latency_ms": 1e3 * statistics.median(latencies),
        "fit_rss_growth_in_process_mb": fit_memory.growth_mb,
        "valid_accuracy": float(np.mean(predicted == y_valid)),
        "foreign_cpu_share": max(loads) if loads else None,
    }


def measure_clean(
    side: Any,
    data: dict[str, NDArray[Any]],
    args: argparse.Namespace,
) -> tuple[dict[str, float | None], int]:
    """``measure_side``, retried while other processes load the cores.

    Returns the kept run and how many runs were discarded. A run is discarded
    when other processes used more than ``--max-foreign-cpu`` of the CPU during
    its fit or its predictions; before each attempt the benchmark waits up to
    ``--quiet-timeout`` seconds for quiet cores. After ``--max-retries``
    discarded runs the last one is kept (its ``foreign_cpu_share`` shows it).
    """
    discarded = 0
    while True:
        if args.quiet_timeout > 0:
            wait_for_quiet(args.max_foreign_cpu, args.quiet_timeout)
        run = measure_side(
            side,
            data,
            epochs=args.epochs,
            predict_calls=args.predict_calls,
            latency_calls=args.latency_calls,
        )
        share = run["foreign_cpu_share"]
        if share is None or share <= args.max_foreign_cpu:
            return run, discarded
        if discarded >= args.max_retries:
            return run, discarded
        discarded += 1
        print(
            f"[{side.name}: other processes used {share:.0%} of the CPU; "
            "run discarded, retrying]",
            file=sys.stderr,
        )


def inference_batch_sweep(
    data: dict[str, NDArray[Any]], args: argparse.Namespace
) -> dict[int, float]:
    """``predict_proba`` images/s on the validation split by inference batch size.

    Patches the private ``sk_medcnn.estimators._network._INFERENCE_BATCH_SIZE`` of a
    fitted classifier (1 epoch), median of ``--predict-calls`` calls each,
    retried like the runs while other processes load the cores.
    """
    import sk_medcnn.estimators._network as network_module

    side = SkMedCNNSide(args.seed)
    side.fit(data["X_train"], data["y_train"], 1)
    X_valid = data["X_valid"]
    original = network_module._INFERENCE_BATCH_SIZE
    sweep = {}
    try:
        for batch_size in (*INFERENCE_SWEEP, len(X_valid)):
            network_module._INFERENCE_BATCH_SIZE = batch_size
            for _ in range(args.max_retries + 1):
                if args.quiet_timeout > 0:
                    wait_for_quiet(args.max_foreign_cpu, args.quiet_timeout)
                with ForeignLoad() as load:
                    side.predict_proba(X_valid)
                    times = [
                        _timed(lambda: side.predict_proba(X_valid))[0]
                        for _ in range(max(args.predict_calls, 5))
                    ]
                if load.share is None or load.share <= args.max_foreign_cpu:
                    break
            sweep[batch_size] = len(X_valid) / statistics.median(times)
    finally:
        network_module._INFERENCE_BATCH_SIZE = original
    return sweep


def _child_memory(name: str, args: argparse.Namespace) -> dict[str, float | None]:
    """Memory figures of a fresh process running one side once.

    Returns its peak RSS (imports included) and the peak RSS growth during its
    ``fit``: in a fresh process no memory freed by the other side is there to be
    reused, which would hide part of the growth.
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--rss-child",
        name,
        "--epochs",
        str(args.epochs),
        "--n-train",
        str(args.n_train),
        "--n-valid",
        str(args.n_valid),
        "--latency-calls",
        "1",
        "--plain-predict-batch-size",
        str(args.plain_predict_batch_size),
        "--data",
        str(args.data),
        "--seed",
        str(args.seed),
    ]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    if args.synthetic:
        command.append("--synthetic")
    completed = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=PROJECT_ROOT
    )
    if completed.returncode != 0:
        print(f"[rss child {name} failed]\n{completed.stderr}", file=sys.stderr)
        return {"process_peak_rss_mb": None, "fit_rss_growth_mb": None}
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    return {
        "process_peak_rss_mb": figures["peak_rss_mb"],
        "fit_rss_growth_mb": figures["fit_rss_growth_mb"],
    }


# --- reporting ------------------------------------------------------------------------
def _ratio(sk_value: float | None, plain_value: float | None) -> float | None:
    if sk_value is None or plain_value is None or plain_value == 0:
        return None
    return sk_value / plain_value


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _rounded(values: Sequence[float | None], digits: int) -> list[float | None]:
    return [None if value is None else round(value, digits) for value in values]


def format_table(results: dict[str, Any]) -> str:
    """The results as a plain-text table with notes."""
    config = results["config"]
    lines = [
        f"sk_medcnn vs plain PyTorch: simple_cnn, {config['n_train']} training "
        f"images x {config['epochs']} epochs, batch {config['batch_size']}, "
        f"{config['threads']} torch threads, median of {config['repeats']} "
        "repeat(s)",
        f"data: {config['data']}; validation: {config['n_valid']} images",
        "",
        f"{'metric':<32}{'plain':>11}{'sk_medcnn':>11}{'sk/plain':>10}",
        "-" * 64,
    ]
    for key, label, fmt in ROWS:
        cells = [
            "n/a" if results[side].get(key) is None else fmt.format(results[side][key])
            for side in SIDES
        ]
        ratio = results["ratios"].get(key)
        ratio_text = "n/a" if ratio is None else f"{ratio:.3f}"
        lines.append(f"{label:<32}{cells[0]:>11}{cells[1]:>11}{ratio_text:>10}")
    checks = results["targets"]
    per_repeat = results["per_repeat"]
    lines += [
        "",
        f"targets: fit time <= {TARGETS['fit_time_ratio_max']:.2f}x plain: "
        f"{_verdict(checks['fit_time_ok'])}; predict_proba throughput >= "
        f"{TARGETS['predict_throughput_ratio_min']:.2f}x plain: "
        f"{_verdict(checks['predict_throughput_ok'])}; one-image latency <= "
        f"{TARGETS['latency_ms_max']} ms: {_verdict(checks['latency_ok'])}",
        "",
        "notes:",
        "- plain predicts in NCHW fp32 "
        + (
            f"batches of {config['plain_predict_batch_size']}"
            if config["plain_predict_batch_size"]
            else "in one batch of the whole set"
        )
        + "; predict_proba images/s is the "
        f"median of {config['predict_calls']} calls on the whole validation split; "
        f"latency the median of {config['latency_calls']} one-image calls.",
        "- memory rows come from one fresh process per side (imports, data, "
        "warm-up, fit and predict of that side only):",
        "  'peak RSS growth' = peak RSS during fit minus RSS at its start "
        "(high-water mark reset before fit);",
        "  'peak RSS' = that process's peak (VmHWM). Peak RSS of this process "
        f"(both sides, all repeats): {_format_mb(results['this_peak_rss_mb'])}.",
        "- other processes' share of the CPU during each kept run (plain / "
        f"sk_medcnn): {per_repeat['plain_foreign_cpu']} / "
        f"{per_repeat['sk_medcnn_foreign_cpu']}; runs discarded and retried for "
        f"a share > {config['max_foreign_cpu']:.0%}: "
        f"{results['discarded_runs']['plain']} / "
        f"{results['discarded_runs']['sk_medcnn']}.",
        f"- per-repeat fit time (s): plain {per_repeat['plain_fit_s']}, "
        f"sk_medcnn {per_repeat['sk_medcnn_fit_s']}",
        "- per-repeat predict_proba images/s: plain "
        f"{per_repeat['plain_predict_ips']}, "
        f"sk_medcnn {per_repeat['sk_medcnn_predict_ips']}",
    ]
    sweep = results.get("inference_batch_sweep")
    if sweep:
        cells = ", ".join(f"{size}: {rate:,.0f}" for size, rate in sweep.items())
        lines.append(
            "- sk_medcnn predict_proba images/s by _INFERENCE_BATCH_SIZE "
            f"(now {results['config']['inference_batch_size']}): {cells}"
        )
    return "\n".join(lines)


def _format_mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} MB"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


# --- entry point ----------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line (``argv`` None: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description="Time sk_medcnn's MedicalCNNClassifier against a plain "
        "PyTorch loop on the same CNN and data."
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1, help="report the median")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 epoch on 512 training images"
    )
    parser.add_argument("--json", type=Path, default=None, help="save results here")
    parser.add_argument(
        "--n-train", type=int, default=None, help="training images (default: all)"
    )
    parser.add_argument(
        "--n-valid", type=int, default=None, help="validation images (default: all)"
    )
    parser.add_argument(
        "--predict-calls",
        type=int,
        default=10,
        help="whole-split predict_proba calls per run (median)",
    )
    parser.add_argument(
        "--latency-calls",
        type=int,
        default=200,
        help="one-image predict_proba calls per run (median)",
    )
    parser.add_argument(
        "--plain-predict-batch-size", type=int, default=PLAIN_PREDICT_BATCH_SIZE
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--synthetic", action="store_true", help="use synthetic images, not --data"
    )
    parser.add_argument(
        "--max-foreign-cpu",
        type=float,
        default=0.10,
        help="discard a run when other processes used more than this share of "
        "the CPU during it (default 0.10)",
    )
    parser.add_argument(
        "--max-retries", type=int, default=3, help="discarded runs per side/repeat"
    )
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for quiet cores before each run (0: do not wait)",
    )
    parser.add_argument(
        "--no-rss-subprocess",
        dest="rss_subprocess",
        action="store_false",
        help="skip the per-side fresh-process memory measurement",
    )
    parser.add_argument(
        "--sweep-inference-batch",
        action="store_true",
        help="also time sk_medcnn's predict_proba for several inference batch sizes",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rss-child", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 1
        args.n_train = args.n_train or 512
    args.n_train = args.n_train or N_TRAIN_FULL
    args.n_valid = args.n_valid or N_VALID_FULL
    require_at_least(
        parser,
        args,
        (
            "epochs",
            "repeats",
            "n_train",
            "n_valid",
            "predict_calls",
            "latency_calls",
        ),
    )
    if args.max_retries < 0 or args.quiet_timeout < 0:
        parser.error("--max-retries and --quiet-timeout must be >= 0")
    return args


def _child_main(args: argparse.Namespace, data: dict[str, NDArray[Any]]) -> None:
    side = make_side(args.rss_child, args.seed, args.plain_predict_batch_size)
    figures = measure_side(
        side, data, epochs=args.epochs, predict_calls=1, latency_calls=1
    )
    peak = PhasePeak.process_peak()
    fit_growth = figures["fit_rss_growth_in_process_mb"]
    print(json.dumps({"peak_rss_mb": peak, "fit_rss_growth_mb": fit_growth}))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and return the results."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data, source = load_data(
        None if args.synthetic else args.data,
        n_train=args.n_train,
        n_valid=args.n_valid,
        seed=args.seed,
    )
    if args.rss_child is not None:  # internal: one side in a fresh process
        _child_main(args, data)
        return {}

    runs: dict[str, list[dict[str, float | None]]] = {name: [] for name in SIDES}
    discarded = dict.fromkeys(SIDES, 0)
    for repeat in range(args.repeats):
        order = SIDES if repeat % 2 == 0 else SIDES[::-1]
        for name in order:
            side = make_side(name, args.seed, args.plain_predict_batch_size)
            run, n_discarded = measure_clean(side, data, args)
            runs[name].append(run)
            discarded[name] += n_discarded
    this_process_peak = PhasePeak.process_peak()
    sweep = inference_batch_sweep(data, args) if args.sweep_inference_batch else {}

    try:
        from sk_medcnn.estimators._network import _INFERENCE_BATCH_SIZE
    except ImportError:  # releases before the estimators' package
        from sk_medcnn.classifier import _INFERENCE_BATCH_SIZE  # type: ignore

    results: dict[str, Any] = {
        "config": {
            "epochs": args.epochs,
            "repeats": args.repeats,
            "batch_size": BATCH_SIZE,
            "lr": LR,
            "threads": torch.get_num_threads(),
            "n_train": len(data["X_train"]),
            "n_valid": len(data["X_valid"]),
            "data": source,
            "predict_calls": args.predict_calls,
            "latency_calls": args.latency_calls,
            "plain_predict_batch_size": args.plain_predict_batch_size,
            "inference_batch_size": _INFERENCE_BATCH_SIZE,
            "max_foreign_cpu": args.max_foreign_cpu,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }
    for name in SIDES:
        results[name] = {
            key: _median([run[key] for run in runs[name]]) for key in runs[name][0]
        }
        # memory is measured in a fresh process per side (see _child_memory)
        results[name].update(
            _child_memory(name, args)
            if args.rss_subprocess
            else {"process_peak_rss_mb": None, "fit_rss_growth_mb": None}
        )
    results["ratios"] = {
        key: _ratio(results["sk_medcnn"][key], results["plain"][key])
        for key, *_ in ROWS
    }
    fit_ratio = results["ratios"]["fit_time_s"]
    predict_ratio = results["ratios"]["predict_images_per_s"]
    results["targets"] = {
        **TARGETS,
        "fit_time_ok": None
        if fit_ratio is None
        else fit_ratio <= TARGETS["fit_time_ratio_max"],
        "predict_throughput_ok": None
        if predict_ratio is None
        else predict_ratio >= TARGETS["predict_throughput_ratio_min"],
        "latency_ok": None
        if results["sk_medcnn"].get("latency_ms") is None
        else results["sk_medcnn"]["latency_ms"] <= TARGETS["latency_ms_max"],
    }
    results["this_peak_rss_mb"] = this_process_peak
    results["discarded_runs"] = discarded
    results["per_repeat"] = {
        f"{name}_{short}": _rounded([run[key] for run in runs[name]], digits)
        for name in SIDES
        for short, key, digits in (
            ("fit_s", "fit_time_s", 2),
            ("predict_ips", "predict_images_per_s", 0),
            ("foreign_cpu", "foreign_cpu_share", 2),
        )
    }
    results["inference_batch_sweep"] = sweep
    results["runs"] = runs

    print(format_table(results))
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
