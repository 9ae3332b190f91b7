"""What every command shares: exit codes, errors, messages and output checks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """An error to report in one line, with exit code 1."""

    exit_code = 1


class UsageError(CommandError):
    """A bad option value found after parsing: the usage, one line, exit code 2.

    For example an output that cannot be written, or an image size beyond
    memory; reported as argparse reports a bad value.
    """

    exit_code = 2


def _warn(message: str) -> None:
    print(f"sk-medcnn: warning: {message}", file=sys.stderr)


def _count(n: int, noun: str) -> str:
    """``"1 image"``, ``"2 images"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


#: what an option's value says for the estimator's ``None``
NONE = "none"


def _none(text: Any) -> Any:
    """``"none"`` (any case) as None; anything else as it is."""
    return None if isinstance(text, str) and text.lower() == NONE else text


def _shown(value: Any) -> Any:
    """Spell an estimator default as the command line does (None as "none")."""
    return NONE if value is None else value


def _describe_missing(path: Path) -> str:
    """Say why ``path`` cannot be read: missing, under a file, or not a file."""
    import stat

    try:
        mode: int | None = path.stat().st_mode
    except OSError:  # missing, or a parent is a file
        mode = None
    if mode is not None:
        kinds = {
            stat.S_ISCHR: "a character device",
            stat.S_ISBLK: "a block device",
            stat.S_ISFIFO: "a named pipe",
            stat.S_ISSOCK: "a socket",
        }
        kind = next((name for test, name in kinds.items() if test(mode)), "special")
        return f"{path}: not a regular file or folder ({kind})"
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                return f"{path}: {ancestor} is a file, not a folder"
            break
    return f"{path}: no such file or folder"


def _check_output(option: str, text: str, *, folder: bool = False) -> Path:
    """Check before any work that ``text`` can be written; return it as a Path.

    The folder must exist (for a file) or be creatable (for a folder) and take
    new files (tried for real), the file must not be a folder or read-only; see
    :func:`sk_medcnn.utils._files.check_output_path`. Raises a UsageError
    naming the option.
    """
    from ..utils._files import check_output_path

    path = Path(text)
    try:
        check_output_path(path, folder=folder)
    except OSError as error:
        reason = str(error)
        for prefix in ("Cannot write into", "Cannot write", "Cannot create the folder"):
            start = f"{prefix} {str(path)!r}: "
            if reason.startswith(start):
                reason = reason[len(start) :]
                break
        reason = reason.replace(f" {str(path)!r}", "")
        if isinstance(error, IsADirectoryError) and not folder:
            reason = "a folder, not a file name"
        raise UsageError(f"{option} {text}: {reason.rstrip('.')}") from error
    return path


def _check_output_file(option: str, text: str) -> Path:
    """Check before any work that the file ``text`` can be written; return it."""
    return _check_output(option, text)


def _check_device(text: str) -> None:
    from ..utils._runtime import resolve_device

    try:
        resolve_device(text)
    except (ValueError, RuntimeError) as error:
        raise UsageError(f"--device {text}: {error}") from error
