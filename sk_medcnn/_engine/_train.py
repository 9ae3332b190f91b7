"""Train a built net: resume, augment, shard, and tidy up what only training needs."""

from __future__ import annotations

from typing import Any

import torch
from skorch import NeuralNet
from skorch.history import History

from .._distributed import unwrap, wrap
from ..utils._batches import ArrayDataset
from ..utils._runtime import seeded_torch
from ._checkpoint import (
    check_optimizer_state,
    check_state_shapes,
    checkpoint_error,
)


def train_net(
    net: NeuralNet,
    train_dataset: ArrayDataset,
    *,
    seed: int,
    device: torch.device,
    resume_state: dict[str, Any] | None = None,
    distributed: bool = False,
) -> tuple[int, bool]:
    """Initialise and train ``net``; return the epoch whose weights it holds.

    skorch ends training silently on ``KeyboardInterrupt`` (its early stopping
    raises one to stop, and Ctrl-C lands there too), after restoring the best
    weights so far. This tells the two apart: the caller finishes the fitted
    estimator either way, then raises again on a real interrupt, so Ctrl-C
    stops a script or a search and still leaves a usable model. Training-only
    state (the scheduler, the best-weight copy, the augmenter) is released
    afterwards.

    Parameters
    ----------
    net : skorch.NeuralNet
        From :func:`build_net`.
    train_dataset : ArrayDataset
        The training data.
    seed : int
        Seeds torch's global generator (dropout) during training, restored after.
    device : torch.device
        The training device.
    resume_state : dict, optional
        From :func:`load_checkpoint`: the module, optimizer, criterion and
        history are restored here, the rest by the :class:`TrainingCheckpoint`
        callback, and training continues up to ``net.max_epochs`` epochs.
    distributed : bool, default=False
        Wrap the architecture in ``DistributedDataParallel`` while training
        (the process group exists), and unwrap it afterwards.

    Returns
    -------
    best_epoch : int
        1-based.
    interrupted : bool
        Whether training was interrupted (not finished, not stopped early).
    """
    net.initialize()
    remaining = net.max_epochs
    if resume_state is not None:
        try:
            check_state_shapes(
                resume_state["module"], net.module_.state_dict(), "weights"
            )
            net.module_.load_state_dict(resume_state["module"])
            check_optimizer_state(net.optimizer_, resume_state["optimizer"])
            net.optimizer_.load_state_dict(resume_state["optimizer"])
            net.criterion_.load_state_dict(resume_state["criterion"])
            net.history = History(resume_state["history"])
            finished = bool(resume_state["finished"])
        except Exception as error:  # torch raises bare RuntimeErrors, or KeyError
            path = resume_state.get("path", "checkpoint")
            raise checkpoint_error(path, error) from error
        remaining = 0 if finished else net.max_epochs - len(net.history)
        remaining = max(remaining, 0)
    if distributed:
        net.module_.body = wrap(net.module_.body, device)
    try:
        with seeded_torch(seed, device):
            net.partial_fit(train_dataset, y=None, epochs=remaining)
    finally:
        net.module_.body = unwrap(net.module_.body)
    callbacks = dict(net.callbacks_)
    early_stopping = callbacks.get("early_stopping")
    n_epochs = len(net.history)
    stopped_early = (
        early_stopping is not None and early_stopping.misses_ >= early_stopping.patience
    )
    finished = n_epochs >= net.max_epochs or bool(
        resume_state is not None and resume_state["finished"]
    )
    interrupted = not (finished or stopped_early)
    best_epoch = n_epochs
    if early_stopping is not None and early_stopping.best_epoch_:
        best_epoch = int(early_stopping.best_epoch_)
        early_stopping.best_model_weights_ = None
    scheduler = callbacks.get("lr_schedule")
    if scheduler is not None:
        scheduler.lr_scheduler_ = None
    net.augmenter = None  # training-only, as are these
    for key in ("mixers", "mix_generator", "sampler"):
        if hasattr(net, f"iterator_train__{key}"):
            setattr(net, f"iterator_train__{key}", None)
    shard_epoch = callbacks.get("shard_epoch")
    if shard_epoch is not None:  # its sampler holds the training data
        shard_epoch.sampler = None
    # the validation split holds a reference to X: a pickled model must not carry
    # the training images (size, and data protection when models are shared)
    net.train_split = None
    net.module_.eval()  # skorch sets train mode itself for every training batch
    if device.type == "cpu":
        net.module_.to_inference_layout()
    return best_epoch, interrupted
