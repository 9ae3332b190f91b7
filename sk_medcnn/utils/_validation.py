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
    _finite_real(value, name)
    check_scalar(value, name, Real, min_val=0, include_boundaries="neither")


def non_negative_float(value: Any, name: str) -> None:
    """Check that ``value`` is a finite real number >= 0."""
    _finite_real(value, name)
    check_scalar(value, name, Real, min_val=0)


def open_fraction(value: Any, name: str) -> None:
    """Check that ``value`` is a real number in the open interval (0, 1)."""
    _finite_real(value, name)
    check_scalar(value, name, Real, min_val=0, max_val=1, include_boundaries="neither")


def closed_fraction(value: Any, name: str) -> None:
    """Check that ``value`` is a real number in [0, 1]."""
    _finite_real(value, name)
    check_scalar(value, name, Real, min_val=0, max_val=1)


def boolean(value: Any, name: str) -> None:
    """Check that ``value`` is a bool."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool; got {value!r}.")


def _finite_real(value: Any, name: str) -> None:
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
    """Check that ``value`` is None or ``(height, width[, channels])`` of ints >= 1."""
    if value is None:
        return
    if not isinstance(value, tuple | list):
        raise TypeError(
            f"{name} must be a tuple (height, width) or (height, width, channels); "
            f"got {value!r}."
        )
    if len(value) not in (2, 3):
        raise ValueError(
            f"{name} must be (height, width) or (height, width, channels); "
            f"got {value!r}."
        )
    for size in value:
        if isinstance(size, bool) or not isinstance(size, Integral) or size < 1:
            raise ValueError(f"{name} must hold integers >= 1; got {value!r}.")


def check_feature_names(estimator: Any, X: Any, *, reset: bool) -> None:
    """Record (``reset=True``) or compare the column names of 2-D ``X``.

    For a DataFrame of flat pixel columns this sets ``feature_names_in_`` as
    scikit-learn estimators do, and warns on a mismatch at predict time; image
    arrays of 3 or 4 dimensions have no feature names and are left alone.
    """
    if getattr(X, "ndim", None) == 2:
        validate_data(estimator, X, reset=reset, skip_check_array=True)


def check_images(
    X: ArrayLike,
    *,
    image_shape: tuple[int, ...] | None = None,
    estimator_name: str = "estimator",
    expected_n_features: int | None = None,
) -> NDArray[Any]:
    """Validate an image array and return it channels-last, ``(n, H, W, C)``.

    The data keep their dtype (uint8 stays uint8); the result is a view of
    the input wherever numpy allows, never a float copy.

    Parameters
    ----------
    X : array-like of shape (n_samples, height, width), \
            (n_samples, height, width, channels) or (n_samples, n_pixels)
        The images. Flat rows are reshaped to ``image_shape`` when given,
        otherwise to a square image when ``n_pixels`` is a perfect square and
        to a one-row image ``(1, n_pixels)`` if not. A 4-D ``torch.Tensor`` is
        read in torch's layout, ``(n_samples, channels, height, width)``; a 4-D
        array that looks channels-first gets a warning.
    image_shape : tuple of int, default=None
        ``(height, width)`` or ``(height, width, channels)`` of flat rows.
    estimator_name : str, default="estimator"
        Used in error messages.
    expected_n_features : int, default=None
        Values per image of a fitted estimator; flat rows of another length
        get scikit-learn's "X has N features, but ... is expecting M" error.

    Returns
    -------
    images : ndarray of shape (n_samples, height, width, channels)
    """
    ndim = getattr(X, "ndim", None)
    if ndim is not None and ndim not in (2, 3, 4):
        raise ValueError(_ndim_message(getattr(X, "shape", "?")))
    if ndim == 4 and type(X).__module__.startswith("torch") and hasattr(X, "permute"):
        # a torch batch is (n, C, H, W), as a Dataset's tensor items are (C, H, W)
        shape = tuple(X.shape)
        if shape[3] in (1, 3, 4) and shape[1] > 4:
            warn_user(
                f"X is a torch.Tensor of shape {shape}: it is read in torch's "
                f"layout (n, C, H, W), as {shape[0]} images of {shape[2]}x"
                f"{shape[3]} pixels with {shape[1]} channels. If it is "
                "channels-last (n, H, W, C), pass X.permute(0, 3, 1, 2)."
            )
        X = X.detach().cpu().permute(0, 2, 3, 1).numpy()
    elif ndim == 4:
        shape = X.shape  # type: ignore[union-attr]
        if shape[1] in (1, 3, 4) and shape[3] > 4:
            warn_user(
                f"X has shape {tuple(shape)}: it is read channels-last, as "
                f"{shape[0]} images of {shape[1]}x{shape[2]} pixels with "
                f"{shape[3]} channels. If it is channels-first (n, C, H, W), pass "
                "X.transpose(0, 2, 3, 1)."
            )
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
    if images.ndim == 2:
        n_samples, n_pixels = images.shape
        if expected_n_features is not None and n_pixels != expected_n_features:
            raise ValueError(
                f"X has {n_pixels} features, but {estimator_name} is expecting "
                f"{expected_n_features} features as input."
            )
        if image_shape is not None:
            shape = tuple(int(size) for size in image_shape)
            if len(shape) == 2:
                shape = (*shape, 1)
            if math.prod(shape) != n_pixels:
                raise ValueError(
                    f"image_shape {tuple(image_shape)} holds {math.prod(shape)} "
                    f"values per image, but X has {n_pixels} features."
                )
        else:
            side = math.isqrt(n_pixels)
            if side * side == n_pixels:
                shape = (side, side, 1)
            else:
                shape = (1, n_pixels, 1)
                warn_user(
                    f"X has {n_pixels} values per row, not a square number: each row "
                    f"is taken as a one-row image of shape (1, {n_pixels}). Pass "
                    "image_shape=(height, width[, channels]) if the rows are "
                    "flattened images."
                )
        return images.reshape((n_samples, *shape))
    if images.ndim == 3:
        return images[..., np.newaxis]
    if images.ndim == 4:
        return images
    raise ValueError(_ndim_message(images.shape))


def _ndim_message(shape: Any) -> str:
    message = (
        "X must be (n_samples, height, width), (n_samples, height, width, "
        f"channels) or flat (n_samples, n_pixels); got an array of shape {shape}."
    )
    if len(shape) == 1:
        message += (
            " Reshape your data with X.reshape(1, -1) if it holds a single image "
            "of flat pixels."
        )
    return message
