"""Shared machinery of the random augmenters: validation, seeding, numpy glue.

Every augmenter follows MONAI's draw-then-apply split: ``_draw`` takes all
the random parameters of a batch from an explicit ``torch.Generator``, and
``_apply`` applies them with batched torch operations. ``augment_batch`` is
the two in a row; ``fit_transform`` runs it on numpy images, chunk by chunk.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from numbers import Real
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin

from ..utils._runtime import draw_seeds
from ..utils._validation import (
    check_feature_names,
    check_images,
    check_params,
    resolve_spatial_dims,
)

Checker = Callable[[Any, str], None]

#: Float values per chunk of ``fit_transform`` (16 MiB of float32): memory
#: grows with the chunk, not with a float copy of the whole data set.
_CHUNK_VALUES = 2**22


def make_generator(random_state: Any) -> torch.Generator:
    """Build a CPU ``torch.Generator`` seeded from ``random_state``.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        Resolved once with :func:`sklearn.utils.check_random_state`.

    Returns
    -------
    generator : torch.Generator
    """
    (seed,) = draw_seeds(random_state, 1)
    return torch.Generator().manual_seed(seed)


def range_pair(
    *,
    low: float,
    high: float,
    include_low: bool = True,
    what: str = "",
) -> Checker:
    """Build a checker of a ``(low, high)`` pair of finite reals, ordered.

    Parameters
    ----------
    low, high : float
        Bounds every value must respect.
    include_low : bool, default=True
        Whether a value may equal ``low``.
    what : str, default=""
        What the values mean, appended to the message (e.g. "zoom factors").

    Returns
    -------
    checker : callable
        ``checker(value, name)`` raising ``TypeError`` or ``ValueError``.
    """
    lower = ">=" if include_low else ">"
    bounds = f"{low:g} {'<=' if include_low else '<'} low <= high <= {high:g}"

    def check(value: Any, name: str) -> None:
        if not isinstance(value, tuple | list) or len(value) != 2:
            raise TypeError(
                f"{name} must be a (low, high) pair with {bounds}{what}; got {value!r}."
            )
        for item in value:
            if isinstance(item, bool) or not isinstance(item, Real):
                raise TypeError(
                    f"{name} must hold real numbers; got {value!r} "
                    f"({type(item).__name__})."
                )
            if not math.isfinite(float(item)):
                raise ValueError(f"{name} must hold finite numbers; got {value!r}.")
        first, second = (float(item) for item in value)
        too_low = first < low if include_low else first <= low
        if too_low or second > high or first > second:
            raise ValueError(
                f"{name} must be a (low, high) pair with {bounds}{what} (low "
                f"{lower} {low:g}, in order); got {value!r}."
            )

    return check


def bounded_fraction_pair(value: Any, name: str) -> None:
    """Check a pair of fractions in [0, 1], each bounding a symmetric range."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(
            f"{name} must be a pair (horizontal, vertical) of fractions in [0, 1]; "
            f"got {value!r}."
        )
    for item in value:
        if isinstance(item, bool) or not isinstance(item, Real):
            raise TypeError(
                f"{name} must hold real numbers; got {value!r} ({type(item).__name__})."
            )
        if not 0.0 <= float(item) <= 1.0:  # also refuses NaN
            raise ValueError(
                f"{name} must be a pair (horizontal, vertical) of fractions in "
                f"[0, 1]; got {value!r}."
            )


def bounded_float(high: float, *, unit: str = "", include_high: bool = True) -> Checker:
    """Build a checker of a finite real in ``[0, high]`` (or ``[0, high)``)."""
    closing = "]" if include_high else ")"

    def check(value: Any, name: str) -> None:
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(
                f"{name} must be a real number; got {value!r} ({type(value).__name__})."
            )
        number = float(value)
        too_high = number > high if include_high else number >= high
        if not math.isfinite(number) or number < 0 or too_high:
            raise ValueError(
                f"{name} must be in [0, {high:g}{closing}{unit}; got {value!r}."
            )

    return check


def check_batch(images: Any, generator: Any, spatial_dims: Any = "auto") -> None:
    """Check the arguments of ``augment_batch``: a 4-D or 5-D float tensor, a generator.

    Parameters
    ----------
    images : object
        Should be a floating-point ``torch.Tensor`` of shape ``(n, C, H, W)``
        (images) or ``(n, C, D, H, W)`` (volumes).
    generator : object
        Should be a ``torch.Generator``.
    spatial_dims : {"auto", 2, 3}, default="auto"
        The augmenter's ``spatial_dims``: 2 refuses volumes, 3 refuses images.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"images must be a torch.Tensor of shape (n, C, H, W) or (n, C, D, H, "
            f"W); got {type(images).__name__}."
        )
    if images.ndim not in (4, 5):
        raise ValueError(
            "images must have shape (n_samples, channels, height, width) or "
            "(n_samples, channels, depth, height, width); got a tensor of shape "
            f"{tuple(images.shape)}."
        )
    if spatial_dims in (2, 3) and images.ndim != spatial_dims + 2:
        kind = "images (n, C, H, W)" if spatial_dims == 2 else "volumes (n, C, D, H, W)"
        raise ValueError(
            f"the augmenter has spatial_dims={spatial_dims}, so it takes {kind}; got "
            f"a tensor of shape {tuple(images.shape)}."
        )
    if not images.is_floating_point():
        raise TypeError(
            f"images must be a floating-point tensor; got dtype {images.dtype}."
        )
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator; got {type(generator).__name__}."
        )


def draw_uniforms(
    images: torch.Tensor, generator: torch.Generator, n_draws: int
) -> torch.Tensor:
    """Draw ``n_draws`` uniforms in [0, 1) per image, in one call.

    Parameters
    ----------
    images : torch.Tensor of shape (n_samples, ...)
        Gives the batch size, the device and the dtype of the result.
    generator : torch.Generator
        Source of the draws, on the device of ``images``.
    n_draws : int
        Uniforms per image.

    Returns
    -------
    uniforms : torch.Tensor of shape (n_draws, n_samples)
        Drawn in float32 whatever the dtype of ``images`` (then cast), so
        float32 and float64 images get the same parameters from one seed.
    """
    uniforms = torch.rand(
        (n_draws, images.shape[0]), generator=generator, device=images.device
    )
    return uniforms.to(images.dtype)


def per_image(values: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Reshape per-image ``values`` ``(n,)`` to broadcast over ``images``.

    ``(n, 1, 1, 1)`` for images ``(n, C, H, W)``, ``(n, 1, 1, 1, 1)`` for
    volumes ``(n, C, D, H, W)``.
    """
    return values.reshape(-1, *([1] * (images.ndim - 1)))


def image_range(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image minimum and maximum over channels and voxels, broadcastable."""
    # amin and amax: torch.aminmax(dim=1) measured 7-20x slower on CPU
    flat = images.flatten(1)
    return per_image(flat.amin(dim=1), images), per_image(flat.amax(dim=1), images)


def spatial_shape(images: torch.Tensor) -> str:
    """``"HxW"`` or ``"DxHxW"`` of a channels-first batch, for messages."""
    return "x".join(str(size) for size in images.shape[2:])


def _compute_dtype(dtype: np.dtype[Any]) -> torch.dtype:
    """float64 where float32 would lose information, float32 otherwise."""
    if dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4):
        return torch.float64
    return torch.float32


def _to_dtype(values: NDArray[Any], dtype: np.dtype[Any]) -> NDArray[Any]:
    """Cast augmented float values back to ``dtype``, rounding and clipping ints."""
    if dtype.kind == "b":
        return np.clip(np.rint(values), 0, 1).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


class ImageTransformerMixin(TransformerMixin, BaseEstimator):
    """Validation, fit, transform (the identity) and tags of the augmenters.

    Not part of the public API.
    """

    _parameter_constraints: ClassVar[dict[str, Checker]] = {}

    def _check_images(
        self, X: ArrayLike, *, reset: bool
    ) -> tuple[NDArray[Any], tuple[int, ...], np.dtype[Any]]:
        """Validate ``X``; return it channels-last, its shape and its dtype.

        Images or volumes are told apart by ``spatial_dims`` (``"auto"``:
        :func:`~sk_medcnn.utils._validation.infer_spatial_dims`). Flat rows
        ``(n_samples, n_pixels)`` are square images when ``n_pixels`` is a
        perfect square and one-row images otherwise (cubes with
        ``spatial_dims=3``).
        """
        original_dtype = getattr(X, "dtype", None)
        ndim = getattr(X, "ndim", None)
        if ndim is None:
            X = np.asarray(X)
            ndim = X.ndim
        spatial_dims = resolve_spatial_dims(getattr(self, "spatial_dims", "auto"), X)
        image_shape: tuple[int, int] | None = None
        if ndim == 2 and spatial_dims == 2:
            n_pixels = int(np.shape(X)[1])
            side = math.isqrt(n_pixels)
            if side * side == n_pixels:
                image_shape = (side, side)
            else:
                image_shape = (1, n_pixels)
                warnings.warn(
                    f"X has {n_pixels} values per row, not a square number: each "
                    f"row is augmented as a one-row image of shape (1, {n_pixels}). "
                    "Pass images of shape (n_samples, height, width) to augment "
                    "them as images.",
                    UserWarning,
                    stacklevel=3,
                )
        if reset or hasattr(self, "n_features_in_"):  # transform may come first
            check_feature_names(self, X, reset=reset)
        images = check_images(
            X,
            image_shape=image_shape,
            estimator_name=type(self).__name__,
            spatial_dims=spatial_dims,
        )
        n_features = math.prod(images.shape[1:])
        if reset:
            self.n_features_in_ = n_features
        elif hasattr(self, "n_features_in_") and n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        if ndim == 2:
            shape: tuple[int, ...] = (images.shape[0], n_features)
        elif ndim == spatial_dims + 1:  # no channel axis
            shape = images.shape[:-1]
        else:
            shape = images.shape
        dtype = np.dtype(bool) if original_dtype == np.bool_ else images.dtype
        return images, shape, dtype

    def fit(self, X: ArrayLike, y: Any = None) -> ImageTransformerMixin:
        """Check the parameters and ``X``; nothing is learned.

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
        self : object
            The augmenter, with ``n_features_in_`` set.
        """
        check_params(self)
        self._check_images(X, reset=True)
        return self

    def transform(self, X: ArrayLike) -> NDArray[Any]:
        """Return ``X`` unchanged: inference data are never augmented.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width), \
                (n_samples, height, width, channels), (n_samples, depth, \
                height, width[, channels]) or (n_samples, n_pixels)
            Images.

        Returns
        -------
        X : ndarray of the same shape and dtype
            The validated input, without a copy where numpy allows.
        """
        check_params(self)
        images, shape, dtype = self._check_images(X, reset=False)
        return images.reshape(shape).astype(dtype, copy=False)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # nothing is learned from the data
        tags.input_tags.three_d_array = True  # images (n, H, W[, C]), volumes
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class BaseAugmenter(ImageTransformerMixin):
    """A random augmenter: ``augment_batch`` on tensors, ``fit_transform`` on arrays.

    Subclasses implement ``_draw(images, generator) -> dict`` (every random
    parameter of the batch) and ``_apply(images, params) -> Tensor`` (no
    randomness). Not part of the public API.
    """

    random_state: Any

    def _draw(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _apply(
        self, images: torch.Tensor, params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        raise NotImplementedError

    def augment_batch(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Augment a batch of images: draw its random parameters, then apply them.

        Parameters
        ----------
        images : torch.Tensor of shape (n_samples, channels, height, width) \
                or (n_samples, channels, depth, height, width)
            Floating-point images or volumes in their raw intensity units, on
            any device.
            They are not modified.
        generator : torch.Generator
            Every random draw reads it; it must be on the device of ``images``.
            Consecutive calls with one generator give different draws.

        Returns
        -------
        augmented : torch.Tensor of the same shape, dtype and device
            May be ``images`` itself when nothing changes (e.g. ``p=0``).
        """
        check_params(self)
        return self._augment_checked(images, generator)

    def batch_augmenter(
        self,
    ) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
        """Check the parameters once; return :meth:`augment_batch` without that check.

        For a training loop, which calls the augmenter on every batch with the
        same parameters: scikit-learn validates parameters once per ``fit``.
        Each batch's shape and generator are still checked.

        Returns
        -------
        augment : callable
            ``augment(images, generator)``, as :meth:`augment_batch`.
        """
        if type(self).augment_batch is not BaseAugmenter.augment_batch:
            return self.augment_batch  # a subclass's own augment_batch runs as is
        check_params(self)
        return self._augment_checked

    def _augment_checked(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        check_batch(images, generator, getattr(self, "spatial_dims", "auto"))
        with torch.no_grad():
            params = self._draw(images, generator)
            return self._apply(images, params)

    def fit_transform(self, X: ArrayLike, y: Any = None, **fit_params: Any) -> Any:
        """Return one augmented copy of ``X``, seeded by ``random_state``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width), \
                (n_samples, height, width, channels), (n_samples, depth, \
                height, width[, channels]) or (n_samples, n_pixels)
            Images in any real dtype and intensity scale.
        y : None
            Ignored.
        **fit_params : dict
            Ignored.

        Returns
        -------
        X_augmented : ndarray of the shape and dtype of ``X``
            A new array. Integer dtypes are rounded and clipped to the dtype's
            range; floating-point dtypes stay as they are.
        """
        check_params(self)
        generator = make_generator(self.random_state)
        images, shape, dtype = self._check_images(X, reset=True)
        compute_dtype = _compute_dtype(images.dtype)
        n_samples = images.shape[0]
        out = np.empty(images.shape, dtype=dtype)
        chunk = max(1, _CHUNK_VALUES // max(1, math.prod(images.shape[1:])))
        # channels-last (n, *spatial, C) to torch's (n, C, *spatial) and back
        to_torch = (0, images.ndim - 1, *range(1, images.ndim - 1))
        to_numpy = (0, *range(2, images.ndim), 1)
        for start in range(0, n_samples, chunk):
            batch = np.array(
                images[start : start + chunk].transpose(to_torch),
                dtype=np.float64 if compute_dtype == torch.float64 else np.float32,
                order="C",
            )
            augmented = self.augment_batch(torch.from_numpy(batch), generator)
            values = augmented.cpu().numpy().transpose(to_numpy)
            out[start : start + chunk] = _to_dtype(values, dtype)
        return out.reshape(shape)
