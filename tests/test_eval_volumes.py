"""benchmarks/eval_volumes.py on volume phantoms: the figures it prints are computed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
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
    moderate = bench.parse_model("defaults:augmentation=moderate")["augmentation"]
    assert moderate[0].translate == (0.05, 0.05, 0.05)
    assert (moderate[1].contrast, moderate[2].std) == (0.3, 0.02)
    strong = bench.parse_model("defaults:augmentation=strong")["augmentation"]
    assert (strong[1].brightness, strong[1].gamma, strong[2].std) == (0.2, 0.4, 0.04)
    # the preset "flips" wraps the current default, "flips_strong" the former one
    flips = bench.parse_model("defaults:augmentation=flips")["augmentation"]
    assert flips[1][1].contrast == 0.3
    flips_strong = bench.parse_model("defaults:augmentation=flips_strong")
    assert flips_strong["augmentation"][1][1].contrast == 0.4
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
    out_text = capsys.readouterr().out
    assert "| defaults | validation (1 fit) |" in out_text
    assert "| defaults | cv (2 fits) |" in out_text


def test_resume_keeps_saved_fits_and_runs_the_others(tmp_path, monkeypatch):
    bench = _load()
    out = tmp_path / "volumes.json"
    fitted = []

    def fake_fit(params, X_train, y_train, X_test, y_test):
        fitted.append((params["random_state"], len(X_train), len(X_test)))
        score = float(len(fitted))  # distinct per fit, to see which were kept
        keys = ("auc", "acc", "balanced_acc", "sensitivity", "specificity")
        return {**dict.fromkeys(keys, score), "fit_seconds": 1.0}

    monkeypatch.setattr(bench, "fit_and_score", fake_fit)
    argv = ["--quick", "--folds", "2", "--json", str(out)]
    first = bench.main([*argv, "--seeds", "0"])
    assert len(fitted) == 3  # two folds and the validation fit
    # every fit was saved as it finished
    saved = json.loads(out.read_text())["runs"]
    assert sorted(saved) == sorted(first["runs"])
    second = bench.main([*argv, "--seeds", "0", "1", "--resume"])
    assert len(fitted) == 6  # only seed 1 ran
    assert all(seed == 1 for seed, *_ in fitted[3:])
    for key, run in first["runs"].items():
        assert second["runs"][key] == run
    assert second["defaults"]["validation"]["auc"][0] == pytest.approx((3 + 6) / 2)
    # only one split
    third = bench.main([*argv, "--seeds", "2", "--splits", "validation"])
    assert third["defaults"]["cv"] is None
    assert len(third["defaults"]["validation_runs"]) == 1


def test_resume_needs_a_json_file():
    bench = _load()
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--resume"])


def test_only_folds_runs_those_folds_of_the_same_partition(tmp_path, monkeypatch):
    bench = _load()
    seen = []

    def fake_fit(params, X_train, y_train, X_test, y_test):
        seen.append(X_test.copy())
        keys = ("auc", "acc", "balanced_acc", "sensitivity", "specificity")
        return {**dict.fromkeys(keys, 0.5), "fit_seconds": 1.0}

    monkeypatch.setattr(bench, "fit_and_score", fake_fit)
    argv = ["--quick", "--seeds", "0", "--folds", "3", "--splits", "cv"]
    every = bench.main(argv)
    assert len(every["runs"]) == 3
    all_folds, seen[:] = list(seen), []
    some = bench.main([*argv, "--only-folds", "2", "0"])
    assert sorted(some["runs"]) == [
        "defaults | seed 0 | cv fold 0",
        "defaults | seed 0 | cv fold 2",
    ]
    # the same held-out volumes as those folds of the full run
    np.testing.assert_array_equal(seen[0], all_folds[0])
    np.testing.assert_array_equal(seen[1], all_folds[2])


@pytest.mark.parametrize(
    "argv",
    [
        ["--folds", "5", "--only-folds", "5"],
        ["--folds", "5", "--only-folds", "-1"],
        ["--folds", "5", "--only-folds", "0", "7"],
        ["--folds", "0", "--only-folds", "0"],  # no cross-validation
        ["--splits", "validation", "--only-folds", "0"],
    ],
)
def test_only_folds_without_those_folds_is_refused(argv, capsys):
    bench = _load()
    with pytest.raises(SystemExit):
        bench.main(["--quick", *argv])
    assert "--only-folds" in capsys.readouterr().err
