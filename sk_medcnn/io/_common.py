"""Helpers shared by the readers: file headers and the dtype of rescaled values."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ImageReadError

__all__ = [
    "HEADER_BYTES",
    "IGNORED_NAMES",
    "MAX_DECODED_BYTES",
    "check_decoded_size",
    "float_type_for",
    "is_dicom_file",
    "is_ignored",
    "one_line",
    "read_errors",
    "read_header",
    "stack_position",
]

#: Largest decoded image data accepted, in bytes, whatever the file size.
MAX_DECODED_BYTES = 2**32

#: Largest ratio of decoded bytes to file bytes accepted: deflate (PNG, TIFF,
#: gzip) cannot exceed 1032:1, and medical JPEG, RLE and JPEG 2000 stay far below.
MAX_EXPANSION = 1024

#: Decoded bytes every file may have, however small (64 MiB).
MIN_DECODED_BUDGET = 2**26

#: Bytes read to recognise a format: a NIfTI-1 header is 348 bytes, NIfTI-2 540.
HEADER_BYTES = 544


#: File names that are never images, whatever their content.
IGNORED_NAMES = frozenset({"DICOMDIR", "Thumbs.db", "desktop.ini"})


def read_header(path: Path) -> bytes:
    """Return the first :data:`HEADER_BYTES` bytes of ``path`` (fewer if shorter)."""
    with open(path, "rb") as handle:
        return handle.read(HEADER_BYTES)


def is_ignored(path: Path) -> bool:
    """Whether ``path`` is hidden (a name starting with ".") or always ignored."""
    return path.name.startswith(".") or path.name in IGNORED_NAMES


def is_dicom_file(path: Path) -> bool:
    """Whether the file ``path`` holds ``"DICM"`` at byte 128 (a DICOM file)."""
    try:
        return read_header(path)[128:132] == b"DICM"
    except OSError:
        return False


def float_type_for(stored: np.dtype[Any]) -> type[np.floating[Any]]:
    """Float type for rescaled values of ``stored`` dtype, keeping them exact.

    float32 holds every integer up to 2**24 exactly, so 8 and 16-bit data (all
    but a few DICOM and NIfTI files) rescale to float32; 32 and 64-bit integers
    and float64 data rescale to float64.
    """
    if stored == np.float64 or (stored.kind in "iu" and stored.itemsize >= 4):
        return np.float64
    return np.float32


@contextmanager
def read_errors(path: Path, kind: str) -> Iterator[None]:
    """Turn any failure of a decoder into an :class:`ImageReadError` naming the file.

    Inside the block, an exception other than :class:`ImageReadError` (ours,
    already naming the file) means a bad file: it becomes ``"Cannot read
    '<path>' as <kind>: <its message on one line>"``, chained to it.
    """
    try:
        yield
    except ImageReadError:
        raise
    except Exception as error:  # any failure of the decoder is a bad file
        raise ImageReadError(
            f"Cannot read '{path}' as {kind}: {one_line(error, path)}", str(path)
        ) from error


def stack_position(index: int, n_items: int, path: Path, what: str) -> int:
    """Return the position of ``index`` (negative from the end) in a stack of the file.

    ``what`` names the stack's items in the error (``"pages"``, ``"slices along
    slice_axis=2"``).
    """
    position = index + n_items if index < 0 else index
    if not 0 <= position < n_items:
        raise ImageReadError(
            f"index={index} is out of range for '{path}', which holds {n_items} "
            f"{what}.",
            str(path),
        )
    return position


def one_line(error: BaseException, path: Path | str | None = None) -> str:
    """Return the message of ``error`` on one line (decoders write several).

    With ``path``, the file's name is taken out of the message, since the caller
    names it already: ``"[Errno 13] Permission denied: 'x.png'"`` becomes
    ``"Permission denied"`` and ``"cannot identify image file 'x.png'"`` becomes
    ``"cannot identify image file"``.
    """
    if path is not None and isinstance(error, OSError) and error.strerror:
        if error.filename is None or str(error.filename) == str(path):
            return error.strerror
    text = " ".join(str(error).split())
    if path is not None:
        for name in {str(path), os.path.abspath(path)}:
            for quoted in (repr(name), f'"{name}"', f"'{name}'", name):
                text = text.replace(quoted, "")
        text = re.sub(r"\s+([:,.;)])", r"\1", " ".join(text.split()))
        text = re.sub(r"[:,]\s*$", "", text).strip()
        text = re.sub(r"\(\s*\)", "", text).strip()
    return text or type(error).__name__


def missing_path_message(path: Path) -> str:
    """Say why the missing ``path`` is missing: absent, or under a file."""
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                return f"'{path}' cannot exist: '{ancestor}' is a file, not a folder."
            break
    return ""


def check_decoded_size(n_bytes: int, path: Path, what: str) -> None:
    """Refuse a header announcing more decoded data than the file can plausibly hold.

    A corrupt (or hostile) header can claim a billion rows; decoders then try to
    allocate, and fill, gigabytes. The budget is :data:`MAX_EXPANSION` times the
    file size, at least :data:`MIN_DECODED_BUDGET` and at most
    :data:`MAX_DECODED_BYTES`; it is checked before anything is decoded.

    Parameters
    ----------
    n_bytes : int
        Decoded bytes the header announces.
    path : pathlib.Path
        The file, named in the error.
    what : str
        What the header announced (e.g. ``"1024 x 1024 x 3 pixels"``).
    """
    file_bytes = path.stat().st_size
    budget = min(MAX_DECODED_BYTES, max(MIN_DECODED_BUDGET, MAX_EXPANSION * file_bytes))
    if n_bytes > budget:
        raise ImageReadError(
            f"'{path}' announces {what} ({n_bytes / 2**20:.0f} MiB decoded) in a "
            f"file of {file_bytes} bytes, more than sk_medcnn decodes from it "
            f"({budget / 2**20:.0f} MiB); the header is probably corrupt.",
            str(path),
        )
