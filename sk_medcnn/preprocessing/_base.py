"""Shared machinery of the image transformers: validation, layouts and chunks.

Every transformer of :mod:`sk_medcnn.preprocessing` works on channels-last
batches ``(n_samples, height, width, channels)`` of images or ``(n_samples,
depth, height, width, channels)`` of volumes; this module turns what the
user passes into that form and the result back into the user's layout
(flat rows stay flat rows, ``(n, H, W)`` stays ``(n, H, W)`` and ``(n, D, H,
W)`` stays ``(n, D, H, W)``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..utils._validation import (
    OUTPUT_CONTAINERS,
    Checker,
    check_feature_names,
    check_images,
    check_params,
    one_of,
    resolve_spatial_dims,
)

#: Bytes of float temporaries a transformer allocates per chunk of images:
#: large enough that numpy's per-call overhead vanishes, small enough that no
#: transformer holds a float copy of a whole data set.
CHUNK_BYTES = 32 * 2**20


def iter_chunks(
    n_samples: int, bytes_per_image: int, *, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[slice]:
    """Yield slices of consecutive images holding about ``chunk_bytes`` each.

    Parameters
    ----------
    n_samples : int
        Number of images.
    bytes_per_image : int
        Bytes of temporaries one image needs.
    chunk_bytes : int, default=CHUNK_BYTES
        Target size of a chunk's temporaries.

    Yields
    ------
    chunk : slice
        Indices of the next images; at least one image per chunk.
    """
    size = max(1, chunk_bytes // max(1, bytes_per_image))
    for start in range(0, n_samples, size):
        yield slice(start, min(start + size, n_samples))


def spatial_size(
    value: Any, images: NDArray[Any], name: str, owner: str
) -> tuple[int, ...]:
    """Return the output size for ``images`` from an int or a tuple of sizes.

    An int is a square (images) or a cube (volumes); a tuple must have one
    size per spatial axis of ``images`` ``(n, *spatial, C)``, else a
    ``ValueError`` names both shapes.
    """
    n_axes = images.ndim - 2
    if isinstance(value, Integral):
        return (int(value),) * n_axes
    sizes = tuple(int(size) for size in value)
    if len(sizes) != n_axes:
        kind = "volumes" if n_axes == 3 else "images"
        axes = "(depth, height, width)" if n_axes == 3 else "(height, width)"
        found = "x".join(str(size) for size in images.shape[1:-1])
        raise ValueError(
            f"{owner}: {name}={tuple(value)!r} has {len(sizes)} sizes, but X holds "
            f"{kind} of {found}; give {axes} or an int."
        )
    return sizes


# --- parameter checkers -----------------------------------------------------------


def spatial_size_like(value: Any, name: str) -> None:
    """Check an int >= 1, a pair ``(height, width)`` or a triple ``(depth, ...)``.

    :func:`~sk_medcnn.utils._validation.image_size_like` for transformers that
    also take volumes.
    """
    if isinstance(value, Integral) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{name} must be >= 1; got {value!r}.")
        return
    if not isinstance(value, tuple | list):
        raise TypeError(
            f"{name} must be an int, a tuple (height, width) or (depth, height, "
            f"width) of ints; got {value!r} ({type(value).__name__})."
        )
    if len(value) not in (2, 3) or not all(
        isinstance(size, Integral) and not isinstance(size, bool) for size in value
    ):
        raise ValueError(
            f"{name} must be an int, a tuple (height, width) of two ints or "
            f"(depth, height, width) of three; got {value!r}."
        )
    if min(value) < 1:
        raise ValueError(f"{name} must hold sizes >= 1; got {value!r}.")


def spline_order(value: Any, name: str) -> None:
    """Check that ``value`` is a spline order, an int from 0 to 5."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be an int from 0 to 5 (0 nearest, 1 bilinear, "
            f"3 bicubic); got {value!r} ({type(value).__name__})."
        )
    if not 0 <= int(value) <= 5:
        raise ValueError(
            f"{name} must be an int from 0 to 5 (0 nearest, 1 bilinear, "
            f"3 bicubic); got {value!r}."
        )


# --- layouts ------------------------------------------------------------------------


def restore_layout(images: NDArray[Any], ndim: int) -> NDArray[Any]:
    """Return channels-last ``images`` in the layout the input had.

    Parameters
    ----------
    images : ndarray of shape (n_samples, height, width, channels) or \
            (n_samples, depth, height, width, channels)
        Transformed images or volumes.
    ndim : {2, 3, 4, 5}
        Dimensions of the input: flat rows come back as flat rows
        ``(n_samples, n_values)``; an input without a channel axis, ``(n, H,
        W)`` or ``(n, D, H, W)``, comes back without one when a single
        channel is left.

    Returns
    -------
    images : ndarray
    """
    if ndim == 2:
        return images.reshape(images.shape[0], -1)
    if ndim == images.ndim - 1 and images.shape[-1] == 1:
        return images[..., 0]
    return images


class _ImageTransformer(TransformerMixin, BaseEstimator):
    """Validation, layout and ``set_output`` handling of the image transformers.

    Subclasses declare ``_parameter_constraints``, implement
    ``_transform_images`` (channels-last in and out) and, if they learn
    something, ``_fit_images``; they may add cross-parameter checks in
    ``_check_param_combination``. Not part of the public API.
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {}
    # fitted attributes every transformer sets in fit
    n_features_in_: int
    image_shape_: tuple[int, ...]
    #: True if the output keeps the input's dtype (geometry, channels);
    #: False if it is float32 (intensity transforms).
    _keeps_dtype: ClassVar[bool] = True

    # --- hooks -------------------------------------------------------------------
    def _check_param_combination(self) -> None:
        """Cross-parameter checks; run after the per-parameter ones."""

    def _fit_images(self, images: NDArray[Any]) -> None:
        """Learn from channels-last ``images``; stateless transformers learn nothing."""

    def _fitted_attributes(self) -> list[str] | None:
        """Attributes ``transform`` needs; ``None`` for a stateless transformer."""
        return None

    def _transform_images(self, images: NDArray[Any]) -> NDArray[Any]:
        raise NotImplementedError

    # --- public API -------------------------------------------------------------
    def fit(self, X: ArrayLike, y: Any = None) -> _ImageTransformer:
        """Check the parameters and ``X``, and learn what ``transform`` needs.

        Every transformer records ``n_features_in_`` and ``image_shape_``;
        a stateful one (``IntensityNormalizer(per_image=False)``) also learns
        its statistics here.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width), \
                (n_samples, height, width, channels), (n_samples, depth, \
                height, width[, channels]) or (n_samples, n_pixels)
            Images; flat rows are taken as square single-channel images.
        y : None
            Ignored; present for :class:`~sklearn.pipeline.Pipeline`.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        self._check_all_params()
        self._reset()
        images, _ = self._validate_images(X, reset=True)
        self._fit_images(images)
        return self

    def transform(self, X: ArrayLike) -> NDArray[Any]:
        """Transform the images ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width), \
                (n_samples, height, width, channels), (n_samples, depth, \
                height, width[, channels]) or (n_samples, n_pixels)
            Images; flat rows are taken as images of the shape seen in ``fit``
            (square single-channel images if the transformer was not fitted).

        Returns
        -------
        X_out : ndarray
            The transformed images, in the layout of ``X``: flat rows stay
            flat and ``(n, H, W)`` stays ``(n, H, W)`` unless the transformer
            changes the number of channels. Always a numpy array, whatever
            ``set_output`` was given.
        """
        check_is_fitted(self, self._fitted_attributes())
        # parameters changed by set_params after fit are caught here too
        self._check_all_params()
        images, ndim = self._validate_images(X, reset=False)
        return restore_layout(self._transform_images(images), ndim)

    def fit_transform(self, X: ArrayLike, y: Any = None) -> NDArray[Any]:
        """Fit to ``X`` and transform it, validating ``X`` once.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width), \
                (n_samples, height, width, channels), (n_samples, depth, \
                height, width[, channels]) or (n_samples, n_pixels)
            Images.
        y : None
            Ignored.

        Returns
        -------
        X_out : ndarray
            The transformed images, as :meth:`transform` returns them.
        """
        self._check_all_params()
        self._reset()
        images, ndim = self._validate_images(X, reset=True)
        self._fit_images(images)
        return restore_layout(self._transform_images(images), ndim)

    def set_output(self, *, transform: str | None = None) -> _ImageTransformer:
        """Accept scikit-learn's output configuration; images stay numpy arrays.

        Images of shape ``(n, H, W[, C])`` have no DataFrame form, so the
        transformers of :mod:`sk_medcnn.preprocessing` always return numpy
        arrays. This method exists so that ``Pipeline.set_output`` and
        ``sklearn.set_config(transform_output=...)`` work on pipelines that
        hold them: the other steps follow the configuration, these return
        arrays.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            The requested container; checked, then ignored.

        Returns
        -------
        self : object
            The transformer, unchanged.
        """
        one_of(OUTPUT_CONTAINERS)(transform, "transform")
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # images (n, H, W[, C]) and volumes
        tags.requires_fit = self._fitted_attributes() is not None
        tags.transformer_tags.preserves_dtype = (
            ["float64", "float32"] if self._keeps_dtype else ["float32"]
        )
        return tags

    # --- helpers ----------------------------------------------------------------
    def _check_all_params(self) -> None:
        check_params(self)
        self._check_param_combination()

    def _reset(self) -> None:
        """Forget a previous fit, so that a failed refit leaves no stale state."""
        for name in list(vars(self)):
            if name.endswith("_") and not name.startswith("__"):
                delattr(self, name)

    def _validate_images(
        self, X: ArrayLike, *, reset: bool
    ) -> tuple[NDArray[Any], int]:
        """Return ``X`` as channels-last images and the number of dimensions it had."""
        name = type(self).__name__
        fitted = hasattr(self, "n_features_in_")
        if reset or fitted:
            # DataFrame column names, and the feature count of 2-D arrays
            check_feature_names(self, X, reset=reset)
        if getattr(X, "shape", None) is None:
            X = np.asarray(X)  # lists and other array-likes
        ndim = len(X.shape)  # type: ignore[union-attr]
        # a subclass without a spatial_dims parameter reads 2-D images
        spatial_dims = resolve_spatial_dims(getattr(self, "spatial_dims", 2), X)
        image_shape: tuple[int, ...] | None = None
        expected_n_features = None
        if ndim == 2:
            n_pixels = int(X.shape[1])  # type: ignore[union-attr]
            if fitted and not reset:
                expected_n_features = self.n_features_in_
                if n_pixels == self.n_features_in_:
                    image_shape = self.image_shape_
                    spatial_dims = len(image_shape) - 1
            if image_shape is None and spatial_dims == 2:
                side = math.isqrt(n_pixels)
                if side * side == n_pixels:
                    image_shape = (side, side)
                else:
                    image_shape = (1, n_pixels)
                    warnings.warn(
                        f"X has {n_pixels} values per row, not a square number: each "
                        f"row is taken as a one-row image of shape (1, {n_pixels}). "
                        "Reshape X to (n_samples, height, width) or (n_samples, "
                        "height, width, channels) if the rows are flattened images.",
                        UserWarning,
                        stacklevel=4,
                    )
        images = check_images(
            X,
            image_shape=image_shape,
            estimator_name=name,
            expected_n_features=expected_n_features,
            spatial_dims=spatial_dims,
        )
        if 0 in images.shape[1:]:
            axes = "depth, height, width" if images.ndim == 5 else "height, width"
            raise ValueError(
                f"X holds empty images of shape {tuple(images.shape[1:])} "
                f"({axes}, channels); every size must be >= 1."
            )
        if reset:
            self.image_shape_ = tuple(int(size) for size in images.shape[1:])
            self.n_features_in_ = math.prod(self.image_shape_)
        return images, ndim
