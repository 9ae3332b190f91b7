"""benchmarks/eval_conformal.py on phantoms: the table it prints is computed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_conformal.py"


@pytest.mark.slow  # fits a CNN and runs 160 calibrations
def test_eval_conformal_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("eval_conformal", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "conformal.json"
    results = bench.main(
        [
            "--quick",
            "--splits",
            "40",
            "--datasets",
            "pneumoniamnist",
            "--json",
            str(out),
        ]
    )
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(results))
    rows = saved["rows"]
    assert {(row["alpha"], row["method"]) for row in rows} == {
        (0.05, "lac"),
        (0.05, "aps"),
        (0.1, "lac"),
        (0.1, "aps"),
    }
    for row in rows:
        assert 0.0 <= row["coverage_mean"] <= 1.0
        assert row["bound_low"] == 1 - row["alpha"]
        assert 0.0 <= row["referral_rate"] <= 1.0
        assert 0.0 <= row["set_size"] <= 2.0
    # APS sets hold at least the top class; LAC sets are smaller on average
    by_key = {(row["alpha"], row["method"]): row for row in rows}
    assert by_key[(0.1, "lac")]["set_size"] <= by_key[(0.1, "aps")]["set_size"]
