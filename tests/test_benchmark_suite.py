"""The performance suite (python -m benchmarks) and its new cases, on tiny settings.

Timed figures are never asserted here (they live in the benchmark output);
these tests check that every case runs, reports its figures and judges its
targets from them.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def suite():
    sys.path.insert(0, str(ROOT))
    try:
        yield importlib.import_module("benchmarks.__main__")
    finally:
        sys.path.remove(str(ROOT))


def _load(name):
    sys.path.insert(0, str(ROOT))
    try:
        return importlib.import_module(f"benchmarks.{name}")
    finally:
        sys.path.remove(str(ROOT))


def test_models_quick_reports_every_option_and_the_scaling(tmp_path):
    bench = _load("bench_models")
    results = bench.main(
        [
            "--quick",
            "--n-images",
            "32",
            "--accuracy-epochs",
            "0",
            "--json",
            str(tmp_path / "m.json"),
        ]
    )
    (row,) = results["resnet18"]["rows"]
    for name in bench.OPTIONS:
        assert row[name] > 0
        assert row[f"{name}_ratio"] == pytest.approx(row[name] / row["plain_fp32"])
    assert row["best"] in bench.OPTIONS
    scaling = results["scaling"]["rows"]
    assert [r["architecture"] for r in scaling] == ["simple_cnn", "resnet18"]
    for r in scaling:
        assert r["forward_mflops"] > 0
        assert 0 < r["fraction_of_peak"]
    assert json.loads((tmp_path / "m.json").read_text())["config"]["quick"] is True


def test_forward_flops_count_the_convolutions():
    bench = _load("bench_models")
    # a 3x3 convolution of one channel into C, at H x W, costs 2 * 9 * C * H * W
    # per image; the reference CNN's first layer alone is 2*9*32*28*28
    assert bench.forward_flops("simple_cnn", 28) > 2 * 9 * 32 * 28 * 28
    assert bench.forward_flops("simple_cnn", 56) > 3.5 * bench.forward_flops(
        "simple_cnn", 28
    )


def test_search_quick_compares_the_two_searches(tmp_path):
    bench = _load("bench_search")
    results = bench.main(["--quick", "--n-images", "96"])
    assert results["n_jobs_1_s"] > 0
    assert results["n_jobs_2_s"] > 0
    assert results["speedup"] == pytest.approx(
        results["n_jobs_1_s"] / results["n_jobs_2_s"]
    )
    # loky's workers start with cores // n_jobs torch threads, unless the
    # environment already sets OMP_NUM_THREADS
    if "OMP_NUM_THREADS" not in os.environ:
        expected = max(1, joblib.cpu_count() // 2)
        assert results["config"]["threads_per_worker"] == [expected]
    assert len(results["mean_test_scores"][1]) == 4
    assert results["max_score_difference"] < 0.05


def test_fit_memory_measures_a_fresh_process(tmp_path):
    bench = _load("bench_fit_memory")
    results = bench.main(["--quick", "--n-images", "300", "--size", "32"])
    assert results["data_mb"] == pytest.approx(300 * 32 * 32 / 2**20)
    assert results["peak_rss_mb"] >= results["rss_with_data_mb"]
    assert results["peak_minus_imports_mb"] == pytest.approx(
        results["peak_rss_mb"] - results["rss_after_imports_mb"]
    )
    assert results["targets"]["ok"] == (
        results["peak_minus_imports_mb"] <= results["data_mb"] + 300
    )
    # a second fresh process ran with glibc's mmap threshold fixed
    assert set(results["runs"]) == {"glibc_default", "fixed_mmap_threshold"}
    assert results["runs"]["glibc_default"]["peak_rss_mb"] == results["peak_rss_mb"]


def test_summary_judges_each_target_from_the_figures(suite):
    results = {
        "fit": {
            "ratios": {"fit_time_s": 0.9, "predict_images_per_s": 1.2},
            "sk_medcnn": {"latency_ms": 0.25},
        },
        "search": {"speedup": 1.7},
        "memory": None,  # the case failed
    }
    rows = {row["target"]: row for row in suite.summarise(results)}
    assert rows["fit time / plain loop"]["met"] is True
    assert rows["predict_proba images/s / plain one-batch call"]["met"] is False
    assert rows["one-image latency"]["met"] is True
    assert rows["GridSearchCV n_jobs=2 speedup"]["met"] is True
    memory = rows["fit peak RSS over imports - data size"]
    assert memory["met"] is None
    assert memory["failed"] is True
    assert not any(row["case"] == "models" for row in rows.values())  # not run
    table = suite.format_summary(list(rows.values()))
    assert "failed" in table
    assert " NO" in table
    assert "yes" in table


def test_python_m_benchmarks_smoke_runs_a_case_and_writes_the_summary(tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--cases",
            "memory",
            "--output",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["smoke"] is True
    rows = summary["targets"]
    assert [row["case"] for row in rows] == ["memory", "memory"]
    assert all(row["figure"] is not None for row in rows)
    assert "fit peak RSS over imports" in completed.stdout
    assert (tmp_path / "memory.json").exists()


def test_a_failing_case_is_reported_and_fails_the_run(suite, tmp_path, monkeypatch):
    monkeypatch.setitem(
        suite.CASES, "memory", ("bench_fit_memory.py", [], ["--no-such-option"])
    )
    assert suite.main(["--smoke", "--cases", "memory", "--output", str(tmp_path)]) == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert all(row["failed"] for row in summary["targets"])


def test_cache_benchmark_counts_the_preprocessing_it_skips():
    bench = _load("bench_cache")
    results = bench.main(["--quick", "--n-images", "120", "--size", "16"])
    # 3 candidates x 3 folds: without a cache every fit transforms its training
    # fold and its test fold (18); with one, each training fold once (3 + 9)
    assert results["no_cache"]["clahe_calls"] == 18
    assert results["cache"]["clahe_calls"] == 12
    assert results["same_scores"] is True
