"""benchmarks/bench_volume_io.py runs and reports its figures (quick settings)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_volume_io.py"


@pytest.mark.slow
def test_quick_run_reports_every_case(capsys):
    pytest.importorskip("nibabel")
    pytest.importorskip("pydicom")
    spec = importlib.util.spec_from_file_location("bench_volume_io", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick"])
    out = capsys.readouterr().out
    assert "DICOM series of 30 slices 128x128" in out
    assert "(30, 128, 128) int32" in out
    assert out.count("ImageFiles, 32 NIfTI files of 16^3 uint8") == 2
    assert "(8, 8, 8, 1)" in out
    assert "fit 1 epoch on the 32 paths" in out
