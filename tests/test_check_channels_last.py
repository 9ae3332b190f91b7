"""benchmarks/check_channels_last.py: it catches the known bug and passes the rest."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "check_channels_last.py"


def _load():
    spec = importlib.util.spec_from_file_location("check_channels_last", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_default_network_passes_the_scan_in_a_checked_process(tmp_path):
    script = _load()
    default = script.network_configs(random.Random(0), 0)[0]
    conv = {**script.CONTROL, "kernel": 3, "stride": 1, "padding": 1}
    jobs = [[default, "fp32"], [conv, "fp32"], [conv, "bf16"]]
    report = script.run_group(jobs, 2, tmp_path)
    assert report == {"checked": 3, "failures": []}


def test_a_wrong_gradient_is_a_mismatch(monkeypatch):
    script = _load()
    real = script._pass

    def off_in_channels_last(module, x, layout, precision, steps):
        results = real(module, x, layout, precision, steps)
        if layout is torch.channels_last:
            results[1] = results[1] * 1.01  # the input gradient 1% off
        return results

    monkeypatch.setattr(script, "_pass", off_in_channels_last)
    conv = {**script.CONTROL, "kernel": 3, "stride": 1, "padding": 1}
    assert "input gradient" in script._check_one(conv, "fp32")


@pytest.mark.skipif(
    not torch.__version__.startswith("2.13."),
    reason="the positive control is torch 2.13's oneDNN bug",
)
def test_the_harness_catches_the_known_heap_corruption(tmp_path):
    script = _load()
    report = script.run_group([[script.CONTROL, "fp32"]] * 5, 2, tmp_path)
    assert report.get("crashed") or report.get("failures")
