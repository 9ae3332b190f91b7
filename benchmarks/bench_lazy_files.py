"""Train on a folder of PNG files read lazily, batch by batch.

Writes ``--n-files`` 28x28 PNG lesion phantoms into a temporary class-per-subfolder
tree, lists them with ``load_image_folder(lazy=True)`` (paths only), fits
``MedicalCNNClassifier`` on the paths for ``--epochs`` with ``--num-workers`` loader
processes, and prints the time, the training images/s and the peak RSS against the
size of the images in memory.

    python benchmarks/bench_lazy_files.py --n-files 20000 --num-workers 2
    python benchmarks/bench_lazy_files.py --quick
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import torch

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import make_lesion_phantoms
from sk_medcnn.io import load_image_folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-files", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="300 files")
    args = parser.parse_args(argv)
    n_files = 300 if args.quick else args.n_files
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        start = time.perf_counter()
        for begin in range(0, n_files, 2000):
            count = min(2000, n_files - begin)
            X, y = make_lesion_phantoms(count, random_state=begin)
            for offset, (image, label) in enumerate(zip(X, y, strict=True)):
                target = root / ("lesion" if label else "normal")
                target.mkdir(exist_ok=True)
                iio.imwrite(target / f"{begin + offset:06d}.png", image)
        write_seconds = time.perf_counter() - start
        paths, labels = load_image_folder(root, lazy=True)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        clf = MedicalCNNClassifier(
            max_epochs=args.epochs,
            num_workers=args.num_workers,
            random_state=0,
            device="cpu",
        ).fit(paths, labels)
        fit_seconds = time.perf_counter() - start
        accuracy = float((clf.predict(paths[:2000]) == labels[:2000]).mean())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{n_files} PNG files 28x28 (written in {write_seconds:.1f} s; "
        f"{n_files * 784 / 2**20:.1f} MiB as an array)\n"
        f"fit {args.epochs} epoch(s) from paths, num_workers={args.num_workers}: "
        f"{fit_seconds:.1f} s, {n_files * args.epochs / fit_seconds:,.0f} images/s; "
        f"training accuracy on 2000 files {accuracy:.3f}\n"
        f"peak RSS: {rss:,.0f} MiB (before fit: {rss_before:,.0f} MiB)"
    )


if __name__ == "__main__":
    main()
