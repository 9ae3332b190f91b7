"""The skorch net behind the estimators, built from their resolved settings."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch
from skorch import NeuralNet
from skorch.callbacks import (
    Callback,
)
from skorch.dataset import unpack_data
from skorch.helper import predefined_split
from skorch.utils import to_tensor
from torch import nn

from ..utils._batches import ArrayDataset, BatchAugmenter, collate_batch
from ..utils._network import ImageNetwork, channels_first, channels_last
from ._augment import MixingDataLoader
from ._callbacks import (
    EpochTable,
    freeze_callbacks,
    training_callbacks,
)
from ._optim import cycles_momentum, optimizer_params

logger = logging.getLogger(__name__)


class ImageNet(NeuralNet):
    """skorch's ``NeuralNet`` with batch augmentation and sample weights.

    Both through skorch's hooks:

    - ``train_step_single``: the batch moves to the training device, turns
      channels-first (the augmenters' layout) and goes through ``augmenter``;
      validation and prediction batches are never augmented.
    - ``get_loss``: with the dict input ``{"images": ..., "sample_weight":
      ...}`` (:class:`~sk_medcnn.utils._batches.ArrayDataset` with weights),
      the criterion returns per-sample losses (``reduction="none"``) and the
      batch's loss is the mean of the weighted sample losses; ``infer`` hands
      the network the images only.

    Parameters
    ----------
    *args, **kwargs
        As :class:`skorch.NeuralNet`.
    augmenter : callable or None, default=None
        ``(n, C, *spatial)`` float tensor to tensor (see
        :func:`~sk_medcnn._engine.make_batch_augmenter`). Training-only:
        :func:`~sk_medcnn._engine.train_net` drops it after training, so a
        fitted net pickles without it.
    """

    def __init__(
        self, *args: Any, augmenter: BatchAugmenter | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.augmenter = augmenter

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Augment the batch's images on the training device, then take the step."""
        if self.augmenter is not None:
            X, targets = unpack_data(batch)
            images = X["images"] if isinstance(X, Mapping) else X
            images = channels_first(to_tensor(images, device=self.device))
            images = channels_last(self.augmenter(images))
            X = {**X, "images": images} if isinstance(X, Mapping) else images
            batch = (X, targets)
        return super().train_step_single(batch, **fit_params)  # type: ignore[no-any-return]

    def run_single_epoch(
        self,
        iterator: Any,
        training: bool,
        prefix: str,
        step_fn: Any,
        **fit_params: Any,
    ) -> None:
        """Run skorch's training or validation pass over ``iterator``.

        On the CPU the validation pass runs with the network in channels-last
        (:meth:`ImageNetwork.inference_layout`), the faster inference layout
        that ``predict`` uses after ``fit``; training batches are unchanged.
        """
        if training or iterator is None or torch.device(self.device).type != "cpu":
            super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
            return
        with self.module_.inference_layout():
            super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def infer(self, x: Any, **fit_params: Any) -> torch.Tensor:
        """Run the network on a batch's images (a dict input's sample weights aside)."""
        if isinstance(x, Mapping):
            x = x["images"]
        return super().infer(x, **fit_params)  # type: ignore[no-any-return]

    def get_loss(
        self, y_pred: torch.Tensor, y_true: Any, X: Any = None, training: bool = False
    ) -> torch.Tensor:
        """Return the batch's loss: the mean of the weighted per-sample losses.

        Without sample weights, the criterion's own (mean) loss.
        """
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if not isinstance(X, Mapping) or "sample_weight" not in X:
            return loss  # type: ignore[no-any-return]
        if loss.ndim > 1:  # several outputs: a sample's loss is their mean
            loss = loss.mean(dim=tuple(range(1, loss.ndim)))
        weights = to_tensor(X["sample_weight"], device=self.device)
        return (loss * weights).mean()


def build_net(
    *,
    module_params: dict[str, Any],
    criterion: type[nn.Module],
    criterion_params: dict[str, Any],
    train_dataset: ArrayDataset,
    valid_dataset: ArrayDataset | None,
    optimizer: str | type[torch.optim.Optimizer],
    lr: float,
    weight_decay: float,
    momentum: float,
    batch_size: int,
    inference_batch_size: int,
    max_epochs: int,
    lr_schedule: str | None,
    early_stopping: bool,
    patience: int,
    device: torch.device,
    loader_generator: torch.Generator,
    verbose: int,
    score_accuracy: bool,
    num_workers: int = 0,
    mixing: dict[str, Any] | None = None,
    sampler: torch.utils.data.DistributedSampler[Any] | None = None,
    extra_callbacks: list[tuple[str, Callback]] | None = None,
    head: tuple[str, ...] | None = None,
    freeze_epochs: int = 0,
    body_lr_factor: float = 1.0,
    augmenter: BatchAugmenter | None = None,
) -> ImageNet:
    """Build an uninitialised skorch ``NeuralNet`` for the given settings.

    The module (an :class:`ImageNetwork`) and the criterion are passed as
    classes with ``module__``/``criterion__`` arguments, not as instances: skorch
    pickles those keys with its device-mapped state, so a net trained on a GPU
    unpickles on a machine without one.

    Parameters are the estimator's, resolved; see ``MedicalCNNClassifier``.
    ``mixing``, when given, holds the ``mixers``, ``n_classes`` and
    ``mix_generator`` of a :class:`MixingDataLoader` for the training batches.
    ``sampler``, a ``DistributedSampler``, gives this process its shard of
    every epoch (data-parallel training). ``extra_callbacks`` run after the
    others (a :class:`TrainingCheckpoint`).
    ``head`` names the architecture's output-layer modules (its weight
    loader's ``head``): with ``freeze_epochs`` the other parameters of the
    architecture (the body) get no gradient in the first epochs (skorch's
    ``Freezer``/``Unfreezer``), and with ``body_lr_factor`` they form an
    optimizer parameter group at ``lr * body_lr_factor``.

    Returns
    -------
    net : skorch.NeuralNet
    """
    drop_last, batches_per_epoch = _epoch_batches(train_dataset, sampler, batch_size)
    body_lr = lr * body_lr_factor if body_lr_factor != 1.0 else None
    callbacks = training_callbacks(
        score_accuracy=valid_dataset is not None and score_accuracy,
        lr_schedule=lr_schedule,
        schedule_lr=_peak_rates(lr, body_lr, head),
        max_epochs=max_epochs,
        batches_per_epoch=batches_per_epoch,
        early_stopping=early_stopping,
        patience=patience,
        verbose=verbose,
        sampler=sampler,
        cycle_momentum=cycles_momentum(optimizer, momentum),
    )
    callbacks += freeze_callbacks(head, freeze_epochs) + (extra_callbacks or [])
    optimizer_class, optimizer_kwargs = optimizer_params(
        optimizer,
        weight_decay=weight_decay,
        momentum=momentum,
        head=head,
        body_lr=body_lr,
    )
    return ImageNet(
        module=ImageNetwork,
        augmenter=augmenter,
        criterion=criterion,
        optimizer=optimizer_class,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        train_split=(
            predefined_split(valid_dataset) if valid_dataset is not None else None
        ),
        callbacks=callbacks,
        callbacks__print_log=EpochTable(),
        predict_nonlinearity=None,
        verbose=int(verbose > 0),
        device=device,
        **_iterator_params(
            sampler=sampler,
            drop_last=drop_last,
            loader_generator=loader_generator,
            inference_batch_size=inference_batch_size,
            num_workers=num_workers,
            mixing=mixing,
        ),
        **{f"module__{key}": value for key, value in module_params.items()},
        **{f"criterion__{key}": value for key, value in criterion_params.items()},
        **{f"optimizer__{key}": value for key, value in optimizer_kwargs.items()},
    )


def _epoch_batches(
    train_dataset: ArrayDataset,
    sampler: torch.utils.data.DistributedSampler[Any] | None,
    batch_size: int,
) -> tuple[bool, int]:
    """Return whether to drop the last training batch, and the batches per epoch.

    A lone sample in the last batch breaks batch normalisation on 1x1 maps, so
    such a batch is dropped; an epoch counts at least one batch (the one-cycle
    schedule's steps).
    """
    n_train = len(train_dataset) if sampler is None else len(sampler)
    drop_last = n_train > batch_size and n_train % batch_size == 1
    batches_per_epoch = (
        n_train // batch_size if drop_last else math.ceil(n_train / batch_size)
    )
    return drop_last, max(1, batches_per_epoch)


def _peak_rates(
    lr: float, body_lr: float | None, head: tuple[str, ...] | None
) -> float | list[float]:
    """Return the one-cycle schedule's peak rate, one per optimizer parameter group."""
    if head is not None and body_lr is not None:
        return [lr] * len(head) + [body_lr]
    return lr


def _iterator_params(
    *,
    sampler: torch.utils.data.DistributedSampler[Any] | None,
    drop_last: bool,
    loader_generator: torch.Generator,
    inference_batch_size: int,
    num_workers: int,
    mixing: dict[str, Any] | None,
) -> dict[str, Any]:
    """Skorch's ``iterator_train__*`` and ``iterator_valid__*`` settings."""
    params: dict[str, Any] = {
        "iterator_train": MixingDataLoader if mixing else torch.utils.data.DataLoader,
        "iterator_train__shuffle": sampler is None,
        "iterator_train__sampler": sampler,
        "iterator_train__drop_last": drop_last,
        "iterator_train__generator": loader_generator,
        "iterator_train__collate_fn": collate_batch,
        "iterator_valid__collate_fn": collate_batch,
        "iterator_valid__batch_size": inference_batch_size,
        "iterator_train__num_workers": num_workers,
        "iterator_valid__num_workers": num_workers,
    }
    for key, value in (mixing or {}).items():
        params[f"iterator_train__{key}"] = value
    return params


def build_inference_net(
    *,
    module_params: dict[str, Any],
    criterion: type[nn.Module],
    batch_size: int,
    device: torch.device,
) -> ImageNet:
    """Build the net of a loaded model: the network, its device and batch size.

    A model read from a file predicts, explains and exports; it does not train
    again (a refit starts from a clone), so its net holds no training settings:
    no optimizer options, schedule, callbacks or data. The weights are loaded
    into ``net.module_`` after :meth:`~skorch.NeuralNet.initialize`.

    Parameters
    ----------
    module_params : dict
        The :class:`ImageNetwork`'s keyword arguments.
    criterion : type of torch.nn.Module
        The loss class of the estimator (a loaded net computes no loss, but
        skorch builds one).
    batch_size : int
        Images per inference batch.
    device : torch.device
        Where the network runs.

    Returns
    -------
    net : ImageNet
        Not initialised.
    """
    return ImageNet(
        module=ImageNetwork,
        criterion=criterion,
        batch_size=batch_size,
        train_split=None,
        callbacks__print_log=EpochTable(),
        predict_nonlinearity=None,
        verbose=0,
        device=device,
        iterator_valid__collate_fn=collate_batch,
        iterator_valid__batch_size=batch_size,
        **{f"module__{key}": value for key, value in module_params.items()},
    )
