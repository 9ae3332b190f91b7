"""Benchmark: an exported ONNX model in onnxruntime against ``predict_proba``.

A ``MedicalCNNClassifier`` (``simple_cnn``, and ``resnet18`` unless
``--quick``) is fitted for one epoch on 28 x 28 PneumoniaMNIST images (lesion
phantoms with ``--quick`` or without the data), exported with
:func:`sk_medcnn.export_onnx` and run in onnxruntime on the CPU with the same
number of threads as torch. Measured in the same process: throughput in
images per second over ``--n-images`` images (``predict_proba`` with
``tta=None``, its own batches; onnxruntime in batches of 256) and the latency
of one image (median and 99th percentile over ``--repeats`` calls), with the
ratio onnxruntime / sk_medcnn, and the largest difference of the
probabilities (the parity the tests hold to 1e-5).

Run from the project root (alone on the machine: timings need quiet cores)::

    python benchmarks/bench_onnx.py --json reports/bench_onnx.json
    python benchmarks/bench_onnx.py --quick
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import DEFAULT_DATA, require_at_least, save_results
from sk_medcnn import MedicalCNNClassifier, export_onnx
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms


def _images(n_images: int, quick: bool) -> tuple[np.ndarray, np.ndarray]:
    if quick or not DEFAULT_DATA.exists():
        return make_lesion_phantoms(n_images, image_size=28, random_state=0)
    X, y = load_medmnist(DEFAULT_DATA, "train")
    return X[:n_images], y[:n_images]


def _throughput(run: Any, X: np.ndarray) -> float:
    run(X[:64])  # warm-up: kernels for the shapes
    start = time.perf_counter()
    run(X)
    return len(X) / (time.perf_counter() - start)


def _latency(run: Any, image: np.ndarray, repeats: int) -> tuple[float, float]:
    for _ in range(5):
        run(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(image)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3), float(np.percentile(times, 99) * 1e3)


def _case(architecture: str, X: np.ndarray, y: np.ndarray, args: Any) -> dict:
    import onnxruntime

    clf = MedicalCNNClassifier(
        architecture, max_epochs=1, tta=None, random_state=0, device="cpu"
    ).fit(X, y)
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(clf, Path(folder) / "model.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    images = X[..., None].astype(np.float32) if X.ndim == 3 else X.astype(np.float32)

    def run_onnx(batch: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                session.run(None, {"images": batch[start : start + 256]})[0]
                for start in range(0, len(batch), 256)
            ]
        )

    difference = float(np.abs(run_onnx(images) - clf.predict_proba(images)).max())
    result = {
        "architecture": architecture,
        "max_abs_difference": difference,
        "sk_medcnn_images_per_s": _throughput(clf.predict_proba, images),
        "onnx_images_per_s": _throughput(run_onnx, images),
    }
    sk_median, sk_p99 = _latency(clf.predict_proba, images[:1], args.repeats)
    ort_median, ort_p99 = _latency(run_onnx, images[:1], args.repeats)
    result.update(
        sk_medcnn_latency_ms=sk_median,
        sk_medcnn_latency_p99_ms=sk_p99,
        onnx_latency_ms=ort_median,
        onnx_latency_p99_ms=ort_p99,
    )
    result["throughput_ratio"] = (
        result["onnx_images_per_s"] / result["sk_medcnn_images_per_s"]
    )
    result["latency_ratio"] = sk_median / ort_median
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch and ort threads")
    parser.add_argument("--quick", action="store_true", help="phantoms, simple_cnn")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    require_at_least(parser, args, ["n_images", "repeats", "threads"])
    if args.quick:
        args.n_images, args.repeats = min(args.n_images, 256), min(args.repeats, 20)
    torch.set_num_threads(args.threads)
    X, y = _images(args.n_images, args.quick)
    architectures = ["simple_cnn"] if args.quick else ["simple_cnn", "resnet18"]
    rows = [_case(name, X, y, args) for name in architectures]
    print(
        f"\n{len(X)} images of 28 x 28, {args.threads} thread(s); latency: one "
        f"image, median (p99) of {args.repeats} calls"
    )
    print(
        "| architecture | images/s sk_medcnn | images/s onnxruntime | ratio | "
        "latency sk_medcnn ms | latency onnxruntime ms | ratio | max |diff| |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['architecture']} | {row['sk_medcnn_images_per_s']:.0f} | "
            f"{row['onnx_images_per_s']:.0f} | {row['throughput_ratio']:.2f}x | "
            f"{row['sk_medcnn_latency_ms']:.2f} ({row['sk_medcnn_latency_p99_ms']:.2f})"
            f" | {row['onnx_latency_ms']:.2f} ({row['onnx_latency_p99_ms']:.2f}) | "
            f"{row['latency_ratio']:.2f}x | {row['max_abs_difference']:.1e} |"
        )
    results = {"threads": args.threads, "n_images": len(X), "rows": rows}
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
