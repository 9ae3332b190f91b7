"""benchmarks/bench_load_limits.py: each hostile file gives its expected outcome."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_load_limits.py"


@pytest.mark.slow  # six fresh processes that import torch
def test_bench_load_limits_reports_each_case(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_load_limits", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--json", str(tmp_path / "limits.json")])
    cases = json.loads((tmp_path / "limits.json").read_text())["cases"]
    assert cases == results["cases"]
    assert cases["baseline"]["outcome"] == "loaded"
    assert cases["values at the limit"]["outcome"] == "loaded"
    assert "JSON values" in cases["values past the limit"]["outcome"]
    assert cases["huge image shape"]["outcome"] == "loaded"
    assert "n_threads" in cases["thread bomb"]["outcome"]
    assert all(case["peak_mb"] > 0 for case in cases.values())
