"""An out-of-distribution score learned in ``fit``: Mahalanobis distance of features.

The score of an image is its Mahalanobis distance, in the network's own
penultimate features (the input of the output layer), to the nearest class
mean of the training images, with one covariance shared by the classes and
shrunk by Ledoit and Wolf's formula (Lee et al., NeurIPS 2018, "A simple
unified framework for detecting out-of-distribution samples and adversarial
attacks", on the last layer). The threshold is set on rows the network never
trained on, for a stated false-alarm rate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import linalg
from torch import nn

from .registry import get_weight_loader

__all__ = [
    "OOD_FAR_FACTOR",
    "OOD_MAX_FEATURES",
    "OOD_MAX_FIT_ROWS",
    "feature_layer",
    "fit_mahalanobis",
    "mahalanobis_score",
    "ood_threshold",
    "ood_warning",
]

OOD_MAX_FIT_ROWS = 20_000
"""At most this many training rows (a seeded draw) estimate the means and covariance."""

OOD_MAX_FEATURES = 4096
"""Feature layers wider than this learn no score (the covariance would be too big)."""

OOD_FAR_FACTOR = 2.0
"""An image this many times past the threshold is far out: ``predict`` warns."""

_WARN_P_VALUE = 1e-3


def feature_layer(
    body: nn.Module, architecture: Any, layer: str | None = None
) -> tuple[nn.Module, str]:
    """Find the module whose input (or output) is the network's embedding.

    Parameters
    ----------
    body : torch.nn.Module
        The architecture's network.
    architecture : str or callable
        Its registry name (its weight loader may name the output layer).
    layer : str, optional
        A module's dotted name: its output is the embedding.

    Returns
    -------
    module, capture : torch.nn.Module, {"input", "output"}
        The module to hook and which side of it holds the features: the
        input of the output layer by default.

    Raises
    ------
    ValueError
        If ``layer`` is not a module of ``body``, or the network has no
        :class:`torch.nn.Linear` layer and its architecture names no head.
    """
    modules = dict(body.named_modules())
    if layer is not None:
        if layer not in modules or layer == "":
            top = [name for name, _ in body.named_children()]
            raise ValueError(
                f"layer={layer!r} is not a module of the network; its "
                f"top-level modules are {top} (nested ones by dotted name)."
            )
        return modules[layer], "output"
    head = None
    if isinstance(architecture, str):
        try:
            head = get_weight_loader(architecture).head[0]
        except ValueError:
            head = None
    if head is None or head not in modules:
        linear = [name for name, m in modules.items() if isinstance(m, nn.Linear)]
        if not linear:
            raise ValueError(
                "the network has no torch.nn.Linear output layer and its "
                "architecture declares none; give layer= by name."
            )
        head = linear[-1]
    return modules[head], "input"


def fit_mahalanobis(
    features: NDArray[Any], groups: NDArray[Any], *, block_size: int = 256
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Class means and the shrunk shared precision matrix of ``features``.

    The covariance of the rows about their group's mean is shrunk towards a
    multiple of the identity by Ledoit and Wolf's formula, as
    :class:`sklearn.covariance.LedoitWolf` (``assume_centered=True`` on the
    centred rows) computes it, but accumulated ``block_size`` rows at a time:
    no float64 copy of ``features`` is made (``LedoitWolf`` holds about three;
    the tests check both agree).

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    groups : ndarray of shape (n_samples,)
        Integer group (class) codes in ``0 .. n_groups - 1``; a group with no
        row gets the overall mean.
    block_size : int, default=256
        Rows per block.

    Returns
    -------
    location : ndarray of shape (n_groups, n_features)
    precision : ndarray of shape (n_features, n_features)
    """
    groups = np.asarray(groups, dtype=np.intp)
    n_samples, n_features = features.shape
    n_groups = int(groups.max()) + 1 if len(groups) else 1
    sums = np.zeros((n_groups, n_features))
    np.add.at(sums, groups, features)
    counts = np.bincount(groups, minlength=n_groups)
    overall = sums.sum(axis=0) / max(n_samples, 1)
    location = np.where(
        counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], overall
    )
    scatter = np.zeros((n_features, n_features))
    fourth = 0.0  # sum over rows of |row|^4, for the shrinkage
    for start in range(0, n_samples, block_size):
        rows = slice(start, start + block_size)
        centred = np.asarray(features[rows], dtype=np.float64) - location[groups[rows]]
        scatter += centred.T @ centred
        fourth += float(np.sum(np.einsum("ij,ij->i", centred, centred) ** 2))
    covariance = scatter / max(n_samples, 1)
    mu = float(np.trace(covariance)) / n_features
    squared_norm = float(np.sum(covariance**2))
    delta = squared_norm - 2 * mu * np.trace(covariance) + n_features * mu**2
    delta /= n_features
    beta = (fourth / max(n_samples, 1) - squared_norm) / (
        n_features * max(n_samples, 1)
    )
    beta = min(beta, delta)
    shrinkage = 0.0 if beta <= 0 else beta / delta
    shrunk = (1.0 - shrinkage) * covariance
    shrunk.flat[:: n_features + 1] += shrinkage * mu
    precision = linalg.pinvh(shrunk)
    precision = (precision + precision.T) / 2  # exactly symmetric, for the check
    return location, precision


def mahalanobis_score(
    features: NDArray[Any],
    location: NDArray[np.float64],
    precision: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Distance of each row to the nearest group mean (higher: more unusual).

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    location : ndarray of shape (n_groups, n_features)
    precision : ndarray of shape (n_features, n_features)

    Returns
    -------
    score : ndarray of shape (n_samples,)
        Non-negative; ``inf`` where the features are not finite (an image
        that overflows the network is as unlike the training images as any).
    """
    values = np.ascontiguousarray(features, dtype=np.float64)
    # torch's matrix product, in torch's thread pool: numpy's einsum loops
    # term by term (30 ms for 512 images), and numpy's BLAS product starts
    # OpenBLAS threads that contend with torch's inside predict (predict_proba
    # ran 2.7x slower with it)
    rows = torch.from_numpy(values)
    weights = torch.from_numpy(np.ascontiguousarray(precision, dtype=np.float64))
    nearest = torch.full((len(values),), math.inf, dtype=torch.float64)
    for mean in np.asarray(location, dtype=np.float64):
        diff = rows - torch.from_numpy(mean)
        nearest = torch.fmin(nearest, (diff @ weights).mul_(diff).sum(dim=1))
    score = nearest.clamp_(min=0.0).sqrt_().numpy()
    score[~np.all(np.isfinite(values), axis=1)] = np.inf
    return np.where(np.isnan(score), np.inf, score)


def ood_threshold(held_out: NDArray[np.float64], false_alarm_rate: float) -> float:
    """Return the score that flags at most ``false_alarm_rate`` of exchangeable images.

    The ``ceil((n + 1) (1 - rate))``-th smallest of ``n`` held-out scores, as
    in split-conformal prediction: a new image drawn like the held-out ones
    scores above it with probability at most ``false_alarm_rate``. With too
    few held-out rows for that rank, the largest score.

    Parameters
    ----------
    held_out : ndarray of shape (n,)
        Scores of in-distribution images the network did not train on.
    false_alarm_rate : float
        In (0, 1).

    Returns
    -------
    threshold : float
    """
    scores = np.sort(np.asarray(held_out, dtype=np.float64))
    scores = scores[np.isfinite(scores)]
    if not len(scores):
        return math.inf
    rank = math.ceil((len(scores) + 1) * (1.0 - false_alarm_rate))
    return float(scores[min(rank, len(scores)) - 1])


def ood_warning(
    score: NDArray[np.float64], threshold: float, false_alarm_rate: float
) -> str | None:
    """Say when a batch holds images unlike the training images, or None.

    Some in-distribution images score above the threshold (its false-alarm
    rate), so a count alone is no news. A warning is due when an image scores
    more than :data:`OOD_FAR_FACTOR` times the threshold, or when more images
    score above it than the false-alarm rate makes plausible (binomial tail
    probability below 0.001).

    Parameters
    ----------
    score : ndarray of shape (n_samples,)
    threshold : float
    false_alarm_rate : float

    Returns
    -------
    message : str or None
    """
    n_images = len(score)
    flagged = int(np.count_nonzero(score > threshold))
    far = int(np.count_nonzero(score > OOD_FAR_FACTOR * threshold))
    if not flagged:
        return None
    from scipy.stats import binom

    unlikely = binom.sf(flagged - 1, n_images, false_alarm_rate) < _WARN_P_VALUE
    if not (far or unlikely):
        return None
    expected = false_alarm_rate * n_images
    return (
        f"{flagged} of {n_images} images are unlike the training images: their "
        f"out-of-distribution score (ood_score) is above ood_threshold_ = "
        f"{threshold:.3g}"
        + (f", {far} of them more than {OOD_FAR_FACTOR:g} times" if far else "")
        + f" (images like the training ones pass it but for about "
        f"{false_alarm_rate:.0%}, {expected:.2g} here). Their predictions are "
        "unreliable: check the modality, body part and preprocessing."
    )
