"""Checkpoints of a training run: one atomic file per epoch, and resuming."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from skorch import NeuralNet
from skorch.callbacks import (
    Callback,
)

from ..utils._files import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"
_CHECKPOINT_FORMAT = 1


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


def check_optimizer_state(optimizer: torch.optim.Optimizer, saved: Any) -> None:
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
