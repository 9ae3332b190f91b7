"""benchmarks/eval_ood.py on phantoms: the figures it prints are computed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_ood.py"


@pytest.mark.slow  # fits a CNN
def test_eval_ood_quick(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("eval_ood", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "ood.json"
    results = bench.main(
        ["--quick", "--datasets", "pneumoniamnist", "--json", str(out)]
    )
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(results))
    (run,) = saved["runs"]
    assert 0 <= run["false_alarm_score"] <= run["false_alarm_either"] <= 1
    rows = {row["set"]: row for row in run["sets"]}
    assert set(rows) == {"phantoms", "uniform noise"}
    # noise is unlike phantoms; phantoms are what the quick model was trained on
    assert rows["uniform noise"]["auroc"] > 0.9
    assert (
        rows["uniform noise"]["flagged_either"]
        >= rows["uniform noise"]["flagged_score"]
    )
    assert 0.2 < rows["phantoms"]["auroc"] < 0.8
    assert "uniform noise" in capsys.readouterr().out
