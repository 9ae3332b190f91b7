"""
Grad-CAM, saliency maps and their sanity check
==============================================

Where in the image did the network look? :func:`sk_medcnn.inspection.grad_cam` and
:func:`sk_medcnn.inspection.saliency_map` answer with a map per image. A map is a
hypothesis, not a proof, so this example also runs the cascading
model-randomisation check of Adebayo et al. (2018): re-initialise the network layer
by layer from the output down; a map that does not change explains the image, not
the model.

It starts on synthetic lesion phantoms, whose lesion masks are known, so the maps
can be checked against the truth; then it draws the maps on chest X-rays from
PneumoniaMNIST (when the data file is there), where no such truth exists.

Run it from the project root::

    python examples/plot_explanations.py            # a few minutes
    python examples/plot_explanations.py --quick    # smaller: under a minute

Output (``--output DIR``, default ``reports/examples/explanations``):
``phantom_maps.png``, ``sanity_check.png``, ``sanity_check_maps.png`` and
``xray_maps.png``.
"""

# the card's picture, shipped so that it shows with GALLERY=off too:
# sphinx_gallery_thumbnail_path = "_static/thumbnails/plot_explanations.png"

# %%
# Settings
# --------

import argparse
import copy
import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.ndimage import binary_dilation
from scipy.stats import spearmanr
from sklearn.model_selection import train_test_split
from torch import nn

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.inspection import grad_cam, plot_explanations, plot_overlay, saliency_map
from sk_medcnn.io import atomic_path

EXAMPLE = "explanations"
ROOT = Path(sys.argv[0]).resolve().parent.parent  # the project folder
parser = argparse.ArgumentParser(description="Explanation maps and their check.")
parser.add_argument("--quick", action="store_true", help="tiny run, for tests")
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


def save(figure, name):
    """Write a figure to the output folder, atomically."""
    with atomic_path(output / name) as path:
        figure.savefig(path, dpi=100, bbox_inches="tight")


# %%
# A model that has learned something
# ----------------------------------
# Lesion phantoms: noisy 24 x 24 images, half of them with a faint round lesion;
# ``return_masks=True`` also returns where each lesion is.

X, y, masks = make_lesion_phantoms(
    300 if quick else 700, image_size=24, return_masks=True, random_state=0
)
X_train, X_test, y_train, y_test, _, masks_test = train_test_split(
    X, y, masks, test_size=0.3, stratify=y, random_state=0
)
clf = MedicalCNNClassifier(
    max_epochs=3 if quick else 10, architecture_params={"width": 16}, random_state=0
)
clf.fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

lesions = X_test[y_test == 1][:40]
# one pixel of margin: a mask marks where the lesion adds half its peak
lesion_masks = np.array([binary_dilation(m) for m in masks_test[y_test == 1][:40]])

# %%
# Five maps of the same images
# ----------------------------
# Grad-CAM weights the last convolutional feature maps by the gradient of the class
# score; HiResCAM keeps each position's own gradient, which suits ``simple_cnn``
# (it flattens its maps into a dense layer). The saliency maps differentiate the
# score with respect to the pixels: the plain gradient, SmoothGrad (averaged over
# noisy copies) and integrated gradients (integrated from a black image). All maps
# are scaled to [0, 1] per image and sized like ``X``. The green contour is the
# true lesion.

methods = {
    "Grad-CAM": {"function": grad_cam, "variant": "grad_cam"},
    "HiResCAM": {"function": grad_cam, "variant": "hires_cam"},
    "gradient": {"function": saliency_map},
    "SmoothGrad": {
        "function": saliency_map,
        "method": "smoothgrad",
        "random_state": 0,
    },
    "integrated gradients": {
        "function": saliency_map,
        "method": "integrated_gradients",
        "n_steps": 16,
    },
}


def explain(model, name, images):
    """Maps of one method for class 1 (lesion), one per image."""
    options = dict(methods[name])
    return options.pop("function")(model, images, target=1, **options)


maps = {name: explain(clf, name, lesions) for name in methods}

n_shown = 4
figure, axes = plt.subplots(
    n_shown, len(methods) + 1, figsize=(2 * (len(methods) + 1), 2 * n_shown)
)
for row in range(n_shown):
    axes[row, 0].imshow(lesions[row], cmap="gray")
    axes[row, 0].contour(lesion_masks[row], levels=[0.5], colors="lime")
    for column, name in enumerate(methods, start=1):
        plot_overlay(lesions[row], maps[name][row], ax=axes[row, column])
        axes[row, column].contour(lesion_masks[row], levels=[0.5], colors="lime")
for column, name in enumerate(["image", *methods]):
    axes[0, column].set_title(name, fontsize=10)
for ax in axes.ravel():
    ax.axis("off")
figure.tight_layout()
save(figure, "phantom_maps.png")

# %%
# How much of each map falls on the lesions, against the lesions' share of the
# image (1.0 would be chance):

for name, values in maps.items():
    inside = (values * lesion_masks).sum(axis=(1, 2)) / values.sum(axis=(1, 2)).clip(
        1e-12
    )
    print(f"{name:<22} {inside.mean() / lesion_masks.mean():.1f} times chance")

# %%
# The sanity check: randomise the model, layer by layer
# -----------------------------------------------------
# A copy of the model has its layers re-initialised one at a time, from the output
# layer down to the first convolution. After each step the maps are computed again
# and compared with the trained model's by Spearman rank correlation. A method that
# explains the model loses the correlation quickly; one that stays correlated with
# a random network shows the image's edges, not what the model learned.


def rank_correlation(new_maps, reference):
    """Mean Spearman correlation between two stacks of maps."""
    values = []
    for ours, theirs in zip(new_maps, reference, strict=True):
        if ours.std() == 0 or theirs.std() == 0:
            values.append(float(np.array_equal(ours, theirs)))
        else:
            values.append(spearmanr(ours.ravel(), theirs.ravel())[0])
    return float(np.mean(values))


checked = ["Grad-CAM", "HiResCAM", "gradient", "integrated gradients"]
randomised = copy.deepcopy(clf)
modules = dict(randomised.net_.module_.body.named_modules())
cascade = [
    name
    for name, module in modules.items()
    if isinstance(module, nn.Conv2d | nn.Linear)
][::-1]
correlations = {name: [] for name in checked}
steps = {name: [maps[name][0]] for name in checked}  # the first image, step by step
with torch.random.fork_rng():  # leaves torch's global generator as it was
    torch.manual_seed(0)
    for layer in cascade:
        modules[layer].reset_parameters()
        for name in checked:
            new_maps = explain(randomised, name, lesions)
            correlations[name].append(rank_correlation(new_maps, maps[name]))
            steps[name].append(new_maps[0])

figure, ax = plt.subplots(figsize=(7.5, 3.5))
for name, values in correlations.items():
    ax.plot(range(1, len(cascade) + 1), values, "o-", label=name)
ax.axhline(0, color="grey", linewidth=0.8)
ax.set_xticks(range(1, len(cascade) + 1), cascade, rotation=30)
ax.set(
    xlabel="randomised down to layer",
    ylabel="rank correlation with\nthe trained model's maps",
    ylim=(-0.5, 1.05),
)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
ax.set_title("Cascading model randomisation")
figure.tight_layout()
save(figure, "sanity_check.png")
for name, values in correlations.items():
    print(f"{name:<22} " + " ".join(f"{value:5.2f}" for value in values))

# %%
# The maps of the first lesion image at each step: the top left panel of each row
# is the trained model's map.

figure, axes = plt.subplots(
    len(checked),
    len(cascade) + 1,
    figsize=(1.6 * (len(cascade) + 1), 1.7 * len(checked)),
)
for row, name in enumerate(checked):
    for column, heatmap in enumerate(steps[name]):
        plot_overlay(lesions[0], heatmap, ax=axes[row, column])
        axes[row, column].axis("off")
    axes[row, 0].set_title(name, fontsize=9, loc="left")
for column, layer in enumerate(["trained", *cascade]):
    axes[-1, column].set_xlabel(layer)
    axes[0, column].text(
        0.5, 1.25, layer, transform=axes[0, column].transAxes, ha="center", fontsize=8
    )
figure.tight_layout()
save(figure, "sanity_check_maps.png")

# %%
# Chest X-rays
# ------------
# The same functions work on PneumoniaMNIST (and on a ``Pipeline`` ending in the
# classifier). At 28 x 28 pixels the last feature maps of ``simple_cnn`` are 4 x 4,
# so the CAMs are coarse, and there is no lesion mask to check the maps against:
# read them as hypotheses. :func:`~sk_medcnn.inspection.plot_explanations` draws
# the maps over the images, titled with the predicted label and probability.

if args.data.is_file():
    X_xray, y_xray = load_medmnist(args.data, "train")
    X_xray, _, y_xray, _ = train_test_split(
        X_xray,
        y_xray,
        train_size=600 if quick else 2400,
        stratify=y_xray,
        random_state=0,
    )
    X_shown, y_shown = load_medmnist(args.data, "val")
    xray_clf = MedicalCNNClassifier(max_epochs=2 if quick else 6, random_state=0)
    xray_clf.fit(X_xray, y_xray)
    figure = plot_explanations(
        xray_clf,
        X_shown[:8],
        method="hires_cam",
        y_true=y_shown[:8],
        class_names={0: "normal", 1: "pneumonia"},
    )
    figure.suptitle("HiResCAM on validation X-rays")
    save(figure, "xray_maps.png")
else:
    print(f"{args.data} not found: no X-ray maps.")

# %%
# SmoothGrad on the same X-rays: pixel-level, and noisier.

if args.data.is_file():
    figure = plot_explanations(
        xray_clf,
        X_shown[:8],
        method="smoothgrad",
        y_true=y_shown[:8],
        class_names={0: "normal", 1: "pneumonia"},
        method_params={"random_state": 0},
    )
    figure.suptitle("SmoothGrad on validation X-rays")
    save(figure, "xray_saliency.png")
