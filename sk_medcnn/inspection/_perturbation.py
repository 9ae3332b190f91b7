"""Faithfulness by perturbation: ROAD, deletion and insertion curves.

The relevant pixels of each image are removed (ROAD: filled by noisy linear
imputation) or replaced by a baseline, in order of relevance, and the class
probability is followed as they go; :func:`explanation_score` reads the curves.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.ndimage import gaussian_filter
from scipy.sparse.linalg import spsolve

from ..exceptions import OutOfDistributionWarning

__all__ = ["noisy_linear_impute"]

#: Fractions of pixels removed when none are given.
_DEFAULT_FRACTIONS = {
    "road": tuple(np.round(np.linspace(0.1, 0.9, 9), 10)),
    "deletion": tuple(np.round(np.linspace(0.0, 1.0, 11), 10)),
    "insertion": tuple(np.round(np.linspace(0.0, 1.0, 11), 10)),
}
#: The 8 neighbours of a pixel and their weights in ROAD's noisy linear
#: imputation (Rong et al. 2022): 1/6 for the 4 direct, 1/12 for the diagonal.
_NEIGHBOURS = (
    ((-1, 0), 1 / 6),
    ((1, 0), 1 / 6),
    ((0, -1), 1 / 6),
    ((0, 1), 1 / 6),
    ((-1, -1), 1 / 12),
    ((-1, 1), 1 / 12),
    ((1, -1), 1 / 12),
    ((1, 1), 1 / 12),
)
#: Standard deviation of the blurred baseline, as a fraction of the image size.
_BLUR_SIGMA = 0.1


def _check_fractions(fractions: Any, metric: str) -> NDArray[np.float64]:
    """Return the fractions as a sorted float array; check them for ``metric``."""
    if fractions is None:
        return np.asarray(_DEFAULT_FRACTIONS.get(metric, ()), dtype=np.float64)
    try:
        values = np.asarray(fractions, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"fractions must be a 1-D sequence of numbers in [0, 1]; got {fractions!r}."
        ) from None
    high_ok = (values < 1).all() if metric == "road" else (values <= 1).all()
    if (
        values.ndim != 1
        or values.size < 2
        or not np.isfinite(values).all()
        or (values < 0).any()
        or not high_ok
        or (np.diff(values) <= 0).any()
    ):
        upper = "1), as ROAD keeps at least one pixel" if metric == "road" else "1]"
        raise ValueError(
            "fractions must be at least 2 increasing numbers in [0, "
            f"{upper}; got {fractions!r}."
        )
    return values


def _image_array(X: Any, metric: str) -> NDArray[Any]:
    """Return ``X`` as an image array ``(n, H, W)`` or ``(n, H, W, C)``."""
    array = np.asarray(X)
    if array.ndim not in (3, 4) or array.dtype.kind not in "biuf":
        raise ValueError(
            f"metric={metric!r} perturbs the pixels, so X must be an image array "
            "of shape (n_samples, height, width) or (n_samples, height, width, "
            f"channels); got {array.dtype} of shape {array.shape}. Load file paths "
            "first, or use a localisation or randomisation metric."
        )
    return array


def _ranks(maps: NDArray[np.float32], rng: np.random.RandomState) -> NDArray[np.intp]:
    """Return each pixel's rank by relevance, 0 = most relevant; ties at random."""
    flat = maps.reshape(len(maps), -1)
    tie_break = rng.random_sample(flat.shape)
    order = np.lexsort((tie_break, -flat), axis=-1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None, :], axis=1)
    return ranks.reshape(maps.shape)


def _as_dtype(images: NDArray[np.float64], dtype: np.dtype[Any]) -> NDArray[Any]:
    """Cast perturbed images back to the dtype of X (rounded and clipped for ints)."""
    if dtype.kind in "biu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(images), info.min, info.max).astype(dtype)
    return images.astype(dtype)


def noisy_linear_impute(
    images: NDArray[np.float64],
    removed: NDArray[np.bool_],
    noise: float,
    rng: np.random.RandomState,
) -> NDArray[np.float64]:
    """Fill the removed pixels from their neighbours (ROAD's noisy linear imputation).

    Each removed pixel is set to the weighted mean of its 8 neighbours inside
    the image (weights 1/6 direct, 1/12 diagonal), where the neighbours that
    are removed too are unknowns: one sparse linear system for the whole
    batch, solved once for all channels; Gaussian noise of standard
    deviation ``noise`` is then added to the filled pixels. A removed region
    always borders a kept pixel while one is kept, so the system is regular.

    Parameters
    ----------
    images : ndarray of shape (n, height, width, channels)
    removed : ndarray of shape (n, height, width), dtype bool
    noise : float
    rng : RandomState

    Returns
    -------
    filled : ndarray of shape (n, height, width, channels)
    """
    n_removed = int(removed.sum())
    filled = images.copy()
    if n_removed == 0:
        return filled
    height, width = removed.shape[1:]
    index = np.full(removed.shape, -1, dtype=np.int64)
    index[removed] = np.arange(n_removed)
    diagonal = np.zeros(n_removed)
    right_side = np.zeros((n_removed, images.shape[3]))
    rows, cols, values = [], [], []
    for (dy, dx), weight in _NEIGHBOURS:
        source = (
            slice(None),
            slice(max(0, -dy), height - max(0, dy)),
            slice(max(0, -dx), width - max(0, dx)),
        )
        neighbour = (
            slice(None),
            slice(max(0, dy), height + min(0, dy)),
            slice(max(0, dx), width + min(0, dx)),
        )
        here = removed[source]
        there = removed[neighbour]
        # one neighbour per offset, so the fancy-indexed += sees unique pixels
        diagonal[index[source][here]] += weight
        both = here & there
        rows.append(index[source][both])
        cols.append(index[neighbour][both])
        values.append(np.full(int(both.sum()), -weight))
        known = here & ~there
        right_side[index[source][known]] += weight * images[neighbour][known]
    rows.append(np.arange(n_removed))
    cols.append(np.arange(n_removed))
    values.append(diagonal)
    system = sparse.csc_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_removed, n_removed),
    )
    solution = spsolve(system, right_side).reshape(n_removed, -1)
    filled[removed] = solution + noise * rng.standard_normal(solution.shape)
    return filled


def _baseline_images(images: NDArray[np.float64], baseline: str) -> NDArray[Any]:
    """Return the images every pixel is replaced by: blurred, or each image's mean."""
    if baseline == "mean":
        return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape)
    sigma = _BLUR_SIGMA * max(images.shape[1:3])
    return gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="nearest")


def _faithfulness(
    estimator: Any,
    X: NDArray[Any],
    maps: NDArray[np.float32],
    columns: NDArray[np.intp],
    metric: str,
    fractions: NDArray[np.float64],
    noise: float,
    baseline: str | None,
    batch_size: int,
    rng: np.random.RandomState,
) -> NDArray[np.float64]:
    """Return each image's ROAD, deletion or insertion score (greater is better)."""
    grayscale = X.ndim == 3
    images = (X[..., None] if grayscale else X).astype(np.float64)
    if maps.shape != images.shape[:3]:
        raise ValueError(
            f"the maps have shape {maps.shape} but the images {images.shape[:3]}; "
            "faithfulness needs maps the size of X (a Pipeline that resizes is "
            "fine, one that crops or pads is not)."
        )
    ranks = _ranks(maps, rng)
    n_pixels = maps.shape[1] * maps.shape[2]
    noise_scale = noise * float(images.max() - images.min())
    if baseline is None:
        baseline = "mean" if metric == "deletion" else "blur"
    orders = ("morf", "lerf") if metric == "road" else (metric,)
    scores = np.empty(len(X))
    for start in range(0, len(X), batch_size):
        rows = slice(start, min(start + batch_size, len(X)))
        batch, batch_ranks = images[rows], ranks[rows]
        replaced = batch if metric == "road" else _baseline_images(batch, baseline)
        curves = {order: np.empty((len(batch), len(fractions))) for order in orders}
        for order in orders:
            perturbed = []
            for fraction in fractions:
                n_changed = round(fraction * n_pixels)
                if order == "lerf":
                    changed = batch_ranks >= n_pixels - n_changed
                elif order == "insertion":  # the most relevant pixels come back
                    changed = batch_ranks >= n_changed
                else:  # morf, deletion: the most relevant pixels go first
                    changed = batch_ranks < n_changed
                if metric == "road":
                    new = noisy_linear_impute(batch, changed, noise_scale, rng)
                else:
                    new = np.where(changed[..., None], replaced, batch)
                perturbed.append(new[..., 0] if grayscale else new)
            stacked = _as_dtype(np.concatenate(perturbed), X.dtype)
            with warnings.catch_warnings():
                # the perturbed copies are unusual by design: not the user's images
                warnings.simplefilter("ignore", OutOfDistributionWarning)
                probability = estimator.predict_proba(stacked)
            probability = probability.reshape(len(fractions), len(batch), -1)
            own = probability[:, np.arange(len(batch)), columns[rows]]
            curves[order] = own.T
        if metric == "road":
            scores[rows] = (curves["lerf"] - curves["morf"]).mean(axis=1)
        else:
            span = fractions[-1] - fractions[0]
            area = np.trapezoid(curves[metric], fractions, axis=1) / span
            scores[rows] = 1.0 - area if metric == "deletion" else area
    return scores
