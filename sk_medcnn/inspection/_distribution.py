"""A word when an image's intensities are unlike the training images'."""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..utils._validation import positive_float

__all__ = [
    "DistributionCheck",
    "IntensityCheck",
    "check_distribution",
    "check_intensities",
]


class DistributionCheck(NamedTuple):
    """Which images look like the training images, why not, and their scores.

    A tuple ``(in_distribution, reasons, ood_score)``.
    """

    in_distribution: NDArray[np.bool_]
    """One flag per image: True when neither check flagged it."""

    reasons: list[str]
    """One string per image: "" when in distribution, else what differs."""

    ood_score: NDArray[np.float64]
    """The learned out-of-distribution score; NaN when the model has none."""


class IntensityCheck(NamedTuple):
    """Which images look like the training images in their intensities, and why not.

    A tuple ``(in_distribution, reasons)``.
    """

    in_distribution: NDArray[np.bool_]
    """One flag per image: True when nothing below was found."""

    reasons: list[str]
    """One string per image: "" when in distribution, else what differs."""


def check_intensities(
    estimator: Any,
    X: ArrayLike,
    *,
    range_std: float = 6.0,
    max_outside: float = 0.01,
    max_shift: float = 3.0,
    max_spread_ratio: float = 10.0,
) -> IntensityCheck:
    """Flag images whose intensities are unlike those the model was trained on.

    A network trained on 8-bit chest X-rays answers a head CT in Hounsfield
    units, an MR slice or a blank image with a confident probability and no
    complaint. This compares each image, as the model sees it (after a
    Pipeline's preprocessing), with the per-channel mean and standard
    deviation of the training images that the fitted estimator keeps
    (``input_mean_``, ``input_std_``), and flags an image when:

    - **range**: more than ``max_outside`` of its pixels lie outside the
      training range, taken as ``mean +/- range_std * std`` (by Chebyshev's
      inequality at most 1/36 of any distribution's values lie beyond 6
      standard deviations; 8-bit radiographs stay within about 3);
    - **mean**: its mean lies more than ``max_shift`` training standard
      deviations from the training mean;
    - **spread**: its standard deviation differs from the training one by
      more than a factor ``max_spread_ratio`` either way (a flat or blank
      image, or values on another scale).

    It is a check of the intensities only, cheap and easy to read: an image
    of the right scale but of another body part or modality can pass it.

    Parameters
    ----------
    estimator : MedicalCNNClassifier, MedicalCNNRegressor or Pipeline
        A fitted estimator, or a fitted Pipeline ending in one.
    X : array-like of images
        As given to the estimator's ``predict`` (file paths too, when the
        Pipeline starts with a loader).
    range_std : float, default=6.0
        Half-width of the training range, in training standard deviations.
    max_outside : float, default=0.01
        The share of an image's pixels allowed outside the training range.
    max_shift : float, default=3.0
        The largest distance of an image's mean from the training mean, in
        training standard deviations.
    max_spread_ratio : float, default=10.0
        The largest factor between an image's standard deviation and the
        training one.

    Returns
    -------
    check : IntensityCheck
        ``check.in_distribution``, a bool array of shape (n_samples,), and
        ``check.reasons``, one string per image ("" when in distribution).

    Raises
    ------
    TypeError
        If ``estimator`` is not a fitted sk_medcnn estimator or a Pipeline
        ending in one.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        If a threshold is not > 0, or ``X`` does not fit the model.

    See Also
    --------
    MedicalCNNClassifier.predict_proba : Warns when a whole batch is on another
        intensity scale.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn import MedicalCNNClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.inspection import check_intensities
    >>> X, y = make_lesion_phantoms(32, image_size=16, random_state=0)
    >>> clf = MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> hounsfield = X[:2] * 8.0 - 1000  # the same images in HU-like units
    >>> check = check_intensities(clf, np.concatenate([X[:2], hounsfield]))
    >>> check.in_distribution.tolist()
    [True, True, False, False]
    """
    _, _, flags, reasons = _intensity_check(
        estimator,
        X,
        range_std=range_std,
        max_outside=max_outside,
        max_shift=max_shift,
        max_spread_ratio=max_spread_ratio,
    )
    return IntensityCheck(flags, reasons)


def check_distribution(
    estimator: Any,
    X: ArrayLike,
    *,
    range_std: float = 6.0,
    max_outside: float = 0.01,
    max_shift: float = 3.0,
    max_spread_ratio: float = 10.0,
) -> DistributionCheck:
    """Flag images unlike the training images: by intensities and by learned score.

    Combines :func:`check_intensities` (the intensity range and statistics)
    with the out-of-distribution score the estimator learned in ``fit``
    (:meth:`~sk_medcnn.MedicalCNNClassifier.ood_score`, the Mahalanobis
    distance of the network's penultimate features): an image is out of
    distribution when either flags it, the score when it exceeds
    ``ood_threshold_`` (set for the false-alarm rate
    ``ood_false_alarm_rate``). The learned score also catches images of the
    right intensity scale but of another kind (another body part or
    modality, noise); see :doc:`/inspection` for how well on which images.

    Parameters
    ----------
    estimator : MedicalCNNClassifier, MedicalCNNRegressor or Pipeline
        A fitted estimator, or a fitted Pipeline ending in one.
    X : array-like of images
        As given to the estimator's ``predict``.
    range_std, max_outside, max_shift, max_spread_ratio : float
        The intensity checks' thresholds, as in :func:`check_intensities`.

    Returns
    -------
    check : DistributionCheck
        ``check.in_distribution`` (bool, shape (n_samples,)),
        ``check.reasons`` (one string per image, "" when in distribution) and
        ``check.ood_score`` (float, shape (n_samples,); NaN when the model
        learned no score, e.g. fitted with ``ood_false_alarm_rate=None``).

    Raises
    ------
    TypeError
        If ``estimator`` is not a fitted sk_medcnn estimator or a Pipeline
        ending in one.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        If a threshold is not > 0, or ``X`` does not fit the model.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn import MedicalCNNClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.inspection import check_distribution
    >>> X, y = make_lesion_phantoms(64, image_size=16, random_state=0)
    >>> clf = MedicalCNNClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.integers(0, 256, size=(2, 16, 16)).astype(np.uint8)
    >>> check = check_distribution(clf, noise)
    >>> check.in_distribution.tolist()
    [False, False]
    """
    final, images, flags, reasons = _intensity_check(
        estimator,
        X,
        range_std=range_std,
        max_outside=max_outside,
        max_shift=max_shift,
        max_spread_ratio=max_spread_ratio,
    )
    score = np.full(len(images), np.nan)
    if final._has_ood_score():
        score = final.ood_score(images)
        threshold = float(final.ood_threshold_)
        for index in np.flatnonzero(score > threshold):
            found = (
                f"out-of-distribution score {score[index]:.3g} above the "
                f"threshold {threshold:.3g}"
            )
            reasons[index] = "; ".join(filter(None, (found, reasons[index])))
            flags[index] = False
    return DistributionCheck(flags, reasons, score)


def _intensity_check(
    estimator: Any, X: ArrayLike, **thresholds: float
) -> tuple[Any, NDArray[Any], NDArray[np.bool_], list[str]]:
    """Return the final estimator, ``X`` as it sees it, and the intensity verdicts."""
    final, images = _model_images(estimator, X, **thresholds)
    flags, reasons = _intensity_reasons(final, images, **thresholds)
    return final, images, flags, reasons


def _model_images(
    estimator: Any, X: ArrayLike, **thresholds: float
) -> tuple[Any, NDArray[Any]]:
    """Check the thresholds; return the final estimator and ``X`` as it sees it."""
    for name, value in thresholds.items():
        positive_float(value, name)
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    if not hasattr(final, "_check_predict_images"):
        raise TypeError(
            "estimator must be a fitted sk_medcnn estimator or a Pipeline ending "
            f"in one; got {type(final).__name__}."
        )
    check_is_fitted(final, "net_")
    if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
        X = estimator[:-1].transform(X)
    with warnings.catch_warnings():  # predict warns about the scale itself
        warnings.simplefilter("ignore")
        images = final._check_predict_images(X)
    return final, images


def _intensity_reasons(
    final: Any,
    images: NDArray[Any],
    *,
    range_std: float,
    max_outside: float,
    max_shift: float,
    max_spread_ratio: float,
) -> tuple[NDArray[np.bool_], list[str]]:
    """Flag each image's intensities against the training statistics."""
    mean = np.asarray(final.input_mean_, dtype=np.float64).reshape(-1)
    std = np.asarray(final.input_std_, dtype=np.float64).reshape(-1)
    std = np.where(std > 0, std, 1.0)
    low, high = mean - range_std * std, mean + range_std * std
    flags = np.ones(len(images), dtype=bool)
    reasons: list[str] = []
    for index in range(len(images)):
        image = np.asarray(images[index], dtype=np.float64)
        image = image.reshape(-1, image.shape[-1])  # (pixels, channels)
        found = []
        outside = float(np.mean((image < low) | (image > high)))
        if outside > max_outside:
            found.append(
                f"{outside:.0%} of pixels outside the training range "
                f"[{_number(low)}, {_number(high)}]"
            )
        image_mean = image.mean(axis=0)
        shift = float(np.max(np.abs(image_mean - mean) / std))
        if shift > max_shift:
            found.append(
                f"mean {_number(image_mean)} is {shift:.1f} training standard "
                f"deviations from {_number(mean)}"
            )
        spread = image.std(axis=0)
        ratio = float(np.mean(spread / std))
        if ratio > max_spread_ratio or ratio < 1 / max_spread_ratio:
            what = "almost uniform image" if ratio < 1 / max_spread_ratio else "spread"
            found.append(
                f"{what}: standard deviation {_number(spread)} against "
                f"{_number(std)} in training"
            )
        flags[index] = not found
        reasons.append("; ".join(found))
    return flags, reasons


def _number(values: Any) -> str:
    """Format a value (or the mean of per-channel values) to 3 significant digits."""
    value = float(np.mean(values))
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"
