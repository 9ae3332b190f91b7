"""Evaluate training configurations: defaults and recipes, by CV and on held-out sets.

Evidence for the defaults of ``MedicalCNNClassifier()`` and for the recipes of
``sk_medcnn.recipes``. For every configuration and seed:

- 5-fold stratified cross-validation on the training split (the folds are the
  same for every configuration and seed, so configurations are compared on the
  same data; the seed changes the training only): AUC, accuracy, sensitivity,
  specificity, balanced accuracy, expected calibration error (top-label, 15
  bins) and log-loss of each held-out fold;
- one fit on the whole training split, scored on each evaluation set: the
  official validation split and a shifted copy of it (lower contrast and more
  noise, as from another scanner) for PneumoniaMNIST; an in-distribution and a
  shifted test set for the phantom tasks.

Summaries give the mean and standard deviation (ddof=1) over folds and seeds,
the seed spread (standard deviation and range of the per-seed means), the
training time of each fit (wall clock and CPU seconds, with the share of the
CPU other processes used meanwhile) and, for configurations with a held-out
split, post-hoc variants of the same fitted models: test-time augmentation
(``tta``) and temperature scaling on or off. The PneumoniaMNIST test split is
never read.

Configurations run one after the other (2 torch threads by default). With
``--json`` every finished fit is saved at once (atomically), and ``--resume``
skips the fits already in that file, so a long run can be stopped and resumed::

    # screen candidates: 1 seed, the first fold only
    python benchmarks/eval_defaults.py --screen --configs current es20 es20_bal
    # the full protocol for the chosen ones
    python benchmarks/eval_defaults.py --configs current defaults recipe \\
        --seeds 0 1 2 --json reports/eval_defaults.json --resume
    # generalisation under distribution shift (no CV)
    python benchmarks/eval_defaults.py --task phantoms --no-cv --configs defaults
    python benchmarks/eval_defaults.py --quick   # smoke test on tiny phantoms
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch
from sklearn.base import BaseEstimator
from sklearn.ensemble import VotingClassifier
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import (
    StratifiedKFold,
    StratifiedShuffleSplit,
    TunedThresholdClassifierCV,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder

from sk_medcnn import MedicalCNNClassifier, __version__
from sk_medcnn.augmentation import (
    RandomAffine,
    RandomFlip,
    RandomIntensity,
    RandomRotation,
)
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.metrics import (
    expected_calibration_error,
    sensitivity_score,
    specificity_score,
)
from sk_medcnn.recipes import make_recipe
from sk_medcnn.utils._files import atomic_open

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_FILE = PROJECT_ROOT.parent / "shared" / "data" / "pneumoniamnist_28_trainval.npz"
METRICS = (
    "auc",
    "acc",
    "sensitivity",
    "specificity",
    "balanced_accuracy",
    "ece",
    "log_loss",
)
FOLD_SEED = 0  # the CV folds are the same for every configuration and seed


# --- configurations -----------------------------------------------------------


def _aug_rotation_intensity() -> Any:
    return make_pipeline(RandomRotation(10.0), RandomIntensity(0.1, contrast=0.1))


def _aug_affine_intensity() -> Any:
    return make_pipeline(
        RandomAffine(translate=(0.05, 0.05), degrees=10.0, scale=(0.95, 1.05)),
        RandomIntensity(brightness=0.1, contrast=0.2, gamma=0.2),
    )


def _aug_half_affine_intensity() -> Any:
    # half the images keep their pixels (each resampling blurs a little)
    return make_pipeline(
        RandomAffine(translate=(0.05, 0.05), degrees=10.0, scale=(0.95, 1.05), p=0.5),
        RandomIntensity(brightness=0.1, contrast=0.2, gamma=0.2),
    )


def _aug_intensity() -> Any:
    return RandomIntensity(brightness=0.1, contrast=0.2, gamma=0.2)


def _aug_flip_affine_intensity() -> Any:
    return make_pipeline(RandomFlip(), *_aug_affine_intensity().named_steps.values())


@dataclass(frozen=True)
class Config:
    """One configuration: how to build the estimator for a seed.

    ``kind`` is ``"classifier"`` (``params`` are MedicalCNNClassifier
    parameters; ``augmentation`` may be a factory), ``"tuned"`` (the same
    classifier in a TunedThresholdClassifierCV maximising the balanced accuracy
    on a held-out 20 %) or ``"recipe"`` (``params`` are make_recipe arguments).
    ``variants`` name post-hoc settings (see VARIANTS) scored on the same fits.
    """

    description: str
    params: dict[str, Any] = field(default_factory=dict)
    kind: str = "classifier"
    variants: tuple[str, ...] = ()


#: Post-hoc variants of a fitted classifier (or of every member of an
#: ensemble): the test-time views, and the temperature (1, or refitted on the
#: classifier's own held-out split with those views).
VARIANTS: dict[str, dict[str, Any]] = {
    "T=1": {"tta": None, "temperature": "one"},
    "T": {"tta": None, "temperature": "fit"},
    "T=1,shifts": {"tta": "shifts", "temperature": "one"},
    "T,shifts": {"tta": "shifts", "temperature": "fit"},
    "T,hflip": {"tta": "hflip", "temperature": "fit"},
    "T,hflip+shifts": {"tta": "hflip+shifts", "temperature": "fit"},
    "T=1,hflip+shifts": {"tta": "hflip+shifts", "temperature": "one"},
}
_CALIBRATED = ("T=1", "T", "T,shifts", "T,hflip+shifts")
_TTA_ONLY = ("T=1,shifts", "T=1,hflip+shifts")

_TODAY = {  # MedicalCNNClassifier() as of this evaluation, spelled out
    "optimizer": "adam",
    "lr": 1e-3,
    "batch_size": 32,
    "max_epochs": 10,
    "lr_schedule": None,
    "early_stopping": False,
    "class_weight": None,
    "calibration": None,
    "tta": None,
    "augmentation": None,  # the default became "auto" later (eval_generalisation.py)
}
_ES20 = {**_TODAY, "max_epochs": 20, "early_stopping": True, "patience": 5}
_RECOMMENDED = {  # the defaults this evaluation recommends
    **_TODAY,
    "max_epochs": 20,
    "lr_schedule": "cosine",
    "calibration": "temperature",
    "tta": "shifts",
}

CONFIGS: dict[str, Config] = {
    # today's defaults, and one change at a time (screened on one fold)
    "current": Config(
        "today's defaults: Adam 1e-3, 10 epochs", _TODAY, "classifier", _TTA_ONLY
    ),
    "es20": Config(
        "early stopping (10% held out, patience 5), <= 20 epochs",
        {**_ES20, "calibration": "temperature"},
        variants=_CALIBRATED,
    ),
    "es20_bal": Config(
        "es20 + class_weight='balanced'",
        {**_ES20, "class_weight": "balanced", "calibration": "temperature"},
        variants=_CALIBRATED,
    ),
    "es20_tuned": Config(
        "es20, threshold tuned for balanced accuracy on 20%",
        {**_ES20, "calibration": "temperature"},
        kind="tuned",
    ),
    "es20_cos": Config(
        "es20 + cosine schedule",
        {**_ES20, "lr_schedule": "cosine", "calibration": "temperature"},
        variants=_CALIBRATED,
    ),
    "es20_plateau": Config(
        "es20 + decay by 10 on a plateau",
        {**_ES20, "lr_schedule": "plateau", "calibration": "temperature"},
        variants=_CALIBRATED,
    ),
    "es20_adamw_cos": Config(
        "es20 + AdamW (weight decay 0.05) + cosine",
        {
            **_ES20,
            "optimizer": "adamw",
            "weight_decay": 0.05,
            "lr_schedule": "cosine",
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "es15_onecycle": Config(
        "one-cycle to lr 3e-3, <= 15 epochs, early stopping",
        {
            **_ES20,
            "max_epochs": 15,
            "lr": 3e-3,
            "lr_schedule": "onecycle",
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "es20_lr3e-4": Config(
        "es20 with lr 3e-4",
        {**_ES20, "lr": 3e-4, "calibration": "temperature"},
        variants=_CALIBRATED,
    ),
    "es20_bs64": Config(
        "es20 with batches of 64 and lr 2e-3",
        {**_ES20, "batch_size": 64, "lr": 2e-3, "calibration": "temperature"},
        variants=_CALIBRATED,
    ),
    "es20_cos_bn": Config(
        "es20_cos + batch normalisation in simple_cnn",
        {
            **_ES20,
            "lr_schedule": "cosine",
            "architecture_params": {"batch_norm": True},
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "es20_cos_dropout": Config(
        "es20_cos + dropout 0.3 in simple_cnn",
        {
            **_ES20,
            "lr_schedule": "cosine",
            "architecture_params": {"dropout": 0.3},
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    # round 2: the schedules again, with balanced class weights
    "es20_cos_bal": Config(
        "es20_cos + class_weight='balanced'",
        {
            **_ES20,
            "lr_schedule": "cosine",
            "class_weight": "balanced",
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "es20_plateau_bal": Config(
        "es20_plateau + class_weight='balanced'",
        {
            **_ES20,
            "lr_schedule": "plateau",
            "class_weight": "balanced",
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "es15_onecycle_bal": Config(
        "es15_onecycle + class_weight='balanced'",
        {
            **_ES20,
            "max_epochs": 15,
            "lr": 3e-3,
            "lr_schedule": "onecycle",
            "class_weight": "balanced",
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "es20_onecycle_bal": Config(
        "one-cycle to lr 3e-3, <= 20 epochs, early stopping, class_weight='balanced'",
        {
            **_ES20,
            "lr": 3e-3,
            "lr_schedule": "onecycle",
            "class_weight": "balanced",
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    # augmentation candidates for the recipe's members
    "es30_cos_aug_ri": Config(
        "cosine, <= 30 epochs (patience 8), rotation 10 + intensity",
        {
            **_ES20,
            "max_epochs": 30,
            "patience": 8,
            "lr_schedule": "cosine",
            "augmentation": _aug_rotation_intensity,
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "es30_cos_aug_ai": Config(
        "cosine, <= 30 epochs (patience 8), affine (rotation "
        "10, shift 5%, zoom 5%) + intensity (contrast, gamma)",
        {
            **_ES20,
            "max_epochs": 30,
            "patience": 8,
            "lr_schedule": "cosine",
            "augmentation": _aug_affine_intensity,
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "es30_cos_aug_fai": Config(
        "es30_cos_aug_ai + horizontal flips",
        {
            **_ES20,
            "max_epochs": 30,
            "patience": 8,
            "lr_schedule": "cosine",
            "augmentation": _aug_flip_affine_intensity,
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "es30_onecycle_aug_ai_bal": Config(
        "one-cycle to 3e-3, <= 30 epochs "
        "(patience 8), affine + intensity, "
        "class_weight='balanced'",
        {
            **_ES20,
            "max_epochs": 30,
            "patience": 8,
            "lr": 3e-3,
            "lr_schedule": "onecycle",
            "class_weight": "balanced",
            "augmentation": _aug_affine_intensity,
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    # round 3: an annealing schedule over a fixed budget instead of stopping on
    # the held-out loss (which stopped at epochs 2-4 in several round-2 fits);
    # the held-out 10% then serves the temperature only
    "cos20_bal": Config(
        "cosine over 20 epochs, no early stopping, "
        "class_weight='balanced', temperature on 10% held out",
        {
            **_TODAY,
            "max_epochs": 20,
            "lr_schedule": "cosine",
            "class_weight": "balanced",
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "cos20": Config(
        "cos20_bal without class weights",
        {
            **_TODAY,
            "max_epochs": 20,
            "lr_schedule": "cosine",
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "cos20_es10_bal": Config(
        "cos20_bal with early stopping, patience 10",
        {
            **_TODAY,
            "max_epochs": 20,
            "lr_schedule": "cosine",
            "early_stopping": True,
            "patience": 10,
            "class_weight": "balanced",
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "onecycle20_bal": Config(
        "one-cycle to 3e-3 over 20 epochs, no early stopping, "
        "class_weight='balanced', temperature",
        {
            **_TODAY,
            "max_epochs": 20,
            "lr": 3e-3,
            "lr_schedule": "onecycle",
            "class_weight": "balanced",
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "cos30_aug_ai_bal": Config(
        "cosine over 30 epochs, no early stopping, affine + "
        "intensity, class_weight='balanced', temperature",
        {
            **_TODAY,
            "max_epochs": 30,
            "lr_schedule": "cosine",
            "class_weight": "balanced",
            "augmentation": _aug_affine_intensity,
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "onecycle30_aug_ai_bal": Config(
        "one-cycle to 3e-3 over 30 epochs, no early "
        "stopping, affine + intensity, balanced, "
        "temperature",
        {
            **_TODAY,
            "max_epochs": 30,
            "lr": 3e-3,
            "lr_schedule": "onecycle",
            "class_weight": "balanced",
            "augmentation": _aug_affine_intensity,
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    # round 4: the same without class weights (the recipe tunes the threshold)
    "cos30_aug_ai": Config(
        "cos30_aug_ai_bal without class weights",
        {
            **_TODAY,
            "max_epochs": 30,
            "lr_schedule": "cosine",
            "augmentation": _aug_affine_intensity,
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "onecycle30_aug_ai": Config(
        "onecycle30_aug_ai_bal without class weights",
        {
            **_TODAY,
            "max_epochs": 30,
            "lr": 3e-3,
            "lr_schedule": "onecycle",
            "augmentation": _aug_affine_intensity,
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "onecycle30_aug_half": Config(
        "onecycle30_aug_ai with the affine map on half the images (p=0.5)",
        {
            **_TODAY,
            "max_epochs": 30,
            "lr": 3e-3,
            "lr_schedule": "onecycle",
            "augmentation": _aug_half_affine_intensity,
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    "onecycle30_aug_i": Config(
        "onecycle30_aug_ai with the intensity jitter only",
        {
            **_TODAY,
            "max_epochs": 30,
            "lr": 3e-3,
            "lr_schedule": "onecycle",
            "augmentation": _aug_intensity,
            "calibration": "temperature",
        },
        variants=_CALIBRATED,
    ),
    # the recommendation and the recipe
    "defaults": Config(
        "recommended defaults: Adam 1e-3, cosine over 20 epochs, "
        "no early stopping, temperature on 10% held out, "
        "tta='shifts'",
        _RECOMMENDED,
        variants=("T=1", "T", "T=1,shifts", "T,hflip+shifts"),
    ),
    "defaults_aug": Config(
        "recommended defaults + the recipe's augmentation",
        {**_RECOMMENDED, "augmentation": _aug_half_affine_intensity},
        variants=("T=1", "T", "T=1,shifts"),
    ),
    "recipe": Config(
        "make_recipe('pneumonia'): 5 members, threshold tuned",
        {"name": "pneumonia"},
        kind="recipe",
        variants=("T=1", "T", "T=1,shifts"),
    ),
    "recipe3": Config(
        "make_recipe('pneumonia', n_members=3)",
        {"name": "pneumonia", "n_members": 3},
        kind="recipe",
    ),
    "recipe1": Config(
        "make_recipe('pneumonia', n_members=1)",
        {"name": "pneumonia", "n_members": 1},
        kind="recipe",
    ),
    "recipe_argmax": Config(
        "make_recipe('pneumonia', threshold='argmax')",
        {"name": "pneumonia", "threshold": "argmax"},
        kind="recipe",
    ),
    "recipe_noaug": Config(
        "make_recipe('pneumonia') without augmentation",
        {"name": "pneumonia", "member_params": {"augmentation": None}},
        kind="recipe",
        variants=("T=1", "T"),
    ),
}


def build(config: Config, seed: int, overrides: dict[str, Any]) -> BaseEstimator:
    """Make the unfitted estimator of ``config`` for one seed."""
    if config.kind == "recipe":
        params = dict(config.params)
        member_params = dict(params.pop("member_params", None) or {})
        member_params.update(overrides.get("member_params", {}))
        if "n_members" in overrides:
            params["n_members"] = overrides["n_members"]
        return make_recipe(
            **params, member_params=member_params or None, random_state=seed
        )
    params = {
        key: value() if key == "augmentation" and callable(value) else value
        for key, value in config.params.items()
    }
    params.update(overrides.get("member_params", {}))
    classifier = MedicalCNNClassifier(**params, random_state=seed)
    if config.kind == "tuned":
        return TunedThresholdClassifierCV(
            classifier,
            scoring="balanced_accuracy",
            response_method="predict_proba",
            cv=0.2,
            refit=False,
            random_state=seed,
        )
    return classifier


# --- tasks --------------------------------------------------------------------


def shift_intensity(
    images: np.ndarray, *, contrast: float, noise: float, seed: int = 0
) -> np.ndarray:
    """Lower the contrast about each image's mean and add Gaussian noise (uint8).

    ``contrast`` scales the deviations from the mean; ``noise`` is the
    standard deviation as a fraction of 255. Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    values = images.astype(np.float64)
    mean = values.mean(axis=(1, 2), keepdims=True)
    values = mean + contrast * (values - mean)
    values += rng.normal(0.0, noise * 255.0, values.shape)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


@dataclass
class Task:
    """Training data and named evaluation sets."""

    name: str
    description: str
    X: np.ndarray
    y: np.ndarray
    eval_sets: dict[str, tuple[np.ndarray, np.ndarray]]
    shifted: dict[str, str]  # shifted set -> its in-distribution counterpart


def _phantoms(n: int, seed: int, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    return make_lesion_phantoms(n, random_state=seed, **kwargs)


def load_task(name: str, *, quick: bool = False) -> Task:
    """Load a task by name (see ``--task``)."""
    if quick:
        X, y = _phantoms(96, 0, image_size=16)
        test = _phantoms(64, 1, image_size=16)
        shifted = _phantoms(64, 1, image_size=16, contrast=0.35, noise=0.2)
        return Task(
            "quick",
            "tiny 16 px lesion phantoms (smoke test)",
            X,
            y,
            {"test": test, "test-shifted": shifted},
            {"test-shifted": "test"},
        )
    if name == "pneumonia":
        if not DATA_FILE.exists():
            sys.exit(f"{DATA_FILE} is absent; use --task phantoms or --quick.")
        X, y = load_medmnist(DATA_FILE, "train")
        X_val, y_val = load_medmnist(DATA_FILE, "val")
        shifted = shift_intensity(X_val, contrast=0.6, noise=0.05)
        return Task(
            "pneumonia",
            "PneumoniaMNIST 28 px: official train split (4708); validation split "
            "(524), and the same images with 0.6x contrast and noise of 5% of the "
            "range",
            X,
            y,
            {"val": (X_val, y_val), "val-shifted": (shifted, y_val)},
            {"val-shifted": "val"},
        )
    if name == "phantoms":
        common = {"image_size": 28, "contrast": 0.5, "noise": 0.1}
        X, y = _phantoms(2000, 0, **common)
        test = _phantoms(1000, 1, **common)
        shifted = _phantoms(1000, 1, **{**common, "contrast": 0.35, "noise": 0.2})
        return Task(
            "phantoms",
            "lesion phantoms 28 px, 50% positive: train 2000 (contrast 0.5, noise "
            "0.1); test 1000 as train, and the same 1000 with contrast 0.35 and "
            "noise 0.2",
            X,
            y,
            {"test": test, "test-shifted": shifted},
            {"test-shifted": "test"},
        )
    if name == "phantoms-rgb":
        common = {
            "image_size": 28,
            "n_channels": 3,
            "lesion_fraction": 0.25,
            "lesion_radius": (1.5, 3.0),
            "contrast": 0.4,
            "noise": 0.05,
        }
        X, y = _phantoms(2000, 10, **common)
        test = _phantoms(1000, 11, **common)
        shifted = _phantoms(1000, 11, **{**common, "contrast": 0.3, "noise": 0.12})
        return Task(
            "phantoms-rgb",
            "RGB lesion phantoms 28 px, 25% positive, small lesions (radius "
            "1.5-3): train 2000 (contrast 0.4, noise 0.05); test 1000 as train, "
            "and the same 1000 with contrast 0.3 and noise 0.12",
            X,
            y,
            {"test": test, "test-shifted": shifted},
            {"test-shifted": "test"},
        )
    raise ValueError(f"unknown task {name!r}")


# --- measuring ----------------------------------------------------------------


class CpuMeter:
    """Wall time, this process's CPU time and the CPU share others used meanwhile."""

    def __enter__(self) -> CpuMeter:
        self._wall = time.perf_counter()
        self._own = self._own_cpu()
        self._busy = self._machine_busy()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = self._own_cpu() - self._own
        busy = self._machine_busy()
        self.foreign_share = float("nan")
        if busy is not None and self._busy is not None and self.wall_s > 0:
            foreign = (busy - self._busy) - self.cpu_s
            self.foreign_share = max(
                0.0, foreign / (self.wall_s * (os.cpu_count() or 1))
            )

    @staticmethod
    def _own_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    @staticmethod
    def _machine_busy() -> float | None:
        try:
            with open("/proc/stat") as handle:
                fields = handle.readline().split()[1:]
        except OSError:
            return None
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def score(model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The metrics of METRICS on one evaluation set (positive class: label 1)."""
    start = time.perf_counter()
    proba = model.predict_proba(X)
    prediction = model.predict(X)
    elapsed = time.perf_counter() - start
    positive = proba[:, list(model.classes_).index(1)]
    return {
        "auc": roc_auc_score(y, positive),
        "acc": accuracy_score(y, prediction),
        "sensitivity": sensitivity_score(y, prediction),
        "specificity": specificity_score(y, prediction),
        "balanced_accuracy": balanced_accuracy_score(y, prediction),
        "ece": expected_calibration_error(y, proba, n_bins=15),
        "log_loss": log_loss(y, proba, labels=model.classes_),
        "predict_s": elapsed,
    }


def _classifiers(model: BaseEstimator) -> list[MedicalCNNClassifier]:
    """The fitted MedicalCNNClassifier(s) inside a model (members of an ensemble)."""
    if isinstance(model, MedicalCNNClassifier):
        return [model]
    if isinstance(model, VotingClassifier):
        return list(model.estimators_)
    if isinstance(model, TunedThresholdClassifierCV):
        return _classifiers(model.estimator_)
    return []


def _variant_targets(model: BaseEstimator) -> list[MedicalCNNClassifier]:
    """The classifiers a post-hoc variant changes."""
    if isinstance(model, MedicalCNNClassifier | VotingClassifier):
        return _classifiers(model)
    if isinstance(model, TunedThresholdClassifierCV) and (
        model.refit or _single_split(model)
    ):
        return _classifiers(model)
    return []


def _single_split(model: TunedThresholdClassifierCV) -> bool:
    """Whether the inner model was fitted on one reproducible shuffle split."""
    return isinstance(model.cv, float) and isinstance(model.random_state, int)


def _fit_data(
    model: BaseEstimator, X: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The data the classifiers inside ``model`` were fitted on.

    TunedThresholdClassifierCV(cv=float, refit=False) fits its estimator on the
    training part of one StratifiedShuffleSplit. Variants keep the threshold
    the wrapper tuned.
    """
    if isinstance(model, TunedThresholdClassifierCV) and not model.refit:
        split = StratifiedShuffleSplit(
            n_splits=1, test_size=model.cv, random_state=model.random_state
        )
        train, _ = next(split.split(X, y))
        return X[train], y[train]
    return X, y


def apply_variant(
    model: BaseEstimator, variant: dict[str, Any], X: np.ndarray, y: np.ndarray
) -> Callable[[], None]:
    """Set a post-hoc variant on every classifier of ``model``; return an undo.

    ``X`` and ``y`` are the data the classifiers were fitted on; a refitted
    temperature uses each classifier's own held-out split of them (the private
    hook the fit uses, as in eval_calibration_tta.py).
    """
    saved = []
    X, y = _fit_data(model, X, y)
    images = X[..., None] if X.ndim == 3 else X
    for clf in _variant_targets(model):
        saved.append((clf, clf.tta, clf.temperature_, vars(clf).get("tta_")))
        clf.set_params(tta=variant["tta"])
        if variant["temperature"] == "one":
            clf.temperature_ = 1.0
        else:
            valid_index = getattr(clf, "_validation_index", None)
            if clf.calibration != "temperature" or valid_index is None:
                raise ValueError("variant needs calibration='temperature'")
            encoded = LabelEncoder().fit(clf.classes_).transform(y)
            clf._fit_calibration(images, encoded, valid_index)

    def undo() -> None:
        for clf, tta, temperature, chosen in saved:
            clf.set_params(tta=tta)
            clf.temperature_ = temperature
            clf.tta_ = chosen  # _fit_calibration records the variant's tta

    return undo


def fit_details(model: BaseEstimator) -> dict[str, Any]:
    """Epochs, best epochs and temperatures of the fitted classifier(s)."""
    classifiers = _classifiers(model)
    details: dict[str, Any] = {
        "n_epochs": [int(c.n_epochs_) for c in classifiers],
        "best_epoch": [int(c.best_epoch_) for c in classifiers],
        "temperature": [float(c.temperature_) for c in classifiers],
    }
    if isinstance(model, TunedThresholdClassifierCV):
        details["threshold"] = float(model.best_threshold_)
    return details


# --- the protocol -------------------------------------------------------------


def run_fit(
    task: Task,
    config_name: str,
    config: Config,
    seed: int,
    split: str,
    X_fit: np.ndarray,
    y_fit: np.ndarray,
    eval_sets: dict[str, tuple[np.ndarray, np.ndarray]],
    overrides: dict[str, Any],
) -> list[dict[str, Any]]:
    """Fit one estimator and score it (and its variants) on ``eval_sets``."""
    model = build(config, seed, overrides)
    with CpuMeter() as meter:
        model.fit(X_fit, y_fit)
    common = {
        "task": task.name,
        "config": config_name,
        "seed": seed,
        "split": split,
        "fit_s": meter.wall_s,
        "fit_cpu_s": meter.cpu_s,
        "foreign_cpu_share": meter.foreign_share,
        "n_fit": len(y_fit),
        **fit_details(model),
    }
    rows = []
    # variants need the classifiers fitted on X_fit itself (not on a subset)
    variants = config.variants if _variant_targets(model) else ()
    for variant_name in ("", *variants):
        undo = None
        if variant_name:
            undo = apply_variant(model, VARIANTS[variant_name], X_fit, y_fit)
        try:
            for set_name, (X_eval, y_eval) in eval_sets.items():
                rows.append(
                    {
                        **common,
                        "variant": variant_name,
                        "eval_set": set_name,
                        **score(model, X_eval, y_eval),
                    }
                )
        finally:
            if undo is not None:
                undo()
    return rows


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["task"], row["config"], row["seed"], row["split"])


def summarise(rows: list[dict[str, Any]], shifted: dict[str, str]) -> list[dict]:
    """Mean, std (ddof=1) and seed spread per task, config, variant and set."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        kind = "cv" if row["split"].startswith("cv") else row["eval_set"]
        groups.setdefault(
            (row["task"], row["config"], row["variant"], kind), []
        ).append(row)
    summaries = []
    for (task, config, variant, kind), members in groups.items():
        seeds = sorted({row["seed"] for row in members})
        entry: dict[str, Any] = {
            "task": task,
            "config": config,
            "variant": variant,
            "set": kind,
            "n_seeds": len(seeds),
            "n_rows": len(members),
            "fit_s": float(np.mean([row["fit_s"] for row in members])),
            "fit_cpu_s": float(np.mean([row["fit_cpu_s"] for row in members])),
            "foreign_cpu_share": float(
                np.nanmean([row["foreign_cpu_share"] for row in members])
            ),
            "n_epochs": float(np.mean([np.mean(row["n_epochs"]) for row in members])),
        }
        for metric in METRICS:
            values = np.array([row[metric] for row in members], dtype=float)
            per_seed = np.array(
                [
                    np.mean([row[metric] for row in members if row["seed"] == seed])
                    for seed in seeds
                ]
            )
            entry[metric] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "seed_std": float(per_seed.std(ddof=1)) if len(seeds) > 1 else 0.0,
                "seed_range": float(per_seed.max() - per_seed.min()),
                "per_seed": [float(v) for v in per_seed],
            }
        summaries.append(entry)
    # the loss under shift, per seed
    by_key = {(s["task"], s["config"], s["variant"], s["set"]): s for s in summaries}
    for entry in summaries:
        reference = shifted.get(entry["set"])
        base = by_key.get((entry["task"], entry["config"], entry["variant"], reference))
        if base is None:
            continue
        for metric in ("auc", "acc", "balanced_accuracy"):
            drop = np.subtract(base[metric]["per_seed"], entry[metric]["per_seed"])
            entry[metric]["drop"] = float(drop.mean())
            entry[metric]["drop_std"] = (
                float(drop.std(ddof=1)) if len(drop) > 1 else 0.0
            )
    return summaries


def _cell(stats: dict[str, Any]) -> str:
    return f"{stats['mean']:.4f}±{stats['std']:.4f}"


def print_summary(summaries: list[dict], description: str) -> None:
    """Print one table per evaluation set."""
    print(f"\n{description}")
    sets = []
    for entry in summaries:
        if entry["set"] not in sets:
            sets.append(entry["set"])
    for set_name in sets:
        entries = [e for e in summaries if e["set"] == set_name]
        label = "5-fold CV on train" if set_name == "cv" else set_name
        print(
            f"\n== {label} (mean±std over folds and seeds; seed spread = "
            "std [range] of the per-seed ACC means)"
        )
        header = (
            f"{'config':<18}{'variant':<17}{'seeds':>5}{'AUC':>16}{'ACC':>16}"
            f"{'sens':>16}{'spec':>16}{'bal.acc':>16}{'ECE':>9}{'ACC seed spread':>20}"
            f"{'fit s':>8}{'cpu s':>8}{'ep':>6}"
        )
        print(header)
        for e in entries:
            spread = f"{e['acc']['seed_std']:.4f} [{e['acc']['seed_range']:.4f}]"
            line = (
                f"{e['config']:<18}{e['variant'] or '(as fitted)':<17}{e['n_seeds']:>5}"
                f"{_cell(e['auc']):>16}{_cell(e['acc']):>16}"
                f"{_cell(e['sensitivity']):>16}{_cell(e['specificity']):>16}"
                f"{_cell(e['balanced_accuracy']):>16}{e['ece']['mean']:>9.4f}"
                f"{spread:>20}{e['fit_s']:>8.1f}{e['fit_cpu_s']:>8.1f}"
                f"{e['n_epochs']:>6.1f}"
            )
            if "drop" in e["acc"]:
                line += (
                    f"   drop AUC {e['auc']['drop']:+.4f} ACC {e['acc']['drop']:+.4f} "
                    f"bal.acc {e['balanced_accuracy']['drop']:+.4f}"
                )
            print(line)


def _environment(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "arguments": vars(args),
        "sk_medcnn": __version__,
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }


def save(path: Path, args: argparse.Namespace, task: Task, rows: list[dict]) -> None:
    """Write all rows and their summary to ``path`` atomically."""
    document = {
        "environment": _environment(args),
        "task": {"name": task.name, "description": task.description},
        "configs": {
            name: {
                "description": CONFIGS[name].description,
                "kind": CONFIGS[name].kind,
                "params": {
                    k: repr(v) if callable(v) else v
                    for k, v in CONFIGS[name].params.items()
                },
                "variants": {v: VARIANTS[v] for v in CONFIGS[name].variants},
            }
            for name in sorted({row["config"] for row in rows})
        },
        "rows": rows,
        "summary": summarise(rows, task.shifted),
    }
    with atomic_open(path) as handle:
        json.dump(document, handle, indent=1, default=str)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:]),
    )
    parser.add_argument(
        "--task", default="pneumonia", choices=("pneumonia", "phantoms", "phantoms-rgb")
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["current", "defaults"],
        help="names from --list",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5, help="CV folds")
    parser.add_argument(
        "--only-folds",
        type=int,
        nargs="+",
        default=None,
        help="run these folds only (0-based), e.g. 0 to screen",
    )
    parser.add_argument(
        "--no-cv",
        action="store_true",
        help="skip cross-validation; evaluation sets only",
    )
    parser.add_argument(
        "--no-eval-sets",
        action="store_true",
        help="skip the fits on the whole training split",
    )
    parser.add_argument(
        "--screen",
        action="store_true",
        help="screening: --seeds 0 --only-folds 0 --no-eval-sets",
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="override every configuration's max_epochs",
    )
    parser.add_argument(
        "--n-members",
        type=int,
        default=None,
        help="override the recipes' number of members",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="write rows and summary here after every fit",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the rows already in --json and skip their fits",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: tiny phantoms, 1 epoch, 2 folds, 1 seed",
    )
    parser.add_argument("--list", action="store_true", help="list the configurations")
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="print the summary of the rows in --json; fit nothing",
    )
    args = parser.parse_args(argv)
    if args.screen:
        args.seeds, args.only_folds, args.no_eval_sets = [0], [0], True
    if args.quick:
        args.seeds = args.seeds[:1]
        args.folds = 2
        args.max_epochs = 1
        args.n_members = 2
        if args.configs == parser.get_default("configs"):
            args.configs = ["current", "defaults", "recipe"]
    unknown = [name for name in args.configs if name not in CONFIGS and name != "all"]
    if unknown:
        parser.error(f"unknown configs {unknown}; --list shows them")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.list:
        for name, config in CONFIGS.items():
            print(f"{name:<18} {config.description}")
        return {}
    if args.summary_only:
        if args.json is None or not args.json.exists():
            sys.exit("--summary-only needs an existing --json file")
        document = json.loads(args.json.read_text())
        rows = [
            r
            for r in document["rows"]
            if r["config"] in args.configs or args.configs == ["all"]
        ]
        shifted = {"val-shifted": "val", "test-shifted": "test"}
        summaries = summarise(rows, shifted)
        print_summary(summaries, document["task"]["description"])
        return {"rows": rows, "summary": summaries, "task": document["task"]["name"]}
    torch.set_num_threads(args.threads)
    task = load_task(args.task, quick=args.quick)
    overrides: dict[str, Any] = {}
    if args.max_epochs is not None:
        overrides["member_params"] = {"max_epochs": args.max_epochs}
    if args.quick:
        overrides.setdefault("member_params", {}).update(
            {"device": "cpu", "batch_size": 16}
        )
    if args.n_members is not None:
        overrides["n_members"] = args.n_members

    rows: list[dict[str, Any]] = []
    if args.resume and args.json is not None and args.json.exists():
        rows = json.loads(args.json.read_text())["rows"]
        print(f"resuming: {len(rows)} rows from {args.json}", flush=True)
    done = {_key(row) for row in rows}

    folds = list(
        StratifiedKFold(args.folds, shuffle=True, random_state=FOLD_SEED).split(
            np.zeros(len(task.y)), task.y
        )
    )
    fold_ids = range(args.folds) if args.only_folds is None else args.only_folds
    print(
        f"{task.description}\nconfigs {args.configs}, seeds {args.seeds}, "
        f"{torch.get_num_threads()} torch threads",
        flush=True,
    )
    for name in args.configs:
        config = CONFIGS[name]
        for seed in args.seeds:
            jobs = []
            if not args.no_cv:
                for fold in fold_ids:
                    train, test = folds[fold]
                    jobs.append(
                        (
                            f"cv{fold}",
                            task.X[train],
                            task.y[train],
                            {"cv": (task.X[test], task.y[test])},
                        )
                    )
            if not args.no_eval_sets:
                jobs.append(("full", task.X, task.y, task.eval_sets))
            for split, X_fit, y_fit, eval_sets in jobs:
                key = (task.name, name, seed, split)
                if key in done:
                    continue
                new = run_fit(
                    task, name, config, seed, split, X_fit, y_fit, eval_sets, overrides
                )
                rows.extend(new)
                done.add(key)
                first = new[0]
                print(
                    f"{name} seed {seed} {split}: "
                    + ", ".join(
                        f"{r['eval_set']} AUC {r['auc']:.4f} ACC {r['acc']:.4f}"
                        for r in new
                        if r["variant"] == ""
                    )
                    + f"; fit {first['fit_s']:.1f} s (cpu {first['fit_cpu_s']:.1f} s, "
                    f"others {first['foreign_cpu_share']:.0%}), epochs "
                    f"{first['n_epochs']}",
                    flush=True,
                )
                if args.json is not None:
                    save(args.json, args, task, rows)
    summaries = summarise(rows, task.shifted)
    print_summary(summaries, task.description)
    return {"rows": rows, "summary": summaries, "task": task.name}


if __name__ == "__main__":
    main()
