"""Refuse requests whose memory need is beyond the machine, before allocating.

A request such as ``Resize((100000, 100000))`` or training on 20000x20000 images
fails late and badly when it simply tries: numpy raises a bare ``MemoryError``
naming no parameter, torch asks for hundreds of gigabytes after minutes of work,
or the kernel's out-of-memory killer ends the process. The functions here estimate
the need up front and compare it with :func:`memory_limit`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

__all__ = [
    "BYTES_PER_BATCH_BYTE",
    "MEMORY_LIMIT_VARIABLE",
    "check_memory",
    "format_bytes",
    "memory_limit",
    "training_memory",
    "worth_estimating",
]

#: Environment variable that sets the limit: bytes, or a number with a unit
#: (``"8G"``, ``"512MiB"``, ``"1.5 TB"``; K/M/G/T count in powers of 1024).
MEMORY_LIMIT_VARIABLE = "SK_MEDCNN_MEMORY_LIMIT"

#: Bytes of training memory per byte of the float32 input batch that no network of
#: the registry comes near (simple_cnn's dense layer, the largest, is about 32 times
#: the batch at batch_size=32): a batch below ``limit / BYTES_PER_BATCH_BYTE`` is
#: taken as fitting without estimating (building a resnet18 on the meta device
#: takes about 0.1 s).
BYTES_PER_BATCH_BYTE = 4096

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}


def _parse_bytes(text: str) -> int:
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtTpP]?)(i?[bB])?\s*", text)
    if match is None:
        raise ValueError(
            f"{MEMORY_LIMIT_VARIABLE}={text!r} is not a size: give bytes or a number "
            "with a unit, e.g. 8G or 512MiB."
        )
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"{MEMORY_LIMIT_VARIABLE}={text!r} must be at least 1 byte.")
    return int(value)


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
        return None


def _cgroup_limit() -> int | None:
    """Return the memory limit of this process's control group (container), if any."""
    for name in (
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ):
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge value: no limit
            return int(text)
    return None


def memory_limit() -> int | None:
    """Return the most memory one request may need, in bytes.

    The environment variable ``SK_MEDCNN_MEMORY_LIMIT`` when set (e.g. ``"8G"``),
    else the machine's physical memory (``os.sysconf``), or the memory limit of the
    container (cgroup) when that is lower. A request estimated above it cannot
    succeed without swapping (the estimates count the main allocations only), so
    it is refused.

    Returns
    -------
    limit : int or None
        None when the platform reports no memory size (no check is made).
    """
    text = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip()
    if text:
        return _parse_bytes(text)
    limits = [value for value in (_physical_memory(), _cgroup_limit()) if value]
    return min(limits) if limits else None


def worth_estimating(batch_bytes: int) -> bool:
    """Return True if a float32 batch this large may need more than the limit.

    Below ``limit / BYTES_PER_BATCH_BYTE`` no architecture of the registry comes
    near the limit, and :func:`training_memory` is skipped.
    """
    limit = memory_limit()
    return limit is not None and batch_bytes * BYTES_PER_BATCH_BYTE >= limit


def format_bytes(n_bytes: float) -> str:
    """Return ``n_bytes`` for a reader: ``"9.3 GiB"``, ``"512 MiB"``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return (
                f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
            )
        n_bytes /= 1024
    raise AssertionError  # pragma: no cover


def check_memory(n_bytes: float, what: str, fix: str) -> None:
    """Raise a ValueError if ``what`` needs more than :func:`memory_limit`.

    Parameters
    ----------
    n_bytes : float
        The estimated need.
    what : str
        The request, naming the parameter (``"Resize(shape=(100000, 100000))
        on 2 images of 28x28x1 uint8"``).
    fix : str
        What to do instead, a sentence.
    """
    limit = memory_limit()
    if limit is None or n_bytes <= limit:
        return
    source = (
        f"the limit {MEMORY_LIMIT_VARIABLE} sets"
        if os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip()
        else f"this machine's memory (set {MEMORY_LIMIT_VARIABLE} to change the limit)"
    )
    raise ValueError(
        f"{what} needs about {format_bytes(n_bytes)} of memory, more than the "
        f"{format_bytes(limit)} of {source}. {fix}"
    )


def training_memory(
    factory: Any,
    params: dict[str, Any],
    image_shape: tuple[int, ...],
    n_outputs: int,
    batch_size: int,
) -> int | None:
    """Estimate the memory one training step of an architecture needs, in bytes.

    The network is built on torch's ``meta`` device (shapes without storage) and
    run on a meta batch, so nothing is allocated whatever the image size. The
    estimate is four times the parameters (weights, gradients and two optimizer
    moments, as Adam keeps), plus the output of every leaf module for one batch
    (what autograd keeps for the backward pass; in-place activations are counted
    too, so it errs high by about that), plus the float32 input batch twice (as
    read, and standardised).

    Parameters
    ----------
    factory : callable
        The architecture factory, ``factory(channels, n_outputs, (height,
        width), **params)``.
    params : dict
        Its keyword arguments.
    image_shape : tuple of int
        ``(height, width, channels)``, or ``(depth, height, width, channels)``.
    n_outputs : int
        Outputs of the network.
    batch_size : int
        Images per training batch.

    Returns
    -------
    n_bytes : int or None
        None if the architecture cannot be built
        or run on the meta device (a plugin that reads its weights while
        building, say): no estimate.
    """
    *spatial, channels = image_shape
    batch = batch_size * math.prod(image_shape) * 4
    import torch  # here: the transformers use this module without torch
    from torch import nn

    activations = 0

    def count(module: Any, inputs: Any, output: Any) -> None:
        nonlocal activations
        if isinstance(output, torch.Tensor):
            activations += output.numel() * output.element_size()

    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            body = factory(channels, n_outputs, tuple(spatial), **params)
            if not isinstance(body, nn.Module):
                return None
            hooks = [
                module.register_forward_hook(count)
                for module in body.modules()
                if not list(module.children())
            ]
            try:
                body.train()
                body(torch.empty((batch_size, channels, *spatial)))
            finally:
                for hook in hooks:
                    hook.remove()
    except Exception:  # a factory or forward that needs real tensors
        return None
    n_parameters = sum(parameter.numel() for parameter in body.parameters())
    return 4 * 4 * n_parameters + activations + 2 * batch
