"""Randomisation scores: maps of the model against those of a randomised model.

The sanity checks of Adebayo et al.: the model with every layer re-initialised,
or a clone trained on permuted labels, should explain its images differently.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state

from ._base import resolve_model


def _rank_correlations(
    maps: NDArray[np.float32], reference: NDArray[np.float32]
) -> NDArray[np.float64]:
    """Return the Spearman correlation of each pair of maps.

    A blank (constant) map has no ranking: against another constant map it
    counts as identical (1), against any other map as unrelated (0).
    """
    first = rankdata(maps.reshape(len(maps), -1), axis=1)
    second = rankdata(reference.reshape(len(reference), -1), axis=1)
    first -= first.mean(axis=1, keepdims=True)
    second -= second.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    flat_first = ~first.any(axis=1)
    flat_second = ~second.any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (first * second).sum(axis=1) / norms
    rho[flat_first | flat_second] = 0.0
    rho[flat_first & flat_second] = 1.0
    return rho


def _randomised_copy(estimator: Any, seed: int) -> Any:
    """Return a deep copy whose network has every layer re-initialised."""
    randomised = copy.deepcopy(estimator)
    network = resolve_model(randomised).architecture
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in network.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset) and any(True for _ in module.parameters(recurse=False)):
                reset()
    return randomised


def _label_randomised_fit(
    estimator: Any, X: Any, y: Any, max_epochs: int | None, seed: int
) -> Any:
    """Return a clone of ``estimator`` fitted on ``X`` with permuted labels."""
    refit = clone(estimator)
    if max_epochs is not None:
        prefix = f"{refit.steps[-1][0]}__" if isinstance(refit, Pipeline) else ""
        refit.set_params(**{f"{prefix}max_epochs": max_epochs})
    permuted = check_random_state(seed).permutation(np.asarray(y))
    return refit.fit(X, permuted)
