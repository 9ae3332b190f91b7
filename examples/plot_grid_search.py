"""
Tuning augmentation and learning rate with GridSearchCV
=======================================================

A CNN is one more scikit-learn estimator: put it at the end of a ``Pipeline``,
search its parameters with ``GridSearchCV`` scored by ROC AUC, and save the best
pipeline with ``joblib.dump`` or, safely, with :func:`sk_medcnn.save_model`.

The search crosses three augmentation strengths (none, mild and strong random
affine transforms of every training batch) with two learning rates, on a stratified
subset of the PneumoniaMNIST training split (synthetic lesion phantoms without the
data file), with 3-fold cross-validation: 18 fits and one refit. The chosen pipeline
is then scored once on the validation split, which the search never saw.

Run it from the project root::

    python examples/plot_grid_search.py              # several minutes
    python examples/plot_grid_search.py --n-jobs 2   # two worker processes
    python examples/plot_grid_search.py --quick      # smaller: under a minute

Output (``--output DIR``, default ``reports/examples/grid_search``):
``search_results.png``, ``cv_results.csv``, ``best_pipeline.joblib`` and
``best_pipeline.skmed``.
"""

# the card's picture, shipped so that it shows with GALLERY=off too:
# sphinx_gallery_thumbnail_path = "_static/thumbnails/plot_grid_search.png"

# %%
# Settings
# --------

import argparse
import csv
import os
import sys
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline

from sk_medcnn import MedicalCNNClassifier, load_model, save_model
from sk_medcnn.augmentation import RandomAffine
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.io import atomic_open, atomic_path
from sk_medcnn.preprocessing import IntensityNormalizer

EXAMPLE = "grid_search"
ROOT = Path(sys.argv[0]).resolve().parent.parent  # the project folder
parser = argparse.ArgumentParser(description="GridSearchCV over a CNN pipeline.")
parser.add_argument("--quick", action="store_true", help="tiny run, for tests")
parser.add_argument(
    "--output",
    type=Path,
    default=ROOT / "reports" / "examples" / EXAMPLE,
    help="folder for the results and the saved models",
)
parser.add_argument(
    "--data",
    type=Path,
    default=ROOT.parent / "shared" / "data" / "pneumoniamnist_28_trainval.npz",
    help="PneumoniaMNIST .npz file (MedMNIST layout)",
)
parser.add_argument(
    "--n-jobs", type=int, default=1, help="GridSearchCV worker processes"
)
args = parser.parse_args()
quick = args.quick or os.environ.get("SK_MEDCNN_EXAMPLES_QUICK", "0") != "0"
output = args.output
output.mkdir(parents=True, exist_ok=True)

# %%
# The data
# --------
# A stratified subset keeps the 18 fits short; the class balance (about three
# pneumonia images for each normal one) is kept.

if args.data.is_file():
    X_train, y_train = load_medmnist(args.data, "train")
    X_val, y_val = load_medmnist(args.data, "val")
    data_name = "PneumoniaMNIST"
else:
    print(f"{args.data} not found: using synthetic lesion phantoms instead.")
    X, y = make_lesion_phantoms(1800, image_size=28, random_state=0)
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=400, stratify=y, random_state=0
    )
    data_name = "lesion phantoms (synthetic)"
n_train = 240 if quick else 900
X_train, _, y_train, _ = train_test_split(
    X_train, y_train, train_size=n_train, stratify=y_train, random_state=0
)
print(f"{data_name}: searching on {len(y_train)} training images")

# %%
# The pipeline and the grid
# -------------------------
# Every step's parameters are reachable with scikit-learn's ``step__parameter``
# names, down into the augmentation: ``medicalcnnclassifier__augmentation`` swaps
# the whole augmenter, and ``medicalcnnclassifier__augmentation__degrees`` would
# tune one of its parameters. Augmentation runs on each training batch only, never
# on the images a fold is scored on.

pipe = make_pipeline(
    IntensityNormalizer(method="percentile"),  # per image: 1st-99th percentile
    MedicalCNNClassifier(
        max_epochs=1 if quick else 4,
        batch_size=32,
        random_state=0,
    ),
)
strengths = {
    "none": None,
    "mild": RandomAffine(translate=(0.05, 0.05), degrees=5.0, scale=(0.95, 1.05)),
    "strong": RandomAffine(translate=(0.1, 0.1), degrees=15.0, scale=(0.9, 1.1)),
}
param_grid = {
    "medicalcnnclassifier__augmentation": list(strengths.values()),
    "medicalcnnclassifier__lr": [1e-3, 3e-3],
}
search = GridSearchCV(
    pipe,
    param_grid,
    scoring="roc_auc",
    cv=StratifiedKFold(2 if quick else 3, shuffle=True, random_state=0),
    n_jobs=args.n_jobs,
)
search.fit(X_train, y_train)

# %%
# The results
# -----------
# ``cv_results_`` holds every candidate's fold scores; here as a table, a CSV file
# and a figure.

names = {id(value): name for name, value in strengths.items()}
results = search.cv_results_
rows = []
for index, params in enumerate(results["params"]):
    rows.append(
        {
            "augmentation": names[id(params["medicalcnnclassifier__augmentation"])],
            "lr": params["medicalcnnclassifier__lr"],
            "mean_auc": results["mean_test_score"][index],
            "std_auc": results["std_test_score"][index],
            "rank": int(results["rank_test_score"][index]),
            "mean_fit_seconds": results["mean_fit_time"][index],
        }
    )
print(f"{'augmentation':<14}{'lr':>8}{'mean AUC':>10}{'std':>8}{'rank':>6}")
for row in rows:
    print(
        f"{row['augmentation']:<14}{row['lr']:>8.0e}{row['mean_auc']:>10.4f}"
        f"{row['std_auc']:>8.4f}{row['rank']:>6}"
    )
with atomic_open(output / "cv_results.csv", newline="") as file:
    writer = csv.DictWriter(file, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)

figure, ax = plt.subplots(figsize=(7, 3.5))
learning_rates = param_grid["medicalcnnclassifier__lr"]
positions = np.arange(len(strengths))
width = 0.8 / len(learning_rates)
for offset, lr in enumerate(learning_rates):
    chosen = [row for row in rows if row["lr"] == lr]
    ax.bar(
        positions + offset * width,
        [row["mean_auc"] for row in chosen],
        width,
        yerr=[row["std_auc"] for row in chosen],
        capsize=3,
        label=f"lr = {lr:g}",
    )
ax.set_xticks(positions + width * (len(learning_rates) - 1) / 2, list(strengths))
lowest = min(row["mean_auc"] - row["std_auc"] for row in rows)
ax.set_ylim(max(0.0, lowest - 0.05), 1.0)
ax.set(xlabel="augmentation strength", ylabel="cross-validated ROC AUC")
ax.set_title("GridSearchCV on " + data_name)
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
figure.tight_layout()
with atomic_path(output / "search_results.png") as path:
    figure.savefig(path, dpi=120)

# %%
# The chosen pipeline, on data it has never seen
# ----------------------------------------------
# ``refit=True`` (the default) retrained the best candidate on all the search data.

best = search.best_estimator_
best_name = names[id(search.best_params_["medicalcnnclassifier__augmentation"])]
print(
    f"best: augmentation {best_name}, "
    f"lr {search.best_params_['medicalcnnclassifier__lr']:g}, "
    f"cross-validated AUC {search.best_score_:.4f}"
)
proba = best.predict_proba(X_val)[:, 1]
print(f"validation AUC: {roc_auc_score(y_val, proba):.4f} ({len(y_val)} images)")

# %%
# Saving the pipeline
# -------------------
# ``joblib.dump`` pickles the pipeline, as for any scikit-learn model; loading a
# pickle runs code from the file, so load only your own. A ``.skmed`` file holds
# parameters as JSON and weights as safetensors: loading it runs no code, so it is
# the format to share. Both give back the same predictions.

with atomic_path(output / "best_pipeline.joblib") as path:
    joblib.dump(best, path)
save_model(best, output / "best_pipeline.skmed")

from_joblib = joblib.load(output / "best_pipeline.joblib")
from_skmed = load_model(output / "best_pipeline.skmed")
for name, loaded in [("joblib", from_joblib), ("skmed", from_skmed)]:
    difference = np.abs(loaded.predict_proba(X_val)[:, 1] - proba).max()
    print(f"{name}: largest difference in predicted probability {difference:.1e}")
    assert difference < 1e-6
