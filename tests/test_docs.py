"""The documentation builds with Sphinx, warnings as errors, and is complete.

The build runs on a copy of docs/ and examples/ (Sphinx writes generated pages into
its source folder), with the gallery rendered but not executed
(``SK_MEDCNN_DOCS_GALLERY=off``): the examples themselves run in
tests/test_examples.py. ``make docs`` builds the full site, examples included.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = (
    "sk_medcnn",
    "sk_medcnn.architectures",
    "sk_medcnn.augmentation",
    "sk_medcnn.cli",
    "sk_medcnn.conformal",
    "sk_medcnn.datasets",
    "sk_medcnn.embedding",
    "sk_medcnn.evaluation",
    "sk_medcnn.exceptions",
    "sk_medcnn.inspection",
    "sk_medcnn.io",
    "sk_medcnn.losses",
    "sk_medcnn.metrics",
    "sk_medcnn.persistence",
    "sk_medcnn.preprocessing",
    "sk_medcnn.pretrained",
    "sk_medcnn.recipes",
    "sk_medcnn.registry",
    "sk_medcnn.robustness",
)
PAGES = (
    "index.html",
    "user_guide.html",
    "getting_started.html",
    "keras.html",
    "io.html",
    "preprocessing.html",
    "augmentation.html",
    "architectures.html",
    "training.html",
    "pretrained.html",
    "recipe.html",
    "evaluation.html",
    "generalisation.html",
    "inspection.html",
    "explanation_quality.html",
    "conformal.html",
    "robustness.html",
    "persistence.html",
    "scaling.html",
    "cli.html",
    "intended_use.html",
    "api.html",
    "benchmarks.html",
    "changelog.html",
    "auto_examples/index.html",
    "auto_examples/plot_keras_to_sk_medcnn.html",
    "auto_examples/plot_grid_search.html",
    "auto_examples/plot_dicom_pipeline.html",
    "auto_examples/plot_volume_pipeline.html",
    "auto_examples/plot_explanations.html",
    "auto_examples/plot_calibration.html",
    "auto_examples/plot_augmentation_gallery.html",
    "auto_examples/train_pneumoniamnist.html",
    "auto_examples/plugin_package/index.html",
    "auto_examples/plugin_package/train_with_tinynet.html",
    "generated/sk_medcnn.MedicalCNNClassifier.html",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the HTML documentation once; return the output folder."""
    pytest.importorskip("sphinx", reason="the docs need the dev extras")
    work = tmp_path_factory.mktemp("docs")
    ignore = shutil.ignore_patterns(
        "_build", "generated", "auto_examples", "sg_execution_times.rst", "__pycache__"
    )
    shutil.copytree(ROOT / "docs", work / "docs", ignore=ignore)
    shutil.copytree(ROOT / "examples", work / "examples", ignore=ignore)
    shutil.copy(ROOT / "CHANGELOG.md", work / "CHANGELOG.md")
    env = {**os.environ, "SK_MEDCNN_DOCS_GALLERY": "off", "MPLBACKEND": "Agg"}
    env.pop("SK_MEDCNN_DOCS_INTERSPHINX", None)  # no network in CI
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(work / "doctrees"),
            str(work / "docs"),
            str(work / "html"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    # -W: any warning fails the build, and -q prints only the warnings
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-10000:]
    return work / "html"


def test_every_page_is_built(site):
    missing = [page for page in PAGES if not (site / page).is_file()]
    assert not missing


def test_every_public_name_is_in_the_api_reference(site):
    anchors = set()
    for page in [site / "api.html", *sorted((site / "generated").glob("*.html"))]:
        anchors |= set(re.findall(r'id="(sk_medcnn[\w.]*)"', page.read_text("utf-8")))
    documented = {anchor.rsplit(".", 1)[-1] for anchor in anchors}
    undocumented = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            if name not in documented:
                undocumented.append(f"{module_name}.{name}")
    assert not undocumented


def test_the_front_page_shows_the_demo_figure(site):
    html = (site / "index.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert any(source.endswith("/demo_examples.png") for source in sources), sources
    for source in sources:
        assert (site / source).is_file(), source
    assert "not a medical device" in html


def test_pages_are_linked_from_the_navigation(site):
    html = (site / "user_guide.html").read_text(encoding="utf-8")
    for page in ("keras.html", "intended_use.html", "scaling.html", "io.html"):
        assert f'href="{page}' in html, page
    html = (site / "architectures.html").read_text(encoding="utf-8")
    assert 'id="writing-a-plugin"' in html
    assert "sk_medcnn.architectures" in html  # the included pyproject.toml
    html = (site / "changelog.html").read_text(encoding="utf-8")
    assert "Unreleased" in html  # CHANGELOG.md is included
