"""Fit and predict on a uint8 memmap larger than the memory the process uses.

Creates a ``--gigabytes`` uint8 ``numpy.memmap`` of ``--size`` x ``--size`` images
in a temporary folder (written in chunks, never held in memory), fits
``MedicalCNNClassifier`` on it for one epoch with a tiny strided CNN (the point is
the data path, not the network), predicts it, and prints the peak resident memory
(``ru_maxrss``) of the process next to the size of the data.

    python benchmarks/bench_memmap.py --gigabytes 2
    python benchmarks/bench_memmap.py --quick
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sk_medcnn import MedicalCNNClassifier


def tiny_cnn(in_channels, n_outputs, image_shape):
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, kernel_size=8, stride=8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, n_outputs),
    )


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="64 MB, for tests")
    args = parser.parse_args(argv)
    gigabytes = 0.064 if args.quick else args.gigabytes
    torch.set_num_threads(2)
    side = args.size
    n_images = int(gigabytes * 1e9) // (side * side)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "images.u8"
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, n_images)
        with open(path, "wb") as handle:  # in chunks: never all in memory
            for start in range(0, n_images, 1024):
                stop = min(start + 1024, n_images)
                chunk = rng.integers(0, 200, (stop - start, side, side), dtype=np.uint8)
                chunk[y[start:stop] == 1, : side // 2] += 40  # a learnable signal
                chunk.tofile(handle)
        X = np.memmap(path, dtype=np.uint8, mode="r", shape=(n_images, side, side))
        rss_before = peak_rss_mib()
        start = time.perf_counter()
        clf = MedicalCNNClassifier(
            tiny_cnn, max_epochs=1, batch_size=256, random_state=0, device="cpu"
        ).fit(X, y)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        accuracy = float((clf.predict(X) == y).mean())
        predict_seconds = time.perf_counter() - start
        data_mib = n_images * side * side / 2**20
        print(
            f"memmap: {n_images} images of {side}x{side} uint8, {data_mib:,.0f} MiB\n"
            f"fit (1 epoch): {fit_seconds:.1f} s; predict: {predict_seconds:.1f} s; "
            f"training accuracy {accuracy:.3f}\n"
            f"peak RSS: {peak_rss_mib():,.0f} MiB (before fit: {rss_before:,.0f} MiB)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
