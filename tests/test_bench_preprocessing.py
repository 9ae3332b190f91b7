"""Smoke test of benchmarks/bench_preprocessing.py on tiny settings."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_preprocessing.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_preprocessing", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_preprocessing_runs_and_reports(tmp_path, capsys):
    bench = _load_bench()
    json_path = tmp_path / "bench.json"
    results = bench.main(
        [
            "--quick",
            "--synthetic",
            "--n-images",
            "24",
            "--json",
            str(json_path),
        ]
    )

    saved = json.loads(json_path.read_text())
    assert saved["config"]["n_images"] == 24
    assert saved["config"]["data"] == "synthetic uniform noise"
    table = capsys.readouterr().out
    assert "speed-up" in table
    for case, label in bench.LABELS.items():
        assert label in table
        figures = results[case]
        for key in ("sk_medcnn_images_per_s", "loop_images_per_s", "speedup"):
            assert math.isfinite(figures[key])
            assert figures[key] > 0, (case, key)
    # both sides compute the same thing (uint8 resize may round one level apart)
    assert results["resize_28_64"]["max_abs_difference"] <= 1
    assert results["clahe"]["max_abs_difference"] < 1e-6
    assert results["zscore"]["max_abs_difference"] < 1e-4


def test_bench_preprocessing_case_selection(capsys):
    bench = _load_bench()
    results = bench.main(
        ["--synthetic", "--n-images", "8", "--repeats", "1", "--cases", "minmax"]
    )
    assert set(results) == {"config", "minmax"}
    assert "IntensityNormalizer minmax" in capsys.readouterr().out
