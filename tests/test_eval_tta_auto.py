"""Smoke test of benchmarks/eval_tta_auto.py on phantoms (--quick)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_tta_auto.py"


@pytest.mark.slow
def test_quick_run_reports_the_decision_and_three_variants(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("eval_tta_auto", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "tta.json"
    bench.main(["--quick", "--data", "retinamnist", "--seeds", "0", "--json", str(out)])
    (result,) = json.loads(out.read_text())
    (record,) = result["seeds"]
    assert record["tta_"] in ("shifts", None)
    assert set(record["held_out"]) >= {"log_loss_with", "log_loss_without"}
    # auto predicts as the variant it chose
    chosen = "on" if record["tta_"] == "shifts" else "off"
    assert record["auto"] == record[chosen]
    assert "decisions:" in capsys.readouterr().out
