"""Score candidate defaults under acquisition shifts, on subsets, on three data sets.

Evidence for the defaults of ``MedicalCNNClassifier()`` chosen for robustness
rather than for the in-distribution score (issue 20, item 4). For every data
set, training subset, configuration and seed, one fit on the subset of the
official *train* split is scored on the official *validation* split and on
shifted copies of it (the official test splits are never read):

================  ==========================================================
shift             what is done to every validation image (uint8, 0-255)
================  ==========================================================
``none``          nothing (in distribution)
``contrast``      deviations from the image mean scaled by 0.6
``gamma-dark``    intensities (as fractions of 255) raised to the power 1.5
``gamma-light``   ... to the power 1 / 1.5
``bright``        + 10% of the range (25.5), clipped
``dark``          - 10% of the range, clipped
``blur``          Gaussian blur, sigma 0.8 px (each channel; volumes in 3-D)
``noise``         Gaussian noise, standard deviation 5% of the range
``lowres``        down-sampled to half the size (anti-aliased) and back up
                  (linear; volumes in 3-D): a coarser detector
``scanner``       contrast 0.6 and noise 5% together (as
                  ``eval_defaults.py``'s ``val-shifted``)
``prevalence``    the images unchanged, the classes reweighted (sample
                  weights) to equal prevalence: for PneumoniaMNIST 50%
                  pneumonia against 74% in train (the official test split
                  has 62.5%). A class-constant weight leaves a binary AUC
                  unchanged, so there this row tests the accuracy.
================  ==========================================================

Every shift is deterministic (noise seeded with 0). Data sets:
PneumoniaMNIST (binary, gray), RetinaMNIST (5 grades, RGB) and VesselMNIST3D
(binary, 28x28x28 volumes; blur and resolution shifts act in 3-D, and the
candidates' affine maps shift along the depth too). Subsets of the training
split: ``all``, ``10%``, ``300`` and ``600`` images, stratified and drawn
with the seed (so the spread over seeds includes the draw of the subset;
every configuration sees the same subset for a seed). Metrics: AUC (binary:
of the positive class; multi-class: macro one-vs-rest), accuracy and
balanced accuracy. The table
gives mean and standard deviation (ddof=1) over seeds, and the fit time
(wall clock, and in brackets this process's CPU seconds, which other work on
the machine changes less; the share of the CPU other processes used meanwhile
is saved in the JSON).

``--evaluate rest`` scores each fit on the training split's images its subset
left out instead (RetinaMNIST at 300 images: 780 of them, against 120 in the
validation split), an evaluation set disjoint from the fit that differs from
seed to seed; its rows say ``"evaluated_on": "rest"`` and go in a file of their
own (``--table`` refuses to mix the two). ``--evaluate cv`` scores the subset
``all`` by cross-validation: the training and validation splits pooled, cut
into ``CV_FOLDS`` (10) stratified folds drawn with the seed, one fit per fold
on the other nine (as many images as the training split for RetinaMNIST
and PneumoniaMNIST, whose validation split is a tenth of the two) scored on
the fold, so every pooled
image is scored once per seed (RetinaMNIST: 1,200 against 120). Its rows say
``"evaluated_on": "cv"`` and carry their ``fold``; pairs are made by seed and
fold, and their standard errors take the folds' shared training images into
account (Nadeau and Bengio's correction, :func:`_standard_error`).

Every finished fit is saved at once (atomically) with ``--json``; ``--resume``
skips the fits already there::

    nice -n 15 python benchmarks/eval_generalisation.py --threads 1 \\
        --datasets pneumonia retina --subsets all 10% 300 --seeds 0 1 \\
        --json reports/eval_generalisation.json --resume
    python benchmarks/eval_generalisation.py --table reports/eval_generalisation.json
    python benchmarks/eval_generalisation.py --table reports/eval_generalisation.json \\
        --versus moderate strong   # strong minus moderate, paired by seed
    python benchmarks/eval_generalisation.py --quick   # smoke test on phantoms
"""

from __future__ import annotations

import argparse
import ast
import functools
import itertools
import json
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import numpy as np
import torch
from scipy import ndimage
from skimage.transform import resize
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.utils.class_weight import compute_sample_weight

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.eval_defaults import CpuMeter
from sk_medcnn import MedicalCNNClassifier, __version__
from sk_medcnn.augmentation import RandomAffine, RandomIntensity, RandomNoise
from sk_medcnn.datasets import load_medmnist, make_lesion_phantoms
from sk_medcnn.preprocessing import IntensityNormalizer
from sk_medcnn.recipes import make_recipe
from sk_medcnn.utils._files import atomic_open

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {
    "pneumonia": DATA / "pneumoniamnist_28_trainval.npz",
    "retina": DATA / "retinamnist_28_trainval.npz",
    "vessel": DATA / "vesselmnist3d_28_trainval.npz",
}
#: name -> (a DATASETS name, a class label, its share): a real data set whose
#: training split keeps only enough images of that class (a seeded draw, the
#: same for every run) for it to make the share of the training images; the
#: validation split is left as it is. They test the class-weight rule
#: (``class_weight="auto"``) on images with a rare class: PneumoniaMNIST's
#: pneumonia thinned to 10% of 1,349 training images (135 kept; the rule
#: weighs them) and to 25% of 1,619 (405 kept; the rule does not).
RARE = {
    "pneumonia_rare10": ("pneumonia", 1, 0.10),
    "pneumonia_rare25": ("pneumonia", 1, 0.25),
}
#: spatial dimensions of each data set's images (the others are 2)
SPATIAL_DIMS = {"vessel": 3}
SUBSETS = ("all", "10%", "100", "200", "300", "600")
#: folds of ``--evaluate cv``: nine tenths of the train + validation splits
#: are as many images as the training split for PneumoniaMNIST and
#: RetinaMNIST (VesselMNIST3D: 1,374 against 1,335)
CV_FOLDS = 10
#: what ``--evaluate`` can score on
EVALUATIONS = ("validation", "rest", "cv")
METRICS = ("auc", "acc", "balanced_accuracy")


# --- shifts -------------------------------------------------------------------


def _as_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def shift_contrast(images: np.ndarray, factor: float = 0.6) -> np.ndarray:
    """Scale each image's deviations from its mean by ``factor`` (< 1: flatter)."""
    values = images.astype(np.float64)
    mean = values.mean(axis=tuple(range(1, values.ndim)), keepdims=True)
    return _as_uint8(mean + factor * (values - mean))


def shift_gamma(images: np.ndarray, gamma: float = 1.5) -> np.ndarray:
    """Raise intensities, as fractions of 255, to ``gamma`` (> 1: darker midtones)."""
    return _as_uint8(255.0 * (images.astype(np.float64) / 255.0) ** gamma)


def shift_brightness(images: np.ndarray, offset: float = 0.1) -> np.ndarray:
    """Add ``offset`` times the range (255) to every pixel, clipped to 0-255."""
    return _as_uint8(images.astype(np.float64) + offset * 255.0)


def shift_blur(
    images: np.ndarray, sigma: float = 0.8, spatial_dims: int = 2
) -> np.ndarray:
    """Gaussian blur of every image and channel, ``sigma`` in pixels (voxels)."""
    sigmas = [0.0] * images.ndim  # (n, [depth,] height, width[, channels])
    sigmas[1 : 1 + spatial_dims] = [sigma] * spatial_dims
    return _as_uint8(ndimage.gaussian_filter(images.astype(np.float64), sigmas))


def shift_noise(images: np.ndarray, std: float = 0.05, seed: int = 0) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``std`` times the range (255)."""
    rng = np.random.default_rng(seed)
    values = images.astype(np.float64)
    return _as_uint8(values + rng.normal(0.0, std * 255.0, values.shape))


def shift_resolution(
    images: np.ndarray, factor: float = 0.5, spatial_dims: int = 2
) -> np.ndarray:
    """Down-sample by ``factor`` (anti-aliased), then up-sample back (linear)."""
    small = tuple(
        max(1, round(size * factor)) for size in images.shape[1 : 1 + spatial_dims]
    )
    out = np.empty(images.shape, dtype=np.float64)
    for i, image in enumerate(images.astype(np.float64)):
        low = resize(
            image, small + image.shape[spatial_dims:], order=1, anti_aliasing=True
        )
        out[i] = resize(low, image.shape, order=1, anti_aliasing=False)
    return _as_uint8(out)


def shift_scanner(images: np.ndarray) -> np.ndarray:
    """Contrast 0.6 and noise of 5% together (another scanner)."""
    return shift_noise(shift_contrast(images, 0.6), 0.05)


#: name -> function of the images; "prevalence" reweights instead (see score).
#: Blur and resolution act on the spatial axes: ``shifts(3)`` gives the volumes'.
SHIFTS: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "none": lambda images: images,
    "contrast": shift_contrast,
    "gamma-dark": lambda images: shift_gamma(images, 1.5),
    "gamma-light": lambda images: shift_gamma(images, 1 / 1.5),
    "bright": lambda images: shift_brightness(images, 0.1),
    "dark": lambda images: shift_brightness(images, -0.1),
    "blur": shift_blur,
    "noise": shift_noise,
    "lowres": shift_resolution,
    "scanner": shift_scanner,
    "prevalence": None,
}


def shifts(
    spatial_dims: int = 2,
) -> dict[str, Callable[[np.ndarray], np.ndarray] | None]:
    """:data:`SHIFTS` for images (2) or volumes (3, blurred and resampled in 3-D)."""
    if spatial_dims == 2:
        return SHIFTS
    return {
        **SHIFTS,
        "blur": lambda images: shift_blur(images, spatial_dims=spatial_dims),
        "lowres": lambda images: shift_resolution(images, spatial_dims=spatial_dims),
    }


# --- candidates ---------------------------------------------------------------


def _affine(spatial_dims: int = 2) -> Any:
    # the recipe's geometric part: small maps on half the images (volumes: and
    # shifts along the depth)
    return RandomAffine(
        translate=(0.05,) * spatial_dims, degrees=10.0, scale=(0.95, 1.05), p=0.5
    )


def _intensity_pipeline(
    spatial_dims: int,
    strength: tuple[float, float, float],
    noise: float | None,
    intensity_p: float = 1.0,
) -> Any:
    """The affine map, then ``RandomIntensity(*strength)`` and, with ``noise``,
    ``RandomNoise(std=noise, p=0.5)``: the shape every candidate shares."""
    brightness, contrast, gamma = strength
    steps = [
        _affine(spatial_dims),
        RandomIntensity(
            brightness=brightness, contrast=contrast, gamma=gamma, p=intensity_p
        ),
    ]
    if noise is not None:
        steps.append(RandomNoise(std=noise, p=0.5))
    return make_pipeline(*steps)


def _recipe_aug(spatial_dims: int = 2) -> Any:
    # sk_medcnn.recipes._radiograph_augmentation
    return _intensity_pipeline(spatial_dims, (0.1, 0.2, 0.2), None)


def _strong(spatial_dims: int = 2) -> Any:
    # wider intensity changes and noise on half the images; no flips (laterality)
    return _intensity_pipeline(spatial_dims, (0.2, 0.4, 0.4), 0.04)


def _moderate(spatial_dims: int = 2) -> Any:
    # half-way between recipe_aug's and strong's intensity changes, half the noise
    return _intensity_pipeline(spatial_dims, (0.15, 0.3, 0.3), 0.02)


def _recipe_noise(spatial_dims: int = 2) -> Any:
    return _intensity_pipeline(spatial_dims, (0.1, 0.2, 0.2), 0.04)


def _strong_half(spatial_dims: int = 2) -> Any:
    return _intensity_pipeline(spatial_dims, (0.2, 0.4, 0.4), 0.04, intensity_p=0.5)


#: What every configuration but those in :data:`UNPINNED` trains with unless
#: it says otherwise: the classifier's defaults before class_weight="auto" and
#: lr_schedule="auto" (2026-12-07), which every row of those configurations
#: in the results file was fit with. The recipes' members are not pinned: they
#: take the defaults of the code that runs them (on the 2-D sets "auto"
#: resolves to these; on VesselMNIST3D to balanced weights with one-cycle);
#: their thresholds are (:data:`RECIPE_THRESHOLDS`).
PINNED: dict[str, Any] = {"class_weight": None, "lr_schedule": "cosine"}

#: configurations that take the classifier's defaults as they are
UNPINNED = frozenset({"defaults", "defaults_bn"})

#: name -> (description, MedicalCNNClassifier parameters; callables are
#: augmentation factories, called once per fit with the data's spatial dims;
#: PINNED fills in what a configuration leaves out, but for ``defaults``)
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "defaults": (
        "MedicalCNNClassifier() as it is: moderate augmentation ('auto'); "
        "class_weight='auto' and lr_schedule='auto' (balanced weights with a "
        "one-cycle warm-up for two classes with the rarer under 20%, else "
        "unweighted with cosine annealing)",
        {},
    ),
    "no_aug": (
        "no augmentation: MedicalCNNClassifier(augmentation=None), the former defaults",
        {"augmentation": None},
    ),
    "affine": (
        "+ RandomAffine(shift 5%, 10 deg, zoom 5%, p=0.5)",
        {"augmentation": _affine},
    ),
    "recipe_aug": (
        "+ the recipe's augmentation: affine as above, then RandomIntensity"
        "(brightness 0.1, contrast 0.2, gamma 0.2)",
        {"augmentation": _recipe_aug},
    ),
    "strong": (
        "+ affine, RandomIntensity(0.2, contrast 0.4, gamma 0.4), "
        "RandomNoise(4%, p=0.5): the default before 'moderate' (for volumes "
        "until 2026-12-07)",
        {"augmentation": _strong},
    ),
    "moderate": (
        "+ affine, RandomIntensity(0.15, contrast 0.3, gamma 0.3), "
        "RandomNoise(2%, p=0.5): between recipe_aug and strong; what "
        "augmentation='auto', the default, gives images and volumes (here "
        "unweighted with cosine annealing, as the defaults give images)",
        {"augmentation": _moderate},
    ),
    "recipe_noise": (
        "recipe_aug, then RandomNoise(4%, p=0.5)",
        {"augmentation": _recipe_noise},
    ),
    "strong_half": (
        "strong with the intensity changes on half the images (p=0.5)",
        {"augmentation": _strong_half},
    ),
    "strong_e30": (
        "strong over 30 epochs",
        {"augmentation": _strong, "max_epochs": 30},
    ),
    # the training length and step size around the default (does moderate
    # under-train small data sets?)
    "moderate_e40": (
        "moderate over 40 epochs",
        {"augmentation": _moderate, "max_epochs": 40},
    ),
    "no_aug_e40": (
        "no augmentation over 40 epochs",
        {"augmentation": None, "max_epochs": 40},
    ),
    "moderate_lr3": (
        "moderate with lr=3e-3",
        {"augmentation": _moderate, "lr": 3e-3},
    ),
    "moderate_bs16": (
        "moderate with batches of 16 (twice the steps)",
        {"augmentation": _moderate, "batch_size": 16},
    ),
    # the network's head on volumes, whose default is global max pooling
    "moderate_flat": (
        "moderate with the flattened head (architecture_params="
        "{'global_pool': None}), the default for images",
        {"augmentation": _moderate, "architecture_params": {"global_pool": None}},
    ),
    "moderate_gavg": (
        "moderate with a global average pooling head (architecture_params="
        "{'global_pool': 'avg'})",
        {"augmentation": _moderate, "architecture_params": {"global_pool": "avg"}},
    ),
    # class weights, for VesselMNIST3D's 11% aneurysms
    "moderate_bal": (
        "moderate with class_weight='balanced'",
        {"augmentation": _moderate, "class_weight": "balanced"},
    ),
    "moderate_bal_onecycle": (
        "moderate with class_weight='balanced' and lr_schedule='onecycle' (a "
        "warm-up from lr/25 over 30% of the epochs)",
        {
            "augmentation": _moderate,
            "class_weight": "balanced",
            "lr_schedule": "onecycle",
        },
    ),
    "moderate_onecycle": (
        "moderate with lr_schedule='onecycle' (the warm-up alone, unweighted)",
        {"augmentation": _moderate, "lr_schedule": "onecycle"},
    ),
    # batch normalisation in the reference CNN, on top of the defaults as they
    # are (not pinned: class_weight and lr_schedule stay "auto")
    "defaults_bn": (
        "MedicalCNNClassifier() with batch normalisation after each convolution "
        "(architecture_params={'batch_norm': True}; volumes keep their global "
        "max-pooling head)",
        {"architecture_params": {"batch_norm": True}},
    ),
    # regularisation on top of the defaults as they are (a seventh round)
    "defaults_drop": (
        "MedicalCNNClassifier() with dropout 0.5 before the output layer "
        "(architecture_params={'dropout': 0.5})",
        {"architecture_params": {"dropout": 0.5}},
    ),
    "defaults_w16": (
        "MedicalCNNClassifier() with half the filters (architecture_params="
        "{'width': 16})",
        {"architecture_params": {"width": 16}},
    ),
    "defaults_adamw": (
        "MedicalCNNClassifier() with decoupled weight decay "
        "(optimizer='adamw', weight_decay=0.05)",
        {"optimizer": "adamw", "weight_decay": 0.05},
    ),
    "defaults_l2": (
        "MedicalCNNClassifier() with an L2 penalty in Adam (weight_decay=1e-4)",
        {"weight_decay": 1e-4},
    ),
    "defaults_gmax": (
        "MedicalCNNClassifier() with the global max-pooling head on images too "
        "(architecture_params={'global_pool': 'max'})",
        {"architecture_params": {"global_pool": "max"}},
    ),
    "moderate_no_noise": (
        "moderate without its RandomNoise",
        {
            "augmentation": lambda spatial_dims=2: _intensity_pipeline(
                spatial_dims, (0.15, 0.3, 0.3), None
            )
        },
    ),
}


#: name -> (description, a CONFIGS name): the configuration after a per-image
#: z-score (IntensityNormalizer(per_image=True)) in a Pipeline, which undoes
#: contrast and brightness shifts by construction
STANDARDISED: dict[str, tuple[str, str]] = {
    "zscore_moderate": (
        "IntensityNormalizer(per_image=True) (each image's z-score), then moderate",
        "moderate",
    ),
    "zscore_no_aug": (
        "IntensityNormalizer(per_image=True) (each image's z-score), then no_aug",
        "no_aug",
    ),
}


#: name -> (description, the recipe's make_recipe name): ensembles, slower
RECIPES: dict[str, tuple[str, str]] = {
    "recipe_general": (
        "make_recipe('general', threshold='auto') with five plain members "
        "(PLAIN_MEMBERS): 5 members with the defaults, soft vote, the threshold "
        "tuned for balanced accuracy on two classes (arg-max on more); the "
        "general recipe until its threshold change (2026-12-07)",
        "general",
    ),
    "recipe_hedge": (
        "recipe_general with members of five augmentations, one each: affine, "
        "recipe_aug, recipe_noise, moderate, strong",
        "general",
    ),
    "recipe_argmax": (
        "recipe_general without the tuned threshold (threshold='argmax': one "
        "fit of the ensemble on all the data, the most probable class); "
        "make_recipe('general') between its threshold change and its "
        "batch-normalised member (both 2026-12-07)",
        "general",
    ),
    "recipe_mixed": (
        "make_recipe('general') as it is: recipe_argmax with batch "
        "normalisation in its fifth member (the others' seeds unchanged)",
        "general",
    ),
}

#: each recipe's threshold (make_recipe's ``threshold``), pinned so that the
#: saved rows keep their meaning when a recipe's own default changes
RECIPE_THRESHOLDS: dict[str, str] = {
    "recipe_general": "auto",
    "recipe_hedge": "auto",
    "recipe_argmax": "argmax",
    "recipe_mixed": "argmax",
}

#: recipes whose members all train the reference network as it is (no batch
#: normalisation), as the general recipe's did until 2026-12-07 when these
#: rows were fit: ``architecture_params=None`` in their member parameters
#: drops the recipe's network variants
PLAIN_MEMBERS = frozenset({"recipe_general", "recipe_hedge", "recipe_argmax"})

#: a recipe's members' augmentations (CONFIGS names), one per member; recipes
#: not named here train every member with the defaults
MEMBER_AUGMENTATIONS: dict[str, tuple[str, ...]] = {
    "recipe_hedge": ("affine", "recipe_aug", "recipe_noise", "moderate", "strong"),
}


#: what a run fits when --configs is not given
DEFAULT_CONFIGS = ("no_aug", "affine", "recipe_aug", "strong", "moderate", "defaults")


def build(
    name: str,
    seed: int,
    overrides: dict[str, Any] | None = None,
    spatial_dims: int = 2,
) -> Any:
    """The unfitted classifier of configuration ``name`` for ``seed``.

    ``overrides`` change classifier parameters (a recipe's members'; its
    ``n_members`` there sets a recipe's number of members).
    """
    if name in RECIPES:  # the members adapt to the data's spatial dims themselves
        member_params = dict(overrides or {})
        n_members = member_params.pop("n_members", None)
        if name in PLAIN_MEMBERS:
            member_params.setdefault("architecture_params", None)
        augmentations = MEMBER_AUGMENTATIONS.get(name)
        if augmentations is not None:
            n_members = len(augmentations) if n_members is None else n_members
        recipe = make_recipe(
            RECIPES[name][1],
            n_members=n_members,
            threshold=RECIPE_THRESHOLDS[name],
            member_params=member_params or None,
            random_state=seed,
        )
        if augmentations is not None:
            _set_member_augmentations(recipe, augmentations, spatial_dims)
        return recipe
    if name in STANDARDISED:
        return make_pipeline(
            IntensityNormalizer(per_image=True, spatial_dims=spatial_dims),
            build(STANDARDISED[name][1], seed, overrides, spatial_dims),
        )
    params = {} if name in UNPINNED else dict(PINNED)
    params.update(
        (key, value(spatial_dims) if callable(value) else value)
        for key, value in CONFIGS[name][1].items()
    )
    params.update(overrides or {})
    return MedicalCNNClassifier(**params, random_state=seed)


def _set_member_augmentations(
    recipe: Any, augmentations: Sequence[str], spatial_dims: int
) -> None:
    """Give the recipe's members these CONFIGS' augmentations, in turn.

    With more members than augmentations they start over; a recipe of one
    member (no ensemble) gets the first.
    """
    for i, member in enumerate(unfitted_members(recipe)):
        factory = CONFIGS[augmentations[i % len(augmentations)]][1]["augmentation"]
        member.set_params(
            augmentation=factory(spatial_dims) if callable(factory) else factory
        )


def unfitted_members(recipe: Any) -> list[MedicalCNNClassifier]:
    """The members of an unfitted recipe, found through its threshold wrapper
    (``estimator``); a recipe of one member is that member."""
    model = recipe
    while not isinstance(model, MedicalCNNClassifier) and not hasattr(
        model, "estimators"
    ):
        model = model.estimator
    if isinstance(model, MedicalCNNClassifier):
        return [model]
    return [member for _, member in model.estimators]


@functools.cache
def default_members(config: str, n_members: int) -> tuple[bool, ...]:
    """Which members of a recipe configuration are default networks: those
    :func:`build` gives the parameters of ``MedicalCNNClassifier()``, but
    for the seed (a batch-normalised member or another augmentation is not)."""
    defaults = MedicalCNNClassifier().get_params(deep=False)
    return tuple(
        member.get_params(deep=False) | {"random_state": None} == defaults
        for member in unfitted_members(build(config, 0, {"n_members": n_members}))
    )


# --- data ---------------------------------------------------------------------


def load(name: str, *, quick: bool = False) -> tuple[np.ndarray, ...]:
    """Train and validation images and labels of a data set."""
    if quick:
        X, y = make_lesion_phantoms(120, image_size=16, random_state=0)
        X_val, y_val = make_lesion_phantoms(60, image_size=16, random_state=1)
        return X, y, X_val, y_val
    if name in RARE:
        base, label, share = RARE[name]
        X, y, X_val, y_val = load(base)
        rows = thin(y, label, share)
        return X[rows], y[rows], X_val, y_val
    path = DATASETS[name]
    if not path.exists():
        sys.exit(f"{path} is absent; run with --quick for a smoke test.")
    X, y = load_medmnist(path, "train")
    X_val, y_val = load_medmnist(path, "val")
    return X, y, X_val, y_val


def spatial_dims_of(name: str) -> int:
    """Spatial dimensions of a data set's images (a rare variant's: its base's)."""
    base = RARE[name][0] if name in RARE else name
    return SPATIAL_DIMS.get(base, 2)


def thin(y: np.ndarray, label: Any, share: float, seed: int = 0) -> np.ndarray:
    """Row indices keeping every image but those of class ``label``, of which
    a seeded draw makes ``share`` of the rows kept (sorted)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1); got {share!r}")
    rows = np.arange(len(y))
    others = rows[y != label]
    n_kept = round(share * len(others) / (1.0 - share))
    ours = rows[y == label]
    if not 0 < n_kept <= len(ours):
        raise ValueError(
            f"share={share} needs {n_kept} images of class {label!r}; "
            f"there are {len(ours)}"
        )
    drawn = np.random.default_rng(seed).choice(ours, size=n_kept, replace=False)
    return np.sort(np.concatenate([others, drawn]))


def subset(X: np.ndarray, y: np.ndarray, which: str, seed: int) -> np.ndarray:
    """Row indices of a stratified, seeded subset of the training split."""
    rows = np.arange(len(y))
    if which == "all":
        return rows
    size = 0.1 if which == "10%" else int(which)
    if isinstance(size, int) and size >= len(y):
        return rows
    chosen, _ = train_test_split(rows, train_size=size, stratify=y, random_state=seed)
    return np.sort(chosen)


def score(
    proba: np.ndarray,
    y: np.ndarray,
    classes: np.ndarray,
    weights: np.ndarray | None,
    prediction: np.ndarray | None = None,
) -> dict[str, float]:
    """AUC (binary: positive class; else macro one-vs-rest), ACC, balanced ACC.

    ``prediction`` defaults to the most probable class (a recipe's tuned
    threshold predicts otherwise: pass its ``predict``).
    """
    if prediction is None:
        prediction = classes[np.argmax(proba, axis=1)]
    if len(classes) == 2:
        auc = roc_auc_score(y, proba[:, 1], sample_weight=weights)
    else:
        auc = roc_auc_score(
            y,
            proba,
            multi_class="ovr",
            average="macro",
            labels=classes,
            sample_weight=weights,
        )
    return {
        "auc": float(auc),
        "acc": float(accuracy_score(y, prediction, sample_weight=weights)),
        "balanced_accuracy": float(balanced_accuracy_score(y, prediction)),
    }


def run_fit(
    dataset: str,
    which: str,
    config: str,
    seed: int,
    data: tuple[np.ndarray, ...],
    overrides: dict[str, Any] | None = None,
    evaluate: str = "validation",
    fold: int | None = None,
) -> dict[str, Any]:
    """Fit one configuration on one subset and score it under every shift.

    ``--quick`` trains 2 epochs (``overrides``) on tiny uint8 phantoms.
    ``evaluate="rest"`` scores on the training split's images the subset left
    out instead of the validation split (:func:`evaluation_set`);
    ``evaluate="cv"`` fits the subset ``all`` on the pooled splits but
    ``fold`` and scores on ``fold`` (:func:`cv_split`).
    """
    if evaluate == "cv":
        if which != "all" or fold is None:
            raise ValueError(
                "evaluate='cv' cross-validates the subset 'all' and needs a fold; "
                f"got subset {which!r}, fold {fold!r}."
            )
        X_fit, y_fit, X_val, y_val = cv_split(data, seed, fold)
    else:
        X, y = data[:2]
        rows = subset(X, y, which, seed)
        X_fit, y_fit = X[rows], y[rows]
        X_val, y_val = evaluation_set(data, rows, evaluate)
    spatial_dims = spatial_dims_of(dataset)
    model = build(config, seed, overrides, spatial_dims)
    with CpuMeter() as meter:
        model.fit(X_fit, y_fit)
    result: dict[str, Any] = {
        "dataset": dataset,
        "subset": which,
        "config": config,
        "seed": seed,
        "n_fit": len(y_fit),
        "fit_s": meter.wall_s,
        "fit_cpu_s": meter.cpu_s,
        "foreign_cpu_share": meter.foreign_share,
        "scores": {},
    }
    if evaluate != "validation":  # rows scored on the validation split say nothing
        result["evaluated_on"] = evaluate
        result["n_evaluated"] = len(y_val)
    if evaluate == "cv":
        result["fold"] = fold
    balanced = compute_sample_weight("balanced", y_val)
    members = recipe_members(model) if config in RECIPES else []
    if members:
        result["member_scores"] = {}
    for shift, function in shifts(spatial_dims).items():
        images = X_val if function is None else function(X_val)
        proba = model.predict_proba(images)
        weights = balanced if shift == "prevalence" else None
        prediction = None if config not in RECIPES else model.predict(images)
        result["scores"][shift] = score(
            proba, y_val, model.classes_, weights, prediction
        )
        if members:
            each = [
                score(member.predict_proba(images), y_val, member.classes_, weights)
                for member in members
            ]
            result["member_scores"][shift] = {
                **{
                    metric: float(np.mean([e[metric] for e in each]))
                    for metric in METRICS
                },
                "auc_each": [e["auc"] for e in each],
            }
    return result


def evaluation_set(
    data: tuple[np.ndarray, ...], rows: np.ndarray, evaluate: str
) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels a fit on training ``rows`` is scored on.

    ``"validation"``: the official validation split. ``"rest"``: the training
    split's other rows, which the fit never saw: for a subset of 300 images
    of RetinaMNIST 780 images, against a validation split of 120, drawn from
    the same pool, so a verdict on the subset no longer rests on the same
    120 images in every seed.
    """
    X, y, X_val, y_val = data
    if evaluate == "validation":
        return X_val, y_val
    if evaluate != "rest":  # "cv" chooses its fit too: cv_split
        raise ValueError(f"evaluate must be 'validation' or 'rest'; got {evaluate!r}.")
    rest = np.setdiff1d(np.arange(len(y)), rows)
    if not len(rest):
        raise ValueError(
            "evaluate='rest' scores on the training images the subset left out, "
            "and this subset holds all of them: choose a smaller subset."
        )
    return X[rest], y[rest]


def cv_split(
    data: tuple[np.ndarray, ...], seed: int, fold: int, n_folds: int = CV_FOLDS
) -> tuple[np.ndarray, ...]:
    """Fit and evaluation images and labels of one fold of ``--evaluate cv``.

    The training and validation splits are pooled and cut into ``n_folds``
    stratified folds, shuffled with ``seed`` (every configuration sees the
    same folds for a seed); the fit takes the other folds, the evaluation
    ``fold``.

    Returns
    -------
    X_fit, y_fit, X_eval, y_eval : ndarray
    """
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in [0, {n_folds}); got {fold!r}.")
    X, y, X_val, y_val = data
    images = np.concatenate([X, X_val])
    labels = np.concatenate([y, y_val])
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    fit, held = list(folds.split(np.zeros(len(labels)), labels))[fold]
    return images[fit], labels[fit], images[held], labels[held]


def recipe_members(model: Any) -> list[Any]:
    """The fitted networks a recipe's predictions average (the final ones, fit
    on all the training data), found through its threshold wrappers: the
    ``estimator_`` of ``AutoThresholdClassifier``, ``TunedThresholdClassifierCV``
    or ``FixedThresholdClassifier``, then a ``VotingClassifier``'s
    ``estimators_``; a recipe of one member is that member."""
    while not hasattr(model, "estimators_") and hasattr(model, "estimator_"):
        model = model.estimator_
    return list(getattr(model, "estimators_", [model]))


# --- reporting ----------------------------------------------------------------


def _unit(row: dict[str, Any]) -> tuple[int, int | None]:
    """What pairs two configurations' fits: the seed (the subset drawn), and
    with ``--evaluate cv`` the fold."""
    return (row["seed"], row.get("fold"))


def _unit_order(unit: tuple[int, int | None]) -> tuple[int, int]:
    """A sort key for :func:`_unit`'s pairs (a fold may be None)."""
    return (unit[0], -1 if unit[1] is None else unit[1])


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["dataset"], row["subset"], row["config"], _unit(row))


def _held_share(rows: Sequence[dict[str, Any]]) -> float | None:
    """Evaluated over fitted images of cross-validated rows (all alike, or the
    largest), for :func:`_standard_error`; None for other rows."""
    shares = [r["n_evaluated"] / r["n_fit"] for r in rows if r.get("fold") is not None]
    return max(shares) if shares else None


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread over seeds for each data set, subset, shift and config."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["subset"], row["config"]), []).append(
            row
        )
    cells = []
    for (dataset, which, config), members in groups.items():
        fit_s = [m["fit_s"] for m in members]
        fit_cpu_s = [m["fit_cpu_s"] for m in members]
        for shift in members[0]["scores"]:
            cell = {
                "dataset": dataset,
                "subset": which,
                "config": config,
                "shift": shift,
                "n_seeds": len(members),
                "fit_s": float(np.mean(fit_s)),
                "fit_cpu_s": float(np.mean(fit_cpu_s)),
            }
            for metric in METRICS:
                values = [m["scores"][shift][metric] for m in members]
                cell[metric] = float(np.mean(values))
                cell[f"{metric}_sd"] = (
                    float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
                )
            cells.append(cell)
    return cells


def gaps(
    cells: list[dict[str, Any]], metric: str = "auc"
) -> dict[str, dict[str, float]]:
    """Per config: worst and mean shortfall to the best config of each cell."""
    best: dict[tuple[str, str, str], float] = {}
    for c in cells:
        key = (c["dataset"], c["subset"], c["shift"])
        best[key] = max(best.get(key, -np.inf), c[metric])
    shortfall: dict[str, list[float]] = {}
    for c in cells:
        key = (c["dataset"], c["subset"], c["shift"])
        shortfall.setdefault(c["config"], []).append(best[key] - c[metric])
    return {
        config: {
            "worst": float(np.max(values)),
            "mean": float(np.mean(values)),
            "cells_within_0.01": int(np.sum(np.asarray(values) <= 0.01)),
            "cells": len(values),
        }
        for config, values in shortfall.items()
    }


def _standard_error(values: np.ndarray, held_share: float | None = None) -> Any:
    """Standard error of the mean over the first axis (NaN for one value).

    ``held_share``: the values come from cross-validation folds (repeated
    over seeds), whose fits share most of their training images, so they are
    not independent; the variance of the mean is then Nadeau and Bengio's
    corrected estimate, ``var * (1 / n + n_evaluated / n_fit)`` (Machine
    Learning 52, 2003), instead of ``var / n``.
    """
    if len(values) < 2:
        return np.full(np.shape(values)[1:], np.nan)
    factor = 1.0 / len(values) + (held_share or 0.0)
    return np.std(values, axis=0, ddof=1) * np.sqrt(factor)


class Shortfall(NamedTuple):
    """How far one configuration trails another in one cell, paired by seed."""

    dataset: str
    subset: str
    shift: str
    leader: str | None  #: the configuration ahead; None when none is
    shortfall: float  #: mean paired difference (0 when none is ahead)
    se: float  #: its standard error over the shared seeds (NaN when none is ahead)
    seeds: int  #: seeds shared


def paired_gaps(
    rows: list[dict[str, Any]],
    metric: str = "auc",
    *,
    min_seeds: int = 3,
    margin: float = 0.01,
) -> dict[str, dict[str, Any]]:
    """Per config: its shortfall to the best other config of each cell, by seed.

    :func:`gaps` compares means over whatever seeds each configuration has,
    so a configuration run on three lucky seeds can look best in a cell
    where it is not. Here each pair of configurations in a cell (data set x
    subset x shift) is compared on the seeds both have (the same subsets
    drawn), and only when they share at least ``min_seeds``; a
    configuration's shortfall in the cell is the largest mean paired
    difference to another (0 when none is ahead). The shortfall is still a
    maximum over noisy comparisons, so it leans high.

    Parameters
    ----------
    rows : list of dict
        Saved fits (the ``rows`` of a ``--json`` file).
    metric : str, default="auc"
        A metric of every shift's scores.
    min_seeds : int, default=3
        Seeds two configurations must share to be compared in a cell; at
        least 2 (a standard error needs two).
    margin : float, default=0.01
        The shortfall the aim allows (issue 20: 0.01 AUC).

    Returns
    -------
    stats : dict
        Per configuration with any comparison: ``cells`` compared,
        ``skipped`` (cells where it has fits but shares fewer than
        ``min_seeds`` seeds with every other configuration), the ``worst``
        and ``mean`` shortfall, ``within`` (cells short by at most
        ``margin``), the ``worst_cell`` (a :class:`Shortfall`), and
        ``clearly_short``: a :class:`Shortfall` for each cell where some
        configuration leads by more than ``margin`` plus two standard errors
        of the paired differences (the largest such lead), a nominal
        criterion, not a test corrected for the many comparisons made.

    Raises
    ------
    ValueError
        If ``min_seeds`` is below 2.
    """
    if min_seeds < 2:
        raise ValueError(f"min_seeds must be >= 2; got {min_seeds}.")
    scores: dict[tuple[str, str, str], dict[str, dict[Any, float]]] = {}
    for row in rows:
        for shift, values in row["scores"].items():
            cell = scores.setdefault((row["dataset"], row["subset"], shift), {})
            cell.setdefault(row["config"], {})[_unit(row)] = values[metric]
    held_share = _held_share(rows)
    found: dict[str, list[tuple[Shortfall, Shortfall | None]]] = {}
    skipped: dict[str, int] = {}
    for (dataset, which, shift), by_config in scores.items():
        for config, own in by_config.items():
            compared = []
            for other, theirs in by_config.items():
                seeds = sorted(own.keys() & theirs.keys(), key=_unit_order)
                if other == config or len(seeds) < min_seeds:
                    continue
                diff = np.array([theirs[seed] - own[seed] for seed in seeds])
                error = float(_standard_error(diff, held_share))
                compared.append(
                    Shortfall(
                        dataset,
                        which,
                        shift,
                        other,
                        float(diff.mean()),
                        error,
                        len(seeds),
                    )
                )
            if not compared:
                skipped[config] = skipped.get(config, 0) + 1
                continue
            best = max(compared, key=lambda c: c.shortfall)
            if best.shortfall <= 0:  # nothing is ahead of it here
                best = best._replace(leader=None, shortfall=0.0, se=float("nan"))
            clear = [c for c in compared if c.shortfall - margin > 2 * c.se]
            found.setdefault(config, []).append(
                (best, max(clear, key=lambda c: c.shortfall) if clear else None)
            )
    stats = {}
    for config, cells in found.items():
        shortfalls = np.array([best.shortfall for best, _ in cells])
        stats[config] = {
            "cells": len(cells),
            "skipped": skipped.get(config, 0),
            "worst": float(shortfalls.max()),
            "worst_cell": cells[int(shortfalls.argmax())][0],
            "mean": float(shortfalls.mean()),
            "within": int(np.sum(shortfalls <= margin)),
            "clearly_short": sorted(
                (clear for _, clear in cells if clear is not None),
                key=lambda c: -c.shortfall,
            ),
        }
    return stats


def print_paired_gaps(
    rows: list[dict[str, Any]],
    file: TextIO | None = None,
    *,
    min_seeds: int = 3,
    margin: float = 0.01,
) -> None:
    """Print :func:`paired_gaps` under the tables, a line per configuration.

    Parameters
    ----------
    rows : list of dict
        Saved fits.
    file : text stream, default=None
        Where to print; standard output when None.
    min_seeds, margin
        As in :func:`paired_gaps`.
    """
    file = file or sys.stdout
    stats = paired_gaps(rows, min_seeds=min_seeds, margin=margin)
    if not stats:
        return
    folds = _held_share(rows) is not None
    unit = "folds" if folds else "seeds"
    print(
        f"\nShortfall of AUC paired by {'seed and fold' if folds else 'seed'} (to "
        f"the best configuration sharing at least {min_seeds} {unit} in each cell; "
        "'clearly': some configuration leads "
        f"by over {margin} plus 2 standard errors, a nominal criterion):",
        file=file,
    )
    for config, entry in stats.items():
        skipped = f" ({entry['skipped']} not compared)" if entry["skipped"] else ""
        print(
            f"  {config:12s} worst {entry['worst']:.3f}  mean {entry['mean']:.3f}  "
            f"within {margin} in {entry['within']}/{entry['cells']} cells{skipped}, "
            f"clearly short in {len(entry['clearly_short'])}; worst: "
            f"{_describe_shortfall(entry['worst_cell'], unit)}",
            file=file,
        )
        for cell in entry["clearly_short"]:
            print(f"      clearly: {_describe_shortfall(cell, unit)}", file=file)


def _describe_shortfall(cell: Shortfall, unit: str = "seeds") -> str:
    """One :class:`Shortfall` as ``data set subset shift: s±se behind X``;
    ``unit`` names what was paired (``"folds"`` for cross-validated rows)."""
    where = f"{cell.dataset} {cell.subset} {cell.shift}"
    if cell.leader is None:
        return f"{where}: none ahead ({cell.seeds} {unit})"
    return (
        f"{where}: {cell.shortfall:.3f}±{cell.se:.3f} behind {cell.leader} "
        f"({cell.seeds} {unit})"
    )


def paired(
    before: list[dict[str, Any]], after: list[dict[str, Any]], metric: str = "auc"
) -> list[dict[str, Any]]:
    """Per data set and subset: ``after - before`` for the fits both runs made.

    Pairs rows by data set, subset, configuration and seed (the same subset
    drawn, the same seeds), averages each fit's ``metric`` over the shifts
    (unshifted included), and returns the mean paired difference, its
    standard deviation, and the spread over seeds of ``before`` for scale.
    """
    old = {_key(row): row for row in before}
    groups: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in after:
        match = old.get(_key(row))
        if match is None:
            continue
        mean_after = np.mean([v[metric] for v in row["scores"].values()])
        mean_before = np.mean([v[metric] for v in match["scores"].values()])
        groups.setdefault((row["dataset"], row["subset"]), []).append(
            (float(mean_before), float(mean_after))
        )
    results = []
    for (dataset, which), pairs in sorted(groups.items()):
        values = np.asarray(pairs)
        diff = values[:, 1] - values[:, 0]
        spread = float(np.std(values[:, 0], ddof=1)) if len(values) > 1 else np.nan
        results.append(
            {
                "dataset": dataset,
                "subset": which,
                "n_seeds": len(values),
                "before": float(values[:, 0].mean()),
                "after": float(values[:, 1].mean()),
                "diff": float(diff.mean()),
                "diff_sd": float(np.std(diff, ddof=1)) if len(diff) > 1 else np.nan,
                "seed_sd": spread,
            }
        )
    return results


def versus(
    rows: list[dict[str, Any]], base: str, other: str, metric: str = "auc"
) -> list[dict[str, Any]]:
    """Per data set and subset: config ``other`` minus config ``base``, by seed.

    Parameters
    ----------
    rows : list of dict
        Saved fits (the ``rows`` of a ``--json`` file).
    base, other : str
        The configurations compared.
    metric : str, default="auc"
        A metric of every shift's scores.

    Returns
    -------
    results : list of dict
        One per data set and subset where both configurations have fits of
        the same seed (the same subset drawn): ``n_seeds``, the mean
        difference of ``metric`` in distribution (``diff_none``) and averaged
        over the shifts both fits were scored on, the unshifted split
        included (``diff_shifts``), each with its standard error over the
        pairs (``se_none``, ``se_shifts``; NaN for one pair). Cross-validated
        rows pair by seed and fold (``n_seeds`` counts those pairs) and have
        corrected standard errors (:func:`_standard_error`).
    """
    by_key = {_key(row): row for row in rows}
    groups: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for (dataset, which, config, unit), row in sorted(
        by_key.items(),
        key=lambda item: (*item[0][:3], *_unit_order(item[0][3])),
    ):
        match = by_key.get((dataset, which, base, unit))
        if config != other or match is None:
            continue
        shared = [k for k in row["scores"] if k in match["scores"]]
        shifted = [
            row["scores"][k][metric] - match["scores"][k][metric] for k in shared
        ]
        groups.setdefault((dataset, which), []).append(
            (
                row["scores"]["none"][metric] - match["scores"]["none"][metric],
                float(np.mean(shifted)),
            )
        )
    results = []
    for (dataset, which), pairs in sorted(groups.items()):
        values = np.asarray(pairs)
        n = len(values)
        error = _standard_error(values, _held_share(rows))
        results.append(
            {
                "dataset": dataset,
                "subset": which,
                "n_seeds": n,
                "diff_none": float(values[:, 0].mean()),
                "se_none": float(error[0]),
                "diff_shifts": float(values[:, 1].mean()),
                "se_shifts": float(error[1]),
            }
        )
    return results


def _mean_sd(cell: dict[str, Any], metric: str) -> str:
    """``mean±sd``, or the mean alone for one seed."""
    if np.isnan(cell[f"{metric}_sd"]):
        return f"{cell[metric]:.3f}"
    return f"{cell[metric]:.3f}±{cell[f'{metric}_sd']:.3f}"


def _emit(title: str, header: list[str], body: list[list[str]], rst: bool) -> str:
    if not rst:
        lines = [f"\n### {title}\n", "| " + " | ".join(header) + " |"]
        lines.append("| --- |" + " --- |" * (len(header) - 1))
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    lines = [f"\n.. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header, *body]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {entry}" for entry in row[1:]]
    return "\n".join(lines)


def print_table(
    cells: list[dict[str, Any]], file: Any = None, *, rst: bool = False
) -> None:
    """Tables of AUC / ACC (mean +- sd over seeds) per shift and configuration.

    One table per data set and training subset, in Markdown or (``rst``) as
    reStructuredText list-tables; the header gives each configuration's number
    of seeds, the last row the mean fit time (wall and CPU seconds).
    """
    file = file or sys.stdout
    configs = list(dict.fromkeys(c["config"] for c in cells))
    index = {(c["dataset"], c["subset"], c["shift"], c["config"]): c for c in cells}
    for dataset in dict.fromkeys(c["dataset"] for c in cells):
        for which in dict.fromkeys(
            c["subset"] for c in cells if c["dataset"] == dataset
        ):
            present = [
                config
                for config in configs
                if (dataset, which, "none", config) in index
            ]
            header = ["shift"] + [
                f"{config} ({index[(dataset, which, 'none', config)]['n_seeds']})"
                for config in present
            ]
            shifts = dict.fromkeys(
                c["shift"]
                for c in cells
                if (c["dataset"], c["subset"]) == (dataset, which)
            )
            body = []
            for shift in shifts:
                row = [shift]
                for config in present:
                    c = index[(dataset, which, shift, config)]
                    row.append(f"{_mean_sd(c, 'auc')} / {_mean_sd(c, 'acc')}")
                body.append(row)
            times = ["fit s (CPU s)"]
            for config in present:
                c = index[(dataset, which, "none", config)]
                times.append(f"{c['fit_s']:.0f} ({c['fit_cpu_s']:.0f})")
            body.append(times)
            title = f"{dataset}, train subset {which}: AUC / ACC"
            print(_emit(title, header, body, rst), file=file)
    print("\nShortfall of AUC to the best configuration of each cell:", file=file)
    for config, stats in gaps(cells).items():
        print(
            f"  {config:12s} worst {stats['worst']:.3f}  mean {stats['mean']:.3f}  "
            f"within 0.01 in {stats['cells_within_0.01']}/{stats['cells']} cells",
            file=file,
        )


def save(path: Path, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """Write the rows, their summary and the environment to ``path`` atomically."""
    document = {
        "environment": {
            "sk_medcnn": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(),
            "argv": sys.argv,
        },
        "configs": {
            name: description
            for name, (description, _) in {
                **CONFIGS,
                **STANDARDISED,
                **RECIPES,
            }.items()
        },
        "rows": rows,
        "summary": summarise(rows),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as handle:
        json.dump(document, handle, indent=1)


def _settings(items: Sequence[str]) -> dict[str, Any]:
    """Parse ``--set NAME=VALUE`` items: a Python literal, or else a string."""
    settings: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"--set takes NAME=VALUE; got {item!r}.")
        try:
            settings[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            settings[name] = text
    return settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=(*DATASETS, *RARE),
        default=list(DATASETS),
        help="data sets (default: the three real ones; the rare-class variants "
        "derived from them, " + ", ".join(RARE) + ", only when named)",
    )
    parser.add_argument(
        "--subsets",
        nargs="+",
        choices=SUBSETS,
        default=None,
        help="training subsets (default: all 10%% 300, or all with --evaluate cv; "
        "100 and 200 place a rule by size; 600 was run for volumes)",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        choices=(*CONFIGS, *STANDARDISED, *RECIPES),
        default=None,
        help="configurations to fit (default: no_aug affine recipe_aug strong "
        "moderate defaults); with --table, the ones to show",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", type=Path, help="save every fit here")
    parser.add_argument("--resume", action="store_true", help="skip fits in --json")
    parser.add_argument(
        "--table", type=Path, nargs="+", help="print the tables of saved runs and exit"
    )
    parser.add_argument(
        "--rst", action="store_true", help="--table as reStructuredText"
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="set a classifier parameter in every configuration, the value read "
        "as a Python literal or else as a string (e.g. memory_format=contiguous)",
    )
    parser.add_argument(
        "--paired",
        type=Path,
        nargs=2,
        metavar=("BEFORE", "AFTER"),
        help="compare two saved runs fit by fit (same data set, subset, config, "
        "seed): AUC averaged over the shifts, after - before; then exit",
    )
    parser.add_argument(
        "--versus",
        nargs=2,
        metavar=("BASE", "OTHER"),
        help="with --table: OTHER minus BASE, paired by data set, subset and seed "
        "(AUC in distribution and averaged over the shifts, with standard errors)",
    )
    parser.add_argument(
        "--metric",
        choices=METRICS,
        default="auc",
        help="with --versus: the metric compared (default: auc)",
    )
    parser.add_argument(
        "--members",
        action="store_true",
        help="with --table: what each recipe adds over its own networks (the "
        "ensemble's AUC minus its members' mean, fit by fit; recipe fits save "
        "their members' scores)",
    )
    parser.add_argument(
        "--evaluate",
        choices=EVALUATIONS,
        default="validation",
        help="score on the validation split (default), on the training "
        "split's images the subset left out ('rest': more images, disjoint "
        "from the fit; not with the subset 'all'), or by cross-validation "
        f"('cv': {CV_FOLDS} folds of the training and validation splits pooled, "
        "one fit per fold; the subset 'all' only); keep each in a --json file "
        "of its own",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test on tiny phantoms"
    )
    args = parser.parse_args(argv)
    if args.subsets is None:
        args.subsets = ["all"] if args.evaluate == "cv" else ["all", "10%", "300"]
    if args.members and not args.table:
        parser.error("--members reads saved runs: give them with --table.")
    if args.members and (args.versus or args.paired or args.rst):
        parser.error(
            "--members prints its own table: not with --versus, --paired or --rst."
        )
    rest_of_all = "all" in args.subsets and not args.quick  # --quick: 10%
    if args.evaluate == "rest" and rest_of_all and not args.table:
        parser.error(
            "--evaluate rest scores on the training images a subset leaves out: "
            "the subset 'all' leaves none (choose 10%, 300 or 600)."
        )
    if args.evaluate == "cv" and set(args.datasets) & set(RARE) and not args.table:
        parser.error(
            "--evaluate cv pools the validation split, which the rare-class "
            f"variants ({', '.join(RARE)}) leave unthinned: not with them."
        )
    if args.evaluate == "cv" and set(args.subsets) != {"all"} and not args.table:
        parser.error(
            "--evaluate cv cross-validates the whole of the pooled splits: give "
            "--subsets all (the other subsets have --evaluate rest)."
        )
    if args.versus and not args.table:
        parser.error("--versus compares saved runs: give them with --table.")
    if args.metric != "auc" and not args.versus:
        parser.error("--metric chooses what --versus compares: give --versus.")
    if args.versus and (args.paired or args.rst):
        parser.error("--versus prints its own table: not with --paired or --rst.")
    return args


def load_rows(
    paths: Sequence[Path], option: str, evaluate: str | None = None
) -> list[list[dict[str, Any]]]:
    """The saved rows of each file, refused (naming ``option``) when they were
    scored on different images, the validation split and ``--evaluate rest``,
    whose cells do not compare; or, given ``evaluate``, on other images than
    that."""
    rows = [json.loads(path.read_text())["rows"] for path in paths]
    found: dict[str, Path] = {}
    for path, saved in zip(paths, rows, strict=True):
        for row in saved:
            found.setdefault(row.get("evaluated_on", "validation"), path)
    if evaluate is not None:
        found.pop(evaluate, None)
        if found:
            where, path = next(iter(found.items()))
            raise SystemExit(
                f"{option}: {path} holds rows scored with --evaluate {where}; "
                f"--evaluate {evaluate} needs a --json file of its own."
            )
    elif len(found) > 1:
        named = ", ".join(f"{where} ({path})" for where, path in sorted(found.items()))
        raise SystemExit(
            f"{option}: the rows were scored on different images: {named}. Give "
            "the files of one evaluation set at a time."
        )
    return rows


def _print_versus(
    rows: list[dict[str, Any]], base: str, other: str, metric: str = "auc"
) -> None:
    """Print :func:`versus`'s table; exit naming what is missing when it is empty."""
    saved = {row["config"] for row in rows}
    unknown = [name for name in (base, other) if name not in saved]
    if unknown:
        raise SystemExit(
            f"--versus: {', '.join(map(repr, unknown))} has no fits in the --table "
            f"files, which hold {', '.join(sorted(saved))}."
        )
    results = versus(rows, base, other, metric)
    if not results:
        raise SystemExit(
            f"--versus: no data set, subset and seed has fits of both {base!r} "
            f"and {other!r} in the --table files."
        )
    folds = any(row.get("fold") is not None for row in rows)
    by = (
        "seed and fold (± standard error, corrected for the folds)"
        if folds
        else "seed (± standard error)"
    )
    label = "AUC" if metric == "auc" else metric.replace("_", " ")
    print(f"{label} of {other} minus {base}, paired by {by}")
    print(
        f"{'data set':<10} {'subset':<6} {'fits' if folds else 'seeds':>5} "
        f"{'in distribution':>17} "
        f"{'over shifts':>17}"
    )
    for r in results:
        print(
            f"{r['dataset']:<10} {r['subset']:<6} {r['n_seeds']:>5} "
            f"{r['diff_none']:>+9.4f}±{r['se_none']:.4f} "
            f"{r['diff_shifts']:>+9.4f}±{r['se_shifts']:.4f}"
        )


def ensemble_gain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a recipe adds over one of its own networks, fit by fit.

    For every recipe fit scored with its members (``member_scores``), the
    ensemble's AUC minus its members' mean AUC, in distribution and averaged
    over the shifted copies (the unshifted split left out, unlike
    :func:`versus`, which averages it in); then the mean and standard error
    over the seeds of each data set, subset and recipe. Pairing each
    ensemble with its own networks removes the subset and the seeds from the
    comparison: what is left is what averaging the networks' probabilities
    adds. The balanced accuracy in distribution is compared the same way:
    the recipe's ``predict`` (a tuned threshold under ``threshold="auto"``
    on two classes, else the ensemble's arg-max) against its networks'
    arg-max. The AUC is also compared with the mean of those of its networks
    that are default networks (:func:`default_members`; in distribution and
    over the shifts; NaN for a recipe without any): what the recipe adds over
    one default network. Cross-validated rows (``--evaluate cv``) pair by
    seed and fold and have corrected standard errors (:func:`_standard_error`).
    """
    groups: dict[tuple[str, str, str], list[tuple[float, ...]]] = {}
    for row in rows:
        members = row.get("member_scores")
        if not members:
            continue
        none = row["scores"]["none"]["auc"] - members["none"]["auc"]
        shifted = [s for s in row["scores"] if s != "none"]
        over = (
            float(
                np.mean([row["scores"][s]["auc"] - members[s]["auc"] for s in shifted])
            )
            if shifted
            else float("nan")
        )
        best = max(members["none"]["auc_each"]) - members["none"]["auc"]
        balanced = (
            row["scores"]["none"]["balanced_accuracy"]
            - members["none"]["balanced_accuracy"]
        )
        plain = [_over_default_networks(row, s) for s in row["scores"]]
        groups.setdefault((row["dataset"], row["subset"], row["config"]), []).append(
            (
                none,
                over,
                best,
                balanced,
                plain[0],
                float(np.mean(plain[1:])) if shifted else float("nan"),
            )
        )
    results = []
    held_share = _held_share(rows)  # cross-validated rows: corrected errors
    for (dataset, which, config), values in sorted(groups.items()):
        array = np.asarray(values)
        mean = array.mean(axis=0)
        se = _standard_error(array, held_share)
        results.append(
            {
                "dataset": dataset,
                "subset": which,
                "config": config,
                "n_seeds": len(values),
                "gain_none": float(mean[0]),
                "se_none": float(se[0]),
                "gain_shifts": float(mean[1]),
                "se_shifts": float(se[1]),
                "best_member_none": float(mean[2]),
                "balanced_accuracy_none": float(mean[3]),
                "se_balanced_accuracy_none": float(se[3]),
                "gain_default_none": float(mean[4]),
                "se_default_none": float(se[4]),
                "gain_default_shifts": float(mean[5]),
                "se_default_shifts": float(se[5]),
            }
        )
    return results


def _over_default_networks(row: dict[str, Any], shift: str) -> float:
    """A recipe fit's AUC under ``shift`` minus the mean AUC of its members
    that are default networks (:func:`default_members`); NaN without any."""
    if row["config"] not in RECIPES:
        return float("nan")
    each = row["member_scores"][shift]["auc_each"]
    flags = default_members(row["config"], len(each))
    plain = [auc for auc, is_default in zip(each, flags, strict=True) if is_default]
    if not plain:
        return float("nan")
    return row["scores"][shift]["auc"] - float(np.mean(plain))


def _print_members(rows: list[dict[str, Any]]) -> None:
    """Print :func:`ensemble_gain`'s table; exit saying so when it is empty."""
    results = ensemble_gain(rows)
    if not results:
        raise SystemExit(
            "--members: no recipe fit in the --table files was scored with its "
            "members (rows with 'member_scores')."
        )
    print(
        "AUC of each recipe minus the mean of its own networks, fit by fit "
        "(± standard error over seeds), in distribution and over the shifted "
        "copies (the unshifted split left out); the best network's lead over the "
        "mean, in distribution; balanced accuracy in distribution, the recipe's "
        "predict minus its networks' arg-max; then the AUC minus the mean of "
        "those of its networks that are default networks (in distribution and "
        "over the shifted copies; nan where they are not known)"
    )
    print(
        f"{'data set':<10} {'subset':<6} {'recipe':<15} {'seeds':>5} "
        f"{'in distribution':>17} {'over shifts':>17} {'best network':>12} "
        f"{'balanced acc':>17} {'default nets: in':>17} {'default: shifts':>17}"
    )
    for r in results:
        print(
            f"{r['dataset']:<10} {r['subset']:<6} {r['config']:<15} "
            f"{r['n_seeds']:>5} {r['gain_none']:>+9.4f}±{r['se_none']:.4f} "
            f"{r['gain_shifts']:>+9.4f}±{r['se_shifts']:.4f} "
            f"{r['best_member_none']:>+12.4f} "
            f"{r['balanced_accuracy_none']:>+9.4f}±"
            f"{r['se_balanced_accuracy_none']:.4f} "
            f"{r['gain_default_none']:>+9.4f}±{r['se_default_none']:.4f} "
            f"{r['gain_default_shifts']:>+9.4f}±{r['se_default_shifts']:.4f}"
        )


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if args.paired:
        before, after = load_rows(args.paired, "--paired")
        if args.configs is not None:
            before = [row for row in before if row["config"] in args.configs]
        results = paired(before, after)
        print(
            f"{'data set':<10} {'subset':<6} {'seeds':>5} {'before':>7} {'after':>7} "
            f"{'after-before':>13} {'sd of diff':>10} {'sd over seeds':>13}"
        )
        for r in results:
            print(
                f"{r['dataset']:<10} {r['subset']:<6} {r['n_seeds']:>5} "
                f"{r['before']:>7.4f} {r['after']:>7.4f} {r['diff']:>+13.4f} "
                f"{r['diff_sd']:>10.4f} {r['seed_sd']:>13.4f}"
            )
        return []
    if args.table:
        every = [row for saved in load_rows(args.table, "--table") for row in saved]
        rows = [
            row
            for row in every
            if args.configs is None or row["config"] in args.configs
        ]
        if args.members:
            _print_members(rows)
            return rows
        if args.versus:
            _print_versus(every, *args.versus, args.metric)
            return every
        print_table(summarise(rows), rst=args.rst)
        if not args.rst:
            print_paired_gaps(rows)
        return rows
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    if args.resume and args.json is not None and args.json.exists():
        (rows,) = load_rows([args.json], "--resume", args.evaluate)
    done = {_key(row) for row in rows}
    overrides = {"max_epochs": 2} if args.quick else {}
    overrides.update(_settings(args.set))
    datasets = ["quick"] if args.quick else args.datasets
    subsets = args.subsets
    if args.quick:  # the whole of the phantoms, or a tenth with --evaluate rest
        subsets = ["10%" if args.evaluate == "rest" else "all"]
    folds = range(CV_FOLDS) if args.evaluate == "cv" else [None]
    for dataset in datasets:
        data = load(dataset, quick=args.quick)
        for which, seed, fold, config in itertools.product(
            subsets, args.seeds, folds, args.configs or DEFAULT_CONFIGS
        ):
            if (dataset, which, config, (seed, fold)) in done:
                continue
            row = run_fit(
                dataset, which, config, seed, data, overrides, args.evaluate, fold
            )
            rows.append(row)
            where = "" if fold is None else f" fold {fold}"
            print(
                f"{dataset} {which} {config} seed {seed}{where}: fit "
                f"{row['fit_s']:.0f} s, AUC none "
                f"{row['scores']['none']['auc']:.3f}, scanner "
                f"{row['scores']['scanner']['auc']:.3f}",
                flush=True,
            )
            if args.json is not None:
                save(args.json, args, rows)
    print_table(summarise(rows))
    return rows


if __name__ == "__main__":
    main()
