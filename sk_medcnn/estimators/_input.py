"""The images an estimator is given, checked once: for ``fit`` and for ``predict``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..io._files_array import ImageFiles, is_path_array
from ..utils._dataset_array import DatasetImages, dataset_targets, is_dataset
from ..utils._image_source import ImageSource
from ..utils._validation import (
    check_feature_names,
    check_images,
    infer_spatial_dims,
    resolve_spatial_dims,
    warn_user,
)
from ._network import (
    axes,
    kind,
)

if TYPE_CHECKING:
    from ._base import _BaseMedicalCNN


def fit_images(estimator: _BaseMedicalCNN, X: Any, y: Any) -> tuple[ImageSource, Any]:
    """Return the training images as an image source, and ``y``.

    ``X`` is an array, memmap or tensor (checked and reshaped here), a sequence
    of file paths or a torch Dataset (both read lazily, a batch at a time);
    with a Dataset and ``y=None``, ``y`` comes from the dataset.
    """
    name = type(estimator).__name__
    if y is None and is_dataset(X):
        y = dataset_targets(X, name)
    if y is None:
        raise ValueError(f"{name} requires y to be passed, but the target y is None.")
    check_feature_names(estimator, X, reset=True)
    images: ImageSource
    if is_dataset(X):
        if estimator.image_shape is not None:
            raise ValueError(
                "image_shape reshapes flat rows and resizes image files; a "
                "dataset's images are used as they are: resize them in the "
                "dataset, or set image_shape=None."
            )
        dims = estimator.spatial_dims
        return DatasetImages(
            X, estimator_name=name, spatial_dims=dims if dims in (2, 3) else None
        ), y
    if is_path_array(X):
        return ImageFiles(
            X,
            image_shape=estimator.image_shape,
            spatial_dims=estimator.spatial_dims,
            estimator_name=name,
        ), y
    images = check_images(
        X,
        image_shape=estimator.image_shape,
        estimator_name=name,
        spatial_dims=resolve_spatial_dims(
            estimator.spatial_dims, X, image_shape=estimator.image_shape
        ),
    )
    wanted = tuple(int(size) for size in estimator.image_shape or ())
    if wanted and tuple(images.shape[1 : 1 + len(wanted)]) != wanted:
        raise ValueError(
            f"image_shape={tuple(estimator.image_shape or ())} reshapes flat rows and "
            f"resizes image files, but X holds images of shape "
            f"{tuple(images.shape[1:])}: resize them first "
            "(sk_medcnn.preprocessing.Resize), or set image_shape=None."
        )
    return images, y


def check_predict_images(estimator: _BaseMedicalCNN, X: Any) -> ImageSource:
    # X: an array, memmap or tensor, file paths, or a torch Dataset
    if not hasattr(estimator, "net_"):  # what check_is_fitted tests, minus its tags
        check_is_fitted(estimator, "net_")
    name = type(estimator).__name__
    if is_path_array(X):
        # files are read batch by batch, resized to the fitted image shape
        files = ImageFiles(
            X,
            image_shape=estimator.image_shape_,
            spatial_dims=len(estimator.image_shape_) - 1,
            estimator_name=name,
        )
        warn_if_other_intensity_scale(estimator, files, n_check=8)
        return files
    images: ImageSource
    if is_dataset(X):
        images = DatasetImages(
            X, estimator_name=name, spatial_dims=len(estimator.image_shape_) - 1
        )
    else:
        shape = tuple(getattr(X, "shape", ()))
        if len(shape) == 2 and shape == estimator.image_shape_[:2] != (1, shape[1]):
            raise ValueError(
                f"X has {shape[1]} features, but {name} is expecting "
                f"{estimator.n_features_in_} features as input: X looks like one "
                f"image of shape {shape}; pass a batch of one, X[np.newaxis]."
            )
        check_feature_names(estimator, X, reset=False)
        spatial_dims = len(estimator.image_shape_) - 1
        ndim = getattr(X, "ndim", None)
        if ndim is not None and ndim > 2 and ndim - spatial_dims not in (1, 2):
            raise ValueError(
                f"X has shape {tuple(shape)}, but {name} was fitted on "
                f"{kind(spatial_dims)} of shape {estimator.image_shape_} "
                f"({axes(spatial_dims)}): pass X of shape (n_samples, "
                f"{', '.join(str(side) for side in estimator.image_shape_)})."
            )
        images = check_images(
            X,
            image_shape=estimator.image_shape_,
            estimator_name=name,
            expected_n_features=estimator.n_features_in_,
            spatial_dims=spatial_dims,
        )
    if tuple(images.shape[1:]) != estimator.image_shape_:
        n_features = math.prod(images.shape[1:])
        prefix = ""
        if n_features != estimator.n_features_in_:  # scikit-learn's wording first
            prefix = (
                f"X has {n_features} features, but {name} is expecting "
                f"{estimator.n_features_in_} features as input: "
            )
        spatial_dims = len(estimator.image_shape_) - 1
        advice = "resize them first (sk_medcnn.preprocessing.Resize)."
        if getattr(X, "ndim", 0) > 2 and infer_spatial_dims(X) != spatial_dims:
            advice = (
                f"X of shape {tuple(X.shape)} looks like "  # type: ignore[union-attr]
                f"{kind(infer_spatial_dims(X))}: a model of "
                f"{kind(spatial_dims)} cannot predict them."
            )
        raise ValueError(
            f"{prefix}X holds {kind(spatial_dims)} of shape "
            f"{tuple(images.shape[1:])}, but {name} was fitted on "
            f"{kind(spatial_dims)} of shape {estimator.image_shape_} "
            f"({axes(spatial_dims)}); {advice}"
        )
    if not is_dataset(X):
        warn_if_other_intensity_scale(estimator, images, n_check=64)
    return images


def warn_if_other_intensity_scale(
    estimator: _BaseMedicalCNN, images: Any, *, n_check: int
) -> None:
    """Warn when the first images are on another scale than the training ones.

    A network trained on 0-255 pixels predicts nonsense on 0-1 or 16-bit
    ones, without any error. Both the spread (standard deviation) and the
    magnitude (largest absolute value, against the training images' |mean|
    + 3 std) must differ by a factor of 10 the same way: a blank or flat
    image (an air-only CT slice, an even exposure) has a small spread but
    values of the usual magnitude, and does not warn.
    """
    mean = np.abs(np.asarray(getattr(estimator, "input_mean_", 0.0), dtype=float))
    std = np.asarray(getattr(estimator, "input_std_", 0.0), dtype=float)
    fitted_spread = float(std.mean())
    fitted_magnitude = float((mean + 3 * std).mean())
    # at most 2**16 pixel values: a small, fixed cost whatever the image size
    per_image = math.prod(images.shape[1:])
    n_check = min(len(images), n_check, max(1, 2**16 // per_image))
    sample = np.asarray(images[:n_check], dtype=np.float32)
    spatial = tuple(range(sample.ndim - 1))
    spread = float(sample.std(axis=spatial, dtype=np.float64).mean())
    magnitude = float(np.abs(sample).max())
    if min(fitted_spread, fitted_magnitude, spread, magnitude) <= 0:
        return
    ratios = (spread / fitted_spread, magnitude / fitted_magnitude)
    if not (max(ratios) < 0.1 or min(ratios) > 10):
        return
    warn_user(
        f"the intensities of X spread {spread:.3g} and reach {magnitude:.3g} "
        f"(the first {len(sample)} images), but those of the training images "
        f"spread {fitted_spread:.3g} around {float(mean.mean()):.3g}: were "
        "they scaled differently (0-255 against 0-1, 8 against 16 bits)? "
        "Preprocess the images as for fit, or predictions are meaningless."
    )
