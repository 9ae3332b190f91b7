"""The engine's small skorch callbacks and callback predicates."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from skorch import NeuralNet
from skorch.callbacks import (
    EarlyStopping,
    EpochScoring,
    Freezer,
    PrintLog,
    ProgressBar,
    Unfreezer,
)

from .._distributed import ShardEpoch
from ._optim import schedule_callback

logger = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class EpochTable(PrintLog):
    """skorch's epoch table, without colour codes unless stdout is a terminal.

    skorch colours the best value of each column with ANSI codes, which end up
    as ``[0m`` noise in log files and redirected output. A non-empty
    ``NO_COLOR`` turns them off on a terminal too (https://no-color.org).
    """

    def format_row(self, row: Any, key: str, color: str) -> Any:
        """Format one cell; drop the colour codes when they would be noise."""
        text = super().format_row(row, key, color)
        isatty = getattr(sys.stdout, "isatty", None)  # log capturers may lack it
        terminal = callable(isatty) and bool(isatty())
        if isinstance(text, str) and (os.environ.get("NO_COLOR") or not terminal):
            return _ANSI.sub("", text)
        return text


def show_progress_bar(verbose: int) -> bool:
    """Whether training at ``verbose`` shows skorch's progress bar of the batches.

    ``verbose=1`` shows it only where someone watches: when standard error (where
    tqdm draws) is a terminal. In a log file or a pipe the bar would be hundreds
    of carriage-return updates, so there the epoch lines alone report progress.
    ``verbose >= 2`` always shows it.

    Parameters
    ----------
    verbose : int
        The estimator's ``verbose``.

    Returns
    -------
    show : bool
    """
    if verbose >= 2:
        return True
    if verbose < 1:
        return False
    isatty = getattr(sys.stderr, "isatty", None)  # log capturers may lack it
    return callable(isatty) and bool(isatty())


def in_body(name: str, head: tuple[str, ...]) -> bool:
    """Whether skorch parameter ``name`` belongs to the architecture's body."""
    if not name.startswith("body."):
        return False
    inner = name.removeprefix("body.")
    return not any(inner.startswith(module + ".") for module in head)


def epoch_at_most(net: NeuralNet, last: int) -> bool:
    return len(net.history) <= last


def epoch_is(net: NeuralNet, epoch: int) -> bool:
    return len(net.history) == epoch


def valid_accuracy(net: NeuralNet, dataset: Any, y: Any) -> float:
    """Accuracy of the cached validation logits (an ``EpochScoring`` callable).

    Weighted by the held-out rows' loss weights when the dataset has them
    (``ArrayDataset(sample_weight=...)``).
    """
    predicted = net.forward(dataset).argmax(dim=1).cpu().numpy()
    weights = getattr(dataset, "sample_weight", None)
    return float(np.average(predicted == np.asarray(y), weights=weights))


def training_callbacks(
    *,
    score_accuracy: bool,
    lr_schedule: str | None,
    schedule_lr: float | list[float],
    max_epochs: int,
    batches_per_epoch: int,
    early_stopping: bool,
    patience: int,
    verbose: int,
    sampler: Any = None,
    cycle_momentum: bool = True,
) -> list[tuple[str, Any]]:
    """Return the callbacks of a training run, in the order skorch runs them.

    Parameters
    ----------
    score_accuracy : bool
        Score the held-out accuracy every epoch (a classifier with a split).
    lr_schedule : str or None
        The schedule's name (see :data:`LR_SCHEDULES`).
    schedule_lr : float or list of float
        The peak learning rate, one per optimizer parameter group.
    max_epochs, batches_per_epoch : int
        The schedule's length.
    early_stopping : bool
        Stop on the held-out loss, restoring the best weights; the plateau
        schedule then watches it too (a split held out for calibration only
        stays out of every training decision).
    patience : int
        Epochs without improvement before stopping (half of it, at least 1,
        for the plateau schedule).
    verbose : int
        The estimator's ``verbose``: where early stopping reports, and the
        progress bar.
    sampler : DistributedSampler, optional
        Told the epoch, so every process shuffles alike.
    cycle_momentum : bool, default=True
        Whether the one-cycle schedule cycles the optimizer's momentum (see
        :func:`~sk_medcnn._engine._optim.cycles_momentum`).

    Returns
    -------
    callbacks : list of (name, callback)
    """
    callbacks: list[tuple[str, Any]] = []
    if score_accuracy:
        scoring = EpochScoring(
            valid_accuracy,
            lower_is_better=False,
            on_train=False,
            name="valid_acc",
            use_caching=True,
        )
        callbacks.append(("valid_acc", scoring))
    if lr_schedule is not None:
        schedule = schedule_callback(
            lr_schedule,
            lr=schedule_lr,
            max_epochs=max_epochs,
            batches_per_epoch=batches_per_epoch,
            patience=patience,
            monitor="valid_loss" if early_stopping else "train_loss",
            cycle_momentum=cycle_momentum,
        )
        callbacks.append(("lr_schedule", schedule))
    if early_stopping:
        sink: Callable[..., Any] = print if verbose > 0 else logger.info
        stopping = EarlyStopping(
            monitor="valid_loss", patience=patience, load_best=True, sink=sink
        )
        callbacks.append(("early_stopping", stopping))
    if sampler is not None:
        callbacks.append(("shard_epoch", ShardEpoch(sampler)))
    if show_progress_bar(verbose):
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks


def freeze_callbacks(
    head: tuple[str, ...] | None, freeze_epochs: int
) -> list[tuple[str, Any]]:
    """Freeze the body (all but ``head``) for the first ``freeze_epochs`` epochs.

    skorch's ``Freezer`` and ``Unfreezer``; none when nothing is frozen.

    Parameters
    ----------
    head : tuple of str or None
        The architecture's output-layer modules (its weight loader's ``head``).
    freeze_epochs : int
        Epochs the body gets no gradient.

    Returns
    -------
    callbacks : list of (name, callback)
    """
    if head is None or freeze_epochs <= 0:
        return []
    body_only = partial(in_body, head=head)
    return [
        (
            "freeze_body",
            Freezer(body_only, at=partial(epoch_at_most, last=freeze_epochs)),
        ),
        (
            "unfreeze_body",
            Unfreezer(body_only, at=partial(epoch_is, epoch=freeze_epochs + 1)),
        ),
    ]
