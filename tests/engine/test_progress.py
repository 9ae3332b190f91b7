"""Progress output while training: epoch lines, and a progress bar on a terminal."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn._engine import show_progress_bar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    ("verbose", "terminal", "shown"),
    [(0, True, False), (1, False, False), (1, True, True), (2, False, True)],
)
def test_progress_bar_only_where_someone_watches(monkeypatch, verbose, terminal, shown):
    monkeypatch.setattr(sys, "stderr", _Terminal() if terminal else io.StringIO())
    assert show_progress_bar(verbose) is shown


def test_a_stderr_without_isatty_shows_no_bar(monkeypatch):
    monkeypatch.setattr(sys, "stderr", object())
    assert show_progress_bar(1) is False


def test_verbose_fit_on_a_terminal_has_the_bar(monkeypatch, phantoms):
    X, y = phantoms
    monkeypatch.setattr(sys, "stderr", _Terminal())
    clf = MedicalCNNClassifier(max_epochs=1, verbose=1, random_state=0).fit(X, y)
    assert "progress_bar" in dict(clf.net_.callbacks_)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    clf = MedicalCNNClassifier(max_epochs=1, verbose=1, random_state=0).fit(X, y)
    assert "progress_bar" not in dict(clf.net_.callbacks_)


SCRIPT = """
import time
from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import make_lesion_phantoms
X, y = make_lesion_phantoms(64, image_size=16, random_state=0)
MedicalCNNClassifier(max_epochs=3, verbose=1, random_state=0, device="cpu").fit(X, y)
time.sleep(2)
"""


@pytest.mark.slow
def test_epoch_lines_reach_a_pipe_as_each_epoch_ends():
    """Each line arrives while the process still runs, not all at its exit."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True
    )
    arrived = []
    for line in process.stdout:
        if line.strip()[:1].isdigit():
            arrived.append(time.perf_counter())
    process.wait()
    ended = time.perf_counter()
    assert len(arrived) == 3
    assert ended - arrived[-1] > 1.5  # the last epoch line came before the sleep
