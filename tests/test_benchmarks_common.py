"""The helpers every benchmark script shares (benchmarks/_common.py)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def common():
    sys.path.insert(0, str(ROOT))
    try:
        yield importlib.import_module("benchmarks._common")
    finally:
        sys.path.remove(str(ROOT))


def test_save_results_creates_the_folder_and_writes_json(common, tmp_path, capsys):
    target = tmp_path / "new" / "fit.json"
    common.save_results({"ratio": 1.03, "ok": False}, target)
    assert json.loads(target.read_text()) == {"ratio": 1.03, "ok": False}
    assert f"results saved to {target}" in capsys.readouterr().out
    common.save_results({"ignored": 1}, None)  # no --json: nothing written
    assert sorted(p.name for p in target.parent.iterdir()) == ["fit.json"]


def test_save_results_keeps_the_previous_file_when_results_do_not_serialise(
    common, tmp_path
):
    target = tmp_path / "fit.json"
    target.write_text('{"previous": true}\n')
    with pytest.raises(TypeError):
        common.save_results({"bad": object()}, target)
    assert json.loads(target.read_text()) == {"previous": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.json"]


def test_require_at_least_names_the_option(common, capsys):
    parser = argparse.ArgumentParser(prog="bench")
    args = argparse.Namespace(n_images=0, repeats=3)
    common.require_at_least(parser, args, ("repeats",))  # fine
    with pytest.raises(SystemExit) as excinfo:
        common.require_at_least(parser, args, ("repeats", "n_images"))
    assert excinfo.value.code == 2
    assert "--n-images must be >= 1" in capsys.readouterr().err


def test_default_data_points_beside_the_project(common):
    assert common.DEFAULT_DATA.parent == ROOT.parent / "shared" / "data"
