"""The training engine: builds the skorch net behind the estimators.

Nothing medical lives here: loss, optimizer, LR schedule, early stopping on a
held-out split with best-weight restore, progress output, the per-batch
augmentation hook, the device and the seeds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    EpochScoring,
    Freezer,
    LRScheduler,
    PrintLog,
    ProgressBar,
    Unfreezer,
)
from skorch.helper import predefined_split
from skorch.history import History
from torch import nn

from ._distributed import ShardEpoch, unwrap, wrap
from .utils._files import atomic_path
from .utils._torch import (
    ArrayDataset,
    BatchAugmenter,
    ImageNetwork,
    collate_batch,
    seeded_torch,
)

logger = logging.getLogger(__name__)

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}
LR_SCHEDULES = (None, "cosine", "step", "plateau", "onecycle")
CHECKPOINT_NAME = "checkpoint.pt"
_CHECKPOINT_FORMAT = 1


class ModuleCriterion(nn.Module):
    """Hold a user's loss module so skorch pickles it with the device-mapped state.

    Parameters
    ----------
    loss : torch.nn.Module
        Called as ``loss(outputs, targets)``.
    """

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return ``loss(outputs, targets)``."""
        return self.loss(outputs, targets)


class WeightedRegressionLoss(nn.Module):
    """Mean squared error or Huber loss, weighted by a last column of the targets.

    ``targets`` is ``(n, n_outputs + 1)``: the standardised targets, then the
    loss weights. The loss is the batch mean of ``w_i * l_i``, ``l_i`` the
    sample's loss averaged over the outputs (with weights 1, what
    ``nn.MSELoss`` and ``nn.HuberLoss`` give). The estimators scale the weights
    to mean 1 over the training set, so the epoch's loss is the weighted mean.

    Parameters
    ----------
    loss : {"mse", "huber"}, default="mse"
        The per-sample loss (Huber with ``delta=1``, as ``nn.HuberLoss``).
    """

    def __init__(self, loss: str = "mse") -> None:
        super().__init__()
        if loss not in ("mse", "huber"):
            raise ValueError(f"loss must be 'mse' or 'huber'; got {loss!r}.")
        self.loss = loss

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return the weighted mean loss of ``outputs`` ``(n, n_outputs)``."""
        values, weights = targets[:, :-1], targets[:, -1]
        outputs = outputs.float()
        if self.loss == "huber":
            per_sample = F.huber_loss(outputs, values, reduction="none")
        else:
            per_sample = F.mse_loss(outputs, values, reduction="none")
        return (per_sample.mean(dim=1) * weights).mean()


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


def _in_body(name: str, head: tuple[str, ...]) -> bool:
    """Whether skorch parameter ``name`` belongs to the architecture's body."""
    if not name.startswith("body."):
        return False
    inner = name.removeprefix("body.")
    return not any(inner.startswith(module + ".") for module in head)


def _epoch_at_most(net: NeuralNet, last: int) -> bool:
    return len(net.history) <= last


def _epoch_is(net: NeuralNet, epoch: int) -> bool:
    return len(net.history) == epoch


def _valid_accuracy(net: NeuralNet, dataset: Any, y: Any) -> float:
    """Accuracy of the cached validation logits (an ``EpochScoring`` callable).

    With sample weights the targets are one-hot rows scaled by the weights
    (``MedicalCNNClassifier._training_targets``): the accuracy is weighted.
    """
    predicted = net.forward(dataset).argmax(dim=1).cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2:
        return float(np.average(predicted == y.argmax(axis=1), weights=y.sum(axis=1)))
    return float((predicted == y).mean())


def _optimizer_params(
    optimizer: str | type[torch.optim.Optimizer],
    *,
    weight_decay: float,
    momentum: float,
) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    optimizer_class = OPTIMIZERS[optimizer] if isinstance(optimizer, str) else optimizer
    params: dict[str, Any] = {"weight_decay": weight_decay}
    if optimizer_class is torch.optim.SGD:
        params["momentum"] = momentum
    return optimizer_class, params


def _schedule_callback(
    lr_schedule: str,
    *,
    lr: float | list[float],
    max_epochs: int,
    batches_per_epoch: int,
    patience: int,
    monitor: str,
) -> LRScheduler:
    if lr_schedule == "cosine":
        return LRScheduler(
            policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=max_epochs
        )
    if lr_schedule == "step":
        return LRScheduler(
            policy=torch.optim.lr_scheduler.StepLR,
            step_size=max(1, max_epochs // 3),
            gamma=0.1,
        )
    if lr_schedule == "plateau":
        return LRScheduler(
            policy=torch.optim.lr_scheduler.ReduceLROnPlateau,
            monitor=monitor,
            patience=max(1, patience // 2),
            factor=0.1,
        )
    if lr_schedule == "onecycle":
        return LRScheduler(
            policy=torch.optim.lr_scheduler.OneCycleLR,
            max_lr=lr,
            total_steps=max_epochs * batches_per_epoch,
            step_every="batch",
        )
    raise ValueError(f"unknown lr_schedule {lr_schedule!r}")  # checked in fit


class TrainingCheckpoint(Callback):
    """Save the whole training state after every epoch, atomically; resume from it.

    skorch's ``Checkpoint`` writes the module, optimizer and history to separate
    files with ``torch.save``; a kill between two of them leaves a set that does
    not belong together. This callback writes one file per save, through a
    temporary file renamed into place, holding what resuming needs to continue
    exactly as an uninterrupted fit would: the module, optimizer and criterion
    states, the history, the early-stopping state with the best weights, the
    learning-rate scheduler and the random generators (batch order,
    augmentation, label mixing, dropout). It is read back with
    ``torch.load(weights_only=True)``, which unpickles no code.

    Put it after ``EarlyStopping`` in the callbacks: its ``on_epoch_end`` then
    sees that epoch's early-stopping state. When early stopping ends the
    training (it raises before later callbacks run) or the last epoch is done,
    ``on_train_end`` writes the finished state.

    Parameters
    ----------
    path : pathlib.Path
        The checkpoint file.
    fingerprint : dict
        JSON-serialisable description of the data and settings; resuming
        checks it.
    generators : dict of str to torch.Generator
        The fit's generators, saved and restored by name.
    resume_state : dict, optional
        A loaded checkpoint to restore in ``on_train_begin``.
    """

    def __init__(
        self,
        path: Path,
        fingerprint: dict[str, Any],
        generators: dict[str, torch.Generator],
        resume_state: dict[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.generators = generators
        self.resume_state = resume_state

    def on_train_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        """Restore the callbacks' and generators' state of a resumed fit."""
        state = self.resume_state
        if state is None:
            return
        try:
            self._restore(net, state)
        except Exception as error:  # torch raises bare RuntimeErrors, or KeyError
            raise checkpoint_error(self.path, error) from error
        self.resume_state = None  # free the loaded tensors

    def _restore(self, net: NeuralNet, state: dict[str, Any]) -> None:
        callbacks = dict(net.callbacks_)
        stopping = callbacks.get("early_stopping")
        if stopping is not None and state["early_stopping"] is not None:
            saved = state["early_stopping"]
            stopping.misses_ = int(saved["misses"])
            stopping.dynamic_threshold_ = float(saved["threshold"])
            stopping.best_epoch_ = int(saved["best_epoch"])
            # checked now: skorch loads them after the last epoch
            check_state_shapes(
                saved["best_module"], net.module_.state_dict(), "best weights"
            )
            stopping.best_model_weights_ = saved["best_module"]
        scheduler = callbacks.get("lr_schedule")
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.lr_scheduler_.load_state_dict(state["scheduler"])
        for name, generator in self.generators.items():
            generator.set_state(state["rng"][name])
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def on_epoch_end(self, net: NeuralNet, **kwargs: Any) -> None:
        """Save the state after this epoch."""
        self.save(net, finished=len(net.history) >= net.max_epochs)

    def on_train_end(self, net: NeuralNet, **kwargs: Any) -> None:
        """Save the finished state when early stopping ended the training."""
        stopping = dict(net.callbacks_).get("early_stopping")
        if stopping is not None and stopping.misses_ >= stopping.patience:
            self.save(net, finished=True)

    def save(self, net: NeuralNet, *, finished: bool) -> None:
        """Write the checkpoint file atomically."""
        callbacks = dict(net.callbacks_)
        stopping = callbacks.get("early_stopping")
        scheduler = callbacks.get("lr_schedule")
        state = {
            "format": _CHECKPOINT_FORMAT,
            "fingerprint": json.dumps(self.fingerprint, sort_keys=True),
            "finished": finished,
            "module": net.module_.state_dict(),
            "optimizer": net.optimizer_.state_dict(),
            "criterion": net.criterion_.state_dict(),
            "history": json.dumps(net.history.to_list(), default=float),
            "early_stopping": None
            if stopping is None
            else {
                "misses": int(stopping.misses_),
                "threshold": float(stopping.dynamic_threshold_),
                "best_epoch": int(stopping.best_epoch_),
                "best_module": stopping.best_model_weights_,
            },
            "scheduler": None
            if scheduler is None or getattr(scheduler, "lr_scheduler_", None) is None
            else scheduler.lr_scheduler_.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all()
                if torch.cuda.is_available()
                else [],
                **{
                    name: generator.get_state()
                    for name, generator in self.generators.items()
                },
            },
        }
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)


def checkpoint_error(path: Path | str, error: BaseException) -> ValueError:
    """Return the error for a checkpoint whose content does not fit the fit."""
    detail = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, KeyError):
        detail = f"no entry {detail}"
    if len(detail) > 300:
        detail = detail[:300] + " ..."
    return ValueError(
        f"the checkpoint {str(path)!r} is damaged or does not fit this network "
        f"({detail}); delete it or set resume=False."
    )


def check_state_shapes(
    saved: Any, reference: dict[str, torch.Tensor], what: str
) -> None:
    """Raise a ValueError if a saved state dict differs in names or shapes."""
    if not isinstance(saved, dict):
        raise ValueError(f"{what}: not a dict of tensors")
    if set(saved) != set(reference):
        differing = sorted(set(saved) ^ set(reference))[:3]
        raise ValueError(f"{what}: other tensor names ({', '.join(differing)} ...)")
    for name, tensor in reference.items():
        value = saved[name]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else "none"
            raise ValueError(
                f"{what}: {name} has shape {shape}, the network's {tuple(tensor.shape)}"
            )


def _check_optimizer_state(optimizer: torch.optim.Optimizer, saved: Any) -> None:
    """Raise a ValueError if the saved optimizer moments do not fit the parameters.

    ``Optimizer.load_state_dict`` checks the number of parameters only; moments of
    another shape would fail at the first step, as a bare RuntimeError.
    """
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    ids = [i for group in saved["param_groups"] for i in group["params"]]
    if len(ids) != len(parameters):
        raise ValueError(
            f"optimizer: {len(ids)} parameters, the network has {len(parameters)}"
        )
    for index, parameter in zip(ids, parameters, strict=True):
        for key, value in saved["state"].get(index, {}).items():
            if (
                isinstance(value, torch.Tensor)
                and value.ndim > 0
                and value.shape != parameter.shape
            ):
                raise ValueError(
                    f"optimizer: {key} of a parameter has shape {tuple(value.shape)}, "
                    f"the parameter {tuple(parameter.shape)}"
                )


def load_checkpoint(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """Read a :class:`TrainingCheckpoint` file written for the same fit.

    Parameters
    ----------
    path : pathlib.Path
        The checkpoint file; None is returned when it does not exist.
    fingerprint : dict
        What the checkpoint must have been written for.

    Returns
    -------
    state : dict or None

    Raises
    ------
    ValueError
        If the file is not a readable checkpoint, or was written for other data
        or settings.
    """
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError("not a checkpoint of this sk_medcnn version")
        saved = json.loads(state["fingerprint"])
        history = json.loads(state["history"])
    except Exception as error:  # torch and zipfile raise many kinds
        raise ValueError(
            f"checkpoint_dir holds {str(path)!r}, which cannot be read as a "
            f"training checkpoint ({error}); delete it or set resume=False."
        ) from error
    if saved != fingerprint:
        differing = sorted(
            key
            for key in set(saved) | set(fingerprint)
            if saved.get(key) != fingerprint.get(key)
        )
        raise ValueError(
            f"the checkpoint {str(path)!r} was written for other data or settings "
            f"(they differ in {', '.join(differing)}); resume=True continues only "
            "the same fit. Use another checkpoint_dir or set resume=False."
        )
    state["history"] = history
    state["path"] = str(path)
    return state


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
) -> NeuralNet:
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
    n_train = len(train_dataset) if sampler is None else len(sampler)
    # A lone sample in the last batch breaks batch normalisation on 1x1 maps.
    drop_last = n_train > batch_size and n_train % batch_size == 1
    batches_per_epoch = (
        n_train // batch_size if drop_last else math.ceil(n_train / batch_size)
    )
    # A split held out for calibration only stays out of every training
    # decision, the learning-rate schedule included.
    monitor = "valid_loss" if early_stopping else "train_loss"
    sink: Callable[..., Any] = print if verbose > 0 else logger.info
    # one peak rate per optimizer parameter group (one-cycle schedule)
    schedule_lr: float | list[float] = lr
    if head is not None and body_lr_factor != 1.0:
        schedule_lr = [lr] * len(head) + [lr * body_lr_factor]

    callbacks: list[tuple[str, Any]] = []
    if valid_dataset is not None and score_accuracy:
        callbacks.append(
            (
                "valid_acc",
                EpochScoring(
                    _valid_accuracy,
                    lower_is_better=False,
                    on_train=False,
                    name="valid_acc",
                    use_caching=True,
                ),
            )
        )
    if lr_schedule is not None:
        callbacks.append(
            (
                "lr_schedule",
                _schedule_callback(
                    lr_schedule,
                    lr=schedule_lr,
                    max_epochs=max_epochs,
                    batches_per_epoch=max(1, batches_per_epoch),
                    patience=patience,
                    monitor=monitor,
                ),
            )
        )
    if early_stopping:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(
                    monitor="valid_loss", patience=patience, load_best=True, sink=sink
                ),
            )
        )
    if sampler is not None:
        callbacks.append(("shard_epoch", ShardEpoch(sampler)))
    if show_progress_bar(verbose):
        callbacks.append(("progress_bar", ProgressBar()))
    if head is not None and freeze_epochs > 0:
        in_body = partial(_in_body, head=head)
        callbacks.append(
            (
                "freeze_body",
                Freezer(in_body, at=partial(_epoch_at_most, last=freeze_epochs)),
            )
        )
        callbacks.append(
            (
                "unfreeze_body",
                Unfreezer(in_body, at=partial(_epoch_is, epoch=freeze_epochs + 1)),
            )
        )
    callbacks.extend(extra_callbacks or [])

    optimizer_class, optimizer_params = _optimizer_params(
        optimizer, weight_decay=weight_decay, momentum=momentum
    )
    if head is not None and body_lr_factor != 1.0:
        # skorch puts the matched groups first, the rest (the body) last
        optimizer_params["param_groups"] = [
            *[(f"body.{module}.*", {}) for module in head],
            ("*", {"lr": lr * body_lr_factor}),
        ]
    iterator_train: Any = torch.utils.data.DataLoader
    mixing_params: dict[str, Any] = {}
    if mixing:
        iterator_train = MixingDataLoader
        mixing_params = {
            f"iterator_train__{key}": value for key, value in mixing.items()
        }
    return NeuralNet(
        module=ImageNetwork,
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
        iterator_train=iterator_train,
        iterator_train__shuffle=sampler is None,
        iterator_train__sampler=sampler,
        iterator_train__drop_last=drop_last,
        iterator_train__generator=loader_generator,
        iterator_train__collate_fn=collate_batch,
        iterator_valid__collate_fn=collate_batch,
        iterator_valid__batch_size=inference_batch_size,
        iterator_train__num_workers=num_workers,
        iterator_valid__num_workers=num_workers,
        **mixing_params,
        **{f"module__{key}": value for key, value in module_params.items()},
        **{f"criterion__{key}": value for key, value in criterion_params.items()},
        **{f"optimizer__{key}": value for key, value in optimizer_params.items()},
    )


def train_net(
    net: NeuralNet,
    train_dataset: ArrayDataset,
    *,
    augmenter: BatchAugmenter | None,
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
    augmenter : callable or None
        From :func:`make_batch_augmenter`.
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
            _check_optimizer_state(net.optimizer_, resume_state["optimizer"])
            net.optimizer_.load_state_dict(resume_state["optimizer"])
            net.criterion_.load_state_dict(resume_state["criterion"])
            net.history = History(resume_state["history"])
            finished = bool(resume_state["finished"])
        except Exception as error:  # torch raises bare RuntimeErrors, or KeyError
            path = resume_state.get("path", "checkpoint")
            raise checkpoint_error(path, error) from error
        remaining = 0 if finished else net.max_epochs - len(net.history)
        remaining = max(remaining, 0)
    net.module_.augment = augmenter
    if distributed:
        net.module_.body = wrap(net.module_.body, device)
    try:
        with seeded_torch(seed, device):
            net.partial_fit(train_dataset, y=None, epochs=remaining)
    finally:
        net.module_.augment = None
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
    for key in ("mixers", "mix_generator", "sampler"):  # training-only
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


def _flatten_steps(augmentation: Any) -> Iterator[Any]:
    """Yield the steps of nested Pipelines and lists in order, skipping None."""
    if augmentation is None or (
        isinstance(augmentation, str) and augmentation == "passthrough"
    ):
        return
    if hasattr(augmentation, "steps"):
        for _, step in augmentation.steps:
            yield from _flatten_steps(step)
    elif isinstance(augmentation, list | tuple):
        for step in augmentation:
            yield from _flatten_steps(step)
    else:
        yield augmentation


def augmentation_steps(augmentation: Any) -> tuple[list[Any], list[Any]]:
    """Split the ``augmentation`` parameter into batch augmenters and label mixers.

    Parameters
    ----------
    augmentation : object, list, Pipeline or None
        ``None``; an augmenter (an object with ``augment_batch(images,
        generator)``) or a label mixer (with ``mix_batch(images, targets,
        generator)``, such as ``MixUp``); or a list or ``Pipeline`` of them.

    Returns
    -------
    augmenters, mixers : list
        In their given order.

    Raises
    ------
    TypeError
        If a step has neither method.
    """
    augmenters: list[Any] = []
    mixers: list[Any] = []
    for step in _flatten_steps(augmentation):
        if callable(getattr(step, "augment_batch", None)):
            augmenters.append(step)
        elif callable(getattr(step, "mix_batch", None)):
            mixers.append(step)
        else:
            raise TypeError(
                "augmentation must be None, an augmenter from sk_medcnn.augmentation "
                "(an object with an augment_batch(images, generator) or "
                "mix_batch(images, targets, generator) method), or a list or "
                f"Pipeline of them; got {type(step).__name__}."
            )
    return augmenters, mixers


def make_batch_augmenter(
    augmenters: list[Any], generator: torch.Generator
) -> BatchAugmenter | None:
    """Chain augmenters into one per-batch tensor function.

    Parameters
    ----------
    augmenters : list
        Objects with ``augment_batch(images, generator)`` taking and returning
        a float tensor of shape ``(n, C, H, W)``, applied in order.
    generator : torch.Generator
        The generator every random draw of the fit reads, on the training device.

    Returns
    -------
    augmenter : callable or None
        None when there is nothing to apply.
    """
    if not augmenters:
        return None

    def augment(images: torch.Tensor) -> torch.Tensor:
        for step in augmenters:
            images = step.augment_batch(images, generator)
        return images

    return augment


class MixingDataLoader(torch.utils.data.DataLoader):  # type: ignore[type-arg]
    """A training DataLoader that mixes each batch's images and labels.

    Class labels become one-hot rows, then every mixer's
    ``mix_batch(images, targets, generator)`` returns mixed images and soft
    targets (mixing runs on the CPU as batches are drawn, before the
    augmenters run on the training device). The losses accept such
    probability targets.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        The training data.
    mixers : list
        Objects with ``mix_batch``, such as ``sk_medcnn.augmentation.MixUp``.
    n_classes : int
        Width of the one-hot targets.
    mix_generator : torch.Generator
        The CPU generator the mixers draw from.
    **kwargs
        Passed to :class:`torch.utils.data.DataLoader`.
    """

    def __init__(
        self,
        dataset: Any,
        *,
        mixers: list[Any],
        n_classes: int,
        mix_generator: torch.Generator,
        **kwargs: Any,  # DataLoader's own arguments
    ) -> None:
        super().__init__(dataset, **kwargs)
        self.mixers = mixers
        self.n_classes = n_classes
        self.mix_generator = mix_generator

    def __iter__(self) -> Any:
        """Yield ``(images, soft_targets)`` batches."""
        for images, targets in super().__iter__():
            soft = targets  # already rows (scaled by sample weights) or indices
            if targets.ndim == 1:
                soft = torch.nn.functional.one_hot(targets, self.n_classes).float()
            for mixer in self.mixers:
                images, soft = mixer.mix_batch(images, soft, self.mix_generator)
            yield images, soft
