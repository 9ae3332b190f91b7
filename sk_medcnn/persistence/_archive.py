"""The zip container of a ``.skmed`` file: writing it, and reading it within limits.

A file is a zip of ``model.json`` and the safetensors members it lists with
their sizes and SHA-256. Writing fixes every timestamp and mode, so that the same
model gives the same bytes, and refuses a document that reading would refuse.
Reading checks the zip's structure against the limits of ``_format`` (zip
bombs, encrypted or oddly compressed members, duplicates), parses the document
as strict JSON (no duplicate keys, no ``NaN``), checks its top-level schema, and
the members against their checksums, before anything else reads them.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from os import PathLike
from pathlib import Path
from typing import Any

from .._version import __version__
from ..exceptions import ModelFileError
from ..utils._files import atomic_path
from ._format import (
    _ARRAYS,
    _DOCUMENT,
    _DOCUMENT_KEYS,
    _FORMAT_NAME,
    _MAX_COMPRESSION_RATIO,
    _MAX_DOCUMENT_BYTES,
    _MAX_DOCUMENT_VALUES,
    _MAX_MEMBERS,
    _MAX_TOTAL_BYTES,
    _NETWORK_MEMBER,
    _RATIO_CHECK_BYTES,
    FORMAT_VERSION,
    _versions,
)

# --- writing --------------------------------------------------------------------------


def _zip_info(name: str, compress_type: int) -> zipfile.ZipInfo:
    # a fixed timestamp and mode: the same model gives the same bytes
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compress_type
    info.external_attr = 0o644 << 16
    return info


def _write_archive(
    path: str | PathLike[str],
    safetensors: Any,
    networks: dict[str, Any],
    arrays: dict[str, Any],
    tree: dict[str, Any],
) -> None:
    """Write the members and the document listing them to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; it is written beside and renamed into place.
    safetensors : module
        The safetensors package, as ``_import_safetensors`` returns it.
    networks : dict of str to dict of str to torch.Tensor
        The weights of each network, by member name.
    arrays : dict of str to numpy.ndarray
        The numeric arrays the document refers to; none gives no member.
    tree : dict
        The encoded object tree, stored as the document's ``model``.

    Raises
    ------
    ValueError
        If the document would exceed what the loader reads; nothing is written.
    """
    members: dict[str, dict[str, Any]] = {}
    with atomic_path(path) as temporary:
        with zipfile.ZipFile(temporary, "w") as archive:

            def write(name: str, data: bytes) -> None:
                archive.writestr(_zip_info(name, zipfile.ZIP_STORED), data)
                members[name] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }

            for name, tensors in networks.items():
                write(name, safetensors.torch.save(tensors))
            if arrays:
                write(_ARRAYS, safetensors.numpy.save(arrays))
            document = {
                "format": _FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "versions": _versions(),
                "members": members,
                "model": tree,
            }
            text = json.dumps(document, allow_nan=False, indent=1)
            _check_document_size(text.encode("utf-8"))
            archive.writestr(
                _zip_info(_DOCUMENT, zipfile.ZIP_DEFLATED), text.encode("utf-8")
            )


def _check_document_size(content: bytes) -> None:
    """Refuse to write a document that :func:`load_model` would refuse."""
    values = _count_values(content)
    if len(content) > _MAX_DOCUMENT_BYTES or values > _MAX_DOCUMENT_VALUES:
        raise ValueError(
            f"cannot save the model: its {_DOCUMENT} would take {len(content):,} "
            f"bytes and up to {values:,} JSON values, more than a .skmed file may "
            f"hold ({_MAX_DOCUMENT_BYTES:,} bytes, {_MAX_DOCUMENT_VALUES:,} values). "
            "The training history (history_, one entry per batch) is the usual "
            "cause: train with a larger batch_size or fewer epochs, or save it "
            "with joblib."
        )


# --- reading ------------------------------------------------------------------------


def _read_archive(path: Path, data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Check the zip's structure and limits; return the document and the members."""
    archive = _open_zip(path, data)
    infos = archive.infolist()
    _check_zip_entries(path, infos)
    contents = {info.filename: _read_member(path, archive, info) for info in infos}
    document = _parse_document(path, contents.pop(_DOCUMENT))
    _check_members(path, document["members"], contents)
    return document, contents


def _open_zip(path: Path, data: bytes) -> zipfile.ZipFile:
    """Open ``data`` as a zip, naming a pickle or a joblib file for what it is."""
    if not data.startswith(b"PK\x03\x04"):
        hint = ""
        if data[:1] == b"\x80" or data[:2] in (b"x\x9c", b"x\x01", b"x\xda"):
            hint = (
                " It looks like a pickle or a joblib file: load_model never "
                "unpickles; use joblib.load only on files from a source you trust."
            )
        raise ModelFileError(f"{path} is not a .skmed model file (not a zip).{hint}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as error:  # BadZipFile, NotImplementedError, EOFError, ...
        raise ModelFileError(
            f"{path} is not a valid .skmed file (truncated or corrupt zip): {error}"
        ) from error
    return archive


def _check_zip_entries(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Check the zip's directory: how many members, which, and how large."""
    if len(infos) > _MAX_MEMBERS:
        raise ModelFileError(
            f"{path} holds {len(infos)} members; a .skmed file holds at most "
            f"{_MAX_MEMBERS}."
        )
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise ModelFileError(f"{path} holds duplicate members: {duplicates}.")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise ModelFileError(f"{path}: member {info.filename!r} is encrypted.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ModelFileError(
                f"{path}: member {info.filename!r} uses compression method "
                f"{info.compress_type}; a .skmed file uses only stored or deflated "
                "members."
            )
        limit = _MAX_DOCUMENT_BYTES if info.filename == _DOCUMENT else _MAX_TOTAL_BYTES
        if info.file_size > limit:
            raise ModelFileError(
                f"{path}: member {info.filename!r} would decompress to "
                f"{info.file_size:,} bytes, more than the limit of {limit:,}."
            )
        if (
            info.file_size > _RATIO_CHECK_BYTES
            and info.file_size > _MAX_COMPRESSION_RATIO * max(info.compress_size, 1)
        ):
            raise ModelFileError(
                f"{path}: member {info.filename!r} compresses {info.file_size:,} "
                f"bytes into {info.compress_size:,} (a ratio above "
                f"{_MAX_COMPRESSION_RATIO}): a zip bomb?"
            )
        total += info.file_size
    if total > _MAX_TOTAL_BYTES:
        raise ModelFileError(
            f"{path}: members would decompress to {total:,} bytes in all, more than "
            f"the limit of {_MAX_TOTAL_BYTES:,}."
        )
    if _DOCUMENT not in names:
        raise ModelFileError(f"{path} has no {_DOCUMENT}: not a .skmed model file.")


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Read one member, refusing one that holds other than its header declares."""
    try:
        with archive.open(info) as member:
            content = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ModelFileError(
            f"{path}: member {info.filename!r} is corrupt: {error}"
        ) from error
    except Exception as error:  # e.g. zlib.error, NotImplementedError
        raise ModelFileError(
            f"{path}: member {info.filename!r} cannot be read: "
            f"{type(error).__name__}: {error}"
        ) from error
    if len(content) != info.file_size:
        raise ModelFileError(
            f"{path}: member {info.filename!r} holds {len(content):,} bytes, "
            f"not the {info.file_size:,} its header declares."
        )
    return content


def _check_members(
    path: Path, declared: dict[str, Any], contents: dict[str, bytes]
) -> None:
    """Check the members against the document's list, sizes and SHA-256."""
    unexpected = sorted(set(contents) - set(declared))
    if unexpected:
        raise ModelFileError(
            f"{path} holds unexpected members {unexpected}; a .skmed file holds only "
            f"{_DOCUMENT} and the safetensors members it lists. Nothing was read "
            "from them."
        )
    missing = sorted(set(declared) - set(contents))
    if missing:
        raise ModelFileError(f"{path} lacks the members {missing} its document lists.")
    for name, content in contents.items():
        record = declared[name]
        if len(content) != record["size"] or (
            hashlib.sha256(content).hexdigest() != record["sha256"]
        ):
            raise ModelFileError(
                f"{path}: member {name!r} does not match the SHA-256 checksum "
                "recorded in model.json: the file is corrupt or was altered."
            )


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        raise ValueError(f"duplicate keys {duplicates}")
    return result


def _count_values(content: bytes) -> int:
    """Bound the JSON values in ``content`` from above, without parsing it."""
    return sum(content.count(char) for char in (b",", b"[", b"{")) + 1


def _parse_document(path: Path, content: bytes) -> dict[str, Any]:
    values = _count_values(content)
    if values > _MAX_DOCUMENT_VALUES:
        raise ModelFileError(
            f"{path}: {_DOCUMENT} holds up to {values:,} JSON values, more than the "
            f"limit of {_MAX_DOCUMENT_VALUES:,}."
        )
    try:
        document = json.loads(
            content.decode("utf-8"),
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeError
        raise ModelFileError(
            f"{path}: {_DOCUMENT} is not valid JSON: {error}"
        ) from error
    if not isinstance(document, dict):
        raise ModelFileError(
            f"{path}: {_DOCUMENT} must hold a JSON object; got "
            f"{type(document).__name__}."
        )
    if document.get("format") != _FORMAT_NAME:
        raise ModelFileError(
            f"{path}: {_DOCUMENT} does not declare format {_FORMAT_NAME!r}; got "
            f"{document.get('format')!r}."
        )
    version = document.get("format_version")
    if type(version) is not int or version < 1:
        raise ModelFileError(
            f"{path}: format_version must be an int >= 1; got {version!r}."
        )
    if version > FORMAT_VERSION:
        versions = document.get("versions")
        writer = versions.get("sk_medcnn") if isinstance(versions, dict) else None
        raise ModelFileError(
            f"{path} uses format version {version}, newer than the version "
            f"{FORMAT_VERSION} this sk_medcnn ({__version__}) reads; it was written "
            f"by sk_medcnn {writer!r}. Upgrade sk_medcnn to load it."
        )
    keys = set(document)
    if keys != _DOCUMENT_KEYS:
        raise ModelFileError(
            f"{path}: {_DOCUMENT} must hold exactly the keys "
            f"{sorted(_DOCUMENT_KEYS)}; missing {sorted(_DOCUMENT_KEYS - keys)}, "
            f"unexpected {sorted(keys - _DOCUMENT_KEYS)}."
        )
    versions = document["versions"]
    if not isinstance(versions, dict) or not all(
        isinstance(value, str) and len(value) <= 64 for value in versions.values()
    ):
        raise ModelFileError(
            f"{path}: versions must be an object of version strings; got {versions!r}."
        )
    members = document["members"]
    if not isinstance(members, dict):
        raise ModelFileError(f"{path}: members must be an object; got {members!r}.")
    for name, record in members.items():
        if name != _ARRAYS and not _NETWORK_MEMBER.fullmatch(name):
            raise ModelFileError(f"{path}: unexpected member name {name!r}.")
        if (
            not isinstance(record, dict)
            or set(record) != {"size", "sha256"}
            or type(record["size"]) is not int
            or not isinstance(record["sha256"], str)
        ):
            raise ModelFileError(
                f"{path}: the record of member {name!r} must be an object with an "
                f"int size and a sha256 string; got {record!r}."
            )
    return document
