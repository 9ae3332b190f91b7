"""Measure ``tta="auto"``: the decision it makes, and TTA auto against on and off.

For each data set and seed: fit ``MedicalCNNClassifier`` with its defaults
(``tta="auto"``, a temperature fitted on its own held-out 10 % of the train
split, where auto also decides) on the official train split; then score on
the official validation split (never seen by the fit): the predictions of
the decision made (auto), and of the same network with ``tta="shifts"`` and
``tta=None`` forced (each with the temperature refitted on the held-out split
for its own views, as a fit with that value would). The test splits are
never read. Falls back to lesion phantoms when the shared data are absent.

    nice -n 15 python benchmarks/eval_tta_auto.py --seeds 0 1
    python benchmarks/eval_tta_auto.py --quick
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.preprocessing import LabelEncoder

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA_SETS = {
    "pneumoniamnist": DATA / "pneumoniamnist_28_trainval.npz",
    "retinamnist": DATA / "retinamnist_28_trainval.npz",
}


def load(name: str, quick: bool) -> tuple[np.ndarray, ...]:
    """Train and validation splits of ``name`` (phantoms when absent or quick)."""
    path = DATA_SETS[name]
    if path.exists() and not quick:
        X, y = load_medmnist(path, "train")
        X_val, y_val = load_medmnist(path, "val")
        return X, y, X_val, y_val
    X, y = make_lesion_phantoms(300 if quick else 3000, random_state=0)
    X_val, y_val = make_lesion_phantoms(100 if quick else 1000, random_state=1)
    return X, y, X_val, y_val


def scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """AUC (one-vs-rest macro for several classes), accuracy and log-loss."""
    labels = np.arange(proba.shape[1])
    auc = (
        roc_auc_score(y, proba[:, 1])
        if proba.shape[1] == 2
        else roc_auc_score(y, proba, multi_class="ovr", labels=labels)
    )
    return {
        "AUC": float(auc),
        "ACC": float(accuracy_score(y, proba.argmax(1))),
        "log-loss": float(log_loss(y, proba, labels=labels)),
    }


def forced(
    clf: MedicalCNNClassifier, X: np.ndarray, y: np.ndarray, tta: str | None
) -> None:
    """Force ``tta`` on the fitted ``clf``, refitting its temperature for it."""
    clf.set_params(tta=tta)
    images = X[..., None] if X.ndim == 3 else X
    encoded = LabelEncoder().fit(clf.classes_).transform(y)
    clf._fit_calibration(images, encoded, clf._validation_index)


def run(name: str, seeds: list[int], epochs: int, quick: bool) -> dict[str, Any]:
    """Fit once per seed; score auto, on and off on the validation split."""
    X, y, X_val, y_val = load(name, quick)
    per_seed = []
    for seed in seeds:
        start = time.perf_counter()
        clf = MedicalCNNClassifier(max_epochs=epochs, random_state=seed).fit(X, y)
        fit_seconds = time.perf_counter() - start
        record = {
            "seed": seed,
            "fit_seconds": round(fit_seconds, 1),
            "tta_": clf.tta_,
            "held_out": clf.tta_scores_,
            "auto": scores(y_val, clf.predict_proba(X_val)),
        }
        for label, tta in (("on", "shifts"), ("off", None)):
            forced(clf, X, y, tta)
            record[label] = scores(y_val, clf.predict_proba(X_val))
        per_seed.append(record)
        held = record["held_out"] or {}
        print(
            f"{name} seed {seed}: tta_={record['tta_']!r} (held-out log-loss "
            f"with {held.get('log_loss_with', float('nan')):.4f}, without "
            f"{held.get('log_loss_without', float('nan')):.4f}; "
            f"{held.get('n_samples', 0)} images); fit {fit_seconds:.0f} s; "
            "validation AUC/ACC "
            + ", ".join(
                f"{variant} {record[variant]['AUC']:.4f}/{record[variant]['ACC']:.4f}"
                for variant in ("auto", "on", "off")
            ),
            flush=True,
        )
    return {
        "data": name if not quick else f"{name} (phantoms)",
        "split": "official validation split",
        "n_validation": len(y_val),
        "epochs": epochs,
        "seeds": per_seed,
    }


def table(result: dict[str, Any]) -> str:
    """The mean ± standard deviation over seeds of each variant's scores."""
    lines = [
        f"\n{result['data']}, {result['split']} ({result['n_validation']} images), "
        f"{len(result['seeds'])} seed(s), {result['epochs']} epochs; decisions: "
        + ", ".join(repr(record["tta_"]) for record in result["seeds"]),
        f"{'tta':<8}" + "".join(f"{m:>18}" for m in ("AUC", "ACC", "log-loss")),
    ]
    for variant in ("auto", "on", "off"):
        cells = []
        for metric in ("AUC", "ACC", "log-loss"):
            values = np.array([record[variant][metric] for record in result["seeds"]])
            cells.append(f"{values.mean():.4f} ± {values.std():.4f}")
        lines.append(f"{variant:<8}" + "".join(f"{cell:>18}" for cell in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the measurement and print (and optionally save) the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=list(DATA_SETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="phantoms, 2 epochs")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    epochs = 2 if args.quick else args.epochs
    results = [run(name, args.seeds, epochs, args.quick) for name in args.data]
    for result in results:
        print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
