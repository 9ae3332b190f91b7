import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sk_medcnn.io import atomic_open, atomic_path
from sk_medcnn.utils import _files


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


# --- hardening (issue 23) ---------------------------------------------------------
_WRITER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("_files", sys.argv[1])
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)
with files.atomic_path(sys.argv[2]) as tmp:
    tmp.write_bytes(b"partial" * 1000)
    print(tmp, flush=True)
    time.sleep(60)
"""


def _start_writer(target):
    """A process writing ``target`` through atomic_path, stopped mid-write."""
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, _files.__file__, str(target)],
        stdout=subprocess.PIPE,
        text=True,
    )
    partial = Path(process.stdout.readline().strip())
    assert partial.exists()
    return process, partial


def _age(path, seconds):
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_a_killed_save_leaves_a_partial_file_that_the_next_save_removes(tmp_path):
    target = tmp_path / "m.skmed"
    process, partial = _start_writer(target)
    process.kill()  # kill -9: no cleanup can run
    process.wait()
    assert partial.exists()
    assert partial.name.startswith(".m-")
    assert partial.name.endswith(".part.skmed")
    # leftovers of other targets, and a young one, are not touched
    other = tmp_path / ".model-abcdefgh.part.skmed"
    other.write_bytes(b"x")
    young = tmp_path / ".m-young123.part.skmed"
    young.write_bytes(b"x")
    for path in (partial, other):
        _age(path, 2 * _files.STALE_AFTER_SECONDS)
    with atomic_open(target) as handle:
        handle.write("new")
    assert target.read_text() == "new"
    assert not partial.exists()
    assert other.exists()
    assert young.exists()


def test_a_concurrent_save_of_the_same_target_is_left_alone(tmp_path):
    target = tmp_path / "m.skmed"
    process, partial = _start_writer(target)
    try:
        _age(partial, 2 * _files.STALE_AFTER_SECONDS)  # old, but its writer lives
        with atomic_open(target) as handle:
            handle.write("mine")
        assert partial.exists()
        assert _files.remove_stale_partial_files(target) == []
    finally:
        process.kill()
        process.wait()
    assert _files.remove_stale_partial_files(target) == [partial]


def test_a_read_only_target_is_not_replaced(tmp_path):
    target = tmp_path / "m.txt"
    target.write_text("keep")
    os.chmod(target, 0o444)
    with (
        pytest.raises(PermissionError, match=r"read-only file .*m\.txt"),
        atomic_open(target) as handle,
    ):
        handle.write("new")  # pragma: no cover - refused before
    assert target.read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["m.txt"]
    os.chmod(target, 0o644)
    with atomic_open(target) as handle:
        handle.write("new")
    assert target.read_text() == "new"


def test_a_path_under_a_file_is_named_as_such(tmp_path):
    (tmp_path / "notes").write_text("x")
    for target in (tmp_path / "notes" / "m.txt", tmp_path / "notes" / "a" / "m.txt"):
        with (
            pytest.raises(NotADirectoryError, match=r"notes' is a file, not a folder"),
            atomic_path(target),
        ):
            pass  # pragma: no cover
        with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
            _files.check_output_path(target)
        with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
            _files.check_output_path(target.parent, folder=True)


@contextlib.contextmanager
def _unprivileged():
    """Run the block as user ``nobody`` when root (permissions bind it then)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_check_output_path_tries_the_folder_for_real():
    folder = Path(tempfile.mkdtemp(prefix="sk_medcnn_ro_"))  # not under root's 0700
    try:
        os.chmod(folder, 0o755)
        (folder / "ro").mkdir(mode=0o555)
        os.chmod(folder / "ro", 0o555)
        _files.check_output_path(folder / "m.skmed")  # writable for root
        with _unprivileged():
            with pytest.raises(PermissionError, match=r"cannot create a file in"):
                _files.check_output_path(folder / "ro" / "m.skmed")
            with pytest.raises(PermissionError, match=r"ro"):
                _files.check_output_path(folder / "ro" / "maps", folder=True)
            with pytest.raises(PermissionError):
                _files.check_output_path(folder / "m.skmed")  # 0o755, root's
        assert sorted(p.name for p in folder.iterdir()) == ["ro"]  # no probe left
        assert list((folder / "ro").iterdir()) == []
    finally:
        shutil.rmtree(folder)


def test_save_model_refuses_a_read_only_target(tmp_path):
    import numpy as np

    from sk_medcnn import MedicalCNNClassifier
    from sk_medcnn.persistence import save_model

    X = np.random.default_rng(0).random((8, 8, 8))
    model = MedicalCNNClassifier(max_epochs=1, device="cpu", random_state=0)
    model.fit(X, np.arange(8) % 2)
    target = tmp_path / "m.skmed"
    target.write_bytes(b"an older model")
    target.chmod(0o444)
    with pytest.raises(PermissionError, match=r"read-only file .*m\.skmed"):
        save_model(model, target)
    assert target.read_bytes() == b"an older model"
    assert [p.name for p in tmp_path.iterdir()] == ["m.skmed"]
