"""Benchmark: cost of the 3-D architectures at 28^3 and 64^3, next to 2-D ones.

For each architecture and input size it prints the parameters, the forward
FLOPs per image or volume (``torch.utils.flop_counter.FlopCounterMode``; a
multiply-add counts 2; training costs about three times the forward), the
training and prediction throughput in images or volumes per second, and the
peak RSS of the process that ran the case. The baseline is the 2-D
``simple_cnn`` and ``resnet18`` at 28x28 and 64x64 (one channel); then each 3-D
architecture (``list_architectures(spatial_dims=3)``) at 28^3 and 64^3.

Every case runs the registry's network, two outputs, in a plain PyTorch loop
(fp32, random inputs preloaded as one float tensor, Adam, cross-entropy): the
architectures' own cost, independent of the estimator. The layout is
contiguous NCHW/NCDHW; ``--layouts contiguous auto`` runs every case also in
the layout the estimators' ``memory_format="auto"`` picks on the CPU
(``channels_last`` or ``channels_last_3d`` for the networks
``scanned_for_channels_last`` admits, contiguous for the others, whose
``auto`` rows then repeat the contiguous ones' measurement), so the speed-up
of the default layout is read off two rows measured the same way. Training
throughput is over at least ``--steps`` timed steps and
``--min-seconds`` after one warm-up step (which builds oneDNN's kernels for
the shapes); prediction likewise, in eval mode under
``torch.inference_mode()``. The table also gives the share of the machine's
CPU that other processes used during each case (``/proc/stat`` minus this
process's CPU time): figures taken beside busy processes are low. Batches:
32 for 2-D, ``--batch-28`` (default 16) at 28^3 and ``--batch-64`` (default 4)
at 64^3. Each case runs in a fresh process, so its
peak RSS (``VmHWM``, imports included) is its own; ``--in-process`` runs them
in this process instead (the tests do), where the RSS column is each case's
growth of the high-water mark.

Run from the project root, alone on the machine::

    python benchmarks/bench_architectures_3d.py               # all cases, ~10 min
    python benchmarks/bench_architectures_3d.py --quick       # 1 step each, ~3 min
    python benchmarks/bench_architectures_3d.py --cases acs_resnet18 --sizes 28
    python benchmarks/bench_architectures_3d.py --cases simple_cnn --sizes 28 \
        --layouts contiguous auto    # the default layout's speed-up
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
from benchmarks._common import require_at_least, save_results  # noqa: E402

BATCH_2D = 32
LR = 1e-3
BASELINE_2D = ("simple_cnn", "resnet18")
SIZES = (28, 64)
LAYOUTS = ("contiguous", "auto")
LAYOUT_LABELS = {"contiguous": "NCHW", "channels_last": "NHWC"}


def _status_mb(field: str) -> float | None:
    """``VmRSS`` or ``VmHWM`` of this process in MB (Linux), else None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        return None
    return None


def _peak_rss_mb() -> float:
    """This process's peak RSS (``VmHWM``, else ``ru_maxrss``) in MB."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    scale = 2**20 if sys.platform == "darwin" else 2**10
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _reset_peak() -> float | None:
    """Reset the high-water mark to the current RSS (Linux); return that RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return None
    return _status_mb("VmRSS")


def _machine_busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine so far (``/proc/stat``), else None."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _, _, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(architecture: str, shape: tuple[int, ...]) -> nn.Module:
    """The architecture from sk_medcnn's registry, one channel, two outputs."""
    from sk_medcnn import get_architecture

    return get_architecture(architecture)(1, 2, shape)


def resolve_layout(layout: str, model: nn.Module, spatial_dims: int) -> str:
    """``"contiguous"`` or ``"channels_last"``: ``"auto"`` as the estimators pick it."""
    from sk_medcnn.estimators._layout import resolve_memory_format

    return resolve_memory_format(
        layout, model, torch.device("cpu"), spatial_dims=spatial_dims
    )


def torch_format(layout: str, spatial_dims: int) -> torch.memory_format:
    """torch's memory format for a resolved layout and 2-D or 3-D inputs."""
    if layout == "contiguous":
        return torch.contiguous_format
    return torch.channels_last if spatial_dims == 2 else torch.channels_last_3d


def forward_flops(model: nn.Module, shape: tuple[int, ...]) -> float:
    """Forward FLOPs of one image or volume (a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, *shape))
    return float(counter.get_total_flops())


def _timed(step: Any, steps: int, min_seconds: float) -> tuple[int, float]:
    """Run ``step`` at least ``steps`` times and ``min_seconds``; (count, seconds)."""
    count = 0
    start = time.perf_counter()
    while True:
        step()
        count += 1
        seconds = time.perf_counter() - start
        if count >= steps and seconds >= min_seconds:
            return count, seconds


def train_per_s(
    model: nn.Module,
    shape: tuple[int, ...],
    batch: int,
    steps: int,
    min_seconds: float = 0.0,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> float:
    """Images or volumes per second of training steps (after one warm-up step)."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(batch, 1, *shape, generator=generator)
    inputs = inputs.contiguous(memory_format=memory_format)
    model.to(memory_format=memory_format)  # type: ignore[call-overload]
    targets = torch.arange(batch) % 2
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    criterion = nn.CrossEntropyLoss()
    model.train()

    def step() -> None:
        optimizer.zero_grad()
        criterion(model(inputs), targets).backward()
        optimizer.step()

    step()
    count, seconds = _timed(step, steps, min_seconds)
    return batch * count / seconds


def predict_per_s(
    model: nn.Module,
    shape: tuple[int, ...],
    batch: int,
    steps: int,
    min_seconds: float = 0.0,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> float:
    """Images or volumes per second in eval mode (after one warm-up batch)."""
    inputs = torch.rand(batch, 1, *shape, generator=torch.Generator().manual_seed(1))
    inputs = inputs.contiguous(memory_format=memory_format)
    model.to(memory_format=memory_format)  # type: ignore[call-overload]
    model.eval()
    with torch.inference_mode():
        model(inputs)
        count, seconds = _timed(lambda: model(inputs), steps, min_seconds)
    return batch * count / seconds


def run_case(
    architecture: str,
    shape: tuple[int, ...],
    *,
    batch: int,
    steps: int,
    min_seconds: float = 0.0,
    seed: int = 0,
    layout: str = "contiguous",
) -> dict[str, Any]:
    """Measure one architecture at one input shape in this process.

    ``layout`` is ``"contiguous"``, ``"channels_last"`` or ``"auto"`` (the
    estimators' choice for this network on the CPU); the row records the
    layout asked for and the one used.
    """
    start_mb = _reset_peak()
    busy, own, wall = _machine_busy_seconds(), _own_cpu_seconds(), time.monotonic()
    torch.manual_seed(seed)
    model = build(architecture, shape)
    used = resolve_layout(layout, model, len(shape))
    memory_format = torch_format(used, len(shape))
    row: dict[str, Any] = {
        "architecture": architecture,
        "spatial_dims": len(shape),
        "shape": list(shape),
        "batch": batch,
        "layout": layout,
        "layout_used": used,
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "forward_gflops": forward_flops(model, shape) / 1e9,
        "train_per_s": train_per_s(
            model, shape, batch, steps, min_seconds, memory_format
        ),
        "predict_per_s": predict_per_s(
            model, shape, batch, steps, min_seconds, memory_format
        ),
    }
    busy_after = _machine_busy_seconds()
    row["other_cpu_share"] = (
        None
        if busy is None or busy_after is None
        else max(0.0, (busy_after - busy) - (_own_cpu_seconds() - own))
        / ((time.monotonic() - wall) * (os.cpu_count() or 1))
    )
    row["peak_rss_mb"] = _peak_rss_mb()
    row["rss_growth_mb"] = None if start_mb is None else row["peak_rss_mb"] - start_mb
    return row


def cases(args: argparse.Namespace) -> list[tuple[str, tuple[int, ...], int]]:
    """(architecture, shape, batch) of every case to run, 2-D baseline first.

    Each case runs once per layout in ``args.layouts``.
    """
    from sk_medcnn import list_architectures

    chosen = set(args.cases) if args.cases else None
    found: list[tuple[str, tuple[int, ...], int]] = []
    for name in BASELINE_2D:
        if chosen is None or name in chosen:
            found += [(name, (size, size), BATCH_2D) for size in args.sizes]
    for name in list_architectures(spatial_dims=3):
        if chosen is None or name in chosen:
            for size in args.sizes:
                batch = args.batch_28 if size <= 28 else args.batch_64
                found.append((name, (size, size, size), batch))
    return found


def run_in_child(
    architecture: str,
    shape: tuple[int, ...],
    batch: int,
    args: argparse.Namespace,
    layout: str = "contiguous",
) -> dict[str, Any]:
    """Run one case in a fresh Python process and return its row."""
    case = {"architecture": architecture, "shape": shape, "batch": batch}
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        json.dumps({**case, "layout": layout}),
        "--steps",
        str(args.steps),
        "--min-seconds",
        str(args.min_seconds),
        "--threads",
        str(args.threads),
    ]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env=env, timeout=3600
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"case {architecture} {shape} failed:\n{result.stdout}{result.stderr}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def format_results(results: dict[str, Any]) -> str:
    """The table as text."""
    config = results["config"]
    rss = "RSS growth MB" if config["in_process"] else "peak RSS MB"
    lines = [
        f"torch {config['torch']}, {config['threads']} threads, fp32, plain loop "
        f"(Adam); >= {config['steps']} timed steps and {config['min_seconds']} s "
        "after one warm-up",
        "",
        f"{'architecture':<13} {'input':>9} {'layout':>8} {'batch':>5} "
        f"{'params':>11} "
        f"{'fwd GFLOP':>10} {'train /s':>9} {'predict /s':>10} {rss:>13} "
        f"{'others':>6}",
    ]
    lines.append("-" * len(lines[-1]))
    for row in results["rows"]:
        shape = "x".join(str(size) for size in row["shape"])
        memory = row["rss_growth_mb"] if config["in_process"] else row["peak_rss_mb"]
        layout = LAYOUT_LABELS[row.get("layout_used", "contiguous")]
        lines.append(
            f"{row['architecture']:<13} {shape:>9} {layout:>8} {row['batch']:>5} "
            f"{row['parameters']:>11,} {row['forward_gflops']:>10.3f} "
            f"{row['train_per_s']:>9.1f} {row['predict_per_s']:>10.1f} "
            + (f"{memory:>13.0f}" if memory is not None else f"{'n/a':>13}")
            + (
                f" {row['other_cpu_share']:>6.0%}"
                if row.get("other_cpu_share") is not None
                else f" {'n/a':>6}"
            )
        )
    lines.append(
        "/s: images (2-D) or volumes (3-D) per second; fwd GFLOP per image or "
        "volume; training costs about 3x the forward; layout: NCHW (contiguous) "
        "or NHWC (channels-last); others: the CPU share other processes used "
        "during the case"
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cases", nargs="+", default=None, help="architectures (default: all)"
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case")
    parser.add_argument(
        "--min-seconds", type=float, default=2.0, help="timed seconds per figure"
    )
    parser.add_argument("--batch-28", type=int, default=16, help="batch at 28^3")
    parser.add_argument("--batch-64", type=int, default=4, help="batch at 64^3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--layouts",
        nargs="+",
        choices=LAYOUTS,
        default=["contiguous"],
        help="memory layouts to run each case in ('auto': the estimators' choice)",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="no fresh process per case"
    )
    parser.add_argument("--json", type=Path, default=None, help="save the results")
    parser.add_argument(
        "--quick", action="store_true", help="1 timed step, batches of 2 at 64^3"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    require_at_least(
        parser, args, ["steps", "batch_28", "batch_64", "threads"], minimum=1
    )
    if any(size < 1 for size in args.sizes):
        parser.error("--sizes must be >= 1")
    if args.batch_64 > 32:
        parser.error("--batch-64 must be <= 32")
    if args.min_seconds < 0:
        parser.error("--min-seconds must be >= 0")
    if args.quick:
        args.steps = 1
        args.min_seconds = 0.0
        args.batch_64 = min(args.batch_64, 2)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the cases, print the table and return the results."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child is not None:
        case = json.loads(args.child)
        row = run_case(
            case["architecture"],
            tuple(case["shape"]),
            batch=case["batch"],
            steps=args.steps,
            min_seconds=args.min_seconds,
            layout=case.get("layout", "contiguous"),
        )
        print(json.dumps(row))
        return row
    results: dict[str, Any] = {
        "config": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "steps": args.steps,
            "min_seconds": args.min_seconds,
            "quick": args.quick,
            "in_process": args.in_process,
            "layouts": args.layouts,
        },
        "rows": [],
    }
    for (architecture, shape, batch), layout in itertools.product(
        cases(args), args.layouts
    ):
        if args.in_process:
            row = run_case(
                architecture,
                shape,
                batch=batch,
                steps=args.steps,
                min_seconds=args.min_seconds,
                layout=layout,
            )
        else:
            row = run_in_child(architecture, shape, batch, args, layout)
        results["rows"].append(row)
        print(
            f"{architecture} {'x'.join(map(str, shape))} {row['layout_used']}: "
            f"{row['train_per_s']:.1f} train/s, {row['predict_per_s']:.1f} "
            f"predict/s, {math.ceil(row['peak_rss_mb'])} MB peak",
            flush=True,
        )
    print(format_results(results))
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
