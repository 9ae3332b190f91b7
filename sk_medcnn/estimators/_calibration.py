"""Temperature scaling and the held-out choice of test-time augmentation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp

#: The range of temperatures :func:`fit_temperature` finds, with rounding.
TEMPERATURE_RANGE = (0.05 * (1 - 1e-9), 20.0 * (1 + 1e-9))
#: The test-time augmentation ``tta="auto"`` tries on the held-out split.
AUTO_TTA_CANDIDATE = "shifts"
#: Log-loss differences below this count as ties (rounding of the view average).
_TIE_TOLERANCE = 1e-9


def log_mean_softmax(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    """Log of the softmax probabilities averaged over the first axis (the views)."""
    log_proba = log_softmax(logits, axis=-1)
    return logsumexp(log_proba, axis=0) - math.log(len(logits))


def held_out_scores(
    logits: NDArray[np.float64],
    y_encoded: NDArray[Any],
    sample_weight: NDArray[np.float64] | None,
    calibrate: bool,
) -> dict[str, float]:
    """Log-loss and accuracy on held-out ``logits`` (views first), as predicted.

    With ``calibrate``, the temperature is fitted first (:func:`fit_temperature`)
    and returned with the scores; otherwise it is 1.
    """
    temperature = (
        fit_temperature(logits, y_encoded, sample_weight) if calibrate else 1.0
    )
    log_proba = log_mean_softmax(logits / temperature)
    rows = np.arange(len(y_encoded))
    return {
        "temperature": temperature,
        "log_loss": float(
            -np.average(log_proba[rows, y_encoded], weights=sample_weight)
        ),
        "accuracy": float(
            np.average(log_proba.argmax(axis=1) == y_encoded, weights=sample_weight)
        ),
    }


def fit_temperature(
    logits: NDArray[np.float64],
    y_encoded: NDArray[Any],
    sample_weight: NDArray[np.float64] | None = None,
) -> float:
    """Find the temperature minimising the log-loss of ``logits / T`` (Guo 2017).

    Parameters
    ----------
    logits : ndarray of shape (n_views, n_samples, n_classes)
        Held-out logits; with several test-time views the loss is that of the
        averaged probabilities, as predicted.
    y_encoded : ndarray of shape (n_samples,)
        Class indices.
    sample_weight : ndarray of shape (n_samples,), default=None
        Positive weights: the log-loss is their weighted mean.

    Returns
    -------
    temperature : float
        In [0.05, 20]; searched on a log scale. When every held-out sample is
        predicted right, the log-loss keeps falling as ``T`` goes to 0, which
        says nothing about the errors to come: the search is then limited to
        ``T >= 1`` (softening only), which gives 1 for a confident network.
    """
    rows = np.arange(len(y_encoded))
    lowest = 0.05
    if np.array_equal(log_mean_softmax(logits).argmax(axis=1), y_encoded):
        lowest = 1.0

    def log_loss(log_t: float) -> float:
        log_proba = log_mean_softmax(logits / math.exp(log_t))
        return float(-np.average(log_proba[rows, y_encoded], weights=sample_weight))

    result = minimize_scalar(
        log_loss, bounds=(math.log(lowest), math.log(20.0)), method="bounded"
    )
    # the bounded search never evaluates the bounds themselves
    best = min((result.x, math.log(lowest)), key=log_loss)
    return float(math.exp(best))
