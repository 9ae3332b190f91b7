"""
Training with a plugin architecture
===================================

Once the ``sk-medcnn-tinynet`` package is installed, its ``tinynet`` architecture
works like a built-in one: :func:`sk_medcnn.list_architectures` lists it,
``MedicalCNNClassifier("tinynet")`` trains it, and :func:`sk_medcnn.save_model`
stores it by name. Install the package first (from the project root)::

    python -m pip install --no-deps ./examples/plugin_package
    python examples/plugin_package/train_with_tinynet.py            # about 10 s
    python examples/plugin_package/train_with_tinynet.py --quick    # a few seconds

It trains on synthetic lesion phantoms and writes ``tinynet.skmed`` and
``summary.json`` to ``--output DIR`` (default ``reports/examples/tinynet``).
"""

# %%
# Is the plugin installed?
# ------------------------
# Listing the architectures reads the entry points of the installed distributions
# without importing them; ``get_architecture`` imports the plugin's module.

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from sk_medcnn import (
    MedicalCNNClassifier,
    architecture_spatial_dims,
    get_architecture,
    list_architectures,
    load_model,
    save_model,
)
from sk_medcnn.datasets import make_lesion_phantoms
from sk_medcnn.utils._files import atomic_open

ROOT = Path(sys.argv[0]).resolve().parents[2]  # the project folder
parser = argparse.ArgumentParser(description="Train the tinynet plugin.")
parser.add_argument("--quick", action="store_true", help="tiny run, for tests")
parser.add_argument(
    "--output",
    type=Path,
    default=ROOT / "reports" / "examples" / "tinynet",
    help="folder for the model and the summary",
)
args = parser.parse_args()
quick = args.quick or os.environ.get("SK_MEDCNN_EXAMPLES_QUICK", "0") != "0"
output = args.output
output.mkdir(parents=True, exist_ok=True)

print("architectures:", list_architectures())
if "tinynet" not in list_architectures():
    sys.exit(
        "The tinynet plugin is not installed: "
        "python -m pip install --no-deps ./examples/plugin_package"
    )
factory = get_architecture("tinynet")
print(f"tinynet is {factory.__module__}.{factory.__name__}")
# the factory's ``spatial_dims`` attribute: (2, 3), images and volumes
print("tinynet takes spatial dimensions", architecture_spatial_dims("tinynet"))

# %%
# Training by name
# ----------------
# ``architecture_params`` goes to the plugin's factory.

X, y = make_lesion_phantoms(300 if quick else 1000, image_size=28, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
clf = MedicalCNNClassifier(
    "tinynet",
    architecture_params={"width": 8},
    max_epochs=2 if quick else 10,
    random_state=0,
)
clf.fit(X_train, y_train)
accuracy = clf.score(X_test, y_test)
network = clf.net_.module_.body  # the plugin's module, inside sk_medcnn's wrapper
n_parameters = sum(parameter.numel() for parameter in network.parameters())
print(f"{type(network).__name__}: {n_parameters} parameters; test accuracy {accuracy}")

# %%
# Saving and loading
# ------------------
# The ``.skmed`` file names the architecture; loading it rebuilds the network from
# the installed plugin and checks the stored weights against it.

save_model(clf, output / "tinynet.skmed")
loaded = load_model(output / "tinynet.skmed")
assert np.array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))

summary = {
    "factory": f"{factory.__module__}.{factory.__name__}",
    "factory_file": sys.modules[factory.__module__].__file__,
    "spatial_dims": list(architecture_spatial_dims("tinynet")),
    "network": type(network).__name__,
    "n_parameters": n_parameters,
    "n_epochs": clf.n_epochs_,
    "test_accuracy": accuracy,
}
with atomic_open(output / "summary.json") as file:
    json.dump(summary, file, indent=2)
print(json.dumps(summary, indent=2))
