"""A fitted classifier's embedding + logistic regression against the classifier.

For each seed: fit the default ``MedicalCNNClassifier`` on PneumoniaMNIST's
official train split, then fit ``make_pipeline(ImageEmbedder(clf),
StandardScaler(), LogisticRegression())`` on the same split (the network is
used as it is; only the linear model trains), and score both on the official
validation split (AUC, accuracy at the 0.5 threshold). Also measures the
embedding throughput of ``ImageEmbedder.transform`` (images/s, best of
``--repeats``, on the validation images and on the train images). The test
split is never read. Falls back to lesion phantoms without the data file.

    python benchmarks/eval_embedding.py --seeds 0 1 2 --json reports/eval_embedding.json
    python benchmarks/eval_embedding.py --quick
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import DEFAULT_DATA, require_at_least, save_results
from sk_medcnn import ImageEmbedder, MedicalCNNClassifier
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms


def load(quick: bool, data: Path):
    if data.exists() and not quick:
        X, y = load_medmnist(data, "train")
        X_val, y_val = load_medmnist(data, "val")
        return "PneumoniaMNIST 28px (train -> val)", X, y, X_val, y_val
    X, y = make_lesion_phantoms(300 if quick else 3000, random_state=0)
    X_val, y_val = make_lesion_phantoms(100 if quick else 1000, random_state=1)
    return "lesion phantoms 28px", X, y, X_val, y_val


def scores(y, proba):
    return {
        "AUC": float(roc_auc_score(y, proba[:, 1])),
        "ACC": float(accuracy_score(y, proba.argmax(1))),
    }


def throughput(function, X, repeats):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function(X)
        best = min(best, time.perf_counter() - start)
    return len(X) / best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="phantoms, 2 epochs")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    require_at_least(parser, args, ["repeats", "threads"])
    torch.set_num_threads(args.threads)
    name, X, y, X_val, y_val = load(args.quick, args.data)
    print(f"{name}: {len(X)} train, {len(X_val)} validation images")
    runs = []
    for seed in args.seeds:
        params = {"random_state": seed, "device": "cpu"}
        if args.quick:
            params["max_epochs"] = 2
        start = time.perf_counter()
        clf = MedicalCNNClassifier(**params).fit(X, y)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        probe = make_pipeline(
            ImageEmbedder(clf), StandardScaler(), LogisticRegression(max_iter=2000)
        ).fit(X, y)
        probe_seconds = time.perf_counter() - start
        embedder = probe[0]
        run = {
            "seed": seed,
            "classifier": scores(y_val, clf.predict_proba(X_val)),
            "embedding + logistic regression": scores(
                y_val, probe.predict_proba(X_val)
            ),
            "n_embedding": int(embedder.n_embedding_),
            "fit_seconds": fit_seconds,
            "probe_fit_seconds": probe_seconds,
            "embedding_images_per_s_val": throughput(
                embedder.transform, X_val, args.repeats
            ),
            "embedding_images_per_s_train": throughput(
                embedder.transform, X, args.repeats
            ),
            "predict_proba_images_per_s_val": throughput(
                clf.predict_proba, X_val, args.repeats
            ),
        }
        runs.append(run)
        print(
            f"seed {seed}: classifier AUC {run['classifier']['AUC']:.4f} ACC "
            f"{run['classifier']['ACC']:.4f} | embedding+LR AUC "
            f"{run['embedding + logistic regression']['AUC']:.4f} ACC "
            f"{run['embedding + logistic regression']['ACC']:.4f} | embedding "
            f"{run['embedding_images_per_s_val']:,.0f} img/s (val), "
            f"{run['embedding_images_per_s_train']:,.0f} img/s (train); "
            f"predict_proba (tta='shifts', 5 views) "
            f"{run['predict_proba_images_per_s_val']:,.0f} img/s"
        )
    summary = {}
    for model in ("classifier", "embedding + logistic regression"):
        for metric in ("AUC", "ACC"):
            values = [run[model][metric] for run in runs]
            summary[f"{model} {metric}"] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
            }
    for key, stats in summary.items():
        print(f"{key}: {stats['mean']:.4f} +- {stats['std']:.4f}")
    save_results(
        {
            "data": name,
            "split": "validation",
            "threads": args.threads,
            "runs": runs,
            "summary": summary,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
