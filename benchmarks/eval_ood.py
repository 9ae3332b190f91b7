"""Evidence for the out-of-distribution score: AUROC against other images, false alarms.

For each data set (PneumoniaMNIST, grayscale; RetinaMNIST, RGB) and seed, a
``MedicalCNNClassifier`` with the library's defaults is fitted on the official
train split; its threshold (``ood_threshold_``, for the default false-alarm
rate of 5%) is set in ``fit`` on its own held-out 10% of the train split. The
official validation split is the in-distribution test set: the share of it
flagged is the false-alarm rate. Against it, images of other kinds, as a user
might feed them (resized to 28 x 28, converted to the model's channels):

- the other MedMNIST data set's validation images, and VesselMNIST3D's
  (the middle axial slice of each MRA volume);
- the DICOM files that ship with pydicom (CT, MR, NM, ultrasound, ...) and
  slices of the NIfTI files that ship with nibabel, in their own units
  (Hounsfield units, MR signal) and rescaled to 0-255, the scale of the
  training images (so the intensity check alone cannot catch them);
- lesion phantoms and uniform noise on 0-255.

Reported per set: the AUROC of ``ood_score`` (in-distribution validation
images against the set), and the share of the set flagged by the learned
score (above ``ood_threshold_``), by the intensity check
(:func:`sk_medcnn.inspection.check_intensities`) and by either
(:func:`sk_medcnn.inspection.check_distribution`, what ``sk-medcnn predict``
writes). The test splits are never read.

Run from the project root::

    python benchmarks/eval_ood.py --json reports/eval_ood.json
    python benchmarks/eval_ood.py --quick      # phantoms, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.transform import resize
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import DATA_FILES, IMAGE_DATA, save_results
from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.inspection import check_distribution, check_intensities

DATA = IMAGE_DATA
VESSEL = DATA_FILES["vesselmnist3d"]

#: pydicom's test files that decode without extra plugins: CT, MR, NM, US, ...
DICOM_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "693_J2KI.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "examples_overlay.dcm",
    "JPEG2000.dcm",
    "image_dfl.dcm",
    "examples_palette.dcm",
)
#: nibabel's test volumes; up to 12 axial slices of each.
NIFTI_FILES = ("anatomical.nii", "functional.nii", "example4d.nii.gz")


def _to_model(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Resize 2-D or channels-last images to ``size`` and ``channels``, keep units."""
    out = []
    for image in images:
        image = np.asarray(image, dtype=np.float32)
        if image.ndim == 3 and image.shape[-1] != channels:
            image = image.mean(axis=-1)
        if image.ndim == 2:
            image = np.repeat(image[..., None], channels, axis=-1)
        if image.shape[:2] != (size, size):
            image = resize(
                image,
                (size, size, channels),
                preserve_range=True,
                anti_aliasing=True,
            ).astype(np.float32)
        out.append(image)
    return np.stack(out)


def _rescaled(images: np.ndarray) -> np.ndarray:
    """Each image min-max scaled to 0-255, the training images' scale."""
    low = images.min(axis=(1, 2, 3), keepdims=True)
    high = images.max(axis=(1, 2, 3), keepdims=True)
    return (images - low) / np.where(high > low, high - low, 1) * 255


def _dicom_images() -> list[np.ndarray]:
    import pydicom
    from pydicom.data import get_testdata_file

    images = []
    for name in DICOM_FILES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = get_testdata_file(name)
            if path is None:
                continue
            dataset = pydicom.dcmread(path)
            pixels = dataset.pixel_array.astype(np.float32)
        slope = float(getattr(dataset, "RescaleSlope", 1) or 1)
        intercept = float(getattr(dataset, "RescaleIntercept", 0) or 0)
        images.append(pixels * slope + intercept)  # e.g. Hounsfield units
    return images


def _nifti_images() -> list[np.ndarray]:
    import nibabel
    import nibabel.testing

    images = []
    for name in NIFTI_FILES:
        volume = np.asarray(
            nibabel.load(Path(nibabel.testing.data_path) / name).dataobj,
            dtype=np.float32,
        )
        if volume.ndim == 4:
            volume = volume[..., 0]
        depth = volume.shape[2]
        for index in np.linspace(depth // 4, 3 * depth // 4, 12).astype(int):
            images.append(volume[:, :, index])
    return images


def _other_sets(name: str, channels: int, quick: bool) -> dict[str, np.ndarray]:
    """Images of other kinds, on the model's size and channels."""
    rng = np.random.default_rng(0)
    phantoms, _ = make_lesion_phantoms(200, image_size=28, random_state=1)
    sets = {
        "phantoms": _to_model(phantoms, 28, channels),
        "uniform noise": rng.uniform(0, 255, (200, 28, 28, channels)).astype(
            np.float32
        ),
    }
    if quick:
        return sets
    other = "retinamnist" if name == "pneumoniamnist" else "pneumoniamnist"
    sets[other] = _to_model(load_medmnist(DATA[other], "val")[0], 28, channels)
    vessel = np.load(VESSEL)["val_images"]
    sets["vesselmnist3d slices"] = _to_model(vessel[:, 14], 28, channels)
    for label, images in (("DICOM", _dicom_images()), ("NIfTI", _nifti_images())):
        native = _to_model(images, 28, channels)
        sets[f"{label} (own units)"] = native
        sets[f"{label} (0-255)"] = _rescaled(native)
    return sets


def _evaluate(clf: MedicalCNNClassifier, X_val: np.ndarray, sets: dict) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        in_score = clf.ood_score(X_val)
        in_check = check_distribution(clf, X_val)
        in_intensity = check_intensities(clf, X_val)
        rows = []
        for label, images in sets.items():
            score = clf.ood_score(images)
            both = check_distribution(clf, images)
            intensity = check_intensities(clf, images)
            finite = np.nan_to_num(
                np.concatenate([in_score, score]), posinf=np.finfo(float).max
            )
            truth = np.r_[np.zeros(len(in_score)), np.ones(len(score))]
            rows.append(
                {
                    "set": label,
                    "n_images": len(images),
                    "auroc": float(roc_auc_score(truth, finite)),
                    "flagged_score": float(np.mean(score > clf.ood_threshold_)),
                    "flagged_intensity": float(np.mean(~intensity.in_distribution)),
                    "flagged_either": float(np.mean(~both.in_distribution)),
                }
            )
    return {
        "threshold": float(clf.ood_threshold_),
        "n_held_out": int(clf.ood_n_held_out_),
        "false_alarm_score": float(np.mean(in_score > clf.ood_threshold_)),
        "false_alarm_intensity": float(np.mean(~in_intensity.in_distribution)),
        "false_alarm_either": float(np.mean(~in_check.in_distribution)),
        "n_validation": len(X_val),
        "sets": rows,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATA), choices=DATA)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--quick", action="store_true", help="phantoms, 1 epoch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"quick": args.quick, "runs": []}
    for name in args.datasets:
        if args.quick:
            X, y = make_lesion_phantoms(400, image_size=28, random_state=0)
            X_train, y_train, X_val = X[:300], y[:300], X[300:]
        else:
            X_train, y_train = load_medmnist(DATA[name], "train")
            X_val, _ = load_medmnist(DATA[name], "val")
        channels = 1 if X_train.ndim == 3 else X_train.shape[-1]
        sets = _other_sets(name, channels, args.quick)
        for seed in args.seeds:
            start = time.perf_counter()
            params = {"max_epochs": 1} if args.quick else {}
            clf = MedicalCNNClassifier(random_state=seed, **params)
            clf.fit(X_train, y_train)
            run = {
                "dataset": "phantoms" if args.quick else name,
                "seed": seed,
                **_evaluate(clf, X_val, sets),
                "seconds": round(time.perf_counter() - start, 1),
            }
            results["runs"].append(run)
            _print_run(run)
    save_results(results, args.json)
    return results


def _print_run(run: dict[str, Any]) -> None:
    print(
        f"\n{run['dataset']}, seed {run['seed']}: threshold {run['threshold']:.3g} "
        f"(set on {run['n_held_out']} held-out training images); false alarms on "
        f"{run['n_validation']} validation images: score "
        f"{run['false_alarm_score']:.1%}, intensity "
        f"{run['false_alarm_intensity']:.1%}, either {run['false_alarm_either']:.1%}"
        f" ({run['seconds']} s)"
    )
    print(f"| {'set':<22} | {'n':>4} | AUROC | flagged: score | intensity | either |")
    print(f"|{'-' * 24}|{'-' * 6}|-------|----------------|-----------|--------|")
    for row in run["sets"]:
        print(
            f"| {row['set']:<22} | {row['n_images']:>4} | {row['auroc']:.3f} | "
            f"{row['flagged_score']:>14.1%} | {row['flagged_intensity']:>9.1%} | "
            f"{row['flagged_either']:>6.1%} |"
        )


if __name__ == "__main__":
    main()
