"""Smoke test of benchmarks/bench_architectures_3d.py on tiny settings."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_architectures_3d.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_architectures_3d", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # about 4 s: torch's flop counter and first training step warm up
def test_bench_runs_and_reports(tmp_path, capsys):
    bench = _load_bench()
    json_path = tmp_path / "bench.json"
    results = bench.main(
        [
            "--quick",
            "--in-process",
            "--sizes",
            "8",
            "--batch-28",
            "2",
            "--cases",
            "simple_cnn",
            "--json",
            str(json_path),
        ]
    )
    saved = json.loads(json_path.read_text())
    assert saved["config"]["threads"] == 2
    rows = {(row["architecture"], len(row["shape"])): row for row in results["rows"]}
    # the 2-D baseline first, then each chosen 3-D architecture
    assert list(rows) == [("simple_cnn", 2), ("simple_cnn", 3)]
    for row in results["rows"]:
        for key in ("parameters", "forward_gflops", "train_per_s", "predict_per_s"):
            assert math.isfinite(row[key])
            assert row[key] > 0, (row["architecture"], key)
    # a volume costs more than an image of the same side, for the same network
    assert (
        rows["simple_cnn", 3]["forward_gflops"]
        > rows["simple_cnn", 2]["forward_gflops"]
    )
    table = capsys.readouterr().out
    assert "8x8x8" in table
    assert "8x8 " in table


def test_every_3d_architecture_is_a_case():
    from sk_medcnn import list_architectures

    bench = _load_bench()
    found = bench.cases(bench.parse_args([]))
    volumes = {name for name, shape, _ in found if len(shape) == 3}
    assert volumes == set(list_architectures(spatial_dims=3))
    assert {shape for _, shape, _ in found} == {
        (28, 28),
        (64, 64),
        (28, 28, 28),
        (64, 64, 64),
    }
    assert all(batch <= 32 for _, _, batch in found)


@pytest.mark.parametrize(
    "argv",
    [["--steps", "0"], ["--batch-64", "64"], ["--sizes", "0"], ["--min-seconds", "-1"]],
)
def test_bad_options_exit(argv):
    bench = _load_bench()
    with pytest.raises(SystemExit):
        bench.main(argv)


@pytest.mark.parametrize(
    ("architecture", "expected"),
    [("simple_cnn", "channels_last"), ("resnet18", "contiguous")],
)
def test_auto_layout_is_the_estimators_choice(architecture, expected):
    bench = _load_bench()
    model = bench.build(architecture, (8, 8, 8))
    assert bench.resolve_layout("auto", model, 3) == expected
    assert bench.resolve_layout("contiguous", model, 3) == "contiguous"
    assert bench.torch_format("channels_last", 3) is bench.torch.channels_last_3d
    assert bench.torch_format("channels_last", 2) is bench.torch.channels_last


def test_layouts_run_each_case_in_each_layout(capsys):
    bench = _load_bench()
    results = bench.main(
        [
            "--quick",
            "--in-process",
            "--sizes",
            "4",
            "--batch-28",
            "2",
            "--cases",
            "simple_cnn",
            "--layouts",
            "contiguous",
            "auto",
            "--threads",
            "1",
        ]
    )
    used = [(len(row["shape"]), row["layout_used"]) for row in results["rows"]]
    assert used == [
        (2, "contiguous"),
        (2, "channels_last"),
        (3, "contiguous"),
        (3, "channels_last"),
    ]
    assert all(row["train_per_s"] > 0 for row in results["rows"])
    assert "NHWC" in capsys.readouterr().out


def test_unknown_layout_exits():
    bench = _load_bench()
    with pytest.raises(SystemExit):
        bench.parse_args(["--layouts", "channels_last"])
