import os

import pytest

from sk_medcnn.io import atomic_open, atomic_path


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_open_writes_text_and_binary(tmp_path):
    target = tmp_path / "report.txt"
    with atomic_open(target) as handle:
        handle.write("héllo")
    assert target.read_text(encoding="utf-8") == "héllo"
    with atomic_open(tmp_path / "w.bin", "wb") as handle:
        handle.write(b"\x00\x01")
    assert (tmp_path / "w.bin").read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path) == []


def test_failure_halfway_keeps_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.skmed"
    target.write_bytes(b"previous")

    def write_then_fail():
        with atomic_open(target, "wb") as handle:
            handle.write(b"partial")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_then_fail()
    assert target.read_bytes() == b"previous"
    assert _leftovers(tmp_path) == []


def test_keyboard_interrupt_also_cleans_up(tmp_path):
    target = tmp_path / "x.csv"

    def write_then_interrupt():
        with atomic_path(target) as tmp:
            tmp.write_text("a")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_then_interrupt()
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_atomic_path_keeps_suffix_for_format_inference(tmp_path):
    with atomic_path(tmp_path / "figure.png") as tmp:
        assert tmp.suffix == ".png"
        assert tmp.parent == tmp_path
        tmp.write_bytes(b"png")
    assert (tmp_path / "figure.png").read_bytes() == b"png"


def test_replacing_keeps_permissions(tmp_path):
    target = tmp_path / "p.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    with atomic_open(target) as handle:
        handle.write("new")
    assert target.read_text() == "new"
    assert (target.stat().st_mode & 0o777) == 0o640


def test_bad_targets_raise_clear_errors(tmp_path):
    with (
        pytest.raises(FileNotFoundError, match="does not exist"),
        atomic_path(tmp_path / "missing" / "f.txt"),
    ):
        pass
    with pytest.raises(IsADirectoryError, match="is a folder"), atomic_path(tmp_path):
        pass
    (tmp_path / "e.txt").write_text("keep")
    with (
        pytest.raises(FileExistsError, match=r"e\.txt"),
        atomic_open(tmp_path / "e.txt", "x"),
    ):
        pass
    assert (tmp_path / "e.txt").read_text() == "keep"
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "a", "a"):
        pass


def test_atomic_writers_are_public_in_io(tmp_path):
    import sk_medcnn.io
    from sk_medcnn.utils import _files

    assert {"atomic_open", "atomic_path"} <= set(sk_medcnn.io.__all__)
    assert sk_medcnn.io.atomic_path is _files.atomic_path
    # a writer that takes a path (as matplotlib's savefig does) and keeps the suffix
    with sk_medcnn.io.atomic_path(tmp_path / "figure.png") as path:
        assert path.suffix == ".png"
        assert path.parent == tmp_path
        path.write_bytes(b"png")
    assert (tmp_path / "figure.png").read_bytes() == b"png"
