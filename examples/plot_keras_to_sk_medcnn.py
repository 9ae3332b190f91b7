"""
From Keras to sk_medcnn
=======================

The project started from a Keras model: three convolution and max-pooling blocks
(32, 64 and 128 filters), a dense layer of 128 units, one sigmoid output, Adam,
binary cross-entropy, 10 epochs in batches of 32::

    model = Sequential()
    model.add(Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
    model.add(MaxPooling2D((2, 2)))
    model.add(Conv2D(64, (3, 3), activation="relu"))
    model.add(MaxPooling2D((2, 2)))
    model.add(Conv2D(128, (3, 3), activation="relu"))
    model.add(MaxPooling2D((2, 2)))
    model.add(Flatten())
    model.add(Dense(128, activation="relu"))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(train_data, train_labels, epochs=10, batch_size=32)

This example trains the same network with sk_medcnn on PneumoniaMNIST (chest
X-rays of children, 28 x 28 pixels, normal or pneumonia), evaluates it on the
official validation split with bootstrap confidence intervals, and writes a report.
Without the data file it falls back to synthetic lesion phantoms and says so.

Run it from the project root::

    python examples/plot_keras_to_sk_medcnn.py                # about 30 s
    python examples/plot_keras_to_sk_medcnn.py --quick        # smaller: under a minute

Output (``--output DIR``, default ``reports/examples/keras_to_sk_medcnn``):
``report.md``, ``report.json``, ``training_loss.png`` and ``roc_curve.png``.
"""

# %%
# Settings
# --------
# The command-line options; ``--quick`` (or the environment variable
# ``SK_MEDCNN_EXAMPLES_QUICK=1``) trains on a few hundred images for three epochs,
# which is what the test suite runs.

import argparse
import json
import os
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

import sk_medcnn
from sk_medcnn import MedicalCNNClassifier, get_architecture
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.inspection import plot_roc
from sk_medcnn.io import atomic_open, atomic_path
from sk_medcnn.metrics import clinical_report

EXAMPLE = "keras_to_sk_medcnn"
ROOT = Path(sys.argv[0]).resolve().parent.parent  # the project folder
parser = argparse.ArgumentParser(description="The Keras reference CNN in sk_medcnn.")
parser.add_argument("--quick", action="store_true", help="tiny run, for tests")
parser.add_argument(
    "--output",
    type=Path,
    default=ROOT / "reports" / "examples" / EXAMPLE,
    help="folder for the report and figures",
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
print(f"quick mode: {quick}; writing to {output}")

# the card's picture, shipped so that it shows with GALLERY=off too:
# sphinx_gallery_thumbnail_path = "_static/thumbnails/plot_keras_to_sk_medcnn.png"

# %%
# The data
# --------
# :func:`~sk_medcnn.datasets.load_medmnist` reads the MedMNIST ``.npz`` layout:
# uint8 images of shape ``(n, 28, 28)`` and integer labels (0 normal, 1 pneumonia).
# Images stay uint8 until each batch is converted; sk_medcnn standardises them with
# statistics learned in ``fit``, so there is no ``X / 255`` step to forget.

if args.data.is_file():
    X_train, y_train = load_medmnist(args.data, "train")
    X_val, y_val = load_medmnist(args.data, "val")
    data_name = "PneumoniaMNIST"
    class_names = ["normal", "pneumonia"]
else:
    print(f"{args.data} not found: using synthetic lesion phantoms instead.")
    X, y = make_lesion_phantoms(2400, image_size=28, random_state=0)
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=400, stratify=y, random_state=0
    )
    data_name = "lesion phantoms (synthetic)"
    class_names = ["no lesion", "lesion"]
if quick:  # a stratified few hundred images
    X_train, _, y_train, _ = train_test_split(
        X_train, y_train, train_size=600, stratify=y_train, random_state=0
    )
    X_val, _, y_val, _ = train_test_split(
        X_val, y_val, train_size=200, stratify=y_val, random_state=0
    )
print(f"{data_name}: train {X_train.shape} {X_train.dtype}, validation {X_val.shape}")
print("train class counts:", np.bincount(y_train), "validation:", np.bincount(y_val))

# %%
# The same network
# ----------------
# ``simple_cnn`` is the Keras model; ``padding="valid"`` gives Keras' default
# convolutions exactly (the default, ``"same"``, pads them so that any image size
# works). The input shape is not declared: ``fit`` reads it from the data. The one
# visible difference is the output layer: two logits and a softmax instead of one
# logit and a sigmoid. Both give the same model (the softmax of two logits is the
# sigmoid of their difference, and cross-entropy on it is binary cross-entropy),
# and the two-output form is the same for three classes or thirty.

network = get_architecture("simple_cnn")(1, 2, (28, 28), padding="valid")
print(network)
n_parameters = sum(parameter.numel() for parameter in network.parameters())
print(f"{n_parameters:,} parameters (Keras, with its one sigmoid unit: 109,313)")

# %%
# Everything ``compile`` and ``fit`` said is a constructor parameter, so that
# ``GridSearchCV`` can tune it and ``clone`` can copy it.

clf = MedicalCNNClassifier(
    "simple_cnn",
    architecture_params={"padding": "valid"},
    optimizer="adam",
    lr=1e-3,  # Keras' default Adam learning rate
    loss="cross_entropy",
    max_epochs=3 if quick else 10,
    batch_size=32,
    lr_schedule=None,  # Keras: a constant learning rate
    calibration=None,  # Keras trains on all the data and keeps the raw outputs
    tta=None,  # one view of each image at prediction
    random_state=0,  # same seed, same model (on the CPU)
)
start = time.perf_counter()
clf.fit(X_train, y_train)
fit_seconds = time.perf_counter() - start
print(f"fitted {clf.n_epochs_} epochs in {fit_seconds:.1f} s on {clf.device_}")

# %%
# The training loss, epoch by epoch, is in ``history_`` (skorch's history).

figure, ax = plt.subplots(figsize=(5, 3.2))
epochs = clf.history_[:, "epoch"]
ax.plot(epochs, clf.history_[:, "train_loss"], "o-")
ax.set(xlabel="epoch", ylabel="training loss (cross-entropy)", xticks=epochs)
ax.set_title(f"simple_cnn on {data_name}")
ax.grid(alpha=0.3)
figure.tight_layout()
with atomic_path(output / "training_loss.png") as path:
    figure.savefig(path, dpi=120)

# %%
# Evaluation with confidence intervals
# ------------------------------------
# Keras' ``metrics=["accuracy"]`` becomes ``clf.score``; for a clinical reader,
# :func:`~sk_medcnn.metrics.clinical_report` gives accuracy, AUC, sensitivity,
# specificity, PPV and NPV, each with a bootstrap 95% confidence interval.

proba = clf.predict_proba(X_val)[:, 1]
report = clinical_report(y_val, proba, threshold=0.5, random_state=0)
print(f"accuracy (clf.score): {clf.score(X_val, y_val):.3f}")
print(report)

figure, ax = plt.subplots(figsize=(6, 6))
plot_roc(y_val, proba, threshold=0.5, name="simple_cnn", ax=ax)
ax.set_title("Validation ROC curve")
with atomic_path(output / "roc_curve.png") as path:
    figure.savefig(path, dpi=120, bbox_inches="tight")

# %%
# The report
# ----------
# A Markdown summary and the same numbers as JSON, each written to a temporary file
# and renamed, so that a crash never leaves half a report.

summary = {
    "data": data_name,
    "n_train": len(y_train),
    "n_validation": len(y_val),
    "quick": quick,
    "params": {
        key: value
        for key, value in clf.get_params().items()
        if isinstance(value, (int, float, str, dict, type(None)))
    },
    "n_parameters": n_parameters,
    "fit_seconds": round(fit_seconds, 2),
    "metrics": {
        name: {"value": value, "low": low, "high": high}
        for name, (value, low, high) in report.items()
    },
    "confusion_matrix": np.asarray(report.confusion_matrix).tolist(),
    "versions": {"sk_medcnn": sk_medcnn.__version__},
}
with atomic_open(output / "report.json") as file:
    json.dump(summary, file, indent=2, default=float)
lines = [
    f"# simple_cnn (the Keras reference model) on {data_name}",
    "",
    f"Trained on {len(y_train)} images for {clf.n_epochs_} epochs "
    f"({fit_seconds:.1f} s); evaluated on {len(y_val)} validation images "
    f"(positive class: {class_names[1]}).",
    "",
    "```text",
    str(report),
    "```",
    "",
    "![Training loss](training_loss.png) ![ROC curve](roc_curve.png)",
    "",
]
if quick:
    lines.insert(2, "> Quick mode: a few hundred images, three epochs.\n")
with atomic_open(output / "report.md") as file:
    file.write("\n".join(lines))
print(f"report written to {output / 'report.md'}")

# %%
# What sk_medcnn adds
# -------------------
# The fitted ``clf`` is a scikit-learn estimator, so the rest of scikit-learn works
# on it: ``cross_val_score(clf, X, y, scoring="roc_auc")``, ``GridSearchCV`` over
# any parameter above, a ``Pipeline`` that resizes and normalises the images with
# the model, ``joblib.dump``. On top of that: augmentation of every training batch
# (``augmentation=``), Grad-CAM and saliency maps
# (:mod:`sk_medcnn.inspection`), calibration and clinical metrics
# (:mod:`sk_medcnn.metrics`), and model files that run no code when loaded
# (:func:`sk_medcnn.save_model`). The other examples show each of these.
