"""Resample: images and volumes to a given pixel or voxel spacing."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_is_fitted

from ..utils._validation import Checker, boolean, optional, spatial_dims_like
from ._base import (
    _ImageTransformer,
    restore_layout,
    spatial_size,
    spatial_size_like,
    spline_order,
)
from ._geometry import _resize_batch, _resize_volumes

__all__ = ["Resample"]


def spacing_like(value: Any, name: str) -> None:
    """Check a spacing: a real > 0, or a tuple of 2 or 3 of them."""
    items = value if isinstance(value, tuple | list) else (value,)
    if isinstance(value, tuple | list) and len(value) not in (2, 3):
        raise ValueError(
            f"{name} must be a number > 0 or a tuple (height, width) or (depth, "
            f"height, width) of them, in mm; got {value!r}."
        )
    for item in items:
        if isinstance(item, bool) or not isinstance(item, Real):
            raise TypeError(
                f"{name} must hold real numbers (mm); got {value!r} "
                f"({type(item).__name__})."
            )
        if not math.isfinite(float(item)) or float(item) <= 0:
            raise ValueError(
                f"{name} must hold finite numbers > 0 (mm); got {value!r}."
            )


def _spacing_per_sample(
    value: Any, n_samples: int, n_axes: int, name: str
) -> NDArray[np.float64]:
    """Return ``value`` as an ``(n_samples, n_axes)`` array of spacings > 0."""
    try:
        spacing = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be numbers (mm), one spacing for all samples or one row "
            f"per sample; got {value!r}."
        ) from error
    kind = "(depth, height, width)" if n_axes == 3 else "(height, width)"
    if spacing.ndim == 0:
        spacing = np.full(n_axes, float(spacing))
    if spacing.ndim == 1:
        if spacing.shape[0] != n_axes:
            raise ValueError(
                f"{name} has {spacing.shape[0]} values, but X holds data with "
                f"{n_axes} spatial axes: give {kind} in mm."
            )
        spacing = np.broadcast_to(spacing, (n_samples, n_axes))
    if spacing.shape != (n_samples, n_axes):
        raise ValueError(
            f"{name} must be one spacing {kind} or one per sample, shape "
            f"({n_samples}, {n_axes}); got an array of shape {spacing.shape}."
        )
    if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
        raise ValueError(f"{name} must hold finite spacings > 0 (mm).")
    return spacing


def _fit_to_shape(images: NDArray[Any], shape: tuple[int, ...]) -> NDArray[Any]:
    """Centre-crop or pad ``(n, *spatial, C)`` to ``shape``; pad with each minimum."""
    sizes = images.shape[1:-1]
    if tuple(sizes) == tuple(shape):
        return images
    out = np.empty((images.shape[0], *shape, images.shape[-1]), dtype=images.dtype)
    spatial = tuple(range(1, images.ndim - 1))
    out[...] = images.min(axis=(*spatial, images.ndim - 1), keepdims=True)
    source, target = [slice(None)], [slice(None)]
    for have, want in zip(sizes, shape, strict=True):
        # the offsets of CenterCrop and Pad: the extra row at the end
        if have >= want:
            start = (have - want) // 2
            source.append(slice(start, start + want))
            target.append(slice(None))
        else:
            start = (want - have) // 2
            source.append(slice(None))
            target.append(slice(start, start + have))
    out[tuple(target)] = images[tuple(source)]
    return out


class Resample(_ImageTransformer):
    """Resample images or volumes to a given pixel or voxel spacing (in mm).

    The input's spacing is metadata of the data, not a parameter of the
    model: pass it with ``X``, ``transform(X, spacing=...)``, one spacing for
    all samples or one per sample (e.g. from
    ``sk_medcnn.io.read_volume(path, return_spacing=True)``). In a
    :class:`~sklearn.pipeline.Pipeline`, request it with scikit-learn's
    metadata routing: ``Resample(1.0).set_transform_request(spacing=True)``
    under ``sklearn.set_config(enable_metadata_routing=True)``, then
    ``pipeline.fit(X, y, spacing=s)`` and ``pipeline.predict(X, spacing=s)``.
    For data of one known spacing (a MedMNIST set), give it once as
    ``input_spacing`` instead.

    Parameters
    ----------
    spacing : float or tuple of (float, float) or of (float, float, float)
        Target spacing in mm: ``(height, width)`` for images, ``(depth,
        height, width)`` for volumes, or one number for every axis.
    input_spacing : float or tuple of float, default=None
        The spacing of every input sample, as ``spacing``; None: it comes
        with each call (``spacing=``). Giving both is an error.
    shape : int or tuple of int, default=None
        Output size after resampling, as in :class:`CenterCrop`: each
        resampled image is centre-cropped or padded (with its own minimum)
        to it. None: the resampled size, ``round(size * input / target)``
        per axis, which must then be the same for every sample.
    order : int, default=1
        Spline order: 0 nearest neighbour, 1 (bi/tri)linear, 3 cubic (0 to 5).
    anti_aliasing : bool, default=True
        Smooth axes that shrink before interpolating, as :class:`Resize`.
    spatial_dims : {"auto", 2, 3}, default="auto"
        2 for images, 3 for volumes; ``"auto"`` tells them apart by the shape
        of ``X``: 5 axes, or 4 whose last is not 1, 3 or 4, are volumes
        (``sk_medcnn.utils.infer_spatial_dims``). Pass 2 for 2-D images of 2
        or more than 4 channels.

    Attributes
    ----------
    n_features_in_ : int
        Values per image seen in ``fit``.
    image_shape_ : tuple of int
        ``(height, width, channels)`` or ``(depth, height, width, channels)``
        of the images seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of a DataFrame of flat pixels given to ``fit``.

    See Also
    --------
    Resize : Resize to a number of pixels instead of a spacing.
    CenterCrop, Pad : Fit resampled data to one size.

    Notes
    -----
    Each group of samples with one spacing is resized as :class:`Resize`
    does (scikit-image's interpolation, separable, batched), to the size
    that covers the same field of view at the target spacing, rounded to
    whole voxels: the spacing reached is ``size * input / round(size *
    input / target)``, within half a voxel of the field of view. The
    dtype is kept (integers rounded and clipped).

    Why metadata and not a fitted attribute: spacing differs between
    scanners and patients, so it belongs to each sample, like
    ``sample_weight``; scikit-learn's metadata routing carries such
    per-sample values through pipelines and cross-validation (where the
    rows of ``spacing`` are split with ``X``).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_medcnn.preprocessing import Resample
    >>> X = np.zeros((2, 10, 32, 32), dtype=np.int16)  # 5 mm slices, 0.8 mm pixels
    >>> resample = Resample((2.0, 1.6, 1.6))
    >>> resample.fit_transform(X, spacing=(5.0, 0.8, 0.8)).shape
    (2, 25, 16, 16)
    >>> per_sample = [(5.0, 0.8, 0.8), (2.5, 1.6, 1.6)]
    >>> Resample(2.0, shape=(24, 24, 24)).fit_transform(X, spacing=per_sample).shape
    (2, 24, 24, 24)
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {
        "spacing": spacing_like,
        "input_spacing": optional(spacing_like),
        "shape": optional(spatial_size_like),
        "order": spline_order,
        "anti_aliasing": boolean,
        "spatial_dims": spatial_dims_like,
    }

    def __init__(
        self,
        spacing: float | tuple[float, ...],
        *,
        input_spacing: float | tuple[float, ...] | None = None,
        shape: int | tuple[int, ...] | None = None,
        order: int = 1,
        anti_aliasing: bool = True,
        spatial_dims: int | str = "auto",
    ) -> None:
        self.spacing = spacing
        self.input_spacing = input_spacing
        self.shape = shape
        self.order = order
        self.anti_aliasing = anti_aliasing
        self.spatial_dims = spatial_dims

    def fit_transform(
        self, X: ArrayLike, y: Any = None, *, spacing: ArrayLike | None = None
    ) -> NDArray[Any]:
        """Check ``X`` and resample it.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width), \
                (n_samples, height, width, channels), (n_samples, depth, \
                height, width[, channels]) or (n_samples, n_pixels)
            Images or volumes.
        y : None
            Ignored.
        spacing : array-like of shape (n_spatial,) or (n_samples, n_spatial), \
                default=None
            The input's spacing in mm (depth first), for all samples or per
            sample; required unless ``input_spacing`` was given.

        Returns
        -------
        X_out : ndarray
            The resampled images, in the layout of ``X``.
        """
        self._check_all_params()
        self._reset()
        images, ndim = self._validate_images(X, reset=True)
        return restore_layout(self._resample(images, spacing), ndim)

    def transform(self, X: ArrayLike, spacing: ArrayLike | None = None) -> NDArray[Any]:
        """Resample ``X`` to ``self.spacing``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width), \
                (n_samples, height, width, channels), (n_samples, depth, \
                height, width[, channels]) or (n_samples, n_pixels)
            Images or volumes.
        spacing : array-like of shape (n_spatial,) or (n_samples, n_spatial), \
                default=None
            The input's spacing in mm (depth first), for all samples or per
            sample; required unless ``input_spacing`` was given.

        Returns
        -------
        X_out : ndarray
            The resampled images, in the layout of ``X``.
        """
        check_is_fitted(self)
        self._check_all_params()
        images, ndim = self._validate_images(X, reset=False)
        return restore_layout(self._resample(images, spacing), ndim)

    def _transform_images(self, images: NDArray[Any]) -> NDArray[Any]:
        return self._resample(images, None)

    def _resample(self, images: NDArray[Any], spacing: Any) -> NDArray[Any]:
        n_samples, n_axes = images.shape[0], images.ndim - 2
        if spacing is not None and self.input_spacing is not None:
            raise ValueError(
                "Resample got the input spacing twice: input_spacing="
                f"{self.input_spacing!r} and spacing= in the call; give one."
            )
        if spacing is None and self.input_spacing is None:
            raise ValueError(
                "Resample needs the spacing of the input (mm): pass "
                "transform(X, spacing=...) (in a Pipeline, "
                "Resample(...).set_transform_request(spacing=True) with metadata "
                "routing enabled), or Resample(..., input_spacing=...)."
            )
        source = spacing if spacing is not None else self.input_spacing
        name = "spacing" if spacing is not None else "input_spacing"
        inputs = _spacing_per_sample(source, n_samples, n_axes, name)
        target = _spacing_per_sample(self.spacing, 1, n_axes, "spacing")[0]
        sizes = np.asarray(images.shape[1:-1], dtype=np.float64)
        out_sizes = np.maximum(1, np.rint(sizes * inputs / target)).astype(int)
        shape = (
            None
            if self.shape is None
            else spatial_size(self.shape, images, "shape", "Resample")
        )
        groups = np.unique(out_sizes, axis=0)
        if shape is None and len(groups) > 1:
            found = ", ".join("x".join(map(str, group)) for group in groups)
            raise ValueError(
                f"Resample: the samples' spacings give different sizes ({found}) at "
                f"spacing={self.spacing!r}; pass shape= to crop or pad them to one."
            )
        final = tuple(int(size) for size in (shape or groups[0]))
        out = np.empty((n_samples, *final, images.shape[-1]), dtype=images.dtype)
        for size in groups:
            members = np.flatnonzero(np.all(out_sizes == size, axis=1))
            part = images[members]
            if tuple(size) != tuple(images.shape[1:-1]):
                resize = _resize_volumes if n_axes == 3 else _resize_batch
                part = resize(
                    part,
                    tuple(int(value) for value in size),  # type: ignore[arg-type]
                    order=int(self.order),
                    anti_aliasing=bool(self.anti_aliasing),
                    preserve_range=True,
                )
            out[members] = _fit_to_shape(part, final)
        return out
