"""Crash-safe file writes: write to a temporary file beside the target, then rename.

Every file sk_medcnn writes (models, reports, figures, checkpoints, prediction tables)
goes through :func:`atomic_path` or :func:`atomic_open`, so a failure halfway through a
write leaves the previous file intact and no stray temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_path"]


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
    IsADirectoryError
        If ``path`` is an existing folder.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(
            f"Cannot write {str(target)!r}: "
            f"the folder {str(directory)!r} does not exist."
        )
    if target.is_dir():
        raise IsADirectoryError(f"Cannot write {str(target)!r}: it is a folder.")
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}-", suffix=f".part{target.suffix}", dir=directory
    )
    os.close(fd)
    tmp = Path(tmp_name)
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
