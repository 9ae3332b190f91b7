"""examples/plugin_package: a third-party architecture package, installed for real.

The package is installed with pip (offline, no dependencies) into a temporary folder,
and its example script runs in a fresh Python process with that folder on its path:
sk_medcnn must find the architecture through the installed distribution's entry
point, train it by name, and save and load it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin_package"
SCRIPT = PLUGIN / "train_with_tinynet.py"


def _environment(extra_path: Path | None) -> dict[str, str]:
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env.pop("SK_MEDCNN_EXAMPLES_QUICK", None)
    # this checkout's sk_medcnn, not whichever the environment has installed (a
    # git worktree's venv may hold an editable install of another checkout)
    paths = [str(ROOT)] if extra_path is None else [str(extra_path), str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _run(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Install a copy of the plugin package with pip; return the target folder."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "plugin_package"  # a copy: the build writes into its source
    shutil.copytree(
        PLUGIN,
        source,
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
    )
    site = work / "site"
    result = _run(
        [
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",  # setuptools from this environment
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(site),
            str(source),
        ],
        _environment(None),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return site


def test_pip_installs_the_package_with_its_entry_point(installed):
    (dist_info,) = installed.glob("sk_medcnn_tinynet-0.1.0.dist-info")
    entry_points = (dist_info / "entry_points.txt").read_text(encoding="utf-8")
    assert "[sk_medcnn.architectures]" in entry_points
    assert "tinynet = sk_medcnn_tinynet:build_tinynet" in entry_points
    assert (installed / "sk_medcnn_tinynet" / "__init__.py").is_file()
    # only the package was installed: not the example script, not the tests
    assert sorted(path.name for path in installed.iterdir()) == [
        "sk_medcnn_tinynet",
        "sk_medcnn_tinynet-0.1.0.dist-info",
    ]


def test_installed_plugin_trains_by_name_in_a_fresh_process(installed, tmp_path):
    result = _run(
        [str(SCRIPT), "--quick", "--output", str(tmp_path)], _environment(installed)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["factory"] == "sk_medcnn_tinynet.build_tinynet"
    # declared through the factory's attribute, read through the entry point
    assert summary["spatial_dims"] == [2, 3]
    # the installed copy, found through its entry point, not the source folder
    assert Path(summary["factory_file"]).is_relative_to(installed)
    assert summary["network"] == "TinyNet"
    assert summary["n_parameters"] == 1306  # width 8, one input channel, 2 outputs
    assert summary["n_epochs"] == 2
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert (tmp_path / "tinynet.skmed").is_file()


def test_command_line_lists_the_installed_plugin(installed):
    result = _run(["-m", "sk_medcnn", "info"], _environment(installed))
    assert result.returncode == 0, result.stderr
    assert "tinynet" in result.stdout


def test_without_the_plugin_the_example_says_how_to_install_it(tmp_path):
    result = _run(
        [str(SCRIPT), "--quick", "--output", str(tmp_path)], _environment(None)
    )
    assert result.returncode == 1
    assert "pip install --no-deps ./examples/plugin_package" in result.stderr
    assert not (tmp_path / "summary.json").exists()


def test_the_template_builds_images_and_volumes_networks():
    """The template's factory, imported from the source folder (no install)."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location(
        "sk_medcnn_tinynet_source", PLUGIN / "src" / "sk_medcnn_tinynet" / "__init__.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    factory = module.build_tinynet
    assert factory.spatial_dims == (2, 3)
    flat = factory(1, 2, (28, 28))
    assert sum(p.numel() for p in flat.parameters()) == 1306
    volume = factory(1, 2, (12, 14, 16)).eval()
    assert isinstance(volume.features[0], torch.nn.Conv3d)
    with torch.inference_mode():
        assert volume(torch.zeros(3, 1, 12, 14, 16)).shape == (3, 2)
    with pytest.raises(ValueError, match="image_shape must be"):
        factory(1, 2, (28,))
