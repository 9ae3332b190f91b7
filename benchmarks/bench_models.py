"""Benchmark: training speed by architecture, image size, precision and layout.

Two parts, each against a plain PyTorch loop written here (fp32, NCHW, the
images preloaded as one float tensor, ``torch.randperm`` batches of 32, Adam),
in the same process and with the same torch threads:

1. ``resnet18``: ResNet-18 (``resnet18``, small-image stem at 28 px) at 28 and
   64 px, trained by ``MedicalCNNClassifier`` in fp32, ``precision="bf16"``,
   ``memory_format="channels_last"`` and both; training images per second and
   the ratio to the plain fp32 NCHW loop (target: the best option at least
   1.5x). With ``--accuracy-epochs N`` (default 3; 0 skips it) it also trains
   ResNet-18 at 28 px on the PneumoniaMNIST train split in fp32 and in bf16
   and reports the validation AUC of each (target: within 0.005).
2. ``scaling``: training images per second of ``simple_cnn`` and ``resnet18``
   at 28, 64, 128 and 224 px (plain loop and sk_medcnn, fp32), with the
   forward FLOPs per image (``torch.utils.flop_counter``; training costs about
   three times the forward), the achieved GFLOP/s and its fraction of the
   CPU's measured peak (the faster of a 2048x2048 fp32 matrix product and a
   64-channel 3x3 convolution).

Each training figure is the second of two epochs over the same images (the
first builds oneDNN's kernels for the shapes), from skorch's epoch duration
for sk_medcnn and from the clock for the plain loop. Run alone on the
machine: other processes on the cores slow both sides down.

Run from the project root::

    python benchmarks/bench_models.py                    # both parts (~15 min)
    python benchmarks/bench_models.py --parts resnet18 --accuracy-epochs 0
    python benchmarks/bench_models.py --quick            # a smoke run, seconds
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
from benchmarks._common import DEFAULT_DATA, save_results  # noqa: E402

BATCH_SIZE = 32
LR = 1e-3
BEST_RATIO_MIN = 1.5
AUC_TOLERANCE = 0.005
OPTIONS: dict[str, dict[str, str]] = {
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "channels_last": {"memory_format": "channels_last"},
    "bf16+channels_last": {"precision": "bf16", "memory_format": "channels_last"},
}
# images per timed epoch: enough for a few seconds of training each
N_IMAGES = {
    ("simple_cnn", 28): 4096,
    ("simple_cnn", 64): 2048,
    ("simple_cnn", 128): 512,
    ("simple_cnn", 224): 256,
    ("resnet18", 28): 640,
    ("resnet18", 64): 1280,
    ("resnet18", 128): 512,
    ("resnet18", 224): 192,
}


def build(architecture: str, size: int) -> nn.Module:
    """The architecture from sk_medcnn's registry, one channel, two classes."""
    from sk_medcnn import get_architecture

    return get_architecture(architecture)(1, 2, (size, size))


def images_and_labels(
    n: int, size: int, seed: int = 0
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Random uint8 images with labels (speed does not depend on the content)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
    return X, (np.arange(n) % 2).astype(np.int64)


def plain_epoch_images_per_s(
    architecture: str, X: NDArray[np.uint8], y: NDArray[np.int64], seed: int = 0
) -> float:
    """Train 2 epochs with the hand-written loop; images/s of the second."""
    torch.manual_seed(seed)
    model = build(architecture, X.shape[1])
    images = torch.from_numpy(X).float().div_(255.0).unsqueeze(1)
    targets = torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    criterion = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    model.train()
    seconds = 0.0
    for _ in range(2):
        start = time.perf_counter()
        order = torch.randperm(len(images), generator=generator)
        for first in range(0, len(images), BATCH_SIZE):
            index = order[first : first + BATCH_SIZE]
            optimizer.zero_grad()
            criterion(model(images[index]), targets[index]).backward()
            optimizer.step()
        seconds = time.perf_counter() - start
    return len(images) / seconds


def sk_epoch_images_per_s(
    architecture: str,
    X: NDArray[np.uint8],
    y: NDArray[np.int64],
    options: dict[str, Any],
    seed: int = 0,
) -> float:
    """Train 2 epochs with ``MedicalCNNClassifier``; images/s of the second."""
    from sk_medcnn import MedicalCNNClassifier

    clf = MedicalCNNClassifier(
        architecture,
        max_epochs=2,
        batch_size=BATCH_SIZE,
        lr=LR,
        lr_schedule=None,
        calibration=None,
        tta=None,
        device="cpu",
        random_state=seed,
        **options,
    ).fit(X, y)
    return len(X) / float(clf.history_[-1, "dur"])


def forward_flops(architecture: str, size: int) -> float:
    """Forward FLOPs of one image (a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build(architecture, size).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 1, size, size))
    return float(counter.get_total_flops())


def measured_peak_gflops(repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of a 2048^2 fp32 matrix product and a 64-channel 3x3 convolution."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    conv = nn.Conv2d(64, 64, 3, padding=1, bias=False).eval()
    x = torch.randn(32, 64, 56, 56)
    conv_flops = 2 * 64 * 64 * 9 * 56 * 56 * 32
    best = {"matmul": 0.0, "conv": 0.0}
    with torch.inference_mode():
        a @ b, conv(x)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best["matmul"] = max(
                best["matmul"], 2 * 2048**3 / (time.perf_counter() - start) / 1e9
            )
            start = time.perf_counter()
            conv(x)
            best["conv"] = max(
                best["conv"], conv_flops / (time.perf_counter() - start) / 1e9
            )
    best["peak"] = max(best["matmul"], best["conv"])
    return best


def run_resnet18(args: argparse.Namespace) -> dict[str, Any]:
    """Part 1: ResNet-18 at 28 and 64 px, every option against the plain loop."""
    rows = []
    for size in args.resnet_sizes:
        n = args.n_images or N_IMAGES[("resnet18", size)]
        X, y = images_and_labels(n, size)
        row: dict[str, Any] = {"size": size, "n_images": n}
        row["plain_fp32"] = plain_epoch_images_per_s("resnet18", X, y)
        for name, options in OPTIONS.items():
            row[name] = sk_epoch_images_per_s("resnet18", X, y, options)
            row[f"{name}_ratio"] = row[name] / row["plain_fp32"]
        row["best"] = max(OPTIONS, key=lambda name: row[name])
        row["best_ratio"] = row[f"{row['best']}_ratio"]
        rows.append(row)
    result: dict[str, Any] = {"rows": rows}
    if args.accuracy_epochs > 0:
        result["accuracy"] = resnet18_accuracy(args)
    return result


def resnet18_accuracy(args: argparse.Namespace) -> dict[str, Any]:
    """Validation AUC of ResNet-18 (28 px) trained in fp32 and in bf16."""
    from sklearn.metrics import roc_auc_score

    from sk_medcnn import MedicalCNNClassifier

    if args.data.exists():
        with np.load(args.data) as data:
            X, y = data["train_images"], data["train_labels"].ravel()
            X_valid, y_valid = data["val_images"], data["val_labels"].ravel()
        source = str(args.data)
    else:
        from sk_medcnn.datasets import make_lesion_phantoms

        X, y = make_lesion_phantoms(2000, image_size=28, random_state=0)
        X_valid, y_valid = make_lesion_phantoms(500, image_size=28, random_state=1)
        source = "lesion phantoms (the PneumoniaMNIST file is absent)"
    if args.quick:
        X, y, X_valid, y_valid = X[:256], y[:256], X_valid[:128], y_valid[:128]
    out: dict[str, Any] = {"data": source, "epochs": args.accuracy_epochs}
    for name in ("fp32", "bf16"):
        clf = MedicalCNNClassifier(
            "resnet18",
            max_epochs=args.accuracy_epochs,
            lr_schedule=None,
            calibration=None,
            tta=None,
            device="cpu",
            random_state=0,
            **OPTIONS[name],
        )
        start = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - start
        proba = clf.predict_proba(X_valid)[:, 1]
        out[name] = {
            "auc": float(roc_auc_score(y_valid, proba)),
            "acc": float(np.mean((proba > 0.5) == (y_valid == 1))),
            "fit_s": seconds,
        }
    out["auc_difference"] = out["bf16"]["auc"] - out["fp32"]["auc"]
    return out


def run_scaling(args: argparse.Namespace) -> dict[str, Any]:
    """Part 2: images/s, FLOPs and the fraction of the measured peak by size."""
    peak = measured_peak_gflops()
    rows = []
    for architecture in ("simple_cnn", "resnet18"):
        for size in args.scaling_sizes:
            n = args.n_images or N_IMAGES[(architecture, size)]
            X, y = images_and_labels(n, size)
            flops = forward_flops(architecture, size)
            plain = plain_epoch_images_per_s(architecture, X, y)
            sk = sk_epoch_images_per_s(architecture, X, y, {})
            train_gflops = 3 * flops * sk / 1e9
            rows.append(
                {
                    "architecture": architecture,
                    "size": size,
                    "n_images": n,
                    "forward_mflops": flops / 1e6,
                    "plain_images_per_s": plain,
                    "sk_images_per_s": sk,
                    "sk_plain_ratio": sk / plain,
                    "train_gflops_per_s": train_gflops,
                    "fraction_of_peak": train_gflops / peak["peak"],
                }
            )
    return {"peak_gflops": peak, "rows": rows}


def format_results(results: dict[str, Any]) -> str:
    """The tables of both parts as text."""
    lines = [
        f"torch {results['config']['torch']}, {results['config']['threads']} "
        f"threads, batch {BATCH_SIZE}; images/s of the second of two epochs"
    ]
    if "resnet18" in results:
        lines += ["", "ResNet-18 training images/s (ratio to the plain fp32 loop)"]
        header = f"{'size':>5} {'plain':>8}" + "".join(
            f" {name:>22}" for name in OPTIONS
        )
        lines += [header, "-" * len(header)]
        for row in results["resnet18"]["rows"]:
            lines.append(
                f"{row['size']:>5} {row['plain_fp32']:>8.1f}"
                + "".join(
                    f" {row[name]:>13.1f} ({row[name + '_ratio']:.2f}x)"
                    for name in OPTIONS
                )
            )
        best = max(row["best_ratio"] for row in results["resnet18"]["rows"])
        lines.append(
            f"target: the best option >= {BEST_RATIO_MIN}x the plain fp32 loop: "
            f"{'met' if best >= BEST_RATIO_MIN else 'not met'} ({best:.2f}x)"
        )
        accuracy = results["resnet18"].get("accuracy")
        if accuracy:
            difference = accuracy["auc_difference"]
            fp32, bf16 = accuracy["fp32"], accuracy["bf16"]
            lines.append(
                f"validation AUC after {accuracy['epochs']} epochs "
                f"({accuracy['data']}): fp32 {fp32['auc']:.4f} (fit "
                f"{fp32['fit_s']:.0f} s), bf16 {bf16['auc']:.4f} (fit "
                f"{bf16['fit_s']:.0f} s); difference {difference:+.4f}, "
                f"target within {AUC_TOLERANCE}: "
                f"{'met' if abs(difference) <= AUC_TOLERANCE else 'not met'}"
            )
    if "scaling" in results:
        peak = results["scaling"]["peak_gflops"]
        lines += [
            "",
            f"scaling with image size, fp32 (measured peak: matmul "
            f"{peak['matmul']:.0f}, conv {peak['conv']:.0f} GFLOP/s)",
        ]
        header = (
            f"{'architecture':<12} {'size':>5} {'fwd MFLOP':>10} {'plain im/s':>11} "
            f"{'sk im/s':>9} {'sk/plain':>9} {'GFLOP/s':>8} {'of peak':>8}"
        )
        lines += [header, "-" * len(header)]
        for row in results["scaling"]["rows"]:
            lines.append(
                f"{row['architecture']:<12} {row['size']:>5} "
                f"{row['forward_mflops']:>10.1f} {row['plain_images_per_s']:>11.1f} "
                f"{row['sk_images_per_s']:>9.1f} {row['sk_plain_ratio']:>9.2f} "
                f"{row['train_gflops_per_s']:>8.1f} {row['fraction_of_peak']:>8.1%}"
            )
        lines.append("GFLOP/s = 3 x forward FLOPs x sk_medcnn images/s")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--parts", nargs="+", choices=("resnet18", "scaling"), default=None
    )
    parser.add_argument("--resnet-sizes", nargs="+", type=int, default=[28, 64])
    parser.add_argument(
        "--scaling-sizes", nargs="+", type=int, default=[28, 64, 128, 224]
    )
    parser.add_argument(
        "--n-images", type=int, default=None, help="images per timed epoch"
    )
    parser.add_argument("--accuracy-epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, default=None, help="save the results")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 64 images at 28 px, 2 epochs each",
    )
    args = parser.parse_args(argv)
    args.parts = args.parts or ["resnet18", "scaling"]
    if args.quick:
        args.n_images = args.n_images or 64
        args.resnet_sizes, args.scaling_sizes = [28], [28]
        args.accuracy_epochs = min(args.accuracy_epochs, 1)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the parts, print the tables and return the results."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "config": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "quick": args.quick,
        }
    }
    if "resnet18" in args.parts:
        results["resnet18"] = run_resnet18(args)
    if "scaling" in args.parts:
        results["scaling"] = run_scaling(args)
    print(format_results(results))
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
