"""benchmarks/function_lengths.py: what it counts, and its exit code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "function_lengths.py"

SOURCE = '''
import functools


@functools.cache
def documented(a,
               b):
    """One line.

    And more.
    """
    # a comment line

    total = a + b  # a trailing comment counts
    return total


def outer():
    def inner():
        return 1

    return inner()
'''


def _load():
    spec = importlib.util.spec_from_file_location("function_lengths", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counts_code_lines_without_docstring_blanks_and_comments(tmp_path):
    script = _load()
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "module.py").write_text(SOURCE)
    lengths = {f.name: f for f in script.function_lengths(tmp_path / "package")}
    # def (2 lines), total, return; not the decorator, docstring, comment, blank
    assert lengths["documented"].code_lines == 4
    assert lengths["documented"].lines_without_docstring == 6  # + comment, blank
    assert lengths["documented"].lineno == 6
    assert lengths["outer"].code_lines == 4  # the nested function counts inside
    assert lengths["inner"].code_lines == 2
    ordered = [f.name for f in script.function_lengths(tmp_path / "package")]
    assert ordered == ["documented", "outer", "inner"]


def test_exit_code_says_whether_a_function_is_over_the_limit(tmp_path, capsys):
    script = _load()
    (tmp_path / "module.py").write_text(SOURCE)
    assert script.main([str(tmp_path), "--limit", "4"]) == 0
    assert "longest: documented (4 code lines); 0 over 4" in capsys.readouterr().out
    assert script.main([str(tmp_path), "--limit", "3"]) == 1
    out = capsys.readouterr().out
    assert "documented" in out
    assert "outer" in out
    assert "inner  " not in out
    assert script.main([str(tmp_path), "--top", "1"]) == 0
    assert "outer" not in capsys.readouterr().out
