"""The trusted types: the classes a ``.skmed`` file may name, and ``trusted=``.

Loading never imports a module named by the file: every class it names is looked
up here, in a fixed allow-list of sk_medcnn and scikit-learn estimators and
torch optimizers, extended only by the classes the caller passes in ``trusted``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    Binarizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    RobustScaler,
    StandardScaler,
)

from .. import augmentation as _augmentation
from .. import io as _io
from .. import preprocessing as _preprocessing
from ..estimators import MedicalCNNClassifier, MedicalCNNRegressor

# --- the allow-list -----------------------------------------------------------------


def _public_estimators(module: Any) -> dict[str, type]:
    classes = {}
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, type) and issubclass(value, BaseEstimator):
            classes[f"{module.__name__}.{name}"] = value
    return classes


#: Estimator classes a file may name, by the name it uses.
_ALLOWED_ESTIMATORS: dict[str, type] = {
    "sk_medcnn.MedicalCNNClassifier": MedicalCNNClassifier,
    "sk_medcnn.MedicalCNNRegressor": MedicalCNNRegressor,
    **_public_estimators(_preprocessing),
    **_public_estimators(_augmentation),
    **_public_estimators(_io),  # ImageLoader: a saved pipeline predicts from files
    "sklearn.pipeline.Pipeline": Pipeline,
    **{
        f"sklearn.preprocessing.{cls.__name__}": cls
        for cls in (
            Binarizer,
            MaxAbsScaler,
            MinMaxScaler,
            Normalizer,
            RobustScaler,
            StandardScaler,
        )
    },
}
#: Classes a file may hold as parameter values (the ``optimizer`` class).
_ALLOWED_CLASS_REFERENCES: dict[str, type] = {
    f"torch.optim.{name}": getattr(torch.optim, name)
    for name in (
        "ASGD",
        "Adadelta",
        "Adagrad",
        "Adam",
        "AdamW",
        "Adamax",
        "NAdam",
        "RAdam",
        "RMSprop",
        "Rprop",
        "SGD",
    )
    if hasattr(torch.optim, name)
}


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_trusted(trusted: Any) -> dict[str, type]:
    """Return the trusted classes by name; refuse ``True`` and names as strings."""
    if trusted is True:
        raise TypeError(
            "trusted=True is not supported: it would let a model file name any "
            "class, the hole behind skops' CVE-2024-37065. Pass the classes "
            "themselves, e.g. trusted=[MyTransformer]."
        )
    if trusted is None or trusted is False:
        return {}
    if isinstance(trusted, str | bytes) or not isinstance(trusted, Iterable):
        raise TypeError(
            f"trusted must be a list of classes; got {type(trusted).__name__}."
        )
    classes: dict[str, type] = {}
    for cls in trusted:
        if not isinstance(cls, type):
            raise TypeError(
                "trusted must hold classes, not their names: import the class "
                f"and pass it (load_model never imports a module); got {cls!r}."
            )
        classes[_qualified_name(cls)] = cls
    return classes
