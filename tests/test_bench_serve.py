"""benchmarks/bench_serve.py --quick: a real server process answers every request."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_serve.py"


@pytest.mark.slow  # starts a server process
def test_bench_serve_quick(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "serve.json"
    results = bench.main(["--quick", "--clients", "4", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    assert results["requests"] == 40
    assert results["failed"] == 0
    assert results["latency_p50_ms"] <= results["latency_p99_ms"]
    assert results["rss_mib"]["warm"] > 0
    assert "requests/s" in capsys.readouterr().out
