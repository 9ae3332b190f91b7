"""Sample weights: which rows train and how the loss weighs them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import _check_sample_weight
from torch import nn

if TYPE_CHECKING:
    from ._base import _BaseMedicalCNN


def loss_weights(
    weights: NDArray[np.float64],
    train_index: NDArray[np.intp],
    valid_index: NDArray[np.intp] | None,
) -> NDArray[np.float64]:
    """Scale ``weights`` to mean 1 over the training rows and the held-out rows.

    The losses are batch means of weighted sample losses, and skorch averages an
    epoch's batch losses by batch size: with mean-1 weights that average is
    ``sum_i w_i l_i / sum_i w_i`` over the whole set, however it is batched.
    """
    scaled = np.array(weights, dtype=np.float64)
    for index in (train_index, valid_index):
        if index is not None and len(index):
            mean = scaled[index].mean()
            if mean > 0:
                scaled[index] = scaled[index] / mean
    return scaled


def check_sample_weight(
    estimator: _BaseMedicalCNN, sample_weight: ArrayLike | None, n_samples: int
) -> tuple[NDArray[np.float64] | None, NDArray[np.intp]]:
    """Validate ``sample_weight``; return it and the rows that train.

    The weights come back as None when they do not weigh anything: absent,
    or equal on every sample that trains (the losses are weighted means, so
    a common factor cancels). The rows that train are those of positive
    weight.
    """
    everything = np.arange(n_samples)
    if sample_weight is None:
        return None, everything
    try:
        weights = _check_sample_weight(
            sample_weight,
            np.empty((n_samples, 0)),
            dtype=np.float64,
            ensure_non_negative=True,
        )
    except (TypeError, ValueError) as error:
        if "sample_weight" in str(error):
            raise
        raise ValueError(
            f"sample_weight must be {n_samples} non-negative numbers, one per "
            f"sample: {error}"
        ) from error
    keep = np.flatnonzero(weights > 0)
    if len(keep) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs at least 2 samples of positive "
            f"sample_weight to train; got {len(keep)}."
        )
    if np.all(weights[keep] == weights[keep[0]]):
        return None, keep
    if isinstance(estimator.loss, nn.Module):
        # A module called as loss(outputs, targets) cannot weigh; whole
        # counts (BaggingClassifier's bootstrap) become repeated rows.
        if np.array_equal(weights, np.round(weights)):
            counts = weights.astype(np.int64)
            return None, np.repeat(np.arange(n_samples), counts)
        raise ValueError(
            f"sample_weight cannot weigh a custom loss module ({estimator.loss!r}): "
            "it is called as loss(outputs, targets). Use one of the named "
            "losses, or weigh inside your module (weights of 0, which leave "
            "samples out, equal weights and whole counts, which repeat "
            "samples, work with any loss)."
        )
    return weights, keep
