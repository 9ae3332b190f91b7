"""Benchmark: sk_medcnn's batched torch augmentation.

Two measurements, with flip + rotation + affine + intensity (the
``RandomFlip()``, ``RandomRotation(10)``, ``RandomAffine()`` and
``RandomIntensity(gamma=0.2)`` defaults, which change every image):

1. Throughput, in images per second, of ``augment_batch`` on float32 batches
   of 28x28 (batch 32 and 256) and 224x224 (batch 32) images, against a
   per-image scikit-image loop doing the same transforms the way a user
   writes it: ``np.flip``, ``skimage.transform.rotate``, an
   ``AffineTransform`` with ``warp`` (bilinear, constant fill with the image
   minimum) and ``skimage.exposure.adjust_gamma`` plus brightness and
   contrast on the min-max normalised image.
2. Epoch-time overhead: ``MedicalCNNClassifier()`` (the reference
   ``simple_cnn``, batch 32) trained on the PneumoniaMNIST train split
   (``../shared/data/pneumoniamnist_28_trainval.npz``; synthetic phantoms of
   the same size when it is absent) for 2 epochs with and without that
   augmentation. Target: at most 1.25x the epoch time without it.

With ``--accuracy``, it also trains the reference CNN for up to 30 epochs
with early stopping (patience 5) without augmentation and with each variant,
and reports AUC and accuracy on the official validation split (slow: minutes).

3. The per-batch cost of the default augmentation
   (:func:`sk_medcnn.augmentation.default_augmentation`, as
   ``MedicalCNNClassifier(augmentation="auto")`` trains with): batches of 32
   images of 28x28 (``spatial_dims=2``) next to 32 volumes of 28x28x28
   (``spatial_dims=3``), float32, through ``augment_batch`` as the
   classifier calls it.

Both also report the single-resampling variant ``RandomFlip()``,
``RandomAffine(degrees=10)``, ``RandomIntensity(gamma=0.2)``, which rotates,
shifts and zooms in one ``grid_sample`` instead of two.

Medians over ``--repeats``; the two training runs alternate their order
between repeats. Run from the project root, alone on the machine::

    python benchmarks/bench_augmentation.py                 # full
    python benchmarks/bench_augmentation.py --quick         # a few seconds
    python benchmarks/bench_augmentation.py --json reports/bench_augmentation.json
    python benchmarks/bench_augmentation.py --accuracy --seeds 0 1 2
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
import torch
from numpy.typing import NDArray

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
from benchmarks._common import DEFAULT_DATA, save_results  # noqa: E402

#: (image size, batch size) of the throughput measurements
THROUGHPUT_CASES = ((28, 32), (28, 256), (224, 32))
#: (spatial dims, size, batch size) of the default augmentation's per-batch cost
DEFAULT_CASES = ((2, 28, 32), (3, 28, 32))
EPOCH_TIME_RATIO_MAX = 1.25

# the augmentation, as parameters shared by the torch and scikit-image sides
DEGREES = 10.0
TRANSLATE = (0.1, 0.1)
SCALE = (0.9, 1.1)
BRIGHTNESS = 0.1
CONTRAST = 0.1
GAMMA = 0.2


def make_augmentation(single_resampling: bool = False) -> Any:
    """The pipeline under test: flip, rotation, affine, intensity.

    With ``single_resampling``, the rotation is folded into ``RandomAffine``.
    """
    from sklearn.pipeline import make_pipeline

    from sk_medcnn.augmentation import (
        RandomAffine,
        RandomFlip,
        RandomIntensity,
        RandomRotation,
    )

    intensity = RandomIntensity(BRIGHTNESS, contrast=CONTRAST, gamma=GAMMA)
    if single_resampling:
        return make_pipeline(
            RandomFlip(),
            RandomAffine(TRANSLATE, degrees=DEGREES, scale=SCALE),
            intensity,
        )
    return make_pipeline(
        RandomFlip(),
        RandomRotation(DEGREES),
        RandomAffine(TRANSLATE, scale=SCALE),
        intensity,
    )


# --- data -----------------------------------------------------------------------
def load_train(
    path: Path | None, *, n_train: int | None, seed: int = 0
) -> tuple[NDArray[np.uint8], NDArray[np.int64], str]:
    """PneumoniaMNIST train images and labels, or phantoms of the same size."""
    if path is not None and path.exists():
        with np.load(path) as data:
            X, y = data["train_images"], data["train_labels"].ravel()
        source = str(path)
    else:
        from sk_medcnn.datasets import make_lesion_phantoms

        X, y = make_lesion_phantoms(4708, image_size=28, random_state=seed)[:2]
        source = "synthetic (make_lesion_phantoms)"
    if n_train is not None and n_train < len(X):
        keep = np.sort(np.random.default_rng(seed).choice(len(X), n_train, False))
        X, y = X[keep], y[keep]
    return X, y.astype(np.int64), source


def make_batch(
    train: NDArray[np.uint8], image_size: int, batch_size: int, seed: int
) -> NDArray[np.float32]:
    """A float32 ``(n, H, W)`` batch in 0..255: training images, or phantoms."""
    if image_size == train.shape[1]:
        rows = np.random.default_rng(seed).choice(len(train), batch_size)
        return train[rows].astype(np.float32)
    from sk_medcnn.datasets import make_lesion_phantoms

    phantoms = make_lesion_phantoms(
        batch_size, image_size=image_size, random_state=seed
    )
    return phantoms[0].astype(np.float32)


# --- the two sides of the throughput measurement --------------------------------
def torch_augmenter(
    seed: int, *, single_resampling: bool = False
) -> Callable[[NDArray[np.float32]], Any]:
    """Run the pipeline's ``augment_batch`` steps, as the classifier does."""
    steps = [step for _, step in make_augmentation(single_resampling).steps]
    generator = torch.Generator().manual_seed(seed)

    def run(batch: NDArray[np.float32]) -> torch.Tensor:
        images = torch.from_numpy(batch)[:, None]  # (n, 1, H, W), no copy
        for step in steps:
            images = step.augment_batch(images, generator)
        return images

    return run


def skimage_augmenter(seed: int) -> Callable[[NDArray[np.float32]], Any]:
    """The same transforms image by image with numpy and scikit-image."""
    from skimage import exposure, transform

    rng = np.random.default_rng(seed)

    def augment_one(image: NDArray[Any]) -> NDArray[Any]:
        height, width = image.shape
        if rng.random() < 0.5:
            image = np.flip(image, axis=1)
        low = float(image.min())
        image = transform.rotate(
            image,
            rng.uniform(-DEGREES, DEGREES),
            order=1,
            mode="constant",
            cval=low,
            preserve_range=True,
        )
        zoom = rng.uniform(*SCALE)
        shift = np.array(
            [
                rng.uniform(-1, 1) * TRANSLATE[0] * width,
                rng.uniform(-1, 1) * TRANSLATE[1] * height,
            ]
        )
        centre = np.array([(width - 1) / 2, (height - 1) / 2])
        affine = transform.AffineTransform(
            scale=zoom, translation=centre + shift - zoom * centre
        )
        image = transform.warp(
            image,
            affine.inverse,
            order=1,
            mode="constant",
            cval=low,
            preserve_range=True,
        )
        low, high = float(image.min()), float(image.max())
        spread = high - low if high > low else 1.0
        normalised = np.clip((image - low) / spread, 0, 1)
        image = (
            low
            + exposure.adjust_gamma(normalised, np.exp(rng.uniform(-GAMMA, GAMMA)))
            * spread
        )
        mean = image.mean()
        image = mean + rng.uniform(1 - CONTRAST, 1 + CONTRAST) * (image - mean)
        return image + rng.uniform(-BRIGHTNESS, BRIGHTNESS) * spread

    def run(batch: NDArray[np.float32]) -> NDArray[Any]:
        return np.stack([augment_one(image) for image in batch])

    return run


def images_per_second(
    augment: Callable[[NDArray[np.float32]], Any],
    batch: NDArray[np.float32],
    *,
    min_time: float,
) -> float:
    """Throughput over as many calls as fit in ``min_time`` (at least one)."""
    augment(batch)  # warm-up
    n_calls, start = 0, time.perf_counter()
    while True:
        augment(batch)
        n_calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return n_calls * len(batch) / elapsed


def measure_throughput(
    train: NDArray[np.uint8], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Images per second of both sides on every (image size, batch size) case."""
    rows = []
    for image_size, batch_size in THROUGHPUT_CASES:
        batch = make_batch(train, image_size, batch_size, args.seed)
        sides = {
            "torch": lambda: torch_augmenter(args.seed),
            "torch_single_resampling": lambda: torch_augmenter(
                args.seed, single_resampling=True
            ),
            "skimage": lambda: skimage_augmenter(args.seed),
        }
        runs: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.repeats):
            for name, make in sides.items():
                runs[name].append(
                    images_per_second(make(), batch, min_time=args.min_time)
                )
        row: dict[str, Any] = {"image_size": image_size, "batch_size": batch_size}
        for name in sides:
            row[f"{name}_images_per_s"] = statistics.median(runs[name])
        row["speedup"] = row["torch_images_per_s"] / row["skimage_images_per_s"]
        rows.append(row)
    return rows


def measure_default_per_batch(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Milliseconds per batch of ``default_augmentation``, 2-D next to 3-D."""
    from sk_medcnn.augmentation import default_augmentation

    rows = []
    for spatial_dims, size, batch_size in DEFAULT_CASES:
        shape = (batch_size, 1, *([size] * spatial_dims))
        batch = torch.rand(shape, generator=torch.Generator().manual_seed(args.seed))
        batch = batch * 255

        def make(spatial_dims: int = spatial_dims) -> Callable[[Any], Any]:
            steps = [step for _, step in default_augmentation(spatial_dims).steps]
            generator = torch.Generator().manual_seed(args.seed)

            def run(images: Any) -> Any:
                for step in steps:
                    images = step.augment_batch(images, generator)
                return images

            return run

        runs = [
            images_per_second(make(), batch, min_time=args.min_time)
            for _ in range(args.repeats)
        ]
        per_second = statistics.median(runs)
        rows.append(
            {
                "spatial_dims": spatial_dims,
                "shape": list(shape[2:]),
                "batch_size": batch_size,
                "images_per_s": per_second,
                "ms_per_batch": 1000 * batch_size / per_second,
            }
        )
    return rows


# --- epoch-time overhead --------------------------------------------------------
#: seconds spent in augment_batch during the current fit (see _TimedAugmentation)
_AUGMENT_SECONDS: list[float] = []


def _timed_augmentation(pipeline: Any) -> Any:
    """Wrap a Pipeline of augmenters so that its time inside ``fit`` is recorded."""
    from sklearn.base import BaseEstimator

    class _TimedAugmentation(BaseEstimator):
        def __init__(self, pipeline: Any = None) -> None:
            self.pipeline = pipeline

        def augment_batch(
            self, images: torch.Tensor, generator: torch.Generator
        ) -> torch.Tensor:
            start = time.perf_counter()
            for _, step in self.pipeline.steps:
                images = step.augment_batch(images, generator)
            _AUGMENT_SECONDS.append(time.perf_counter() - start)
            return images

    return _TimedAugmentation(pipeline)


def fit_epoch_time(
    X: NDArray[np.uint8],
    y: NDArray[np.int64],
    *,
    augmentation: str,
    epochs: int,
    seed: int,
) -> tuple[float, float]:
    """Median epoch duration (s) of ``MedicalCNNClassifier().fit``.

    Also returns the seconds per epoch spent augmenting, timed inside ``fit``
    (0 without augmentation): a figure that, unlike the difference of two
    epoch times, does not move with the noise of two separate runs.
    """
    from sk_medcnn import MedicalCNNClassifier

    _AUGMENT_SECONDS.clear()
    clf = MedicalCNNClassifier(
        augmentation=(
            None
            if augmentation == "none"
            else _timed_augmentation(
                make_augmentation(augmentation == "single_resampling")
            )
        ),
        max_epochs=epochs,
        random_state=seed,
    )
    clf.fit(X, y)
    return float(statistics.median(clf.history_[:, "dur"])), sum(
        _AUGMENT_SECONDS
    ) / epochs


def measure_overhead(
    X: NDArray[np.uint8], y: NDArray[np.int64], args: argparse.Namespace
) -> dict[str, float]:
    """Epoch time without and with augmentation, rotating their order."""
    variants = ["none", "four_steps", "single_resampling"]
    fit_epoch_time(X[:64], y[:64], augmentation="four_steps", epochs=1, seed=0)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        shift = repeat % len(variants)
        for name in variants[shift:] + variants[:shift]:
            runs[name].append(
                fit_epoch_time(
                    X, y, augmentation=name, epochs=args.epochs, seed=args.seed
                )
            )
    epoch = {name: statistics.median(run[0] for run in runs[name]) for name in runs}
    inside = {name: statistics.median(run[1] for run in runs[name]) for name in runs}
    plain = epoch["none"]
    return {
        "plain_epoch_s": plain,
        "augmented_epoch_s": epoch["four_steps"],
        "single_resampling_epoch_s": epoch["single_resampling"],
        "ratio": epoch["four_steps"] / plain,
        "single_resampling_ratio": epoch["single_resampling"] / plain,
        "augment_s_per_epoch": inside["four_steps"],
        "single_resampling_augment_s_per_epoch": inside["single_resampling"],
        "ratio_from_augment_time": 1 + inside["four_steps"] / plain,
        "plain_train_images_per_s": len(X) / plain,
        "augmented_train_images_per_s": len(X) / epoch["four_steps"],
    }


# --- validation accuracy (opt-in) --------------------------------------------------
def measure_accuracy(
    path: Path | None, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """AUC and accuracy on the validation split, per variant and seed."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    from sk_medcnn import MedicalCNNClassifier

    if path is None or not path.exists():
        raise FileNotFoundError(f"--accuracy needs the data file {path}")
    with np.load(path) as data:
        X, y = data["train_images"], data["train_labels"].ravel()
        X_valid, y_valid = data["val_images"], data["val_labels"].ravel()
    rows = []
    for seed in args.seeds:
        for name in ("none", "four_steps", "single_resampling"):
            augmentation = (
                None
                if name == "none"
                else make_augmentation(name == "single_resampling")
            )
            clf = MedicalCNNClassifier(
                augmentation=augmentation,
                max_epochs=args.accuracy_epochs,
                early_stopping=True,
                patience=5,
                random_state=seed,
            ).fit(X, y)
            rows.append(
                {
                    "augmentation": name,
                    "seed": seed,
                    "auc": roc_auc_score(y_valid, clf.predict_proba(X_valid)[:, 1]),
                    "accuracy": accuracy_score(y_valid, clf.predict(X_valid)),
                    "epochs": clf.n_epochs_,
                    "best_epoch": clf.best_epoch_,
                }
            )
    return rows


def print_report(results: dict[str, Any]) -> None:
    config = results["config"]
    print(
        f"sk_medcnn augmentation benchmark: torch {config['torch']}, "
        f"{config['threads']} thread(s), load average {config['load_average']}"
    )
    print("flip + rotation + affine + intensity, float32 images, images/s:")
    print(
        f"{'images':>10} {'batch':>6} {'torch':>10} {'skimage loop':>13} "
        f"{'speedup':>8} {'torch, 1 resampling':>20}"
    )
    for row in results["throughput"]:
        size = f"{row['image_size']}x{row['image_size']}"
        print(
            f"{size:>10} {row['batch_size']:>6} {row['torch_images_per_s']:>10,.0f} "
            f"{row['skimage_images_per_s']:>13,.0f} {row['speedup']:>7.1f}x "
            f"{row['torch_single_resampling_images_per_s']:>20,.0f}"
        )
    print("default_augmentation() per batch (affine + intensity + noise), float32:")
    for row in results["default_per_batch"]:
        kind = "images" if row["spatial_dims"] == 2 else "volumes"
        size = "x".join(map(str, row["shape"]))
        print(
            f"  spatial_dims={row['spatial_dims']}: {row['batch_size']} {kind} of "
            f"{size}: {row['ms_per_batch']:.2f} ms per batch "
            f"({row['images_per_s']:,.0f} {kind}/s)"
        )
    overhead = results["overhead"]
    print(
        f"training MedicalCNNClassifier (simple_cnn, batch 32) on {config['data']}, "
        f"{config['n_train']} images, {config['epochs']} epoch(s), median epoch:"
    )
    print(
        f"  without augmentation {overhead['plain_epoch_s']:.3f} s "
        f"({overhead['plain_train_images_per_s']:,.0f} images/s); with it "
        f"{overhead['augmented_epoch_s']:.3f} s "
        f"({overhead['augmented_train_images_per_s']:,.0f} images/s): "
        f"{overhead['ratio']:.2f}x (target <= {EPOCH_TIME_RATIO_MAX}x: "
        f"{'ok' if results['targets']['epoch_time_ok'] else 'MISSED'})"
    )
    print(
        f"  time spent augmenting, timed inside fit: "
        f"{overhead['augment_s_per_epoch']:.3f} s per epoch, "
        f"{overhead['ratio_from_augment_time']:.2f}x the epoch without it"
    )
    print(
        "  with flip + affine(degrees=10) + intensity (one resampling) "
        f"{overhead['single_resampling_epoch_s']:.3f} s: "
        f"{overhead['single_resampling_ratio']:.2f}x (augmenting "
        f"{overhead['single_resampling_augment_s_per_epoch']:.3f} s per epoch)"
    )
    if results["accuracy"]:
        print(
            f"validation split, up to {config['accuracy_epochs']} epochs with "
            "early stopping:"
        )
        for row in results["accuracy"]:
            print(
                f"  {row['augmentation']:>18} seed {row['seed']}: AUC "
                f"{row['auc']:.4f}, accuracy {row['accuracy']:.4f} (best epoch "
                f"{row['best_epoch']} of {row['epochs']})"
            )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="1 epoch on 512 images, short timings"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--n-train", type=int, default=None, help="training images (default: all 4708)"
    )
    parser.add_argument(
        "--min-time", type=float, default=1.0, help="seconds per throughput measurement"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="use phantoms even when the data file exists",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--accuracy",
        action="store_true",
        help="also compare validation AUC and accuracy (slow: minutes)",
    )
    parser.add_argument("--accuracy-epochs", type=int, default=30)
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="seeds of --accuracy"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the results to this file"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 1)
        args.epochs = 1
        args.n_train = args.n_train or 512
        args.min_time = min(args.min_time, 0.2)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the report and return the results."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y, source = load_train(
        None if args.synthetic else args.data, n_train=args.n_train, seed=args.seed
    )
    throughput = measure_throughput(X, args)
    default_per_batch = measure_default_per_batch(args)
    overhead = measure_overhead(X, y, args)
    accuracy = (
        measure_accuracy(None if args.synthetic else args.data, args)
        if args.accuracy
        else []
    )
    results: dict[str, Any] = {
        "config": {
            "data": source,
            "n_train": len(X),
            "epochs": args.epochs,
            "repeats": args.repeats,
            "accuracy_epochs": args.accuracy_epochs,
            "min_time": args.min_time,
            "threads": torch.get_num_threads(),
            "load_average": " ".join(f"{load:.2f}" for load in os.getloadavg()),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "throughput": throughput,
        "default_per_batch": default_per_batch,
        "overhead": overhead,
        "accuracy": accuracy,
        "targets": {
            "epoch_time_ratio_max": EPOCH_TIME_RATIO_MAX,
            "epoch_time_ok": overhead["ratio"] <= EPOCH_TIME_RATIO_MAX,
            "augment_time_ok": (
                overhead["ratio_from_augment_time"] <= EPOCH_TIME_RATIO_MAX
            ),
        },
    }
    print_report(results)
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
