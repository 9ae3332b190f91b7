"""benchmarks/eval_explanation_quality.py on phantoms: its table is computed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = (
    Path(__file__).resolve().parents[1] / "benchmarks" / "eval_explanation_quality.py"
)


@pytest.mark.slow  # fits two CNNs and scores 7 map methods 8 ways
def test_eval_explanation_quality_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("eval_explanation_quality", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "quality.json"
    results = bench.main(["--quick", "--datasets", "phantoms", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(results))
    found = saved["datasets"]["phantoms"]
    assert set(found["scores"]) == {*bench.METHODS, "random", "truth"}
    for method in bench.METHODS:
        assert set(found["scores"][method]) == set(found["metrics"])
        for value in found["scores"][method].values():
            assert -1 <= value <= 1
    truth, chance = found["scores"]["truth"], found["scores"]["random"]
    assert truth["pointing_game"] == 1.0
    assert truth["auprc"] == pytest.approx(1.0)
    assert truth["road"] > chance["road"]
    assert "| hirescam |" in bench.markdown_table(saved)
