"""A model card in every fitted model: what it was trained on, how it scored, its use.

``fit`` records ``model_card_``, a plain dict that the safe format stores with
the model: the training data (samples, class counts, image shape, a
fingerprint), the held-out validation figures with 95% intervals where a
held-out split existed, the calibration, the out-of-distribution threshold,
the versions, and two fields for the user to edit before saving,
``intended_use`` and ``limitations``. :func:`model_card` renders it as
Markdown; ``sk-medcnn info MODEL`` prints it.
"""

from __future__ import annotations

import datetime
import math
import platform
import warnings
import zlib
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline

from ._version import __version__
from .utils._batches import RowReader

__all__ = ["DEFAULT_INTENDED_USE", "model_card"]

DEFAULT_INTENDED_USE = (
    "Research use only. Not a medical device: not validated for diagnosis or any "
    "clinical decision. Edit model_card_['intended_use'] before sharing the model."
)

#: The parameters a card lists (the others are engine settings).
_CARD_PARAMS = (
    "architecture",
    "pretrained",
    "loss",
    "optimizer",
    "lr",
    "batch_size",
    "max_epochs",
    "lr_schedule",
    "early_stopping",
    "class_weight",
    "calibration",
    "tta",
    "ood_false_alarm_rate",
    "random_state",
)


def _plain(value: Any) -> Any:
    """Return a JSON-like copy: numpy scalars as Python ones, others as repr."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return repr(value)


def _interval(successes: int, n: int) -> list[float]:
    """Return the Wilson 95% interval of a proportion."""
    from scipy.stats import binomtest

    if n == 0:
        return [0.0, 1.0]
    ci = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


def _auc_interval(auc: float, n_positive: int, n_negative: int) -> list[float]:
    """Hanley and McNeil's (1982) 95% interval of a ROC AUC, clipped to [0, 1]."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc)
        + (n_positive - 1) * (q1 - auc**2)
        + (n_negative - 1) * (q2 - auc**2)
    ) / (n_positive * n_negative)
    half = 1.959964 * math.sqrt(max(variance, 0.0))
    return [max(0.0, auc - half), min(1.0, auc + half)]


def describe_fit(
    estimator: Any,
    images: NDArray[Any],
    y: Any,
    train_index: NDArray[np.intp],
    valid_index: NDArray[np.intp] | None,
) -> dict[str, Any]:
    """Build the card of a fitted estimator (called at the end of ``fit``).

    Parameters
    ----------
    estimator : MedicalCNNClassifier or MedicalCNNRegressor
        Fitted.
    images : array of shape (n_samples, height, width, channels)
        The training images, as ``fit`` saw them.
    y : ndarray
        The encoded targets (class codes, or the regressor's raw targets).
    train_index, valid_index : ndarray
        The rows trained on and held out (None without a held-out split).

    Returns
    -------
    card : dict
        JSON-like: str keys; str, int, float, bool, None, lists and dicts.
    """
    n_samples = len(images)
    step = max(1, n_samples // 64)
    sample = np.ascontiguousarray(images[::step])
    targets = np.ascontiguousarray(np.asarray(y))
    fingerprint = zlib.crc32(sample.tobytes(), zlib.crc32(targets.tobytes()))
    classes = getattr(estimator, "classes_", None)
    data: dict[str, Any] = {
        "n_samples": n_samples,
        "n_trained_on": len(train_index),
        "n_held_out": 0 if valid_index is None else len(valid_index),
        "image_shape": [int(size) for size in images.shape[1:]],
        "dtype": str(images.dtype),
        "fingerprint": f"crc32:{fingerprint:08x}",
    }
    if classes is not None:
        counts = np.bincount(np.asarray(y, dtype=np.intp), minlength=len(classes))
        data["class_counts"] = {
            str(label): int(count) for label, count in zip(classes, counts, strict=True)
        }
    card: dict[str, Any] = {
        "name": f"{type(estimator).__name__} ({estimator.architecture!s})",
        "intended_use": DEFAULT_INTENDED_USE,
        "limitations": _limitations(estimator, data),
        "fitted_at": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "sk_medcnn_version": __version__,
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "parameters": {
            name: _plain(getattr(estimator, name, None))
            for name in _CARD_PARAMS
            if hasattr(estimator, name)
        },
        "training_data": data,
        "n_epochs": int(estimator.n_epochs_),
        "best_epoch": int(estimator.best_epoch_),
        "temperature": _plain(getattr(estimator, "temperature_", None)),
        "tta": _plain(getattr(estimator, "tta_", getattr(estimator, "tta", None))),
        "class_weight": _plain(getattr(estimator, "class_weight_", None)),
        "lr_schedule": _plain(getattr(estimator, "lr_schedule_", None)),
        "ood_threshold": _plain(getattr(estimator, "ood_threshold_", None)),
        "ood_false_alarm_rate": _plain(
            getattr(estimator, "ood_false_alarm_rate_", None)
        ),
        "validation": None,
    }
    if not hasattr(estimator, "class_weight"):  # a regressor
        del card["class_weight"]
    if valid_index is not None and len(valid_index) and classes is not None:
        card["validation"] = _validation(estimator, images, y, valid_index)
    return card


def _limitations(estimator: Any, data: dict[str, Any]) -> str:
    *spatial, channels = data["image_shape"]
    size = " x ".join(str(side) for side in spatial)
    kind = "volumes" if len(spatial) == 3 else "images"
    unit = "voxels" if len(spatial) == 3 else "pixels"
    return (
        f"Trained on {data['n_samples']} {kind} of {size} {unit}, "
        f"{channels} channel(s); images of another size, modality, body part, "
        "scanner or population may be scored wrongly without any error. Images "
        "unlike the training images are flagged by ood_score (see the threshold). "
        "The validation figures come from a held-out part of the training data, "
        "not from an external test set."
    )


def _validation(
    estimator: Any, images: NDArray[Any], y: Any, valid_index: NDArray[np.intp]
) -> dict[str, Any]:
    """Held-out figures of a classifier, as it predicts (calibrated, with its TTA)."""
    from .metrics import expected_calibration_error

    rows = np.asarray(valid_index)
    truth = np.asarray(y)[rows]
    read = RowReader(images)
    chunks = np.array_split(rows, max(1, math.ceil(len(rows) / estimator.batch_size)))
    with warnings.catch_warnings():  # a batch at a time: no copy of the images
        warnings.simplefilter("ignore")
        proba = np.concatenate(
            [estimator.predict_proba(read(chunk)) for chunk in chunks]
        )
    predicted = proba.argmax(axis=1)
    correct = int(np.count_nonzero(predicted == truth))
    n_held_out = len(rows)
    figures: dict[str, Any] = {
        "n_samples": n_held_out,
        "accuracy": correct / n_held_out,
        "accuracy_ci95": _interval(correct, n_held_out),
        "log_loss": float(
            -np.mean(np.log(np.clip(proba[np.arange(n_held_out), truth], 1e-12, 1)))
        ),
    }
    if proba.shape[1] == 2 and len(np.unique(truth)) == 2:
        from sklearn.metrics import roc_auc_score

        positive = truth == 1
        auc = float(roc_auc_score(truth, proba[:, 1]))
        figures["auc"] = auc
        figures["auc_ci95"] = _auc_interval(
            auc, int(positive.sum()), int((~positive).sum())
        )
        for name, rows_of in (("sensitivity", positive), ("specificity", ~positive)):
            hits = int(np.count_nonzero(predicted[rows_of] == truth[rows_of]))
            figures[name] = hits / int(rows_of.sum())
            figures[f"{name}_ci95"] = _interval(hits, int(rows_of.sum()))
        figures["ece"] = float(expected_calibration_error(truth, proba[:, 1]))
    return figures


def _final(model: Any) -> Any:
    return model.steps[-1][1] if isinstance(model, Pipeline) else model


def model_card(
    model: Any, *, intended_use: str | None = None, limitations: str | None = None
) -> str:
    """Return a fitted model's card as Markdown.

    Parameters
    ----------
    model : MedicalCNNClassifier, MedicalCNNRegressor or Pipeline
        Fitted (or loaded); its ``model_card_`` is rendered.
    intended_use, limitations : str, optional
        Replace the card's fields in the text (the model is not changed; to
        store them, set ``model.model_card_["intended_use"]`` before
        :func:`~sk_medcnn.save_model`).

    Returns
    -------
    markdown : str

    Raises
    ------
    TypeError
        If ``model`` is not an estimator, or ``intended_use`` or
        ``limitations`` is not a str.
    ValueError
        If the model has no card (fitted before cards existed).

    Examples
    --------
    >>> from sk_medcnn import MedicalCNNClassifier, model_card
    >>> from sk_medcnn.datasets import make_lesion_phantoms
    >>> X, y = make_lesion_phantoms(64, image_size=16, random_state=0)
    >>> clf = MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X, y)
    >>> print(model_card(clf).splitlines()[0])
    # Model card: MedicalCNNClassifier (simple_cnn)
    """
    for value, name in ((intended_use, "intended_use"), (limitations, "limitations")):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None; got {value!r}.")
    final = _final(model)
    if not hasattr(final, "fit"):
        raise TypeError(
            "model must be a fitted sk_medcnn estimator or a Pipeline ending in "
            f"one; got {type(final).__name__}."
        )
    card = getattr(final, "model_card_", None)
    if not isinstance(card, dict):
        raise ValueError(
            f"this {type(final).__name__} has no model card (model_card_): it was "
            "fitted before cards existed, or is not fitted; fit it again."
        )
    data = card.get("training_data") or {}
    lines = [
        f"# Model card: {card.get('name', type(final).__name__)}",
        "",
        "## Intended use",
        "",
        str(intended_use or card.get("intended_use", DEFAULT_INTENDED_USE)),
        "",
        "## Limitations",
        "",
        str(limitations or card.get("limitations", "")),
        "",
        "## Training data",
        "",
    ]
    for key, label in (
        ("n_samples", "Images"),
        ("n_trained_on", "Trained on"),
        ("n_held_out", "Held out (validation, calibration, OOD threshold)"),
        ("image_shape", "Image shape ([depth,] height, width, channels)"),
        ("dtype", "Pixel type"),
        ("class_counts", "Class counts"),
        ("fingerprint", "Fingerprint"),
    ):
        if key in data:
            lines.append(f"- {label}: {_text(data[key])}")
    validation = card.get("validation")
    lines += ["", "## Validation (held-out part of the training data)", ""]
    if isinstance(validation, dict):
        for key, value in validation.items():
            if key.endswith("_ci95") or key == "n_samples":
                continue
            interval = validation.get(f"{key}_ci95")
            text = f"{value:.3f}" if isinstance(value, float) else _text(value)
            if isinstance(interval, list) and len(interval) == 2:
                text += f" (95% CI {interval[0]:.3f} to {interval[1]:.3f})"
            lines.append(f"- {key.replace('_', ' ')}: {text}")
        lines.append(f"- images: {_text(validation.get('n_samples'))}")
    else:
        lines.append("No held-out split (calibration=None and early_stopping=False).")
    lines += ["", "## Model", ""]
    for key in (
        "n_epochs",
        "best_epoch",
        "temperature",
        "tta",
        "class_weight",
        "lr_schedule",
    ):
        if key in card:  # a regressor's card has no class weights
            lines.append(f"- {key.replace('_', ' ')}: {_text(card.get(key))}")
    if card.get("ood_threshold") is not None:
        lines.append(
            f"- out-of-distribution threshold: {_text(card['ood_threshold'])} "
            f"(set to flag a share {_text(card.get('ood_false_alarm_rate'))} of "
            "images like the training ones)"
        )
    parameters = card.get("parameters") or {}
    if isinstance(parameters, dict):
        lines.append(
            "- parameters: "
            + ", ".join(f"{key}={_text(value)}" for key, value in parameters.items())
        )
    lines.append(
        f"- fitted {_text(card.get('fitted_at'))} with sk_medcnn "
        f"{_text(card.get('sk_medcnn_version'))}, torch "
        f"{_text(card.get('torch_version'))}, Python "
        f"{_text(card.get('python_version'))}"
    )
    return "\n".join(lines) + "\n"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_text(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "(" + ", ".join(_text(item) for item in value) + ")"
    return str(value)
