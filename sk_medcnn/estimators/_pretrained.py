"""What ``pretrained`` names: a weights file, a .skmed model or a fitted estimator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import BaseEstimator

from ..pretrained import read_weights, resolve_input_statistics
from ..registry import (
    WeightLoader,
    get_weight_loader,
)

if TYPE_CHECKING:
    from ._base import _BaseMedicalCNN


@dataclass
class PretrainedSource:
    """What ``pretrained`` resolved to (see ``_BaseMedicalCNN._pretrained_source``).

    ``statistics`` is what ``input_normalization="auto"`` resolves to: a name
    (``"imagenet"``, ``"data"``) or the source model's ``(mean, std)``.
    """

    state: dict[str, torch.Tensor]
    loader: WeightLoader
    origin: str
    keep_head: bool
    params: dict[str, Any]
    statistics: str | tuple[NDArray[np.float64], NDArray[np.float64]]


def pretrained_source(
    estimator: _BaseMedicalCNN, fitted: dict[str, Any], n_outputs: int
) -> PretrainedSource | None:
    """Read ``pretrained``: the weights, their loader and what they expect."""
    if estimator.pretrained is None:
        return None
    if not isinstance(estimator.architecture, str):
        raise ValueError(
            "pretrained needs a registered architecture name (its weight "
            "loader maps the checkpoint onto the network); got a factory "
            "callable for architecture."
        )
    loader = get_weight_loader(estimator.architecture)
    model = estimator.pretrained
    origin = "the fitted estimator given as pretrained"
    if not isinstance(model, BaseEstimator):
        path = Path(model)
        if path.suffix.lower() != ".skmed":
            state = read_weights(path)
            implied = {}
            if loader.architecture_params is not None:
                implied = dict(loader.architecture_params(loader.map_keys(state)))
            return PretrainedSource(
                state=state,
                loader=loader,
                origin=f"the file {str(path)!r}",
                keep_head=False,
                params=implied,
                statistics=loader.normalization or "data",
            )
        from ..persistence import load_model  # persistence imports this module

        if not path.is_file():
            raise ValueError(f"pretrained model file {str(path)!r} does not exist.")
        model = load_model(path)
        origin = f"the model file {str(path)!r}"
    from ._base import _BaseMedicalCNN  # the estimators import this module

    if hasattr(model, "steps"):  # a Pipeline: its network is the last step
        model = model.steps[-1][1]
    if not isinstance(model, _BaseMedicalCNN) or not hasattr(model, "net_"):
        raise ValueError(
            f"pretrained must be a fitted sk_medcnn estimator (or a Pipeline "
            f"ending in one) when it is not a weights file; {origin} is "
            f"{'an unfitted' if isinstance(model, _BaseMedicalCNN) else 'a'} "
            f"{type(model).__name__}."
        )
    if model.architecture != estimator.architecture:
        raise ValueError(
            f"pretrained: {origin} has architecture {model.architecture!r}, "
            f"but this estimator has {estimator.architecture!r}; fine-tuning keeps "
            "the architecture."
        )
    state = {
        name.removeprefix("body."): tensor.detach().cpu()
        for name, tensor in model.net_.module_.state_dict().items()
        if name.startswith("body.")
    }
    if estimator._is_classifier != model._is_classifier:
        keep_head = False
    elif estimator._is_classifier:
        classes = model.classes_
        keep_head = len(classes) == len(fitted["classes_"]) and bool(
            np.all(classes == fitted["classes_"])
        )
    else:
        keep_head = model._fitted_n_outputs() == n_outputs
    return PretrainedSource(
        state=state,
        loader=loader,
        origin=origin,
        keep_head=keep_head,
        params=model._fitted_architecture_params(),
        statistics=(
            np.asarray(model.input_mean_, dtype=np.float64),
            np.asarray(model.input_std_, dtype=np.float64),
        ),
    )


def input_statistics(
    estimator: _BaseMedicalCNN,
    images: Any,
    train_index: NDArray[np.intp],
    source: PretrainedSource | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], str]:
    """Resolve ``input_normalization`` into per-channel mean and std."""
    return resolve_input_statistics(
        estimator.input_normalization,
        images,
        train_index,
        default="data" if source is None else source.statistics,
    )
