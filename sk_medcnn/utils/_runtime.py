"""Where and how torch runs: the device, seeds, threads.

:func:`resolve_device` turns ``"auto"`` into a device, :func:`draw_seeds` and
:func:`seeded_torch` make a fit reproducible without touching the user's
generators, :func:`torch_threads` bounds torch's intra-op threads for a block.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = [
    "draw_seeds",
    "resolve_device",
    "seeded_torch",
    "torch_threads",
    "warn_cpu_fallback",
]


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"`` (CUDA if present, else Apple MPS, else CPU) into a device.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        If the string is not a device torch knows, or names a CUDA device
        that this machine does not have.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or another torch "
            f"device; got {device!r}."
        ) from error
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but CUDA is not available on this machine; "
                "use device='auto' or 'cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    return resolved


def draw_seeds(random_state: Any, n_seeds: int) -> list[int]:
    """Draw ``n_seeds`` independent 31-bit seeds from ``random_state``.

    Parameters
    ----------
    random_state : int, RandomState instance or None
        Resolved with :func:`sklearn.utils.check_random_state`.
    n_seeds : int
        How many seeds.

    Returns
    -------
    seeds : list of int
    """
    rng = check_random_state(random_state)
    return [int(seed) for seed in rng.randint(np.iinfo(np.int32).max, size=n_seeds)]


@contextlib.contextmanager
def seeded_torch(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global generators inside the block and restore them after.

    Network initialisers and dropout read torch's global generator; this keeps
    that seeding from leaking into the user's session.
    """
    # torch.manual_seed seeds every device of the accelerator: restore them all
    devices: list[int] = []
    device_type = "cuda"
    if device.type == "cuda":
        devices = list(range(torch.cuda.device_count()))
    elif device.type != "cpu":
        devices, device_type = [device.index or 0], device.type
    with torch.random.fork_rng(devices=devices, device_type=device_type):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``n_threads`` torch intra-op threads, then restore.

    ``None`` leaves torch's setting alone. The setting is per process, so
    concurrent blocks in threads of one process share it.
    """
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def warn_cpu_fallback(requested: str) -> None:
    """Warn that a model saved on ``requested`` is used on the CPU."""
    warnings.warn(
        f"the model was trained on {requested!r}, which is not available here; "
        "it now runs on the CPU.",
        stacklevel=3,
    )
