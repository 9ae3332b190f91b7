"""Parameter and input validation shared by the estimators and transformers.

scikit-learn's ``_param_validation`` is private, so each estimator declares a
``_parameter_constraints`` dict mapping every ``__init__`` parameter to one of
the checkers below, and calls :func:`check_params` first thing in ``fit``.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import assert_all_finite, check_array, check_scalar
from sklearn.utils.validation import validate_data

Checker = Callable[[Any, str], None]

#: Values accepted by ``set_output(transform=...)``, as in scikit-learn.
OUTPUT_CONTAINERS = (None, "default", "pandas", "polars")


def check_params(estimator: Any) -> None:
    """Run every checker of ``estimator._parameter_constraints``.

    Parameters
    ----------
    estimator : object
        An estimator with a ``_parameter_constraints`` dict.
    """
    for name, checker in estimator._parameter_constraints.items():
        checker(getattr(estimator, name), name)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn, attributing the warning to the first caller outside sk_medcnn.

    A fixed ``stacklevel`` points into the package whenever the call depth
    changes (``fit`` calls helpers at several depths); this walks the stack.
    """
    frame = sys._getframe(1)
    level = 2  # stacklevel=2 is this function's caller
    while frame.f_back is not None and frame.f_code.co_filename.startswith(
        _PACKAGE_DIR + os.sep
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def _type_name(value: Any) -> str:
    return type(value).__name__


def positive_int(value: Any, name: str) -> None:
    """Check that ``value`` is an integer >= 1 (not a bool)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int; got {value!r}.")
    check_scalar(value, name, Integral, min_val=1)


def non_negative_int(value: Any, name: str) -> None:
    """Check that ``value`` is an integer >= 0 (not a bool)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int; got {value!r}.")
    check_scalar(value, name, Integral, min_val=0)


def int_in_range(min_val: int, max_val: int) -> Checker:
    """Build a checker accepting integers in ``[min_val, max_val]`` (not bools).

    The upper bound is for values that size resources (threads, processes): a
    hostile or mistyped value such as ``2**31 - 1`` threads would otherwise end
    the process (libgomp aborts while allocating) instead of raising.
    """

    def check(value: Any, name: str) -> None:
        if isinstance(value, bool):
            raise TypeError(f"{name} must be an int; got {value!r}.")
        check_scalar(value, name, Integral, min_val=min_val, max_val=max_val)

    return check


def positive_float(value: Any, name: str) -> None:
    """Check that ``value`` is a finite real number > 0."""
    finite_number(value, name)
    check_scalar(value, name, Real, min_val=0, include_boundaries="neither")


def non_negative_float(value: Any, name: str) -> None:
    """Check that ``value`` is a finite real number >= 0."""
    finite_number(value, name)
    check_scalar(value, name, Real, min_val=0)


def open_fraction(value: Any, name: str) -> None:
    """Check that ``value`` is a real number in the open interval (0, 1)."""
    finite_number(value, name)
    check_scalar(value, name, Real, min_val=0, max_val=1, include_boundaries="neither")


def closed_fraction(value: Any, name: str) -> None:
    """Check that ``value`` is a real number in [0, 1]."""
    finite_number(value, name)
    check_scalar(value, name, Real, min_val=0, max_val=1)


def boolean(value: Any, name: str) -> None:
    """Check that ``value`` is a bool."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool; got {value!r}.")


def finite_number(value: Any, name: str) -> None:
    """Check that ``value`` is a finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a real number; got {value!r} ({_type_name(value)})."
        )
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite; got {value!r}.")


def one_of(options: Iterable[Any], *, allow: tuple[type, ...] = ()) -> Checker:
    """Build a checker accepting the given options or instances of ``allow``.

    A misspelled string option gets a "did you mean ...?" hint.
    """
    options = tuple(options)

    def check(value: Any, name: str) -> None:
        if allow and isinstance(value, allow):
            return
        if isinstance(value, type) and allow and issubclass(value, allow):
            return
        try:
            if value in options:
                return
        except TypeError:  # unhashable or uncomparable
            pass
        shown = ", ".join(repr(option) for option in options)
        option_types = tuple({type(option) for option in options if option is not None})
        if not isinstance(value, option_types):
            kinds = " or ".join(kind.__name__ for kind in (*option_types, *allow))
            raise TypeError(
                f"{name} must be one of {shown}"
                + (f" or a {' / '.join(k.__name__ for k in allow)}" if allow else "")
                + f"; got {value!r} ({_type_name(value)}, not {kinds})."
            )
        message = f"{name} must be one of {shown}"
        if allow:
            message += " or a " + " / ".join(kind.__name__ for kind in allow)
        message += f"; got {value!r}."
        if isinstance(value, str):
            close = difflib.get_close_matches(
                value, [o for o in options if isinstance(o, str)], n=1
            )
            if close:
                message += f" Did you mean {close[0]!r}?"
        raise ValueError(message)

    return check


def optional(checker: Checker) -> Checker:
    """Build a checker that also accepts ``None``."""

    def check(value: Any, name: str) -> None:
        if value is not None:
            checker(value, name)

    return check


def optional_dict(value: Any, name: str) -> None:
    """Check that ``value`` is ``None`` or a dict with string keys."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict or None; got {_type_name(value)}.")
    bad = [key for key in value if not isinstance(key, str)]
    if bad:
        raise TypeError(f"{name} must have string keys; got {bad[0]!r}.")


def random_state_like(value: Any, name: str) -> None:
    """Check that ``value`` is None, an int or a ``numpy.random.RandomState``."""
    if value is None or isinstance(value, np.random.RandomState):
        return
    if isinstance(value, Integral) and not isinstance(value, bool):
        if not 0 <= int(value) < 2**32:
            raise ValueError(f"{name} must be in [0, 2**32 - 1]; got {value}.")
        return
    raise TypeError(
        f"{name} must be None, an int or a numpy.random.RandomState; "
        f"got {value!r} ({_type_name(value)})."
    )


def image_shape_like(value: Any, name: str) -> None:
    """Check that ``value`` is None or an image or volume shape of ints >= 1.

    ``(height, width)``, ``(height, width, channels)``, ``(depth, height,
    width)`` or ``(depth, height, width, channels)``; see
    :func:`infer_spatial_dims` for how a 3-length shape is read.
    """
    if value is None:
        return
    if not isinstance(value, tuple | list):
        raise TypeError(
            f"{name} must be a tuple (height, width[, channels]) or (depth, "
            f"height, width[, channels]); got {value!r}."
        )
    if len(value) not in (2, 3, 4):
        raise ValueError(
            f"{name} must be (height, width[, channels]) or (depth, height, "
            f"width[, channels]); got {value!r}."
        )
    for size in value:
        if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
            raise ValueError(f"{name} must hold integers >= 1; got {value!r}.")


def image_size_like(value: Any, name: str) -> None:
    """Check that ``value`` is an int >= 1 or a pair ``(height, width)`` of them."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{name} must be >= 1; got {value!r}.")
        return
    if not isinstance(value, tuple | list):
        raise TypeError(
            f"{name} must be an int or a tuple (height, width) of ints; "
            f"got {value!r} ({type(value).__name__})."
        )
    if len(value) != 2 or not all(
        isinstance(size, Integral) and not isinstance(size, bool) for size in value
    ):
        raise ValueError(
            f"{name} must be an int or a tuple (height, width) of two ints; "
            f"got {value!r}."
        )
    if min(value) < 1:
        raise ValueError(f"{name} must hold sizes >= 1; got {value!r}.")


#: Trailing axis sizes read as channels in ambiguous shapes: grey, RGB, RGBA.
CHANNEL_SIZES = (1, 3, 4)


def spatial_dims_like(value: Any, name: str) -> None:
    """Check that ``value`` is ``"auto"``, 2 or 3."""
    if isinstance(value, str) and value == "auto":
        return
    if isinstance(value, bool) or value not in (2, 3):
        raise ValueError(
            f"{name} must be 'auto', 2 (images) or 3 (volumes); got {value!r}."
        )


def _is_torch_tensor(X: Any) -> bool:
    return type(X).__module__.startswith("torch") and hasattr(X, "permute")


def infer_spatial_dims(X: Any, *, image_shape: Any = None) -> int:
    """Tell 2-D images from 3-D volumes by the shape of ``X``.

    The rules (``spatial_dims="auto"`` of the estimators and transformers):

    - 5 axes: volumes, ``(n, depth, height, width, channels)`` (a
      ``torch.Tensor``: ``(n, channels, depth, height, width)``);
    - 4 axes: images with channels, ``(n, height, width, channels)``, when the
      last axis has 1, 3 or 4 entries (grey, RGB, RGBA), else single-channel
      volumes ``(n, depth, height, width)``; a 4-D ``torch.Tensor`` is always
      images, ``(n, channels, height, width)``;
    - 3 axes: grey images, ``(n, height, width)``;
    - 2 axes (flat rows): by ``image_shape``: 4 entries are a volume, 3
      entries a volume unless the last is 1, 3 or 4 (then channels), 2 or
      none an image.

    So ``(n, 28, 28, 3)`` stays a batch of colour images, and ``(n, 28, 28,
    28)`` is a batch of volumes. Pass ``spatial_dims`` to overrule the rules
    (e.g. 8-channel 2-D images are ``spatial_dims=2``).

    Parameters
    ----------
    X : array-like, torch.Tensor or lazily read images
        Anything with ``ndim`` and ``shape``.
    image_shape : tuple of int, default=None
        The shape flat rows are reshaped to.

    Returns
    -------
    spatial_dims : {2, 3}
    """
    ndim = getattr(X, "ndim", None)
    if ndim == 5:
        return 3
    if ndim == 4:
        if _is_torch_tensor(X):
            return 2
        # an empty last axis is taken as no channels, for the error that follows
        return 2 if int(X.shape[-1]) in (0, *CHANNEL_SIZES) else 3
    if ndim == 2 and image_shape is not None:
        shape = tuple(image_shape)
        if len(shape) == 4:
            return 3
        if len(shape) == 3 and int(shape[-1]) not in CHANNEL_SIZES:
            return 3
    return 2


def resolve_spatial_dims(
    spatial_dims: int | str | None, X: Any, *, image_shape: Any = None
) -> int:
    """``spatial_dims`` itself when 2 or 3, else :func:`infer_spatial_dims`."""
    if spatial_dims in (2, 3):
        return int(spatial_dims)  # type: ignore[arg-type]
    return infer_spatial_dims(X, image_shape=image_shape)


def check_feature_names(estimator: Any, X: Any, *, reset: bool) -> None:
    """Record (``reset=True``) or compare the column names of 2-D ``X``.

    For a DataFrame of flat pixel columns this sets ``feature_names_in_`` as
    scikit-learn estimators do, and warns on a mismatch at predict time; image
    arrays of 3 or 4 dimensions have no feature names and are left alone.
    """
    if getattr(X, "ndim", None) == 2:
        validate_data(estimator, X, reset=reset, skip_check_array=True)


def _channels_last_or_warn(X: ArrayLike, ndim: Any, spatial_dims: int) -> ArrayLike:
    """Read a torch batch channels-last; warn on 4-D arrays of a doubtful layout."""
    torch_layout = ndim in (4, 5) and _is_torch_tensor(X)
    if torch_layout and ndim == spatial_dims + 2:
        # a torch batch is (n, C, *spatial), as a Dataset's tensor items are
        shape = tuple(X.shape)  # type: ignore[union-attr]
        if spatial_dims == 2 and shape[3] in CHANNEL_SIZES and shape[1] > 4:
            warn_user(
                f"X is a torch.Tensor of shape {shape}: it is read in torch's "
                f"layout (n, C, H, W), as {shape[0]} images of {shape[2]}x"
                f"{shape[3]} pixels with {shape[1]} channels. If it is "
                "channels-last (n, H, W, C), pass X.permute(0, 3, 1, 2)."
            )
        X = X.detach().cpu().movedim(1, -1).numpy()  # type: ignore[union-attr]
    elif torch_layout:  # (n, D, H, W) volumes of one channel
        X = X.detach().cpu().numpy()  # type: ignore[union-attr]
    elif ndim == 4 and spatial_dims == 2:
        shape = X.shape  # type: ignore[union-attr]
        if shape[1] in CHANNEL_SIZES and shape[3] > 4:
            warn_user(
                f"X has shape {tuple(shape)}: it is read channels-last, as "
                f"{shape[0]} images of {shape[1]}x{shape[2]} pixels with "
                f"{shape[3]} channels. If it is channels-first (n, C, H, W), pass "
                "X.transpose(0, 2, 3, 1)."
            )
    elif ndim == 4 and spatial_dims == 3:
        shape = X.shape  # type: ignore[union-attr]
        if shape[1] in CHANNEL_SIZES and shape[1] < min(shape[2:]) // 4:
            warn_user(
                f"X has shape {tuple(shape)}: it is read as {shape[0]} volumes of "
                f"{shape[1]}x{shape[2]}x{shape[3]} voxels (depth, height, width). "
                "If it holds channels-first 2-D images (n, C, H, W), pass "
                "X.transpose(0, 2, 3, 1); if these are volumes, pass "
                "spatial_dims=3 to say so."
            )
    return X


def _numeric_array(X: ArrayLike, estimator_name: str) -> NDArray[Any]:
    """Check ``X`` as a finite real array (bool viewed as uint8), fast when plain."""
    images: NDArray[Any]
    if (
        type(X) in (np.ndarray, np.memmap)
        and X.dtype.kind in "uif"  # type: ignore[union-attr]
        and all(X.shape)  # type: ignore[union-attr]
    ):
        # the common case, without check_array's per-call overhead (a third of
        # a one-image prediction): a real-valued array needs the finiteness check
        # only
        images = X  # type: ignore[assignment]
        if images.dtype.kind == "f":
            assert_all_finite(images, input_name="X", estimator_name=estimator_name)
    else:
        images = check_array(
            X,
            accept_sparse=False,
            dtype="numeric",
            allow_nd=True,
            ensure_all_finite=True,
            ensure_min_samples=1,
            ensure_min_features=1,
            input_name="X",
            estimator=estimator_name,
        )
    if images.dtype == np.bool_:
        images = images.view(np.uint8)
    if np.iscomplexobj(images):  # pragma: no cover - check_array refuses complex
        raise ValueError("X must hold real numbers; got complex values.")
    return images


def check_images(
    X: ArrayLike,
    *,
    image_shape: tuple[int, ...] | None = None,
    estimator_name: str = "estimator",
    expected_n_features: int | None = None,
    spatial_dims: int | None = 2,
) -> NDArray[Any]:
    """Validate images or volumes and return them channels-last.

    The data keep their dtype (uint8 stays uint8); the result is a view of
    the input wherever numpy allows, never a float copy.

    Parameters
    ----------
    X : array-like of shape (n_samples, height, width), \
            (n_samples, height, width, channels), (n_samples, depth, height, \
            width[, channels]) or (n_samples, n_values)
        The images or volumes. Flat rows are reshaped to ``image_shape`` when
        given, otherwise to a square image when ``n_values`` is a perfect
        square and to a one-row image ``(1, n_values)`` if not. A
        ``torch.Tensor`` is read in torch's layout, ``(n, channels, height,
        width)`` or ``(n, channels, depth, height, width)``; a 4-D array that
        looks channels-first gets a warning.
    image_shape : tuple of int, default=None
        ``(height, width[, channels])`` or ``(depth, height, width[,
        channels])`` of flat rows.
    estimator_name : str, default="estimator"
        Used in error messages.
    expected_n_features : int, default=None
        Values per image of a fitted estimator; flat rows of another length
        get scikit-learn's "X has N features, but ... is expecting M" error.
    spatial_dims : {2, 3} or None, default=2
        2 for images, 3 for volumes, None to infer it from the shape
        (:func:`infer_spatial_dims`).

    Returns
    -------
    images : ndarray of shape (n_samples, height, width, channels) or \
            (n_samples, depth, height, width, channels)
    """
    ndim = getattr(X, "ndim", None)
    if spatial_dims is None:
        spatial_dims = infer_spatial_dims(X, image_shape=image_shape)
    if ndim is not None and ndim not in (2, spatial_dims + 1, spatial_dims + 2):
        raise ValueError(_ndim_message(getattr(X, "shape", "?"), spatial_dims))
    X = _channels_last_or_warn(X, ndim, spatial_dims)
    images = _numeric_array(X, estimator_name)
    if images.ndim == 2:
        return images.reshape(
            (
                images.shape[0],
                *_row_shape(
                    images.shape[1],
                    image_shape,
                    spatial_dims,
                    expected_n_features,
                    estimator_name,
                ),
            )
        )
    if images.ndim == spatial_dims + 1:
        return images[..., np.newaxis]
    if images.ndim == spatial_dims + 2:
        return images
    raise ValueError(_ndim_message(images.shape, spatial_dims))


def _row_shape(
    n_values: int,
    image_shape: tuple[int, ...] | None,
    spatial_dims: int,
    expected_n_features: int | None,
    estimator_name: str,
) -> tuple[int, ...]:
    """Return the channels-last shape that flat rows of ``n_values`` take."""
    if expected_n_features is not None and n_values != expected_n_features:
        raise ValueError(
            f"X has {n_values} features, but {estimator_name} is expecting "
            f"{expected_n_features} features as input."
        )
    if image_shape is not None:
        shape = tuple(int(size) for size in image_shape)
        if len(shape) == spatial_dims:
            shape = (*shape, 1)
        if len(shape) != spatial_dims + 1:
            kind = (
                "(depth, height, width[, channels])"
                if spatial_dims == 3
                else ("(height, width[, channels])")
            )
            raise ValueError(
                f"image_shape {tuple(image_shape)} does not describe "
                f"{'volumes' if spatial_dims == 3 else 'images'}: it must be {kind}."
            )
        if math.prod(shape) != n_values:
            raise ValueError(
                f"image_shape {tuple(image_shape)} holds {math.prod(shape)} "
                f"values per image, but X has {n_values} features."
            )
        return shape
    side = math.isqrt(n_values)
    if spatial_dims == 3:
        cube = round(n_values ** (1 / 3))
        if cube**3 == n_values:
            return (cube, cube, cube, 1)
        raise ValueError(
            f"X has {n_values} values per row, not a cube number: pass "
            "image_shape=(depth, height, width[, channels]) for flat volumes."
        )
    if side * side == n_values:
        return (side, side, 1)
    warn_user(
        f"X has {n_values} values per row, not a square number: each row "
        f"is taken as a one-row image of shape (1, {n_values}). Pass "
        "image_shape=(height, width[, channels]) if the rows are "
        "flattened images."
    )
    return (1, n_values, 1)


def _ndim_message(shape: Any, spatial_dims: int = 2) -> str:
    if spatial_dims == 3:
        message = (
            "X must be volumes, (n_samples, depth, height, width[, channels]) or "
            f"flat (n_samples, n_voxels); got an array of shape {shape}."
        )
    else:
        message = (
            "X must be (n_samples, height, width), (n_samples, height, width, "
            f"channels) or flat (n_samples, n_pixels); got an array of shape {shape}."
        )
        if len(shape) == 5:
            message += (
                " A 5-D array holds volumes (n, depth, height, width, channels): "
                "this needs a model or transformer for volumes (spatial_dims=3)."
            )
    if len(shape) == 1:
        message += (
            " Reshape your data with X.reshape(1, -1) if it holds a single image "
            "of flat pixels."
        )
    return message
