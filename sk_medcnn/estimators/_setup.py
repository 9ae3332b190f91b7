"""What a fit sets up before it trains.

Its data, seeds, held-out split, augmentation, loss and the skorch net.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from torch import nn

from .. import _distributed
from .._engine import augmentation_steps, build_net, make_batch_augmenter
from ..augmentation import default_augmentation
from ..losses import FocalLoss
from ..utils._batches import ArrayDataset
from ..utils._runtime import draw_seeds
from ..utils._validation import warn_user
from . import _checkpoint, _network, _weights
from ._network import inference_batch_size
from ._params import AUTO_AUGMENTATION_MIN_SIZE

if TYPE_CHECKING:
    from ._base import _BaseMedicalCNN


@dataclass
class FitData:
    """The checked training data of one ``fit``: images, targets and weights.

    ``keep`` lists the rows that train (positive weight; repeated for whole
    counts with a custom loss); ``weights`` is None when they weigh nothing.
    """

    images: Any
    y_encoded: NDArray[Any]
    fitted: dict[str, Any]
    n_outputs: int
    weights: NDArray[np.float64] | None
    keep: NDArray[np.intp]

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(size) for size in self.images.shape[1:])

    @property
    def spatial_dims(self) -> int:
        return len(self.image_shape) - 1


@dataclass
class FitSeeds:
    """The seeds of one ``fit``, drawn at once from ``random_state``."""

    init: int
    split: int
    loader: int
    augment: int
    train: int
    mix: int


def draw_fit_seeds(estimator: _BaseMedicalCNN) -> FitSeeds:
    """Draw the fit's seeds; with ``distributed``, shared and then per rank."""
    # one draw of six seeds: the first five are what a five-seed draw gives
    seeds = draw_seeds(estimator.random_state, 6)
    if not estimator.distributed:
        return FitSeeds(*seeds)
    # random_state=None draws differently on each rank: rank 0's draw wins,
    # for the same network and split; each rank its own random draws
    init, split, loader, augment, train, mix = _distributed.broadcast_from_rank_zero(
        seeds
    )
    rank = _distributed.rank_and_world_size()[0]
    augment, train, mix = (
        (seed + 7919 * rank) % 2**31 for seed in (augment, train, mix)
    )
    return FitSeeds(init, split, loader, augment, train, mix)


def held_out_split(
    estimator: _BaseMedicalCNN, y_encoded: NDArray[Any], seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp] | None]:
    """Split the rows into training and held-out rows (None when none is needed).

    The held-out rows serve early stopping, the temperature, ``tta="auto"`` and
    the out-of-distribution threshold; stratified by class when possible.
    """
    n_samples = len(y_encoded)
    indices = np.arange(n_samples)
    if not (estimator.early_stopping or estimator._needs_validation_split()):
        return indices, None
    n_valid = math.ceil(estimator.validation_fraction * n_samples)
    n_needed = len(np.unique(y_encoded)) if estimator._is_classifier else 1
    if n_valid < 1 or n_samples - n_valid < n_needed:
        raise ValueError(
            f"validation_fraction={estimator.validation_fraction} leaves too few "
            f"training or validation samples out of {n_samples}; early_stopping "
            "and calibration need more samples or another validation_fraction "
            "(calibration=None and early_stopping=False train on all of them)."
        )
    stratify = None
    if estimator._is_classifier:
        counts = np.bincount(y_encoded)
        n_classes = np.count_nonzero(counts)
        if counts[counts > 0].min() >= 2 and n_valid >= n_classes:
            stratify = y_encoded
        else:
            warn_user(
                "the held-out validation split cannot be stratified "
                "(a class has fewer than 2 samples, or the split is smaller than "
                "the number of classes); it is drawn at random."
            )
    train_index, valid_index = train_test_split(
        indices, test_size=n_valid, random_state=seed, stratify=stratify
    )
    return np.sort(train_index), np.sort(valid_index)


@dataclass
class FitAugmentation:
    """The training-time augmentation of one ``fit`` and its generators."""

    pipeline: Any  # what augmentation_ reports: the resolved, cloned pipeline
    augmenter: Any
    mixing: dict[str, Any] | None
    generators: dict[str, torch.Generator]


def resolve_augmentation(
    estimator: _BaseMedicalCNN,
    image_shape: tuple[int, ...],
    n_outputs: int,
    seeds: FitSeeds,
    device: torch.device,
) -> FitAugmentation:
    """Resolve ``augmentation`` into the batch augmenter and the mixing."""
    if isinstance(estimator.augmentation, str):  # "auto"
        small = min(image_shape[:-1]) < AUTO_AUGMENTATION_MIN_SIZE
        pipeline = (
            None if small else default_augmentation(spatial_dims=len(image_shape) - 1)
        )
    elif estimator.augmentation is None:
        pipeline = None
    else:
        pipeline = clone(estimator.augmentation)
    augmenters, mixers = augmentation_steps(pipeline)
    if mixers and not estimator._is_classifier:
        raise ValueError(
            f"augmentation holds {type(mixers[0]).__name__}, which mixes class "
            f"labels; it works with MedicalCNNClassifier, not "
            f"{type(estimator).__name__}."
        )
    generator = torch.Generator(device=device).manual_seed(seeds.augment)
    generators = {"augment": generator}
    mixing = None
    if mixers:
        generators["mix"] = torch.Generator().manual_seed(seeds.mix)
        mixing = {
            "mixers": mixers,
            "n_classes": n_outputs,
            "mix_generator": generators["mix"],
        }
    generators["loader"] = torch.Generator().manual_seed(seeds.loader)
    augmenter = make_batch_augmenter(augmenters, generator)
    return FitAugmentation(pipeline, augmenter, mixing, generators)


def build_training_net(
    estimator: _BaseMedicalCNN,
    data: FitData,
    body: nn.Module,
    statistics: tuple[NDArray[np.float64], NDArray[np.float64]],
    augmentation: FitAugmentation,
    device: torch.device,
    loader_seed: int,
    split: tuple[NDArray[np.intp], NDArray[np.intp] | None],
    memory_format: str,
) -> tuple[Any, ArrayDataset, dict[str, Any] | None]:
    """Build the skorch net that trains ``body`` in the layout ``memory_format``.

    Returns the net, its training set and the checkpoint's state to resume
    from (None unless ``resume``).
    """
    weights = _loss_weights(estimator, data, split)
    checkpoint, resume_state = _checkpoint.make_checkpoint(
        estimator,
        data.images,
        data.y_encoded,
        augmentation.generators,
        n_train=len(split[0]),
        rows=data.keep,
        sample_weight=weights,
        resolved={
            name: data.fitted[f"{name}_"]
            for name in ("class_weight", "lr_schedule")
            if f"{name}_" in data.fitted
        },
    )
    train_dataset, valid_dataset = _datasets(data, split, weights)
    criterion, criterion_params = training_criterion(estimator, data, augmentation)
    net = build_net(
        module_params=_module_params(estimator, data, body, statistics, memory_format),
        criterion=criterion,
        criterion_params=criterion_params,
        train_dataset=train_dataset,
        valid_dataset=valid_dataset,
        optimizer=estimator.optimizer,
        lr=estimator.lr,
        weight_decay=estimator.weight_decay,
        momentum=estimator.momentum,
        batch_size=estimator.batch_size,
        inference_batch_size=inference_batch_size(
            estimator.batch_size, data.image_shape
        ),
        max_epochs=estimator.max_epochs,
        lr_schedule=data.fitted["lr_schedule_"],
        early_stopping=estimator.early_stopping,
        patience=estimator.patience,
        device=device,
        loader_generator=augmentation.generators["loader"],
        verbose=estimator.verbose,
        score_accuracy=estimator._is_classifier,
        num_workers=estimator.num_workers,
        mixing=augmentation.mixing,
        sampler=(
            distributed_sampler(train_dataset, loader_seed)
            if estimator.distributed
            else None
        ),
        extra_callbacks=None if checkpoint is None else [("checkpoint", checkpoint)],
        head=_network.training_head(estimator),
        freeze_epochs=estimator.freeze_epochs,
        body_lr_factor=estimator.body_lr_factor,
        augmenter=augmentation.augmenter,
    )
    return net, train_dataset, resume_state


def _loss_weights(
    estimator: _BaseMedicalCNN,
    data: FitData,
    split: tuple[NDArray[np.intp], NDArray[np.intp] | None],
) -> NDArray[np.float32] | None:
    """Return each row's weight in the loss (``ImageNet.get_loss``), or None.

    The sample weights times the class weights, scaled over the training and
    the held-out rows; None when the rows weigh nothing.
    """
    if data.weights is None:
        return None
    loss_weight = data.weights * estimator._class_weight_of_rows(
        data.y_encoded, data.keep, data.fitted, data.weights
    )
    train_index, valid_index = split
    scaled = _weights.loss_weights(loss_weight, train_index, valid_index)
    return scaled.astype(np.float32)


def _datasets(
    data: FitData,
    split: tuple[NDArray[np.intp], NDArray[np.intp] | None],
    weights: NDArray[np.float32] | None,
) -> tuple[ArrayDataset, ArrayDataset | None]:
    """Return the training and held-out datasets (None when nothing is held out).

    The datasets index into the images: no copy of them, even for the split.
    """
    train_index, valid_index = split
    train_dataset = ArrayDataset(
        data.images, data.y_encoded, indices=train_index, sample_weight=weights
    )
    valid_dataset = None
    if valid_index is not None:
        valid_dataset = ArrayDataset(
            data.images, data.y_encoded, indices=valid_index, sample_weight=weights
        )
    return train_dataset, valid_dataset


def _module_params(
    estimator: _BaseMedicalCNN,
    data: FitData,
    body: nn.Module,
    statistics: tuple[NDArray[np.float64], NDArray[np.float64]],
    memory_format: str,
) -> dict[str, Any]:
    """Return the keyword arguments of the :class:`ImageNetwork` around ``body``."""
    return {
        "body": body,
        "mean": statistics[0],
        "std": statistics[1],
        "precision": estimator.precision,
        "memory_format": memory_format,
        "spatial_dims": data.spatial_dims,
    }


def training_criterion(
    estimator: _BaseMedicalCNN, data: FitData, augmentation: FitAugmentation
) -> tuple[type[nn.Module], dict[str, Any]]:
    """Return the loss the network trains with, and its keyword arguments."""
    keep = data.keep
    criterion, params = estimator._make_criterion(
        data.y_encoded[keep],
        data.fitted,
        None if data.weights is None else data.weights[keep],
    )
    if (
        augmentation.mixing
        and criterion is nn.CrossEntropyLoss
        and params.get("weight") is not None
    ):
        # torch's weighted cross-entropy averages soft targets over n, not over
        # the weights; the focal loss at gamma=0 is the same loss, averaged alike
        # for hard and mixed labels
        criterion, params = FocalLoss, {"gamma": 0.0, **params}
    return criterion, params


def distributed_sampler(
    train_dataset: ArrayDataset, seed: int
) -> torch.utils.data.DistributedSampler[int]:
    """Each process's share of the training rows, with ``distributed=True``."""
    rank, world_size = _distributed.rank_and_world_size()
    return torch.utils.data.DistributedSampler(
        train_dataset,
        num_replicas=world_size,
        rank=rank,
        shuffle=True,
        seed=seed,
    )
