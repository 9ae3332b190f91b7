"""Localisation scores: how well the maps find an annotated region."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score


def _check_masks(masks: Any, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """Return ``masks`` as booleans of the maps' ``shape``; name the mismatch."""
    if masks is None:
        raise ValueError(
            "localisation metrics need masks=: one boolean mask per image of X, "
            f"shape {shape}."
        )
    array = np.asarray(masks)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"masks must be a boolean array; got dtype {array.dtype}.")
    if array.shape != shape:
        raise ValueError(
            f"masks must have shape {shape} (one mask per image of X, the size of "
            f"the images as given); got {array.shape}. Inside cross-validation, "
            "pass them by metadata routing (see make_explanation_scorer)."
        )
    if array.dtype.kind != "b":
        if not np.isin(array, (0, 1)).all():
            raise ValueError("masks must hold only 0/1 or True/False values.")
        array = array.astype(bool)
    return array


def _localisation(
    maps: NDArray[np.float32], masks: NDArray[np.bool_], metric: str
) -> NDArray[np.float64]:
    """Per-image localisation scores; NaN where a mask is empty."""
    flat_maps = maps.reshape(len(maps), -1).astype(np.float64)
    flat_masks = masks.reshape(len(masks), -1)
    annotated = flat_masks.any(axis=1)
    scores = np.full(len(maps), np.nan)
    for row in np.flatnonzero(annotated):
        values, mask = flat_maps[row], flat_masks[row]
        if metric == "mass_in_mask":
            total = values.sum()
            scores[row] = values[mask].sum() / total if total > 0 else 0.0
        elif metric == "pointing_game":  # a blank map points nowhere
            scores[row] = float(values.max() > 0 and mask[values.argmax()])
        else:
            scores[row] = average_precision_score(mask, values)
    return scores
