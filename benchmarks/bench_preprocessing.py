"""Benchmark: sk_medcnn.preprocessing against a per-image scikit-image loop.

Each case transforms the same images twice: with the batched transformer
(``Resize``, ``IntensityNormalizer``, ``CLAHE``) and with the loop a user
writes by hand, calling scikit-image (or numpy) once per image and stacking
the results. Reported per case: throughput in images per second for both
(median over ``--repeats``), the speed-up, and the largest absolute
difference between the two outputs (a check that both compute the same).

Cases, on 10,000 images by default:

- ``Resize 28->64``: PneumoniaMNIST 28x28 uint8 images to 64x64
  (``skimage.transform.resize(image, (64, 64), preserve_range=True)``,
  rounded back to uint8 as ``Resize`` does);
- ``Resize 224->128``: the same images first enlarged to 224x224, then to
  128x128 (the 224x224 set takes 0.5 GB for 10,000 images);
- ``IntensityNormalizer zscore / minmax / percentile``: per-image statistics
  (``(image - image.mean()) / image.std()``;
  ``skimage.exposure.rescale_intensity(image, out_range=(0.0, 1.0))``; the same
  with ``in_range`` the 1st and 99th percentiles);
- ``CLAHE``: ``skimage.exposure.equalize_adapthist(image)`` per image.

Images are the PneumoniaMNIST train and validation splits
(``../shared/data/pneumoniamnist_28_trainval.npz``), repeated up to
``--n-images``; random images of the same size when the file is absent or
``--synthetic`` is given.

Run from the project root::

    python benchmarks/bench_preprocessing.py                # 10,000 images
    python benchmarks/bench_preprocessing.py --quick        # 500 images, 1 repeat
    python benchmarks/bench_preprocessing.py --json reports/bench_preprocessing.json

Timings need quiet cores: the header prints the load average; on a shared
2-core machine run it alone and compare medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import skimage
import sklearn
from numpy.typing import NDArray
from skimage.exposure import equalize_adapthist, rescale_intensity
from skimage.transform import resize
from threadpoolctl import threadpool_info, threadpool_limits

from sk_medcnn.preprocessing import CLAHE, IntensityNormalizer, Resize

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
from benchmarks._common import DEFAULT_DATA, require_at_least, save_results  # noqa: E402

N_IMAGES_FULL = 10_000
N_IMAGES_QUICK = 500
CASES = (
    "resize_28_64",
    "resize_224_128",
    "zscore",
    "minmax",
    "percentile",
    "clahe",
)
LABELS = {
    "resize_28_64": "Resize 28->64",
    "resize_224_128": "Resize 224->128",
    "zscore": "IntensityNormalizer zscore",
    "minmax": "IntensityNormalizer minmax",
    "percentile": "IntensityNormalizer percentile",
    "clahe": "CLAHE",
}


def load_images(
    path: Path | None, n_images: int, seed: int = 0
) -> tuple[NDArray[np.uint8], str]:
    """Return ``n_images`` 28x28 uint8 images and a description of their source."""
    if path is not None and path.exists():
        with np.load(path) as data:
            images = np.concatenate([data["train_images"], data["val_images"]])
        source = f"PneumoniaMNIST ({path.name}, {len(images)} images, repeated)"
        return np.resize(images, (n_images, *images.shape[1:])), source
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n_images, 28, 28), dtype=np.uint8)
    return images, "synthetic uniform noise"


# --- the per-image loops a user writes by hand -----------------------------------


def loop_resize(images: NDArray[Any], shape: tuple[int, int]) -> NDArray[Any]:
    out = np.stack([resize(image, shape, preserve_range=True) for image in images])
    return np.clip(np.rint(out), 0, 255).astype(images.dtype)


def loop_zscore(images: NDArray[Any]) -> NDArray[Any]:
    return np.stack([(image - image.mean()) / (image.std() or 1.0) for image in images])


def loop_minmax(images: NDArray[Any]) -> NDArray[Any]:
    return np.stack(
        [rescale_intensity(image, out_range=(0.0, 1.0)) for image in images]
    )


def loop_percentile(images: NDArray[Any]) -> NDArray[Any]:
    return np.stack(
        [
            rescale_intensity(
                image,
                in_range=tuple(np.percentile(image, (1, 99))),
                out_range=(0.0, 1.0),
            )
            for image in images
        ]
    )


def loop_clahe(images: NDArray[Any]) -> NDArray[Any]:
    return np.stack([equalize_adapthist(image) for image in images])


def make_cases(
    images: NDArray[np.uint8], cases: Sequence[str]
) -> dict[str, tuple[NDArray[Any], Callable[..., Any], Callable[..., Any]]]:
    """Map each case to (input images, batched function, per-image loop)."""
    table: dict[str, tuple[NDArray[Any], Callable[..., Any], Callable[..., Any]]] = {}
    for case in cases:
        if case == "resize_28_64":
            table[case] = (
                images,
                Resize((64, 64)).fit_transform,
                lambda X: loop_resize(X, (64, 64)),
            )
        elif case == "resize_224_128":
            large = Resize((224, 224)).fit_transform(images)
            table[case] = (
                large,
                Resize((128, 128)).fit_transform,
                lambda X: loop_resize(X, (128, 128)),
            )
        elif case in ("zscore", "minmax", "percentile"):
            loop = {
                "zscore": loop_zscore,
                "minmax": loop_minmax,
                "percentile": loop_percentile,
            }[case]
            table[case] = (images, IntensityNormalizer(method=case).fit_transform, loop)
        elif case == "clahe":
            table[case] = (images, CLAHE().fit_transform, loop_clahe)
        else:
            raise ValueError(f"unknown case {case!r}; choose from {CASES}")
    return table


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def measure(
    X: NDArray[Any],
    batched: Callable[[NDArray[Any]], Any],
    loop: Callable[[NDArray[Any]], Any],
    *,
    repeats: int,
    n_loop: int,
) -> dict[str, float]:
    """Median throughput of both sides; the loop may run on the first ``n_loop``."""
    batched(X[:8])  # warm-up: imports, caches, resize matrices
    loop(X[:8])
    batched_rates, loop_rates = [], []
    difference = 0.0
    for repeat in range(repeats):
        # alternate the order, so that drift does not favour one side
        sides = ("batched", "loop") if repeat % 2 == 0 else ("loop", "batched")
        for side in sides:
            if side == "batched":
                seconds, ours = _timed(lambda: batched(X))
                batched_rates.append(len(X) / seconds)
            else:
                seconds, theirs = _timed(lambda: loop(X[:n_loop]))
                loop_rates.append(n_loop / seconds)
        # compare on at most 1,000 images: enough, and no large float64 copy
        n_compared = min(n_loop, 1000)
        ours_part = np.asarray(ours[:n_compared], dtype=np.float64)
        theirs_part = np.asarray(theirs[:n_compared], dtype=np.float64)
        difference = max(difference, float(np.max(np.abs(ours_part - theirs_part))))
    batched_rate = statistics.median(batched_rates)
    loop_rate = statistics.median(loop_rates)
    return {
        "n_images": len(X),
        "n_loop_images": n_loop,
        "image_shape": list(X.shape[1:]),
        "sk_medcnn_images_per_s": batched_rate,
        "loop_images_per_s": loop_rate,
        "speedup": batched_rate / loop_rate,
        "max_abs_difference": difference,
    }


def format_table(results: dict[str, Any]) -> str:
    config = results["config"]
    lines = [
        f"sk_medcnn.preprocessing vs a per-image loop: {config['n_images']:,} images "
        f"({config['data']}), median of {config['repeats']} repeat(s)",
        f"scikit-image {config['skimage']}, scikit-learn {config['sklearn']}, "
        f"numpy {config['numpy']}, {config['cpu_count']} CPUs, BLAS threads "
        f"{config['blas_threads']}, load average before {config['load_average']}",
        "",
        f"{'case':<32}{'input':>12}{'sk_medcnn img/s':>18}{'loop img/s':>13}"
        f"{'speed-up':>10}{'max |diff|':>12}",
    ]
    for case in config["cases"]:
        row = results[case]
        shape = "x".join(str(size) for size in row["image_shape"][:2])
        lines.append(
            f"{LABELS[case]:<32}{shape:>12}{row['sk_medcnn_images_per_s']:>18,.0f}"
            f"{row['loop_images_per_s']:>13,.0f}{row['speedup']:>9.1f}x"
            f"{row['max_abs_difference']:>12.2g}"
        )
    if any(
        results[case]["n_loop_images"] < config["n_images"]
        for case in CASES
        if case in results
    ):
        lines.append(
            f"(the loops ran on the first {config['n_loop_images']:,} images; "
            "their throughput does not depend on the count)"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n-images", type=int, default=None, help="default 10,000")
    parser.add_argument("--repeats", type=int, default=None, help="default 3")
    parser.add_argument(
        "--n-loop",
        type=int,
        default=None,
        help="images the per-image loops run on (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="500 images, 1 repeat: a smoke run"
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=CASES,
        default=list(CASES),
        help="which cases to run (default: all)",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--synthetic", action="store_true", help="random images, not the npz file"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="limit BLAS/OpenMP threads"
    )
    parser.add_argument("--json", type=Path, default=None, help="save the results")
    args = parser.parse_args(argv)
    if args.n_images is None:
        args.n_images = N_IMAGES_QUICK if args.quick else N_IMAGES_FULL
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.n_loop is None:
        args.n_loop = args.n_images
    args.n_loop = min(args.n_loop, args.n_images)
    require_at_least(parser, args, ("n_images", "repeats", "n_loop"))
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and return the results."""
    args = parse_args(argv)
    load_average = round(os.getloadavg()[0], 2)
    images, source = load_images(None if args.synthetic else args.data, args.n_images)
    with threadpool_limits(limits=args.threads):
        blas_threads = sorted({pool["num_threads"] for pool in threadpool_info()}) or [
            None
        ]
        results: dict[str, Any] = {
            "config": {
                "n_images": args.n_images,
                "n_loop_images": args.n_loop,
                "repeats": args.repeats,
                "cases": list(args.cases),
                "data": source,
                "blas_threads": blas_threads[0]
                if len(blas_threads) == 1
                else blas_threads,
                "load_average": load_average,
                "skimage": skimage.__version__,
                "sklearn": sklearn.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpu_count": os.cpu_count(),
            }
        }
        for case, (X, batched, loop) in make_cases(images, args.cases).items():
            results[case] = measure(
                X, batched, loop, repeats=args.repeats, n_loop=args.n_loop
            )
    print(format_table(results))
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
