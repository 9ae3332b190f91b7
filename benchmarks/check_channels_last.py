"""Scan the kernels ``memory_format="auto"`` trains channels-last, against NCHW.

torch 2.13's CPU (oneDNN) backward of a channels-last strided 1x1 convolution
with few channels corrupts the heap, so channels-last training is the default
(``memory_format="auto"``) only for networks made of the module types this
script scans (``sk_medcnn/estimators/_layout.py``). For every configuration it
runs a forward and a backward pass (the reference CNNs: three training steps,
the first compared) in channels-last, in NCHW and in float64 NCHW on the same
weights and input,
and requires channels-last to be no further from float64 than 4 times NCHW's
own distance (or 1e-4 of the largest value; bfloat16: 2e-2); it runs each
group of configurations in a fresh process under glibc's heap checks
(``MALLOC_CHECK_=3``, ``MALLOC_PERTURB_``), where heap corruption aborts the
process. It scans:

- ``Conv2d`` at stride 1: kernels 2 to 5, padding 0 to the kernel's half, with
  and without bias, 1 to 128 channels in and out, 1 to 33 pixels, batches of 1
  to 33;
- ``MaxPool2d`` (windows 2 and 3, stride 1 to 3, ``ceil_mode``, padding),
  ``BatchNorm2d`` (training mode), ``ReLU`` and ``GlobalPool`` (max and mean)
  on the same shapes;
- whole reference CNNs (``SimpleCNN``: 1 to 4 channels, widths 1 to 32,
  images of 1 to 64 pixels, both paddings, with and without batch norm, each
  ``global_pool``), trained three steps (the numbers of the first compared);

each in float32 and under bfloat16 autocast, with 1 and 2 torch threads. First
it runs the known bug (``Conv2d(8, 16, 1, stride=2)``, 16 px, a batch of 9,
two threads) in the same harness as a positive control: the harness must catch
it, or the scan proves nothing. Exits 1 when a scanned configuration fails.

Usage::

    python benchmarks/check_channels_last.py            # the full scan (minutes)
    python benchmarks/check_channels_last.py --quick    # a sample (seconds)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: glibc checks the heap on every free and fills freed memory with a pattern
HEAP_CHECKS = {"MALLOC_CHECK_": "3", "MALLOC_PERTURB_": "165"}
#: a configuration that crashes torch 2.13's oneDNN backward (docs/benchmarks.md)
CONTROL = {
    "kind": "conv",
    "c_in": 8,
    "c_out": 16,
    "kernel": 1,
    "stride": 2,
    "padding": 0,
    "bias": True,
    "size": 16,
    "batch": 9,
}
#: channels-last may be this many times further from float64 than NCHW is ...
FACTOR = 4.0
#: ... or this share of the largest value
FLOOR = {"fp32": 1e-4, "bf16": 2e-2}


def conv_configs(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """A grid over the reference CNN's convolution, and ``n`` random ones."""
    configs = [
        {
            "kind": "conv",
            "c_in": c_in,
            "c_out": c_out,
            "kernel": 3,
            "stride": 1,
            "padding": padding,
            "bias": True,
            "size": size,
            "batch": batch,
        }
        for c_in, c_out, size, batch, padding in itertools.product(
            (1, 2, 3, 4, 8, 32, 64),
            (1, 4, 16, 32, 64, 128),
            (3, 4, 7, 14, 15, 28),
            (1, 9, 32),
            (0, 1),
        )
        if size + 2 * padding >= 3
    ]
    for _ in range(n):
        kernel = rng.choice((2, 3, 4, 5))
        padding = rng.randint(0, kernel // 2)
        configs.append(
            {
                "kind": "conv",
                "c_in": rng.choice((1, 2, 3, 4, 5, 8, 16, 24, 32, 64, 128)),
                "c_out": rng.choice((1, 2, 4, 8, 16, 24, 32, 64, 128)),
                "kernel": kernel,
                "stride": 1,
                "padding": padding,
                "bias": rng.random() < 0.5,
                "size": rng.randint(max(1, kernel - 2 * padding), 33),
                "batch": rng.randint(1, 33),
            }
        )
    return configs


def layer_configs(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """``n`` random pooling, batch-norm and ReLU configurations."""
    configs = []
    for _ in range(n):
        kind = rng.choice(("maxpool", "batchnorm", "relu", "globalpool"))
        window = rng.choice((2, 3))
        config = {
            "kind": kind,
            "c_in": rng.choice((1, 2, 3, 4, 8, 16, 32, 64, 128)),
            "size": rng.randint(window, 33),
            "batch": rng.randint(2 if kind == "batchnorm" else 1, 33),
        }
        if kind == "globalpool":
            config["mode"] = rng.choice(("max", "avg"))
        if kind == "maxpool":
            config.update(
                kernel=window,
                stride=rng.randint(1, 3),
                padding=rng.randint(0, window // 2),
                ceil_mode=rng.random() < 0.5,
            )
        configs.append(config)
    return configs


def network_configs(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """``n`` random reference CNNs, with the default one first."""
    configs = [
        {
            "kind": "simple_cnn",
            "c_in": 1,
            "width": 32,
            "size": 28,
            "batch": 32,
            "padding": "same",
            "batch_norm": False,
            "global_pool": None,
        }
    ]
    for _ in range(n):
        padding = rng.choice(("same", "valid"))
        configs.append(
            {
                "kind": "simple_cnn",
                "c_in": rng.choice((1, 2, 3, 4)),
                "width": rng.choice((1, 2, 4, 8, 16, 32)),
                "size": rng.randint(1 if padding == "same" else 22, 64),
                "batch": rng.randint(2, 33),
                "padding": padding,
                "batch_norm": rng.random() < 0.5,
                "global_pool": rng.choice((None, "max", "avg")),
            }
        )
    return configs


def volume_configs(rng: random.Random, n: int) -> dict[str, list[dict[str, Any]]]:
    """The 3-D families: ``n`` convolutions, ``n // 2`` layers, ``n // 10`` networks.

    Smaller than the 2-D ones (volumes of 1 to 12 voxels a side, at most 64
    channels, batches of 1 to 9), as a volume holds a side's worth of images.
    """
    convs = []
    for _ in range(n):
        kernel = rng.choice((2, 3, 4, 5))
        padding = rng.randint(0, kernel // 2)
        convs.append(
            {
                "kind": "conv",
                "dims": 3,
                "c_in": rng.choice((1, 2, 3, 4, 8, 16, 32, 64)),
                "c_out": rng.choice((1, 4, 8, 16, 32, 64)),
                "kernel": kernel,
                "stride": 1,
                "padding": padding,
                "bias": rng.random() < 0.5,
                "size": rng.randint(max(1, kernel - 2 * padding), 12),
                "batch": rng.randint(1, 9),
            }
        )
    layers = [
        {**config, "dims": 3, "size": min(config["size"], 12), "batch": 2 + i % 8}
        for i, config in enumerate(layer_configs(rng, n // 2))
    ]
    networks = [
        {
            "kind": "simple_cnn",
            "dims": 3,
            "c_in": 1,
            "width": 32,
            "size": 28,
            "batch": 4,
            "padding": "same",
            "batch_norm": False,
            "global_pool": "max",  # the estimators' default for volumes
        }
    ]
    for _ in range(n // 10):
        padding = rng.choice(("same", "valid"))
        networks.append(
            {
                "kind": "simple_cnn",
                "dims": 3,
                "c_in": rng.choice((1, 2)),
                "width": rng.choice((1, 2, 4, 8, 16)),
                "size": rng.randint(1 if padding == "same" else 22, 28),
                "batch": rng.randint(2, 6),
                "padding": padding,
                "batch_norm": rng.random() < 0.5,
                "global_pool": rng.choice((None, "max", "avg")),
            }
        )
    return {"conv3d": convs, "layers3d": layers, "simple_cnn3d": networks}


# --- the worker: runs in a fresh process under the heap checks ---------------


def _build(config: dict[str, Any]) -> Any:
    from torch import nn

    kind = config["kind"]
    dims = config.get("dims", 2)
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    max_pool = nn.MaxPool2d if dims == 2 else nn.MaxPool3d
    batch_norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
    if kind == "conv":
        return conv(
            config["c_in"],
            config["c_out"],
            config["kernel"],
            stride=config["stride"],
            padding=config["padding"],
            bias=config["bias"],
        )
    if kind == "maxpool":
        return max_pool(
            config["kernel"],
            stride=config["stride"],
            padding=config["padding"],
            ceil_mode=config["ceil_mode"],
        )
    if kind == "batchnorm":
        return batch_norm(config["c_in"])
    if kind == "relu":
        return nn.ReLU()
    from sk_medcnn.architectures import GlobalPool, SimpleCNN

    if kind == "globalpool":
        return GlobalPool(config["mode"])

    return SimpleCNN(
        config["c_in"],
        3,
        (config["size"],) * dims,
        width=config["width"],
        hidden_units=16,
        padding=config["padding"],
        batch_norm=config["batch_norm"],
        global_pool=config.get("global_pool"),
    )


def _pass(module: Any, x: Any, layout: Any, precision: str, steps: int) -> list[Any]:
    """Outputs and gradients of the first of ``steps`` SGD steps, in ``layout``.

    The later steps run the kernels again under the heap checks; their
    numbers are not compared: the layouts' rounding differs, and after an
    update a max-pooling window or a ReLU can switch (a near-tie decided the
    other way), which routes a gradient elsewhere in either layout.

    ``precision`` is ``"fp32"``, ``"bf16"`` (autocast) or ``"fp64"`` (the
    reference: the module and input in float64).
    """
    import torch

    dtype = torch.float64 if precision == "fp64" else torch.float32
    module = module.to(dtype=dtype).to(memory_format=layout)
    optimizer = (
        torch.optim.SGD(module.parameters(), lr=0.01)
        if any(True for _ in module.parameters())
        else None
    )
    results = []
    for _ in range(steps):
        inputs = x.detach().to(dtype).contiguous(memory_format=layout)
        inputs.requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = module(inputs)
        out = out.to(dtype)
        # a fixed random direction: gradients that are sums of random terms,
        # not the exact cancellations (and their rounding) of a symmetric one
        generator = torch.Generator().manual_seed(1)
        direction = torch.randn(out.shape, generator=generator, dtype=torch.float64)
        (out * direction.to(dtype)).sum().backward()
        if not results:
            results = [out.detach(), inputs.grad.detach()]
            results += [p.grad.detach().clone() for p in module.parameters()]
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad()
    return [result.double() for result in results]


def _check_one(config: dict[str, Any], precision: str) -> str | None:
    """Compare channels-last with NCHW for one configuration; None when they agree.

    Both are compared with the float64 NCHW result. Channels-last passes when
    it is no further from it than ``FACTOR`` times NCHW's own distance (the
    two sum in different orders, and sums that cancel lose digits in either),
    or than ``FLOOR`` of the largest value.
    """
    import copy

    import torch

    torch.manual_seed(0)
    module = _build(config)
    channels = config["c_in"]
    dims = config.get("dims", 2)
    x = torch.randn(config["batch"], channels, *(config["size"],) * dims)
    steps = 3 if config["kind"] == "simple_cnn" else 1
    nchw = torch.contiguous_format
    exact = _pass(copy.deepcopy(module), x, nchw, "fp64", steps)
    reference = _pass(copy.deepcopy(module), x, nchw, precision, steps)
    last = torch.channels_last if dims == 2 else torch.channels_last_3d
    got = _pass(module, x, last, precision, steps)
    for index, (a, b, c) in enumerate(zip(reference, got, exact, strict=True)):
        scale = max(1.0, float(c.abs().max()))
        error = float((b - c).abs().max())
        allowed = max(FACTOR * float((a - c).abs().max()), FLOOR[precision] * scale)
        if not error <= allowed:
            what = (
                ("output", "input gradient")[index] if index < 2 else "weight gradient"
            )
            return f"{what} off by {error:.2e} from float64, allowed {allowed:.2e}"
    return None


def worker(path: str, threads: int) -> None:
    """Check the configurations in the JSON file ``path``; print a JSON report."""
    import torch

    torch.set_num_threads(threads)
    with open(path) as file:
        jobs = json.load(file)
    failures = []
    for config, precision in jobs:
        message = _check_one(config, precision)
        if message is not None:
            failures.append([config, precision, message])
    print(json.dumps({"checked": len(jobs), "failures": failures}))


# --- the driver ---------------------------------------------------------------


def run_group(jobs: list[Any], threads: int, scratch: Path) -> dict[str, Any]:
    """Run ``jobs`` in a fresh process under the heap checks; its report."""
    path = scratch / f"jobs-{os.getpid()}-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(jobs))
    env = {**os.environ, **HEAP_CHECKS, "OMP_NUM_THREADS": str(threads)}
    process = subprocess.run(
        [sys.executable, __file__, "--worker", str(path), "--threads", str(threads)],
        capture_output=True,
        text=True,
        env=env,
    )
    path.unlink()
    if process.returncode != 0:
        return {
            "checked": len(jobs),
            "crashed": process.returncode,
            "stderr": process.stderr[-400:],
        }
    return json.loads(process.stdout.strip().splitlines()[-1])


def bisect_crash(jobs: list[Any], threads: int, scratch: Path) -> list[Any]:
    """The jobs of a crashed group that crash alone (each in its own process)."""
    return [
        job
        for job in jobs
        if run_group([job], threads, scratch).get("crashed") is not None
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a sample, in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--group-size", type=int, default=400)
    parser.add_argument(
        "--families",
        nargs="+",
        choices=("conv", "layers", "simple_cnn", "conv3d", "layers3d", "simple_cnn3d"),
        default=["conv", "layers", "simple_cnn", "conv3d", "layers3d", "simple_cnn3d"],
        help="which families to scan (default: all)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.threads)
        return 0
    scratch = Path(os.environ.get("TMPDIR", "/tmp"))
    rng = random.Random(args.seed)
    started = time.perf_counter()

    control = run_group([[CONTROL, "fp32"]] * 5, 2, scratch)
    caught = bool(control.get("crashed") or control.get("failures"))
    print(
        "positive control, Conv2d(8, 16, 1, stride=2) channels-last, 2 threads: "
        + (
            "caught "
            + (
                f"(exit {control['crashed']})"
                if control.get("crashed")
                else "(mismatch)"
            )
            if caught
            else "NOT caught (fixed in this torch, or the harness is blind)"
        )
    )

    n = 40 if args.quick else 800
    configs = {
        "conv": conv_configs(rng, n) if not args.quick else conv_configs(rng, n)[-n:],
        "layers": layer_configs(rng, n // 2),
        "simple_cnn": network_configs(rng, n // 13),
        **volume_configs(rng, 12 if args.quick else 300),
    }
    failed = 0
    print(
        f"{'family':<13} {'precision':<9} {'threads':>7} {'checked':>8} {'failed':>7}"
    )
    for family in args.families:
        family_configs = configs[family]
        for precision, threads in itertools.product(("fp32", "bf16"), (1, 2)):
            jobs = [[config, precision] for config in family_configs]
            checked = bad = 0
            for start in range(0, len(jobs), args.group_size):
                group = jobs[start : start + args.group_size]
                report = run_group(group, threads, scratch)
                checked += report["checked"]
                if report.get("crashed") is not None:
                    for job in bisect_crash(group, threads, scratch):
                        print(f"  CRASH: {job}")
                        bad += 1
                    if not bad:
                        print(f"  a group crashed, no job alone: {report['stderr']}")
                        bad += 1
                for config, precision_, message in report.get("failures", []):
                    print(f"  MISMATCH {precision_}: {config}: {message}")
                    bad += 1
            failed += bad
            print(f"{family:<13} {precision:<9} {threads:>7} {checked:>8,} {bad:>7}")
    print(
        f"{'all':<13} {'':<9} {'':>7} {'':>8} {failed:>7}   "
        f"({time.perf_counter() - started:.0f} s)"
    )
    return 1 if failed or not caught else 0


if __name__ == "__main__":
    sys.exit(main())
