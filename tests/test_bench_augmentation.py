"""Smoke test of benchmarks/bench_augmentation.py on tiny settings."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_augmentation.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_augmentation", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_augmentation_runs_and_reports(tmp_path, capsys):
    bench = _load_bench()
    json_path = tmp_path / "bench.json"
    results = bench.main(
        [
            "--quick",
            "--synthetic",
            "--n-train",
            "64",
            "--min-time",
            "0",
            "--threads",
            "1",
            "--json",
            str(json_path),
        ]
    )

    saved = json.loads(json_path.read_text())
    assert saved["config"]["n_train"] == 64
    assert saved["config"]["epochs"] == 1
    out = capsys.readouterr().out
    assert "skimage loop" in out
    assert "without augmentation" in out
    cases = [(row["image_size"], row["batch_size"]) for row in results["throughput"]]
    assert cases == [(28, 32), (28, 256), (224, 32)]
    for row in results["throughput"]:
        for key in (
            "torch_images_per_s",
            "torch_single_resampling_images_per_s",
            "skimage_images_per_s",
            "speedup",
        ):
            assert math.isfinite(row[key])
            assert row[key] > 0
    assert "default_augmentation() per batch" in out
    rows = results["default_per_batch"]
    assert [(row["spatial_dims"], row["shape"]) for row in rows] == [
        (2, [28, 28]),
        (3, [28, 28, 28]),
    ]
    for row in rows:
        assert math.isfinite(row["ms_per_batch"])
        assert row["ms_per_batch"] > 0
    overhead = results["overhead"]
    assert overhead["plain_epoch_s"] > 0
    assert overhead["augmented_epoch_s"] > 0
    assert math.isfinite(overhead["ratio"])
    assert math.isfinite(overhead["single_resampling_ratio"])
    assert overhead["augment_s_per_epoch"] > 0
    assert overhead["ratio_from_augment_time"] > 1
    assert results["accuracy"] == []  # opt-in
    assert isinstance(results["targets"]["epoch_time_ok"], bool)


def test_both_sides_do_the_same_kind_of_transform():
    # the skimage loop and the torch pipeline keep shape and stay finite, and
    # with one seed the torch side is reproducible
    import numpy as np

    bench = _load_bench()
    batch = bench.make_batch(np.zeros((4, 28, 28), np.uint8), 28, 3, seed=0)
    torch_side = bench.torch_augmenter(0)(batch).numpy()[:, 0]
    skimage_side = bench.skimage_augmenter(0)(batch)
    assert torch_side.shape == skimage_side.shape == batch.shape
    assert np.isfinite(torch_side).all()
    assert np.isfinite(skimage_side).all()
    np.testing.assert_array_equal(
        bench.torch_augmenter(0)(batch).numpy()[:, 0], torch_side
    )
