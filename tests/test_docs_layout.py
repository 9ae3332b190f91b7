"""tools/check_docs_layout.py finds pages wider than the window (needs Chromium)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "check_docs_layout.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("check_docs_layout", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


PAGE = """<!DOCTYPE html><html><head><style>
body {{ margin: 0; }} pre {{ {pre_style} }}</style></head>
<body><p>text</p><pre>{code}</pre></body></html>"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("pre_style", "overflows"),
    [
        ("", True),  # a long line widens the page
        ("overflow-x: auto; max-width: 100%;", False),  # it scrolls in its box
        ("white-space: pre-wrap;", False),  # it wraps
        ("overflow-x: hidden; max-width: 100%;", True),  # cut off, no scroll bar
    ],
)
def test_overflow_is_found(tmp_path, pre_style, overflows):
    tool = load_tool()
    browser = tool.find_browser()
    if browser is None:
        pytest.skip("no Chromium (Debian: apt-get install chromium)")
    page = tmp_path / "page.html"
    page.write_text(PAGE.format(pre_style=pre_style, code="x = 1  " * 400))
    found = tool.check_page(browser, page, 800)
    assert "error" not in found, found
    assert found["overflow"] is overflows, found
    assert tool.main([str(tmp_path), "--width", "800", "--pages", "*.html"]) == int(
        overflows
    )
