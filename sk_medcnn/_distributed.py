"""Data-parallel training with torch.distributed, launched by ``torchrun``.

``MedicalCNNClassifier(distributed=True).fit(X, y)`` in a script started by
``torchrun --nproc-per-node=N script.py`` trains one model in N processes:
every process holds the whole data set and the same network (same seeds),
trains on its own shard of every epoch (a ``DistributedSampler``) and
torch's ``DistributedDataParallel`` averages the gradients of each step, so
all processes end with the same weights. Nothing here is home-made beyond
the glue: the process group, the sampler and the gradient averaging are
torch's.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
import torch.distributed as dist
from skorch.callbacks import Callback
from torch import nn

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: How long a collective waits for the other processes before failing.
TIMEOUT = datetime.timedelta(minutes=10)


def init_distributed(device: torch.device, estimator_name: str) -> torch.device:
    """Join (or create) the process group of this ``torchrun`` worker.

    Parameters
    ----------
    device : torch.device
        The resolved ``device`` parameter. With CUDA, each process takes the
        GPU of its ``LOCAL_RANK``.
    estimator_name : str
        For the error message.

    Returns
    -------
    device : torch.device
        This process's training device.

    Raises
    ------
    RuntimeError
        If the process was not started by ``torchrun`` (or with its
        environment variables) and no process group exists.
    """
    if not dist.is_available():  # pragma: no cover - every build here has it
        raise RuntimeError("this torch build has no torch.distributed.")
    if device.type not in ("cpu", "cuda"):
        raise RuntimeError(
            f"{estimator_name}(distributed=True) runs on CPUs (gloo) or CUDA GPUs "
            f"(NCCL); not on {device.type!r}."
        )
    if not dist.is_initialized():
        missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
        if missing:
            raise RuntimeError(
                f"{estimator_name}(distributed=True) must run in processes started "
                "by torchrun (e.g. `torchrun --nproc-per-node=2 train.py`); "
                f"{', '.join(missing)} not set."
            )
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    if device.type == "cuda":
        # one GPU per process: the LOCAL_RANK-th of the GPUs this process sees
        # (with one visible GPU per task, as under SLURM, that one)
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


def rank_and_world_size() -> tuple[int, int]:
    """Return this process's rank and the number of processes."""
    return dist.get_rank(), dist.get_world_size()


def broadcast_from_rank_zero(value: Any) -> Any:
    """Return rank 0's ``value`` on every rank (a picklable object)."""
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


class ShardEpoch(Callback):
    """Reshuffle the ``DistributedSampler`` shards at every epoch.

    Parameters
    ----------
    sampler : torch.utils.data.DistributedSampler
        The training sampler; its ``set_epoch`` gets the epoch number, so every
        rank draws the same permutation and takes its own part of it.
    """

    def __init__(self, sampler: torch.utils.data.DistributedSampler[Any]) -> None:
        self.sampler = sampler

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:
        """Set the sampler's epoch (skorch has just counted this epoch)."""
        self.sampler.set_epoch(len(net.history))


def wrap(body: nn.Module, device: torch.device) -> nn.Module:
    """Wrap the architecture in ``DistributedDataParallel`` for training."""
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(body, device_ids=device_ids)


def unwrap(body: nn.Module) -> nn.Module:
    """Return the architecture inside a ``DistributedDataParallel`` wrapper.

    Its buffers (batch-norm running statistics) are first set to rank 0's: DDP
    copies them from rank 0 before each forward pass, so after the last
    training step each rank holds the statistics of its own last batch.
    """
    if isinstance(body, nn.parallel.DistributedDataParallel):
        module = body.module
        with torch.no_grad():
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)
        return module
    return body
