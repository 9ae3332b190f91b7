"""benchmarks/eval_volumes.py on volume phantoms: the figures it prints are computed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_volumes.py"


def _load():
    spec = importlib.util.spec_from_file_location("eval_volumes", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_model_specifications_parse():
    bench = _load()
    assert bench.parse_model("defaults") == {}
    assert bench.parse_model("defaults:augmentation=none,max_epochs=30") == {
        "augmentation": None,
        "max_epochs": 30,
    }
    flips = bench.parse_model("defaults:augmentation=flips")["augmentation"]
    assert flips.steps[0][1].axes == ("horizontal", "vertical", "depth")
    assert bench.parse_model("resnet18:stem=imagenet,width=32") == {
        "architecture": "resnet18",
        "architecture_params": {"stem": "imagenet", "width": 32},
    }


@pytest.mark.slow  # fits 3-D CNNs
def test_eval_volumes_quick(tmp_path, capsys):
    bench = _load()
    out = tmp_path / "volumes.json"
    results = bench.main(
        ["--quick", "--seeds", "0", "--folds", "2", "--json", str(out)]
    )
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(results))
    runs = saved["defaults"]
    assert len(runs["cv_runs"]) == 2
    assert len(runs["validation_runs"]) == 1
    for run in (*runs["cv_runs"], *runs["validation_runs"]):
        assert 0 <= run["auc"] <= 1
        assert 0 <= run["sensitivity"] <= 1
        # balanced accuracy is the mean of sensitivity and specificity
        assert run["balanced_acc"] == pytest.approx(
            (run["sensitivity"] + run["specificity"]) / 2
        )
    assert "| defaults | validation |" in capsys.readouterr().out
