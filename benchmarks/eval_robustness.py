"""Evidence for the robustness report: the default classifier under corruption.

For each data set (PneumoniaMNIST; RetinaMNIST, 5 grades in colour) a
``MedicalCNNClassifier`` with the library's defaults is fitted on the official
train split and scored by :func:`sk_medcnn.robustness.robustness_report` on the
official validation split, clean and under each default corruption at
severities 1, 3 and 5 (``--model recipe``: the cross-validated
``make_recipe("pneumonia")`` ensemble instead, on binary data sets). Printed:
the report's table per data set, and the mean relative AUC drop per severity.
The test splits are never read.

Run from the project root::

    python benchmarks/eval_robustness.py --json reports/eval_robustness.json
    python benchmarks/eval_robustness.py --quick      # phantoms, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import IMAGE_DATA, save_results
from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.recipes import make_recipe
from sk_medcnn.robustness import robustness_report

DATA = IMAGE_DATA


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATA), choices=DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--severities", nargs="+", type=int, default=[1, 3, 5])
    parser.add_argument(
        "--model",
        default="defaults",
        choices=("defaults", "recipe"),
        help="MedicalCNNClassifier() or make_recipe('pneumonia') (binary data sets)",
    )
    parser.add_argument(
        "--members", type=int, default=None, help="the recipe's ensemble size"
    )
    parser.add_argument("--quick", action="store_true", help="phantoms, 1 epoch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"datasets": {}}
    for name in args.datasets:
        if args.quick:
            X, y = make_lesion_phantoms(300, image_size=16, random_state=0)
            X_train, y_train, X_val, y_val = X[:200], y[:200], X[200:], y[200:]
            params: dict[str, Any] = {"max_epochs": 1, "device": "cpu"}
        elif not DATA[name].exists():
            print(f"{name}: {DATA[name]} is absent; skipped")
            continue
        else:
            X_train, y_train = load_medmnist(DATA[name], "train")
            X_val, y_val = load_medmnist(DATA[name], "val")
            params = {}
        start = time.perf_counter()
        if args.model == "recipe":
            if len(np.unique(y_train)) != 2:
                print(f"{name}: the recipe is for binary tasks; skipped")
                continue
            clf = make_recipe(
                "pneumonia",
                n_members=args.members,
                member_params=params or None,
                random_state=args.seed,
            )
        else:
            clf = MedicalCNNClassifier(random_state=args.seed, **params)
        clf.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - start
        report = robustness_report(clf, X_val, y_val, severities=args.severities)
        print(
            f"\n{name}, {args.model} (validation split, seed {args.seed}, fit "
            f"{fit_seconds:.0f} s)"
        )
        print(report)
        drops = {
            severity: float(
                np.mean(
                    [
                        row["auc_drop"]
                        for row in report.rows
                        if row["severity"] == severity
                    ]
                )
            )
            for severity in args.severities
        }
        print(
            "mean relative AUC drop by severity: "
            + ", ".join(f"{s}: {d:.1%}" for s, d in drops.items())
        )
        results["datasets"][name] = {
            "model": args.model,
            "seed": args.seed,
            "fit_seconds": fit_seconds,
            "clean": report.clean,
            "rows": report.rows,
            "mean_auc_drop": {str(s): d for s, d in drops.items()},
        }
    save_results(results, args.json)
    return results


if __name__ == "__main__":
    main()
