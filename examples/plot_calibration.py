"""
Calibration, a decision threshold and a clinical report
=======================================================

A probability of 0.8 should come true about 80% of the time, and the decision
threshold should follow from what an error costs, not default to 0.5. This example

- fits the classifier twice on PneumoniaMNIST: as it is, and with
  ``calibration="temperature"`` (one temperature dividing the logits, fitted on a
  held-out part of the training data);
- calibrates the first one with scikit-learn's ``CalibratedClassifierCV``
  (isotonic regression on a separate calibration split);
- compares the three in a reliability diagram and by expected calibration error;
- chooses a threshold with scikit-learn's ``TunedThresholdClassifierCV`` on the
  calibration split (maximising balanced accuracy);
- reports sensitivity, specificity, PPV and NPV with bootstrap confidence intervals
  at 0.5 and at the tuned threshold, on the validation split.

Without the data file it uses synthetic lesion phantoms. The calibration split is a
stratified 15% of the training split, never used to train the network.

Run it from the project root::

    python examples/plot_calibration.py            # several minutes
    python examples/plot_calibration.py --quick    # smaller: under a minute

(Times on two CPU cores shared with other work; alone on them, about half.)

Output (``--output DIR``, default ``reports/examples/calibration``):
``reliability_diagram.png``, ``roc_threshold.png`` and ``report.md``.
"""

# the card's picture, shipped so that it shows with GALLERY=off too:
# sphinx_gallery_thumbnail_path = "_static/thumbnails/plot_calibration.png"

# %%
# Settings
# --------

import argparse
import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import TunedThresholdClassifierCV, train_test_split

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.inspection import plot_reliability_diagram, plot_roc
from sk_medcnn.io import atomic_open, atomic_path
from sk_medcnn.metrics import clinical_report, expected_calibration_error

EXAMPLE = "calibration"
ROOT = Path(sys.argv[0]).resolve().parent.parent  # the project folder
parser = argparse.ArgumentParser(description="Calibration and thresholds.")
parser.add_argument("--quick", action="store_true", help="tiny run, for tests")
parser.add_argument(
    "--output",
    type=Path,
    default=ROOT / "reports" / "examples" / EXAMPLE,
    help="folder for the figures and the report",
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

# %%
# Three splits
# ------------
# Training (85% of the training split), calibration (15%), and the official
# validation split as the test set.

if args.data.is_file():
    X, y = load_medmnist(args.data, "train")
    X_test, y_test = load_medmnist(args.data, "val")
    data_name = "PneumoniaMNIST"
else:
    print(f"{args.data} not found: using synthetic lesion phantoms instead.")
    X, y = make_lesion_phantoms(3000, image_size=28, random_state=0)
    X, X_test, y, y_test = train_test_split(
        X, y, test_size=600, stratify=y, random_state=0
    )
    data_name = "lesion phantoms (synthetic)"
if quick:
    X, _, y, _ = train_test_split(X, y, train_size=600, stratify=y, random_state=0)
X_fit, X_cal, y_fit, y_cal = train_test_split(
    X, y, test_size=0.15, stratify=y, random_state=0
)
print(
    f"{data_name}: {len(y_fit)} training, {len(y_cal)} calibration, "
    f"{len(y_test)} test images"
)

# %%
# The models
# ----------
# The same network and seed twice; ``calibration="temperature"`` holds out 10% of
# the training images to fit its temperature (Guo et al. 2017). Temperature
# scaling keeps the ranking, so the AUC does not change; it only makes the
# probabilities more or less confident. ``CalibratedClassifierCV`` with a
# ``FrozenEstimator`` leaves the fitted network as it is and learns an isotonic
# mapping of its probabilities on the calibration split.

settings = {"max_epochs": 2 if quick else 10, "random_state": 0}
plain = MedicalCNNClassifier(**settings).fit(X_fit, y_fit)
temperature = MedicalCNNClassifier(calibration="temperature", **settings)
temperature.fit(X_fit, y_fit)
print(f"fitted temperature: {temperature.temperature_:.2f}")
isotonic = CalibratedClassifierCV(FrozenEstimator(plain), method="isotonic")
isotonic.fit(X_cal, y_cal)

models = {
    "uncalibrated": plain,
    f"temperature (T = {temperature.temperature_:.2f})": temperature,
    "isotonic (CalibratedClassifierCV)": isotonic,
}
probabilities = {
    name: model.predict_proba(X_test)[:, 1] for name, model in models.items()
}

# %%
# Reliability diagram
# -------------------
# Predicted probability of pneumonia, in ten bins of equal width, against the
# observed frequency in each bin, on the test images: a calibrated model follows the
# diagonal. The model is confident, so most images fall in the first and the last
# bin, and the few in between make the middle of the curves noisy (the markers grow
# with the number of images). ECE is the expected calibration error, the
# bin-weighted mean gap between the two.

figure, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4.8))
ece = {}
for ax, (name, proba) in zip(axes, probabilities.items(), strict=True):
    ece[name] = expected_calibration_error(y_test, proba, n_bins=10)
    plot_reliability_diagram(y_test, proba, n_bins=10, ax=ax, name=name)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(name, fontsize=11)
figure.tight_layout()
with atomic_path(output / "reliability_diagram.png") as path:
    figure.savefig(path, dpi=100)
for name, value in ece.items():
    print(f"ECE {value:.4f}  {name}")

# %%
# Choosing the threshold
# ----------------------
# ``TunedThresholdClassifierCV`` scans thresholds of the temperature-scaled model's
# probabilities on the calibration split (``cv="prefit"``: the model is already
# fitted, on other data) and keeps the one with the best balanced accuracy. A
# screening programme might instead require a sensitivity; the scorer is the place
# to say so.

tuned = TunedThresholdClassifierCV(
    temperature, scoring="balanced_accuracy", cv="prefit", refit=False
)
tuned.fit(X_cal, y_cal)
threshold = float(tuned.best_threshold_)
print(f"tuned threshold: {threshold:.3f} (balanced accuracy {tuned.best_score_:.3f})")

proba = probabilities[next(name for name in models if name.startswith("temp"))]
figure, ax = plt.subplots(figsize=(6, 6))
plot_roc(y_test, proba, threshold=threshold, name="temperature-scaled CNN", ax=ax)
ax.set_title("Test ROC curve and the tuned operating point")
with atomic_path(output / "roc_threshold.png") as path:
    figure.savefig(path, dpi=110, bbox_inches="tight")

# %%
# The clinical report
# -------------------
# Each figure with a 95% percentile-bootstrap confidence interval over the test
# images (1,000 stratified resamples, the threshold held fixed).

reports = [
    (value, clinical_report(y_test, proba, threshold=value, random_state=0))
    for value in (0.5, threshold)
]
for _, report in reports:
    print(report, end="\n\n")

lines = [f"# Calibration and threshold choice on {data_name}", ""]
if quick:
    lines += ["> Quick mode: a few hundred images, two epochs.", ""]
lines += ["| model | ECE (10 bins) |", "|---|---:|"]
lines += [f"| {name} | {value:.4f} |" for name, value in ece.items()]
lines += ["", f"Tuned threshold: {threshold:.3f}", ""]
for value, report in reports:
    lines += [f"## Threshold {value:.3f}", "", "```text", str(report), "```", ""]
lines += ["![Reliability](reliability_diagram.png) ![ROC](roc_threshold.png)", ""]
with atomic_open(output / "report.md") as file:
    file.write("\n".join(lines))
