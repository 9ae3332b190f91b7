import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_latency.py"


@pytest.mark.slow  # a fit and timed loops: a minute on busy cores
def test_quick_run_prints_its_figures(capsys):
    spec = importlib.util.spec_from_file_location("bench_latency", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--quick", "--threads", "1"])
    out = capsys.readouterr().out
    assert "one-image latency: simple_cnn, 28x28 images (synthetic)" in out
    assert "the library's own cost" in out
    assert "bare forward with 1 thread(s)" in out
    assert results["predict_proba_ms"] > 0
    assert results["bare_forward_ms"] > 0
    assert results["overhead_ms"] == (
        results["predict_proba_ms"] - results["bare_forward_ms"]
    )
