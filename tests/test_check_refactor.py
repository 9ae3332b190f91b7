"""Smoke test of benchmarks/check_refactor.py: it runs, saves and compares."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "check_refactor.py"


def _load():
    spec = importlib.util.spec_from_file_location("check_refactor", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_rerun_is_identical_and_a_change_is_caught(tmp_path, capsys):
    script = _load()
    only = ["reference", "sample_weight", "regressor_weighted"]
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    for path in (first, second):
        assert script.main(["--quick", "--out", str(path), "--only", *only]) == 0
    assert script.main(["--compare", str(first), str(second)]) == 0
    assert "largest of all: 0" in capsys.readouterr().out
    changed = dict(np.load(second))
    changed["reference"] = changed["reference"] + 1e-3
    np.savez(second, **changed)
    assert script.main(["--compare", str(first), str(second)]) == 1
