"""How a fitted classifier's AUC and accuracy hold up under each corruption."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import clone
from sklearn.metrics import accuracy_score, roc_auc_score

from ..exceptions import OutOfDistributionWarning
from ..utils._validation import (
    CHANNEL_SIZES,
    random_state_like,
    spatial_dims_like,
)
from ._corruptions import (
    BiasField,
    Brightness,
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    JPEGCompression,
    Pixelate,
    ResolutionChange,
    RingArtifact,
    StripeArtifact,
)

__all__ = ["RobustnessReport", "default_corruptions", "robustness_report"]


def default_corruptions(
    random_state: int | np.random.RandomState | None = 0,
    *,
    spatial_dims: int | str = "auto",
) -> dict[str, Any]:
    """Return the corruptions :func:`robustness_report` applies by default.

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=0
        Seeds the random corruptions (noise, bias field).
    spatial_dims : {"auto", 2, 3}, default="auto"
        Given to every corruption: 2 for images, 3 for volumes, ``"auto"``
        to tell them apart by the shape of ``X``
        (``sk_medcnn.utils.infer_spatial_dims``).

    Returns
    -------
    corruptions : dict of str to transformer
        ``"noise"``, ``"blur"``, ``"contrast"``, ``"brightness"``, ``"gamma"``,
        ``"jpeg"``, ``"pixelate"``, ``"resolution"``, ``"bias_field"``,
        ``"rings"`` and ``"stripes"``, each a transformer with a ``severity``.

    Examples
    --------
    >>> from sk_medcnn.robustness import default_corruptions
    >>> sorted(default_corruptions())[:3]
    ['bias_field', 'blur', 'brightness']
    >>> default_corruptions(spatial_dims=3)["blur"]
    GaussianBlur(spatial_dims=3)
    """
    random_state_like(random_state, "random_state")
    spatial_dims_like(spatial_dims, "spatial_dims")
    return {
        "noise": GaussianNoise(spatial_dims=spatial_dims, random_state=random_state),
        "blur": GaussianBlur(spatial_dims=spatial_dims),
        "contrast": Contrast(spatial_dims=spatial_dims),
        "brightness": Brightness(spatial_dims=spatial_dims),
        "gamma": Gamma(spatial_dims=spatial_dims),
        "jpeg": JPEGCompression(spatial_dims=spatial_dims),
        "pixelate": Pixelate(spatial_dims=spatial_dims),
        "resolution": ResolutionChange(spatial_dims=spatial_dims),
        "bias_field": BiasField(spatial_dims=spatial_dims, random_state=random_state),
        "rings": RingArtifact(spatial_dims=spatial_dims),
        "stripes": StripeArtifact(spatial_dims=spatial_dims),
    }


def _final_estimator(model: Any) -> Any:
    """Return the estimator that predicts: the last step, the best estimator."""
    for _ in range(16):  # nested pipelines and searches; no cycles expected
        if hasattr(model, "best_estimator_"):
            model = model.best_estimator_
        elif hasattr(model, "steps"):
            model = model.steps[-1][1]
        else:
            break
    return model


def _model_spatial_dims(model: Any, images: NDArray[Any]) -> int | None:
    """Return the model's ``spatial_dims_`` after checking ``images`` against it.

    None when the model does not say (a scikit-learn pipeline of other
    estimators): the corruptions then infer it from the shape, as usual.
    """
    final = _final_estimator(model)
    spatial_dims = getattr(final, "spatial_dims_", None)
    if spatial_dims not in (2, 3):
        return None
    shape = tuple(images.shape)
    fitted = getattr(final, "image_shape_", None)
    fitted_text = f" of shape {tuple(fitted)}" if fitted is not None else ""
    if spatial_dims == 3:
        if images.ndim not in (2, 4, 5):
            raise ValueError(
                f"model takes volumes{fitted_text} (depth, height, width, channels) "
                f"(spatial_dims_=3), but X has shape {shape}: pass volumes of "
                "shape (n_samples, depth, height, width[, channels])."
            )
        return 3
    looks_like_volumes = images.ndim == 5 or (
        images.ndim == 4
        and shape[-1] not in CHANNEL_SIZES
        and (fitted is None or int(fitted[-1]) != shape[-1])
    )
    if looks_like_volumes:
        raise ValueError(
            f"model takes 2-D images{fitted_text} (height, width, channels) "
            f"(spatial_dims_=2), but X of shape {shape} holds volumes (n_samples, "
            "depth, height, width[, channels]): score a model fitted on volumes."
        )
    return 2


class RobustnessReport:
    """AUC and accuracy per corruption and severity, with the drop from clean data.

    Returned by :func:`robustness_report`.

    Attributes
    ----------
    clean : dict of str to float
        ``{"auc": ..., "accuracy": ...}`` on the uncorrupted images.
    rows : list of dict
        One per corruption and severity: ``corruption``, ``severity``, ``auc``,
        ``accuracy``, ``auc_drop`` and ``accuracy_drop`` (relative to clean:
        ``(clean - corrupted) / clean``).
    n_samples : int
        Images (or volumes) scored.
    noun : str
        What was scored, ``"images"`` or ``"volumes"``, for the text.
    """

    def __init__(
        self,
        clean: dict[str, float],
        rows: list[dict[str, Any]],
        n_samples: int,
        noun: str = "images",
    ) -> None:
        self.clean = clean
        self.rows = rows
        self.n_samples = n_samples
        self.noun = noun

    def worst(self, metric: str = "auc") -> dict[str, Any]:
        """Return the row where ``metric`` is lowest.

        Parameters
        ----------
        metric : {"auc", "accuracy"}, default="auc"
            The figure to rank by.

        Returns
        -------
        row : dict
            A row of :attr:`rows`.
        """
        if metric not in ("auc", "accuracy"):
            raise ValueError(f"metric must be 'auc' or 'accuracy'; got {metric!r}.")
        return min(self.rows, key=lambda row: row[metric])

    def to_frame(self) -> Any:
        """Return the rows as a pandas DataFrame (pandas must be installed).

        Returns
        -------
        frame : pandas.DataFrame
            One row per corruption and severity.
        """
        try:
            import pandas as pd
        except ImportError as error:  # pragma: no cover - pandas is a dev extra
            raise ImportError("to_frame needs pandas: pip install pandas") from error
        return pd.DataFrame(self.rows)

    def plot(self, metric: str = "auc", ax: Any = None) -> Any:
        """Draw ``metric`` against severity, one line per corruption.

        Parameters
        ----------
        metric : {"auc", "accuracy"}, default="auc"
            The figure to draw; the clean value is a dashed line.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        ax : matplotlib Axes
            The axes drawn on.
        """
        if metric not in ("auc", "accuracy"):
            raise ValueError(f"metric must be 'auc' or 'accuracy'; got {metric!r}.")
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:  # pragma: no cover - an optional extra
            raise ImportError(
                'plot needs matplotlib: pip install "sk-medcnn[plot]"'
            ) from error
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        names = list(dict.fromkeys(row["corruption"] for row in self.rows))
        for name in names:
            rows = [row for row in self.rows if row["corruption"] == name]
            ax.plot(
                [row["severity"] for row in rows],
                [row[metric] for row in rows],
                marker="o",
                label=name,
            )
        ax.axhline(self.clean[metric], color="black", linestyle="--", label="clean")
        ax.set_xlabel("severity")
        ax.set_ylabel("AUC" if metric == "auc" else "accuracy")
        ax.set_xticks(sorted({row["severity"] for row in self.rows}))
        ax.set_title(f"{'AUC' if metric == 'auc' else 'Accuracy'} under corruption")
        ax.legend(fontsize="small", ncol=2)
        return ax

    def __str__(self) -> str:
        lines = [
            f"Robustness report: {self.n_samples} {self.noun}; clean AUC "
            f"{self.clean['auc']:.3f}, accuracy {self.clean['accuracy']:.3f}",
            "",
            f"{'corruption':<14}{'severity':>9}{'AUC':>8}{'drop':>8}"
            f"{'ACC':>8}{'drop':>8}",
        ]
        for row in self.rows:
            lines.append(
                f"{row['corruption']:<14}{row['severity']:>9}{row['auc']:>8.3f}"
                f"{row['auc_drop']:>8.1%}{row['accuracy']:>8.3f}"
                f"{row['accuracy_drop']:>8.1%}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def _scores(
    model: Any, X: Any, y: NDArray[Any], classes: NDArray[Any]
) -> dict[str, float]:
    with warnings.catch_warnings():  # the images are shifted on purpose here
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    predicted = classes[proba.argmax(axis=1)]
    if len(classes) == 2:
        auc = roc_auc_score(y == classes[1], proba[:, 1])
    else:
        auc = roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    return {"auc": float(auc), "accuracy": float(accuracy_score(y, predicted))}


def _check_report_options(
    model: Any,
    corruptions: Any,
    severities: Any,
    random_state: int | np.random.RandomState | None,
) -> tuple[dict[str, Any], list[int]]:
    """Check the model, corruptions and severities; return them named and listed."""
    random_state_like(random_state, "random_state")
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise TypeError(
            "model must be a fitted classifier with predict_proba and classes_; got "
            f"{type(model).__name__}."
        )
    if isinstance(corruptions, str | bytes):
        raise TypeError(
            "corruptions must be a dict of name to transformer, a list of "
            f"transformers or None; got the string {corruptions!r}."
        )
    if isinstance(severities, str | bytes):
        raise TypeError(f"severities must be ints from 1 to 5; got {severities!r}.")
    if corruptions is None:
        named = default_corruptions(random_state)
    elif isinstance(corruptions, Mapping):
        named = dict(corruptions)
    else:
        named = {type(c).__name__: c for c in corruptions}
    if not named:
        raise ValueError("corruptions must name at least one corruption.")
    for name, corruption in named.items():
        if "severity" not in corruption.get_params():
            raise TypeError(
                f"corruption {name!r} ({type(corruption).__name__}) has no severity "
                "parameter."
            )
    levels = [int(s) for s in severities]
    if not levels or any(not 1 <= s <= 5 for s in levels):
        raise ValueError(f"severities must be ints from 1 to 5; got {levels!r}.")
    return named, levels


def _corruption_dims(
    named: dict[str, Any], spatial_dims: int | None, images: NDArray[Any]
) -> dict[str, dict[str, int]]:
    """Map each corruption to the ``spatial_dims`` it is cloned with (the model's)."""
    # the model's, never inferred
    dims_of: dict[str, dict[str, int]] = {}
    for name, corruption in named.items():
        params = corruption.get_params()
        if spatial_dims is None or "spatial_dims" not in params:
            continue
        if params["spatial_dims"] in (2, 3):
            own = int(params["spatial_dims"])
            if own != spatial_dims:
                raise ValueError(
                    f"corruption {name!r} has spatial_dims={own}, but the model "
                    f"has spatial_dims_={spatial_dims} (X of shape "
                    f"{tuple(images.shape)}): give it spatial_dims={spatial_dims} "
                    "or 'auto'."
                )
        dims_of[name] = {"spatial_dims": spatial_dims}
    return dims_of


def _corrupted_rows(
    model: Any,
    named: dict[str, Any],
    levels: list[int],
    dims_of: dict[str, dict[str, int]],
    images: NDArray[Any],
    labels: NDArray[Any],
    classes: NDArray[Any],
    clean: dict[str, float],
) -> list[dict[str, Any]]:
    """Score the model on every corruption at every severity, with the drops."""
    rows: list[dict[str, Any]] = []
    for name, corruption in named.items():
        for severity in levels:
            corrupted = clone(corruption).set_params(
                severity=severity, **dims_of.get(name, {})
            )
            scores = _scores(model, corrupted.fit_transform(images), labels, classes)
            rows.append(
                {
                    "corruption": name,
                    "severity": severity,
                    **scores,
                    **{
                        f"{metric}_drop": (
                            (clean[metric] - scores[metric]) / clean[metric]
                            if clean[metric] > 0
                            else math.nan
                        )
                        for metric in ("auc", "accuracy")
                    },
                }
            )
    return rows


def robustness_report(
    model: Any,
    X: ArrayLike,
    y: ArrayLike,
    *,
    corruptions: Mapping[str, Any] | Iterable[Any] | None = None,
    severities: Iterable[int] = (1, 3, 5),
    random_state: int | np.random.RandomState | None = 0,
) -> RobustnessReport:
    """Score a fitted classifier on images corrupted at several severities.

    Each corruption is cloned, given each severity, and applied to ``X``; the
    model then predicts the corrupted images. AUC (one-vs-rest, macro, for more
    than two classes) and accuracy are reported with their relative drop from
    the clean images.

    Parameters
    ----------
    model : classifier
        A fitted classifier with ``predict_proba`` and ``classes_`` (a
        :class:`~sk_medcnn.MedicalCNNClassifier`, or a Pipeline ending in one,
        that takes image arrays).
    X : array-like of shape (n_samples, height, width[, channels]) or \
            (n_samples, depth, height, width[, channels])
        Images or volumes, uncorrupted, as the model takes them. A model that
        records its ``spatial_dims_`` (:class:`~sk_medcnn.MedicalCNNClassifier`,
        or a Pipeline or search ending in one) decides which: each
        corruption whose ``spatial_dims`` is ``"auto"`` is given the model's,
        so ``(n, D, H, W)`` volumes are never read as images of ``W``
        channels; ``X`` of the other kind is an error naming both shapes.
    y : array-like of shape (n_samples,)
        True labels; every class of the model should be present for the AUC.
    corruptions : dict of str to transformer, list of transformers or None
        Transformers with a ``severity`` parameter (those of
        :mod:`sk_medcnn.robustness`, or your own); a list is named by class.
        None takes :func:`default_corruptions`. A corruption whose
        ``spatial_dims`` is 2 or 3 must agree with the model's.
    severities : iterable of int, default=(1, 3, 5)
        Severities to try, each from 1 to 5.
    random_state : int, RandomState instance or None, default=0
        Seeds the default random corruptions.

    Returns
    -------
    report : RobustnessReport
        Prints as a table; ``plot()`` draws it; ``rows`` holds the figures.

    Examples
    --------
    >>> from sk_medcnn import MedicalCNNClassifier
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> from sk_medcnn.robustness import Contrast, robustness_report
    >>> X, y = make_lesion_phantoms(96, image_size=16, random_state=0)
    >>> clf = MedicalCNNClassifier(max_epochs=2, random_state=0).fit(X[:64], y[:64])
    >>> report = robustness_report(
    ...     clf, X[64:], y[64:], corruptions=[Contrast()], severities=[1, 5]
    ... )
    >>> [(row["corruption"], row["severity"]) for row in report.rows]
    [('Contrast', 1), ('Contrast', 5)]
    """
    named, levels = _check_report_options(model, corruptions, severities, random_state)
    classes = np.asarray(model.classes_)
    labels = np.asarray(y)
    images = np.asarray(X)
    if len(images) == 0:
        raise ValueError("X holds no images.")
    if len(labels) != len(images):
        raise ValueError(
            f"X and y must have the same length; got {len(images)} and {len(labels)}."
        )
    spatial_dims = _model_spatial_dims(model, images)
    dims_of = _corruption_dims(named, spatial_dims, images)
    clean = _scores(model, images, labels, classes)
    rows = _corrupted_rows(
        model, named, levels, dims_of, images, labels, classes, clean
    )
    noun = "volumes" if spatial_dims == 3 else "images"
    return RobustnessReport(clean, rows, len(labels), noun=noun)
