"""Smoke test of benchmarks/bench_persistence.py on tiny settings."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_persistence.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_persistence", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_persistence_runs_and_reports(tmp_path, capsys):
    bench = _load_bench()
    json_path = tmp_path / "bench.json"
    results = bench.main(
        ["--quick", "--repeats", "1", "--cases", "simple_cnn", "--json", str(json_path)]
    )

    saved = json.loads(json_path.read_text())
    assert saved["config"]["cases"] == ["simple_cnn"]
    assert saved["config"]["threads"] == 1
    table = capsys.readouterr().out
    assert bench.LABELS["simple_cnn"] in table
    assert "ratio" in table
    figures = results["simple_cnn"]
    for name in ("skmed", "joblib", "ratio"):
        for key in ("bytes", "save_ms", "load_ms"):
            assert math.isfinite(figures[name][key])
            assert figures[name][key] > 0, (name, key)
    # joblib also pickles Adam's two moment buffers per weight; .skmed does not
    assert figures["ratio"]["bytes"] < 1
