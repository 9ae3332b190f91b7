"""Crash-safe file writes: write to a temporary file beside the target, then rename.

Every file sk_medcnn writes (models, reports, figures, checkpoints, prediction tables)
goes through :func:`atomic_path` or :func:`atomic_open`, so a failure halfway through a
write leaves the previous file intact. An exception removes the temporary file; a
process killed during a write (``kill -9``, a power cut) cannot, and leaves a hidden
``.NAME-XXXXXXXX.part.EXT`` file beside the target, which the next write of the same
target removes (see :func:`atomic_path`).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

try:  # POSIX: a writer holds a lock on its temporary file while it writes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_open", "atomic_path", "check_output_path"]

#: A partial file younger than this (by modification time) is never removed: its
#: writer may have created it an instant ago and not yet locked it.
STALE_AFTER_SECONDS = 60.0
#: Without file locks (Windows), only partial files this old are taken as abandoned.
STALE_AFTER_SECONDS_WITHOUT_LOCKS = 24 * 3600.0
#: The random part ``tempfile.mkstemp`` puts in a name: 8 of these characters.
_RANDOM_PART = "[a-z0-9_]{8}"


def _fsync_directory(directory: Path) -> None:
    """Flush a directory entry to disk where the platform allows it (POSIX)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def _partial_prefix_suffix(target: Path) -> tuple[str, str]:
    """Return the prefix and suffix of the temporary files of ``target``."""
    return f".{target.stem}-", f".part{target.suffix}"


def _lock_free(path: Path) -> bool:
    """Return True if no process holds the writer's lock on ``path``.

    A writer keeps an exclusive ``flock`` on its temporary file until it renames or
    removes it; the kernel releases the lock when the writer dies, however it dies.
    Without ``fcntl`` (Windows) every file counts as unlocked (the age decides).
    """
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # gone already, or not ours to open
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live writer holds it
    else:
        return True  # the lock dies with the descriptor, closed below
    finally:
        os.close(fd)


def remove_stale_partial_files(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that killed writes of ``target`` left behind.

    Only files named exactly as :func:`atomic_path` names the temporary files of
    this target (``.STEM-XXXXXXXX.part.SUFFIX`` in its folder, the ``X`` being
    ``tempfile``'s random characters) are candidates, and only when they are
    regular files last modified more than :data:`STALE_AFTER_SECONDS` ago and no
    process holds their writer's lock (a concurrent writer of the same target keeps
    its file). Where file locks do not exist (Windows), the age alone decides, with
    the longer :data:`STALE_AFTER_SECONDS_WITHOUT_LOCKS`.

    Parameters
    ----------
    target : str or os.PathLike
        The file whose leftovers to remove.

    Returns
    -------
    removed : list of pathlib.Path
        The files removed; nothing is raised if one cannot be.
    """
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    prefix, suffix = _partial_prefix_suffix(target)
    pattern = re.compile(re.escape(prefix) + _RANDOM_PART + re.escape(suffix))
    min_age = (
        STALE_AFTER_SECONDS if fcntl is not None else STALE_AFTER_SECONDS_WITHOUT_LOCKS
    )
    now = time.time()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < min_age:
            continue
        path = Path(entry.path)
        if _lock_free(path):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def _missing_folder_error(target: Path, directory: Path) -> OSError:
    """Say why ``directory`` (the folder of ``target``) is not a folder."""
    for ancestor in (directory, *directory.parents):
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                return NotADirectoryError(
                    f"Cannot write {str(target)!r}: {str(ancestor)!r} is a file, "
                    "not a folder."
                )
            break
    return FileNotFoundError(
        f"Cannot write {str(target)!r}: the folder {str(directory)!r} does not exist."
    )


def _is_read_only(path: Path) -> bool:
    """Return True if ``path`` is marked read-only or this user may not write it."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    # the permission bits count even for root, who may write anything: a file made
    # read-only (chmod a-w) says "do not replace me"
    return not mode & 0o222 or not os.access(path, os.W_OK)


def _check_target(target: Path) -> Path:
    """Check that ``target`` names a file atomic_path may write; return its folder."""
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise _missing_folder_error(target, directory)
    if target.is_dir():
        raise IsADirectoryError(f"Cannot write {str(target)!r}: it is a folder.")
    if target.exists() and _is_read_only(target):
        raise PermissionError(
            f"Refusing to replace the read-only file {str(target)!r}: make it "
            "writable (chmod u+w) or remove it first."
        )
    return directory


def _create_partial(target: Path, directory: Path) -> tuple[int, Path]:
    """Create the temporary file of ``target``; return its descriptor and path."""
    prefix, suffix = _partial_prefix_suffix(target)
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    except OSError as error:
        reason = error.strerror or str(error)
        raise type(error)(
            f"Cannot write {str(target)!r}: cannot create a file in the folder "
            f"{str(directory)!r} ({reason})."
        ) from error
    return fd, Path(name)


def check_output_path(path: str | os.PathLike[str], *, folder: bool = False) -> None:
    """Check, before any work, that ``path`` can be written; write nothing.

    For a file (``folder=False``): its folder exists and a file can be created in it
    (tried: a temporary file is created and removed), ``path`` is not a folder and
    not a read-only file, as :func:`atomic_path` requires. For a folder
    (``folder=True``): it is a writable folder, or it does not exist and its nearest
    existing parent is a writable folder (so it can be created).

    Parameters
    ----------
    path : str or os.PathLike
        The file or folder to be written.
    folder : bool, default=False
        Whether ``path`` is a folder to write files into.

    Raises
    ------
    FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, OSError
        Naming ``path`` and what is wrong.
    """
    target = Path(path)
    if not folder:
        directory = _check_target(target)
        fd, probe = _create_partial(target, directory)
        os.close(fd)
        with contextlib.suppress(OSError):
            probe.unlink()
        return
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(
            f"Cannot write into {str(target)!r}: it is a file, not a folder."
        )
    existing = target
    while not existing.is_dir():
        if existing.exists() or existing.is_symlink():
            raise NotADirectoryError(
                f"Cannot create the folder {str(target)!r}: {str(existing)!r} is a "
                "file, not a folder."
            )
        existing = existing.parent
    try:
        fd, probe_name = tempfile.mkstemp(
            prefix=".sk_medcnn-", suffix=".part", dir=existing
        )
    except OSError as error:
        reason = error.strerror or str(error)
        what = "write into" if existing == target else "create the folder"
        raise type(error)(
            f"Cannot {what} {str(target)!r}: cannot create a file in "
            f"{str(existing)!r} ({reason})."
        ) from error
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe_name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` atomically when the block succeeds.

    Use it for libraries that write to a path themselves (``matplotlib``'s ``savefig``,
    ``zipfile``, ``safetensors``). The temporary file lives in the target's folder (so
    the final ``os.replace`` is an atomic rename on the same file system) and keeps the
    target's suffix (so writers that infer the format from the extension still work).

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace. Its folder must exist.

    Yields
    ------
    pathlib.Path
        Where to write. If the block raises, this file is removed and ``path`` is left
        as it was.

    Raises
    ------
    FileNotFoundError
        If the folder of ``path`` does not exist.
    NotADirectoryError
        If a parent of ``path`` is a file.
    IsADirectoryError
        If ``path`` is an existing folder.
    PermissionError
        If ``path`` is a read-only file (no write permission bit, or not writable by
        this user; root too is refused: make the file writable or remove it to
        replace it), or no file can be created in its folder.

    Notes
    -----
    The temporary file is named ``.STEM-XXXXXXXX.part.SUFFIX`` (``XXXXXXXX``
    random) in the folder of ``path``. An exception in the block removes it; a
    process killed during the block cannot, and leaves it behind. Each write of
    ``path`` therefore first removes such leftovers of the same target: files of
    exactly that name pattern, older than :data:`STALE_AFTER_SECONDS` (60 s) and not
    locked. The writer holds an exclusive ``flock`` on its temporary file until it
    is renamed, so a concurrent write of the same target, which holds the lock, is
    never disturbed; the kernel drops the lock of a killed process. Without file
    locks (Windows) a leftover must be a day old.
    """
    target = Path(path)
    directory = _check_target(target)
    remove_stale_partial_files(target)
    fd, tmp = _create_partial(target, directory)
    if fcntl is not None:  # held until the end: a live write is never taken as stale
        fcntl.flock(fd, fcntl.LOCK_EX)
    else:  # pragma: no cover - Windows cannot rename a file that is open
        os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if target.exists():
            # keep the permissions of the file being replaced
            with contextlib.suppress(OSError):
                os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        if fcntl is not None:
            os.close(fd)
    _fsync_directory(directory)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` atomically when the block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace.
    mode : {"w", "wb", "x", "xb"}, default="w"
        Text or binary write mode. ``"x"`` modes refuse to replace an existing file.
    encoding : str, optional
        Text encoding; ``"utf-8"`` when ``mode`` is a text mode and this is None.
    newline : str, optional
        Passed to :func:`open` for text modes (``""`` for :mod:`csv` writers).

    Yields
    ------
    file object
        Write to it; it is flushed, synced and renamed onto ``path`` at the end of the
        block, or removed if the block raises.

    Raises
    ------
    ValueError
        If ``mode`` is not a write mode.
    FileExistsError
        If ``mode`` starts with ``"x"`` and ``path`` exists.
    """
    if mode not in {"w", "wb", "x", "xb"}:
        raise ValueError(
            "mode must be one of 'w', 'wb', 'x', 'xb' for an atomic write, "
            f"got {mode!r}."
        )
    binary = mode.endswith("b")
    if mode.startswith("x") and Path(path).exists():
        raise FileExistsError(f"Refusing to replace the existing file {str(path)!r}.")
    if not binary and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as tmp:
        open_mode = "wb" if binary else "w"
        with open(tmp, open_mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
