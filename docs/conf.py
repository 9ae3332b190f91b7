"""Sphinx configuration for the sk_medcnn documentation.

Build it with ``make docs`` (HTML in ``docs/_build/html``; warnings are errors).
Two environment variables change what the build does:

``SK_MEDCNN_DOCS_GALLERY``
    ``full`` (default) runs every ``examples/plot_*.py`` script at its full size and
    shows its output and pictures (a few minutes on 2 cores; sphinx-gallery re-runs
    only the scripts that changed since the last build); ``quick`` runs them in their
    quick mode (``SK_MEDCNN_EXAMPLES_QUICK=1``: tiny data, seconds each); ``off``
    renders the gallery's code and text without running anything (what the CI test
    ``tests/test_docs.py`` does: the examples themselves run in
    ``tests/test_examples.py``).
``SK_MEDCNN_DOCS_INTERSPHINX``
    ``1`` links names to the Python, NumPy, scikit-learn and PyTorch documentation.
    Off by default: it downloads their inventories, and a build without network
    access would fail on the warning.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package, also from a plain checkout
sys.path.insert(0, str(DOCS))  # _gallery_order

import sk_medcnn  # noqa: E402

project = "sk_medcnn"
author = "sk_medcnn developers"
copyright = "sk_medcnn developers, BSD-3-Clause"
release = sk_medcnn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    # sphinx-gallery writes these beside the pages; they are included, not pages
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
    "auto_examples/*.codeobj.json",
]
suppress_warnings = [
    # CHANGELOG.md starts its sections at level 2 under a level-1 title we include
    "myst.header",
]

# --- API reference -------------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's "Parameters" sections say it in words
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # the class template lists the members
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False


def _skip_foreign_members(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Leave out members inherited from scikit-learn, skorch and torch.

    Their docstrings are theirs, with cross-references into their own
    documentation that cannot resolve here; the API pages say where to read them.
    """
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and module.split(".")[0] in {"sklearn", "skorch", "torch"}:
        return True
    return None


def setup(app: Sphinx) -> None:
    """Connect the member filter."""
    app.connect("autodoc-skip-member", _skip_foreign_members)


intersphinx_mapping: dict[str, tuple[str, None]] = {}
if os.environ.get("SK_MEDCNN_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://pytorch.org/docs/stable", None),
    }

# --- gallery -----------------------------------------------------------------------
GALLERY_MODE = os.environ.get("SK_MEDCNN_DOCS_GALLERY", "full")
if GALLERY_MODE not in {"full", "quick", "off"}:
    raise ValueError(
        "SK_MEDCNN_DOCS_GALLERY must be 'full', 'quick' or 'off'; "
        f"got {GALLERY_MODE!r}."
    )
if GALLERY_MODE == "quick":
    os.environ["SK_MEDCNN_EXAMPLES_QUICK"] = "1"  # read by every example
# sphinx-gallery re-runs an example only when its file changed; after a change of
# mode, start the gallery afresh so that no page keeps the other mode's output.
_GALLERY_OUT = DOCS / "auto_examples"
_MODE_STAMP = _GALLERY_OUT / ".gallery_mode"
if _GALLERY_OUT.is_dir() and (
    not _MODE_STAMP.is_file() or _MODE_STAMP.read_text().strip() != GALLERY_MODE
):
    shutil.rmtree(_GALLERY_OUT)
_GALLERY_OUT.mkdir(exist_ok=True)
_MODE_STAMP.write_text(GALLERY_MODE + "\n")
os.environ.setdefault("MPLBACKEND", "Agg")

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # run these; show the others' code only
    # the plugin package is a project of its own, shown on the plugin page
    "ignore_pattern": r"(__init__\.py|plugin_package)",
    "plot_gallery": "False" if GALLERY_MODE == "off" else "True",
    "within_subsection_order": "_gallery_order.ExampleOrder",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "matplotlib_animations": False,
    "show_memory": False,
    "image_scrapers": ("matplotlib",),
    # "Examples using ..." at the end of each API page, and links from the
    # examples' code to the API pages
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("sk_medcnn",),
}

# --- HTML ----------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sk_medcnn {release}"
html_static_path = ["_static"]
html_css_files = ["sk_medcnn.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_context = {"default_mode": "light"}
# top-level pages without sub-pages: no empty "Section Navigation" column
html_sidebars = {"benchmarks": [], "changelog": []}
myst_heading_anchors = 3
