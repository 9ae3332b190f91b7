"""The engine's small skorch callbacks and callback predicates."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

import numpy as np
from skorch import NeuralNet
from skorch.callbacks import (
    PrintLog,
)

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

    With sample weights the targets are one-hot rows scaled by the weights
    (``MedicalCNNClassifier._training_targets``): the accuracy is weighted.
    """
    predicted = net.forward(dataset).argmax(dim=1).cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2:
        return float(np.average(predicted == y.argmax(axis=1), weights=y.sum(axis=1)))
    return float((predicted == y).mean())
