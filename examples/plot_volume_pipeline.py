"""
An MRI volume from NIfTI files to a prediction and a 3-D Grad-CAM
=================================================================

CT and MRI scans are volumes, and :class:`~sk_medcnn.MedicalCNNClassifier` takes them
as they are: given volumes it builds a 3-D network (``spatial_dims_ == 3``),
augments in 3-D and explains in 3-D. This example goes from NIfTI files on disk to a
trained model, a prediction for one file from the saved model, and a Grad-CAM volume
drawn as three orthogonal slices.

.. note::

   **A plumbing demonstration, not a clinical result.** The only MRI here is
   ``anatomical.nii``, a T1-weighted head scan of 33 x 41 x 25 voxels at 2 mm that
   ships inside nibabel as test data (nothing is downloaded). To get a labelled task
   from one scan, the example writes shifted, rescaled and noisy copies of it as
   NIfTI files and paints a synthetic bright "lesion" ball into half of them. The
   network learns to find these painted balls; that says nothing about real
   lesions. What it does show is how files, volumes, a classifier, a saved model and
   a 3-D explanation fit together, and it measures whether the explanation points
   at the ball.

For real volumes with real labels see :doc:`/volumes` (VesselMNIST3D). Run it from
the project root::

    python examples/plot_volume_pipeline.py            # about a minute or two
    python examples/plot_volume_pipeline.py --quick    # smaller: seconds

Output (``--output DIR``, default ``reports/examples/volume_pipeline``): the NIfTI
files in ``nifti/lesion`` and ``nifti/no_lesion`` with their lesion masks in
``masks``, ``scan.png``, ``grad_cam.png``, ``report.md`` and ``volume_model.skmed``.
"""

# %%
# Settings
# --------

import argparse
import os
import sys
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from nibabel.testing import data_path
from scipy import ndimage
from sklearn.model_selection import train_test_split

from sk_medcnn import MedicalCNNClassifier, load_model, save_model
from sk_medcnn.inspection import grad_cam, plot_volume_overlay
from sk_medcnn.io import atomic_open, atomic_path, load_image_folder, read_volume
from sk_medcnn.metrics import clinical_report

EXAMPLE = "volume_pipeline"
ROOT = Path(sys.argv[0]).resolve().parent.parent  # the project folder
parser = argparse.ArgumentParser(description="From NIfTI files to a 3-D Grad-CAM.")
parser.add_argument("--quick", action="store_true", help="tiny run, for tests")
parser.add_argument(
    "--output",
    type=Path,
    default=ROOT / "reports" / "examples" / EXAMPLE,
    help="folder for the NIfTI files, figures, report and model",
)
args = parser.parse_args()
quick = args.quick or os.environ.get("SK_MEDCNN_EXAMPLES_QUICK", "0") != "0"
output = args.output
output.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)

# the card's picture, shipped so that it shows with GALLERY=off too:
# sphinx_gallery_thumbnail_path = "_static/thumbnails/plot_volume_pipeline.png"

# %%
# A head MRI, read depth first
# ----------------------------
# :func:`~sk_medcnn.io.read_volume` reads a NIfTI file in the canonical RAS+
# orientation and returns it depth first, ``(z, y, x)``: the layout the estimators
# take, whatever the axis order stored in the file. ``return_spacing=True`` also
# gives the voxel size in millimetres, in the same order.

source = Path(data_path) / "anatomical.nii"
scan, spacing = read_volume(source, return_spacing=True)
print(
    f"{source.name}: {scan.shape} voxels (z, y, x) of {spacing} mm, {scan.dtype}, "
    f"values {scan.min()} to {scan.max()}"
)
figure, axes = plt.subplots(1, 3, figsize=(9, 3.4))
plot_volume_overlay(scan, None, axes=axes)  # the slices alone, the right way up
figure.suptitle(f"{source.name}: three orthogonal slices through the centre")
figure.tight_layout()
with atomic_path(output / "scan.png") as path:
    figure.savefig(path, dpi=100)

# %%
# A small labelled set of NIfTI files
# -----------------------------------
# Each copy of the scan is shifted by up to 2 voxels, its intensities scaled by
# 0.9-1.1 and given noise of 3% of the brain's mean. Half of the copies get a
# ball of 2.5-3.5 voxels radius (5-7 mm), about twice as bright as the brain
# around it, somewhere in the brain. Each copy is written with the scan's own
# affine (its orientation and voxel size), one folder per class: the layout
# :func:`~sk_medcnn.io.load_image_folder` reads. The ball is also written as a
# mask, as a segmentation would be, to score the explanation against it later.

template = nib.load(source)
stored = np.asarray(template.dataobj, dtype=np.float32)  # the file's own axis order
brain = ndimage.gaussian_filter(stored, 1) > np.percentile(stored, 60)
brain = ndimage.binary_erosion(brain, iterations=3)
brain_mean = float(stored[brain].mean())
grid = np.indices(stored.shape)

n_files = 48 if quick else 200
for folder in ("nifti/lesion", "nifti/no_lesion", "masks"):
    (output / folder).mkdir(parents=True, exist_ok=True)
for index in range(n_files):
    volume = ndimage.shift(stored, rng.uniform(-2, 2, size=3), order=1, mode="nearest")
    volume = volume * rng.uniform(0.9, 1.1)
    volume += rng.normal(0, 0.03 * brain_mean, size=volume.shape)
    mask = np.zeros(stored.shape, dtype=np.uint8)
    has_lesion = index % 2 == 0
    if has_lesion:
        centre = np.argwhere(brain)[rng.integers(brain.sum())]
        radius = rng.uniform(2.5, 3.5)
        distance = np.sqrt(((grid - centre[:, None, None, None]) ** 2).sum(axis=0))
        mask[distance <= radius] = 1
        ball = ndimage.gaussian_filter(mask.astype(np.float32), 0.7)
        volume += rng.uniform(1.0, 1.2) * brain_mean * ball
    name = f"case_{index:03d}.nii.gz"
    folder = "lesion" if has_lesion else "no_lesion"
    nib.save(
        nib.Nifti1Image(volume.astype(np.float32), template.affine),
        output / "nifti" / folder / name,
    )
    nib.save(nib.Nifti1Image(mask, template.affine), output / "masks" / name)

paths, labels = load_image_folder(output / "nifti", lazy=True)  # paths, not voxels
print(f"{len(paths)} NIfTI files; classes {np.unique(labels).tolist()}")

# %%
# From file paths to predictions
# ------------------------------
# The classifier is fitted on the file paths: it reads a batch of volumes at a
# time, so memory grows with the batch, not the data set. From the first file it
# sees volumes (``spatial_dims="auto"``) and builds the 3-D reference CNN. The
# raw MRI intensities are standardised with the training set's mean and standard
# deviation (``input_mean_``, ``input_std_``).
#
# ``augmentation=None``: the default (``"auto"``, the 3-D
# :func:`~sk_medcnn.augmentation.default_augmentation`: small shifts, rotations
# and scalings, intensity changes and noise) was chosen on thousands of images
# and helps on VesselMNIST3D's 1,335 volumes (:doc:`/volumes`). On these 140
# training volumes it keeps the network from finding the balls within 20 epochs:
# test AUC 0.63 with it, 1.00 without, on this example's data. Check the default
# on your own task.

paths_train, paths_test, y_train, y_test = train_test_split(
    paths, labels, test_size=0.3, stratify=labels, random_state=0
)
model = MedicalCNNClassifier(
    max_epochs=2 if quick else 20, batch_size=16, augmentation=None, random_state=0
)
model.fit(paths_train, y_train)
print(f"spatial_dims_ = {model.spatial_dims_}, image_shape_ = {model.image_shape_}")
lesion_column = list(model.classes_).index("lesion")
proba = model.predict_proba(paths_test)[:, lesion_column]
report = clinical_report(
    y_test, proba, pos_label="lesion", n_bootstraps=500, random_state=0
)
print(report)

# %%
# Save, load, predict one file
# ----------------------------
# A ``.skmed`` file holds the parameters and weights only, no code: it loads
# without unpickling anything, and the loaded model reads a NIfTI path as the
# fitted one does.

save_model(model, output / "volume_model.skmed")
loaded = load_model(output / "volume_model.skmed")
one_file = paths_test[0]
loaded_proba = loaded.predict_proba([one_file])[0, lesion_column]
print(f"{Path(one_file).name}: P(lesion) = {loaded_proba:.3f}")
assert np.allclose(loaded.predict_proba(paths_test), model.predict_proba(paths_test))

# %%
# A 3-D Grad-CAM, and whether it points at the ball
# -------------------------------------------------
# :func:`~sk_medcnn.inspection.grad_cam` returns one map per volume, upsampled to
# the volume's shape. For every test volume with a lesion, the *pointing game*
# asks whether the map's hottest voxel lies in the ball (its mask dilated by one
# voxel, as the maps are coarser than the voxels). The masks are read with
# :func:`~sk_medcnn.io.read_volume` too, so they are in the same orientation as the
# volumes the network saw.
#
# Three maps are scored: Grad-CAM and HiResCAM on the last convolution's output
# (the default layer, at a quarter of the resolution), and HiResCAM on the second
# convolution's output (``layer="features.4"``, at half the resolution).
# ``simple_cnn`` ends in a flattening dense layer, not a global average: each
# position of the last feature maps has its own weights, and Grad-CAM's average
# of the gradients over the positions can cancel the evidence (the library warns
# when a map is all zero). HiResCAM multiplies gradients and activations position
# by position, which is what the class score sums for such a head (Draelos and
# Carin, 2020). In the full run (60 test volumes, 30 with a lesion) Grad-CAM was
# all zero on all 30, HiResCAM on the last layer peaked in the ball once, and
# HiResCAM at half resolution 30 times: a 5-7 mm ball is smaller than one cell of
# the last feature maps (8 mm on a side).

lesion_paths = list(np.asarray(paths_test)[np.asarray(y_test) == "lesion"])
volumes = np.stack([read_volume(p) for p in lesion_paths])
masks = np.stack(
    [read_volume(output / "masks" / Path(p).name) > 0 for p in lesion_paths]
)
settings = {
    "Grad-CAM": {"variant": "grad_cam"},
    "HiResCAM": {"variant": "hires_cam"},
    "HiResCAM, layer features.4": {"variant": "hires_cam", "layer": "features.4"},
}
maps, hits = {}, {}
for name, options in settings.items():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # all-zero maps, counted below
        maps[name] = grad_cam(loaded, volumes, target="lesion", **options)
    hits[name] = 0
    for heat, mask in zip(maps[name], masks, strict=True):
        peak = np.unravel_index(np.argmax(heat), heat.shape)
        hits[name] += int(heat.max() > 0 and ndimage.binary_dilation(mask)[peak])
    empty = int((maps[name].max(axis=(1, 2, 3)) == 0).sum())
    print(
        f"{name:<27} peaks in the ball in {hits[name]} of {len(volumes)} volumes "
        f"({empty} maps all zero)"
    )

# %%
# The best-pointing map of the first test volume with a lesion. The slices cross
# where the map is hottest and are drawn the right way up (anterior at the top of
# the axial view, superior at the top of the others); the ball is the bright spot.

best = max(hits, key=hits.get)
figure, axes = plt.subplots(1, 3, figsize=(9, 3.4))
plot_volume_overlay(volumes[0], maps[best][0], axes=axes)
figure.suptitle(
    f"{Path(lesion_paths[0]).name}: {best} of 'lesion' "
    f"(P = {model.predict_proba(lesion_paths[:1])[0, lesion_column]:.2f})"
)
figure.tight_layout()
with atomic_path(output / "grad_cam.png") as path:
    figure.savefig(path, dpi=100)

lines = [
    "# From NIfTI files to a 3-D Grad-CAM (plumbing demonstration)",
    "",
    "Copies of nibabel's anatomical.nii with synthetic painted lesion balls: "
    "not a clinical result.",
    "",
    f"- files: {len(paths)} ({len(paths_train)} train, {len(paths_test)} test), "
    f"volumes of {scan.shape} voxels",
    f"- test AUC: {report['auc'].value:.3f}",
    "- pointing game (the map's peak in the lesion ball), of "
    f"{len(volumes)} test volumes with a lesion: "
    + "; ".join(f"{name} {count}" for name, count in hits.items()),
    "",
    "```text",
    str(report),
    "```",
    "",
    "![The scan](scan.png)",
    "",
    "![Grad-CAM](grad_cam.png)",
    "",
]
with atomic_open(output / "report.md") as file:
    file.write("\n".join(lines))
