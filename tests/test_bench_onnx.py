"""benchmarks/bench_onnx.py --quick: the table it prints is measured, and agrees."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_onnx.py"


@pytest.mark.slow  # fits a CNN and exports it
def test_bench_onnx_quick(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_onnx", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "onnx.json"
    results = bench.main(["--quick", "--n-images", "128", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    (row,) = results["rows"]
    assert row["max_abs_difference"] < 1e-5
    for key in ("sk_medcnn_images_per_s", "onnx_images_per_s", "onnx_latency_ms"):
        assert row[key] > 0
    assert row["throughput_ratio"] == pytest.approx(
        row["onnx_images_per_s"] / row["sk_medcnn_images_per_s"]
    )
    assert "| simple_cnn |" in capsys.readouterr().out


def test_bench_onnx_refuses_a_bad_count():
    spec = importlib.util.spec_from_file_location("bench_onnx", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--n-images", "0"])
    assert exit_info.value.code == 2
