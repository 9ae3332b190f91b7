"""The out-of-distribution score an estimator learns in ``fit`` (Lee et al., 2018)."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from .._ood import (
    OOD_MAX_FEATURES,
    OOD_MAX_FIT_ROWS,
    feature_layer,
    fit_mahalanobis,
    mahalanobis_score,
    ood_threshold,
    ood_warning,
)
from ..exceptions import OutOfDistributionWarning
from ..utils._batches import RowReader
from ..utils._image_source import ImageSource
from ..utils._inference import predict_raw_with_features
from ..utils._runtime import torch_threads
from ..utils._validation import (
    warn_user,
)
from ._network import (
    inference_batch_size,
)

if TYPE_CHECKING:
    from ._base import _BaseMedicalCNN

logger = logging.getLogger(__name__)


def fit_ood(
    estimator: _BaseMedicalCNN,
    images: NDArray[Any],
    y_encoded: NDArray[Any],
    train_index: NDArray[np.intp],
    valid_index: NDArray[np.intp] | None,
    seed: int,
) -> None:
    """Learn the out-of-distribution score and set its threshold.

    The class means and covariance of the penultimate features come from
    (at most :data:`OOD_MAX_FIT_ROWS` of) the training rows; the
    threshold from the held-out rows, which the network never trained on.
    """
    estimator.ood_location_ = estimator.ood_precision_ = estimator.ood_threshold_ = None
    estimator.ood_false_alarm_rate_ = None
    estimator.ood_n_held_out_ = 0
    rate = estimator.ood_false_alarm_rate
    if rate is None:
        return
    try:
        capture = feature_layer(estimator.net_.module_.body, estimator.architecture)
    except ValueError as error:
        warn_user(
            f"no out-of-distribution score was learned ({error}); set "
            "ood_false_alarm_rate=None to silence this."
        )
        return
    rng = np.random.default_rng(seed)
    fit_rows = train_index
    if len(fit_rows) > OOD_MAX_FIT_ROWS:
        fit_rows = np.sort(rng.choice(fit_rows, OOD_MAX_FIT_ROWS, replace=False))
    features = penultimate_features(estimator, images, capture, fit_rows)
    if features.shape[1] > OOD_MAX_FEATURES:
        warn_user(
            f"no out-of-distribution score was learned: the network's features "
            f"have {features.shape[1]} values (more than {OOD_MAX_FEATURES}); "
            "set ood_false_alarm_rate=None to silence this."
        )
        return
    groups = estimator._ood_groups(y_encoded[fit_rows])
    location, precision = fit_mahalanobis(features, groups)
    if valid_index is not None and len(valid_index):
        held_out = penultimate_features(estimator, images, capture, valid_index)
        estimator.ood_n_held_out_ = len(valid_index)
    else:
        held_out = features
        logger.info(
            "ood_false_alarm_rate=%s: no held-out split (calibration=None and "
            "early_stopping=False), so the threshold is set on training rows, "
            "and flags more new images than stated",
            rate,
        )
    scores = mahalanobis_score(held_out, location, precision)
    estimator.ood_location_ = location
    estimator.ood_precision_ = precision
    estimator.ood_threshold_ = ood_threshold(scores, rate)
    estimator.ood_false_alarm_rate_ = float(rate)


def penultimate_features(
    estimator: _BaseMedicalCNN,
    images: ImageSource,
    capture: tuple[nn.Module, str],
    rows: NDArray[np.intp] | None = None,
    reduce: Any = None,
) -> NDArray[Any]:
    """Penultimate features of checked images (one pass, no TTA).

    With ``rows``, of those rows only, read a batch at a time (no copy of
    the selected images); with ``reduce``, what it makes of each batch's
    features (as :func:`predict_raw_with_features`).
    """
    batch_size = inference_batch_size(estimator.batch_size, estimator.image_shape_)
    chunks: list[Any] = [None]
    if rows is not None:  # a training batch of rows at a time
        chunks = np.array_split(
            rows, max(1, math.ceil(len(rows) / estimator.batch_size))
        )
        read = RowReader(images)
    collected = []
    with torch_threads(getattr(estimator, "n_threads", None)):
        for chunk in chunks:
            _, features = predict_raw_with_features(
                estimator.net_.module_,
                images if chunk is None else read(chunk),
                device=torch.device(estimator.net_.device),
                batch_size=batch_size,
                capture=capture,
                reduce=reduce,
            )
            assert features is not None
            collected.append(features)
    return np.concatenate(collected)


def has_ood_score(estimator: _BaseMedicalCNN) -> bool:
    return getattr(estimator, "ood_threshold_", None) is not None


def mahalanobis(
    estimator: _BaseMedicalCNN, features: NDArray[np.float32]
) -> NDArray[np.float64]:
    """Score features for being unlike the training images (:meth:`ood_score`)."""
    # only called with a learned score: fit sets (and the loader checks)
    # ood_location_, ood_precision_ and ood_threshold_ together
    location, precision = estimator.ood_location_, estimator.ood_precision_
    assert location is not None
    assert precision is not None
    return mahalanobis_score(features, location, precision)


def warn_if_out_of_distribution(
    estimator: _BaseMedicalCNN, score: NDArray[np.float64]
) -> None:
    """Warn when ``predict`` meets images unlike the training images."""
    threshold, rate = estimator.ood_threshold_, estimator.ood_false_alarm_rate_
    assert threshold is not None  # as in _mahalanobis
    assert rate is not None
    message = ood_warning(score, float(threshold), float(rate))
    if message is not None:
        warn_user(message, OutOfDistributionWarning)
