"""Reports: the JSON files, the evaluation table and the names of output files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._common import CommandError
from ._models import _final_estimator


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` as indented JSON, atomically.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    document : dict
        JSON-serialisable, numpy scalars and arrays included.
    """
    from ..utils._files import atomic_open

    with atomic_open(path) as handle:
        json.dump(document, handle, indent=2, default=_json_default)
        handle.write("\n")


def evaluation(
    model: Any,
    X: Any,
    y: NDArray[Any],
    *,
    threshold: float = 0.5,
    n_bootstraps: int = 1000,
    random_state: int | None = 0,
) -> tuple[dict[str, Any], str]:
    """Score ``model`` on ``(X, y)``: a clinical report for two classes.

    Parameters
    ----------
    model : fitted classifier or Pipeline
    X : array-like
        Images (or paths for a Pipeline that reads files).
    y : ndarray of shape (n_samples,)
        True labels.
    threshold : float, default=0.5
        Probability of the positive class (``classes_[1]``) at or above which an
        image is called positive.
    n_bootstraps : int, default=1000
        Bootstrap resamples for the 95% confidence intervals.
    random_state : int or None, default=0
        Seeds the bootstrap.

    Returns
    -------
    document : dict
        The figures, JSON-serialisable.
    text : str
        A printable table.
    """
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    from ..exceptions import OutOfDistributionWarning
    from ..inspection import check_distribution

    estimator = _final_estimator(model)
    classes = estimator.classes_
    y = _known_labels(y, classes)
    with warnings.catch_warnings():  # counted in the report instead
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        proba = model.predict_proba(X)
    document: dict[str, Any] = {"n_samples": len(y), "classes": classes.tolist()}
    if len(classes) == 2:
        predicted, figures, lines = _binary_figures(
            y,
            proba,
            classes,
            threshold=threshold,
            n_bootstraps=n_bootstraps,
            random_state=random_state,
        )
    else:
        predicted, figures, lines = _multiclass_figures(y, proba, classes)
    document.update(figures)
    matrix = sk_confusion_matrix(y, predicted, labels=classes)
    document["confusion_matrix"] = {"labels": classes.tolist(), "counts": matrix}
    if len(classes) > 2:  # the clinical report prints the binary one
        lines += _confusion_table(classes, matrix)
    document["out_of_distribution"], line = _distribution_summary(
        check_distribution(model, X), estimator
    )
    lines += ["", line]
    return document, "\n".join(lines)


def _known_labels(y: NDArray[Any], classes: NDArray[Any]) -> NDArray[Any]:
    """Return ``y`` in the type of the model's classes; refuse classes it lacks."""
    y = np.asarray(y)
    if y.dtype.kind in "iub" and classes.dtype.kind in "UO":
        y = y.astype(str)
    unknown = sorted(set(np.unique(y).tolist()) - set(classes.tolist()))
    if unknown:
        raise CommandError(
            f"the data has classes {unknown} that the model does not know; its "
            f"classes are {classes.tolist()} (map them with --labels, e.g. "
            f"--labels {unknown[0]}={classes.tolist()[0]},...)"
        )
    return y


def _binary_figures(
    y: NDArray[Any],
    proba: NDArray[Any],
    classes: NDArray[Any],
    *,
    threshold: float,
    n_bootstraps: int,
    random_state: int | None,
) -> tuple[NDArray[Any], dict[str, Any], list[str]]:
    """Score two classes with the clinical report.

    Returns
    -------
    predicted : ndarray of shape (n_samples,)
        The class called at ``threshold``.
    figures : dict
        The positive class, the threshold and the metrics with their intervals.
    lines : list of str
        The printed report.
    """
    from ..metrics import clinical_report

    positive = classes[1].item() if isinstance(classes[1], np.generic) else classes[1]
    report = clinical_report(
        y,
        proba[:, 1],
        threshold=threshold,
        n_bootstraps=n_bootstraps,
        random_state=random_state,
        pos_label=positive,
    )
    predicted = np.where(proba[:, 1] >= threshold, classes[1], classes[0])
    figures = {
        "positive_class": positive,
        "threshold": threshold,
        "metrics": {
            name: {
                "value": estimate.value,
                "ci_low": estimate.low,
                "ci_high": estimate.high,
            }
            for name, estimate in report.items()
        },
    }
    return predicted, figures, [str(report)]


def _multiclass_figures(
    y: NDArray[Any], proba: NDArray[Any], classes: NDArray[Any]
) -> tuple[NDArray[Any], dict[str, Any], list[str]]:
    """Score three classes or more: accuracy and balanced accuracy.

    Returns
    -------
    predicted : ndarray of shape (n_samples,)
        The most probable class.
    figures : dict
        The metrics.
    lines : list of str
        The printed metrics.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    predicted = classes[np.argmax(proba, axis=1)]
    metrics = {
        "accuracy": {"value": float(accuracy_score(y, predicted))},
        "balanced_accuracy": {"value": float(balanced_accuracy_score(y, predicted))},
    }
    lines = [f"{name:<20} {entry['value']:.3f}" for name, entry in metrics.items()]
    return predicted, {"metrics": metrics}, lines


def _confusion_table(classes: NDArray[Any], matrix: NDArray[Any]) -> list[str]:
    """Return the printed confusion matrix, after a blank line."""
    width = 2 + max(max(len(str(label)) for label in classes), len(str(matrix.max())))
    header = " " * width + "".join(f"{label!s:>{width}}" for label in classes)
    lines = ["", "Confusion matrix (rows: true, columns: predicted)", header]
    for label, row in zip(classes, matrix, strict=True):
        counts = "".join(f"{count:>{width}}" for count in row)
        lines.append(f"{label!s:<{width}}{counts}")
    return lines


def _distribution_summary(check: Any, estimator: Any) -> tuple[dict[str, Any], str]:
    """Count the images unlike the training images, for the evaluation report."""
    n_images = len(check.in_distribution)
    flagged = int(np.count_nonzero(~check.in_distribution))
    rate = getattr(estimator, "ood_false_alarm_rate_", None)
    threshold = getattr(estimator, "ood_threshold_", None)
    by_score = (
        int(np.count_nonzero(check.ood_score > threshold))
        if threshold is not None
        else None
    )
    summary = {
        "n_flagged": flagged,
        "share_flagged": flagged / n_images if n_images else 0.0,
        "n_flagged_by_score": by_score,
        "ood_threshold": threshold,
        "false_alarm_rate": rate,
    }
    line = (
        f"Unlike the training images: {flagged} of {n_images} "
        f"({summary['share_flagged']:.1%})"
    )
    if rate is not None:
        line += (
            f"; {by_score} by the learned score, whose threshold "
            f"{threshold:.3g} flags about {rate:.0%} of images like the "
            "training ones"
        )
    else:
        line += " by intensity (the model has no learned out-of-distribution score)"
    return summary, line + "."


def _file_stem(path: str | Path) -> str:
    """Return the name of ``path`` without its extension (``.nii.gz`` as one)."""
    from ..io._readers import extension_of

    name = Path(path).name
    extension = extension_of(path)
    return name[: len(name) - len(extension)] if extension else name
