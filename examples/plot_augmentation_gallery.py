"""
What each augmentation does to a chest X-ray
============================================

:mod:`sk_medcnn.augmentation` transforms every training batch at random, fresh
every epoch. Before choosing one, look at what it does to your images: a transform
that makes an image implausible (a vertical flip of a chest X-ray puts the lungs
under the abdomen) teaches the network something that never happens.

Each row below is one transform; each column a different random draw on the same
PneumoniaMNIST image (a synthetic lesion phantom without the data file). In a
``Pipeline`` an augmenter's ``fit_transform`` returns one augmented copy of the
images, as used here to draw them, and ``transform`` returns them unchanged, so
prediction is never augmented. Inside ``MedicalCNNClassifier(augmentation=...)``
the same transforms run as batched torch operations on every training batch.

Run it from the project root::

    python examples/plot_augmentation_gallery.py            # about 10 s
    python examples/plot_augmentation_gallery.py --quick    # fewer draws, a few seconds

Output (``--output DIR``, default ``reports/examples/augmentation_gallery``):
``augmentation_gallery.png`` and ``mixup.png``.
"""

# the card's picture, shipped so that it shows with GALLERY=off too:
# sphinx_gallery_thumbnail_path = "_static/thumbnails/plot_augmentation_gallery.png"

# %%
# Settings
# --------

import argparse
import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.pipeline import make_pipeline

from sk_medcnn.augmentation import (
    MixUp,
    RandomAffine,
    RandomErasing,
    RandomFlip,
    RandomIntensity,
    RandomNoise,
    RandomRotation,
)
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.io import atomic_path

EXAMPLE = "augmentation_gallery"
ROOT = Path(sys.argv[0]).resolve().parent.parent  # the project folder
parser = argparse.ArgumentParser(description="A gallery of augmentations.")
parser.add_argument("--quick", action="store_true", help="fewer draws, for tests")
parser.add_argument(
    "--output",
    type=Path,
    default=ROOT / "reports" / "examples" / EXAMPLE,
    help="folder for the figures",
)
parser.add_argument(
    "--data",
    type=Path,
    default=ROOT.parent / "shared" / "data" / "pneumoniamnist_28_trainval.npz",
    help="PneumoniaMNIST .npz file (MedMNIST layout)",
)
args = parser.parse_args()
quick = args.quick or os.environ.get("SK_MEDCNN_EXAMPLES_QUICK", "0") != "0"
output = args.output
output.mkdir(parents=True, exist_ok=True)

if args.data.is_file():
    X, y = load_medmnist(args.data, "val")
    source = "PneumoniaMNIST validation image"
else:
    print(f"{args.data} not found: using synthetic lesion phantoms instead.")
    X, y = make_lesion_phantoms(20, image_size=28, random_state=0)
    source = "synthetic lesion phantom"
image = X[1]  # one image, uint8 (28, 28), asymmetric enough to show a flip
n_draws = 3 if quick else 6

# %%
# One row per transform
# ---------------------
# The parameters are deliberately a little stronger than a typical training
# setting, so that each effect is visible at 28 x 28 pixels. Every augmenter is a
# scikit-learn estimator with its own ``random_state``; the same seed gives the
# same draws.

transforms = {
    "RandomFlip()": RandomFlip(p=0.5),
    "RandomRotation(15)": RandomRotation(degrees=15.0),
    "RandomAffine(translate=0.1,\nscale=(0.9, 1.1), shear=10)": RandomAffine(
        translate=(0.1, 0.1), scale=(0.9, 1.1), shear=10.0
    ),
    "RandomIntensity(brightness=0.2,\ncontrast=0.2, gamma=0.3)": RandomIntensity(
        brightness=0.2, contrast=0.2, gamma=0.3
    ),
    "RandomNoise(std=0.05)": RandomNoise(std=0.05),
    "RandomErasing(p=1.0)": RandomErasing(p=1.0),
    "a training Pipeline:\nflip, rotation, affine": make_pipeline(
        RandomFlip(), RandomRotation(degrees=10.0), RandomAffine()
    ),
}
batch = np.repeat(image[np.newaxis], n_draws, axis=0)  # the same image n times
figure, axes = plt.subplots(
    len(transforms),
    n_draws + 1,
    figsize=(1.5 * (n_draws + 1) + 1.8, 1.55 * len(transforms)),
    squeeze=False,
)
for row, (name, transform) in enumerate(transforms.items()):
    transform.set_params(
        **{
            key: 0
            for key in transform.get_params()
            if key == "random_state" or key.endswith("__random_state")
        }
    )
    augmented = transform.fit_transform(batch)
    assert augmented.shape == batch.shape  # same shape and dtype as the input
    assert augmented.dtype == batch.dtype
    unchanged = transform.transform(batch)  # inference: never augmented
    assert np.array_equal(unchanged, batch)
    axes[row, 0].imshow(image, cmap="gray", vmin=0, vmax=255)
    for column in range(n_draws):
        axes[row, column + 1].imshow(augmented[column], cmap="gray", vmin=0, vmax=255)
    axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_title("original", fontsize=9)
for column in range(n_draws):
    axes[0, column + 1].set_title(f"draw {column + 1}", fontsize=9)
figure.suptitle(f"Augmentations of one {source}", fontsize=11)
figure.tight_layout()
with atomic_path(output / "augmentation_gallery.png") as path:
    figure.savefig(path, dpi=100)

# %%
# MixUp
# -----
# :class:`~sk_medcnn.augmentation.MixUp` mixes pairs of images *and* their labels,
# so it cannot run as a transformer on images alone; inside the classifier it mixes
# each training batch. Its ``mix_batch`` method shows what it does: each image is
# blended with a random partner, with one weight per batch drawn from
# ``Beta(alpha, alpha)``, and the one-hot labels are blended with the same weight.
# With ``alpha`` below 1 most weights are close to 0 or 1, so most batches change
# only a little; the three batches below (generator seeds 4, 5 and 6) were picked
# because their weights are not.

n_mixed = 4
images = torch.as_tensor(X[:n_mixed], dtype=torch.float32)
labels = torch.nn.functional.one_hot(torch.as_tensor(y[:n_mixed]), 2).float()
seeds = (4, 5, 6)  # three training batches
figure, axes = plt.subplots(
    1 + len(seeds), n_mixed, figsize=(2.2 * n_mixed, 2.4 * (1 + len(seeds)))
)
for column in range(n_mixed):
    axes[0, column].imshow(X[column], cmap="gray", vmin=0, vmax=255)
    axes[0, column].set_title(f"original, label {y[column]}", fontsize=9)
for row, seed in enumerate(seeds, start=1):
    mixed_images, mixed_labels = MixUp(alpha=0.4).mix_batch(
        images, labels, torch.Generator().manual_seed(seed)
    )
    for column in range(n_mixed):
        axes[row, column].imshow(mixed_images[column], cmap="gray", vmin=0, vmax=255)
        weights = ", ".join(f"{value:.2f}" for value in mixed_labels[column].tolist())
        axes[row, column].set_title(f"batch {row}: label ({weights})", fontsize=9)
for ax in axes.ravel():
    ax.axis("off")
figure.suptitle("MixUp(alpha=0.4): four images (top) in three mixed batches")
figure.tight_layout()
with atomic_path(output / "mixup.png") as path:
    figure.savefig(path, dpi=100)
