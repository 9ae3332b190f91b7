"""benchmarks/eval_robustness.py on phantoms."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_robustness.py"


@pytest.mark.slow  # fits a CNN and scores 33 corrupted copies
def test_eval_robustness_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("eval_robustness", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "robustness.json"
    bench.main(["--quick", "--datasets", "pneumoniamnist", "--json", str(out)])
    saved = json.loads(out.read_text())["datasets"]["pneumoniamnist"]
    assert len(saved["rows"]) == 11 * 3
    assert set(saved["mean_auc_drop"]) == {"1", "3", "5"}
    assert 0 <= saved["clean"]["auc"] <= 1
