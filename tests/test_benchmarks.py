"""Smoke test of benchmarks/bench_fit.py on tiny settings."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

BENCH_FIT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fit.py"


def _load_bench_fit():
    spec = importlib.util.spec_from_file_location("bench_fit", BENCH_FIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_fit_main_runs_and_reports(tmp_path, capsys):
    bench_fit = _load_bench_fit()
    json_path = tmp_path / "bench.json"
    results = bench_fit.main(
        [
            "--synthetic",
            "--epochs",
            "1",
            "--n-train",
            "64",
            "--n-valid",
            "64",
            "--predict-calls",
            "2",
            "--latency-calls",
            "5",
            "--quiet-timeout",
            "0",
            "--max-retries",
            "0",
            "--no-rss-subprocess",
            "--json",
            str(json_path),
        ]
    )

    assert json.loads(json_path.read_text())["config"]["n_train"] == 64
    assert "fit time (s)" in capsys.readouterr().out
    for side in ("plain", "sk_medcnn"):
        figures = results[side]
        for key in (
            "fit_time_s",
            "train_images_per_s",
            "predict_images_per_s",
            "latency_ms",
        ):
            assert math.isfinite(figures[key])
            assert figures[key] > 0, (side, key)
        assert figures["fit_time_s"] < 10
        assert 0.0 <= figures["valid_accuracy"] <= 1.0
        assert figures["process_peak_rss_mb"] is None  # --no-rss-subprocess
        assert "foreign_cpu_share" in figures
    for key in ("fit_time_s", "predict_images_per_s", "latency_ms"):
        assert results["ratios"][key] > 0
    assert set(results["targets"]) >= {"fit_time_ok", "predict_throughput_ok"}
