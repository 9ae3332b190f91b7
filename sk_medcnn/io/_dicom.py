"""DICOM reading through pydicom: modality LUT, MONOCHROME1, windows, frames."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ImageReadError
from ._common import (
    check_decoded_size,
    float_type_for,
    one_line,
    read_errors,
    read_header,
    stack_position,
)

__all__ = [
    "decode_error",
    "has_rescale",
    "import_pydicom",
    "invert_monochrome1",
    "modality",
    "read_dataset",
    "read_dicom",
    "stored_range",
]

_DICOM_INSTALL = 'pip install "sk-medcnn[dicom]"'


def import_pydicom() -> Any:
    try:
        import pydicom
        import pydicom.pixels
    except ImportError as error:
        raise ImportError(
            f"Reading DICOM files needs pydicom: {_DICOM_INSTALL}"
        ) from error
    return pydicom


def stored_range(dataset: Any) -> tuple[int, int]:
    """Smallest and largest stored value allowed by Bits Stored and signedness."""
    bits = int(dataset.BitsStored)
    if int(dataset.get("PixelRepresentation", 0)) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def has_rescale(dataset: Any) -> bool:
    slope = dataset.get("RescaleSlope")
    intercept = dataset.get("RescaleIntercept")
    if slope is None or intercept is None:
        return False
    return not (float(slope) == 1 and float(intercept) == 0)


def modality(image: NDArray[Any], dataset: Any) -> NDArray[Any]:
    """Apply the Modality LUT or Rescale Slope / Intercept (CT: to HU)."""
    from pydicom.pixels import apply_modality_lut

    if dataset.get("ModalityLUTSequence"):
        return np.asarray(apply_modality_lut(image, dataset))
    if has_rescale(dataset):
        return np.asarray(apply_modality_lut(image, dataset)).astype(
            float_type_for(image.dtype), copy=False
        )
    return image


def _modality_range(dataset: Any) -> tuple[float, float]:
    """Output range of the modality transform for the allowed stored values."""
    from pydicom.pixels import apply_modality_lut

    low, high = stored_range(dataset)
    ends = np.asarray([low, high], dtype=np.int64)
    if dataset.get("ModalityLUTSequence") or has_rescale(dataset):
        ends = np.asarray(apply_modality_lut(ends, dataset))
    return float(ends.min()), float(ends.max())


def invert_monochrome1(image: NDArray[Any], dataset: Any) -> NDArray[Any]:
    """Invert MONOCHROME1 data (low = white) over the range it can take."""
    low, high = _modality_range(dataset)
    if image.dtype.kind == "f":
        inverted = (low + high) - image
        return np.clip(inverted, low, high, out=inverted).astype(image.dtype)
    wide = (np.int64(low) + np.int64(high)) - image.astype(np.int64)
    info = np.iinfo(image.dtype)
    np.clip(wide, max(low, info.min), min(high, info.max), out=wide)
    return wide.astype(image.dtype)


def _file_window(image: NDArray[Any], dataset: Any, path: Path) -> NDArray[Any]:
    """Apply the file's VOI LUT or first window, as float32 in [0, 1]."""
    from pydicom.pixels import apply_voi_lut

    lut_items = dataset.get("VOILUTSequence")
    has_lut = bool(lut_items) and all(
        lut_items[0].get(keyword) is not None
        for keyword in ("LUTDescriptor", "LUTData")
    )
    has_window = (
        dataset.get("WindowCenter") is not None
        and dataset.get("WindowWidth") is not None
    )
    if not (has_lut or has_window):
        raise ImageReadError(
            f"window='file' but '{path}' has no Window Center / Width and no VOI "
            "LUT; pass window=(level, width), a preset name, or window=None.",
            str(path),
        )
    if has_lut:
        # a VOI LUT is indexed by (integer) modality values; its output runs
        # from 0 to 2**bits - 1, bits being the LUT Descriptor's third value
        windowed = apply_voi_lut(np.rint(image).astype(np.int64), dataset)
        low, high = 0.0, float(2 ** int(lut_items[0].LUTDescriptor[2]) - 1)
    else:
        windowed = apply_voi_lut(image, dataset)
        # pydicom maps the window onto the range the modality output can take
        if dataset.get("ModalityLUTSequence"):
            depth = int(dataset.ModalityLUTSequence[0].LUTDescriptor[2])
            low, high = 0.0, float(2**depth - 1)
        else:
            low, high = (float(end) for end in stored_range(dataset))
            slope = dataset.get("RescaleSlope")
            intercept = dataset.get("RescaleIntercept")
            if slope is not None and intercept is not None:
                low = low * float(slope) + float(intercept)
                high = high * float(slope) + float(intercept)
    if high == low:  # (a negative slope swaps them, which the division undoes)
        raise ImageReadError(
            f"'{path}' has a window whose output range is empty.", str(path)
        )
    out = ((np.asarray(windowed, dtype=np.float64) - low) / (high - low)).astype(
        np.float32
    )
    return np.clip(out, 0, 1, out=out)


def _is_compressed(uid: Any) -> bool:
    """Return True if ``uid`` is a known compressed transfer syntax."""
    try:
        return bool(uid is not None and uid.is_compressed)
    except Exception:  # a corrupt UID that is no transfer syntax
        return False


def _missing_plugins(uid: Any) -> str:
    """Return the pydicom plugins for ``uid`` that are not installed, as one line."""
    from pydicom.pixels import get_decoder

    try:
        return "; ".join(get_decoder(uid).missing_dependencies)
    except Exception:  # no decoder at all for this transfer syntax
        return ""


def _decoder_problem(pydicom: Any, dataset: Any, path: Path) -> str | None:
    """Say why the pixel data cannot be decoded here, or None if it can be tried."""
    uid = dataset.file_meta.get("TransferSyntaxUID")
    if not _is_compressed(uid):
        return None
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        return (
            f"'{path}' holds pixel data compressed as {uid.name} ({uid}), which "
            "pydicom cannot decode."
        )
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies)
        return (
            f"'{path}' holds pixel data compressed as {uid.name} ({uid}), and no "
            f"installed plugin decodes it. Install one of: {missing}."
        )
    return None


def read_dataset(pydicom: Any, path: Path, *, header_only: bool = False) -> Any:
    """Parse the DICOM file ``path``, refusing what holds no decodable image.

    Parameters
    ----------
    pydicom : module
        The imported pydicom (from :func:`import_pydicom`).
    path : pathlib.Path
        The file, named in every error.
    header_only : bool, default=False
        Stop before the pixel data (``stop_before_pixels``): the checks that
        need them (pixel data present, decodable, of a plausible size) are
        then left to the full read.

    Returns
    -------
    dataset : pydicom.Dataset
        With a Transfer Syntax UID in its file meta (one is filled in, from
        the encoding, for files written without meta information).

    Raises
    ------
    ImageReadError
        If the file is not DICOM, holds no pixel data, or holds pixel data no
        installed plugin decodes, or more than the file can plausibly hold.
    """
    preamble = read_header(path)[128:132] == b"DICM"
    with read_errors(path, "DICOM"):
        dataset = pydicom.dcmread(
            path, force=not preamble, stop_before_pixels=header_only
        )
    try:
        # group 0000 holds network (DIMSE) commands, 0002 the file meta: a parse
        # of zeros, or of a non-DICOM file read with force=True, finds nothing else
        if not any(tag.group not in (0x0000, 0x0002) for tag in dataset.keys()):
            zeros = not any(read_header(path))
            raise ImageReadError(
                f"'{path}' is not a DICOM file: no DICOM data element could be "
                "read from it"
                + (
                    " (its first bytes are all zero: an empty or zero-filled file)."
                    if zeros
                    else " (it is corrupt, or another format under a DICOM name)."
                ),
                str(path),
            )
        if header_only:
            return dataset
        pixel_keywords = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
        if not any(keyword in dataset for keyword in pixel_keywords):
            raise ImageReadError(
                f"'{path}' is a DICOM file without pixel data (a report, a "
                "structure set, a DICOMDIR ...), not an image.",
                str(path),
            )
        if dataset.file_meta.get("TransferSyntaxUID") is None:
            # a file without meta information: its encoding is all we know
            implicit, little = dataset.original_encoding
            uid = pydicom.uid
            dataset.file_meta.TransferSyntaxUID = (
                uid.ImplicitVRLittleEndian
                if implicit
                else uid.ExplicitVRLittleEndian
                if little
                else uid.ExplicitVRBigEndian
            )
        problem = _decoder_problem(pydicom, dataset, path)
        if problem is not None:
            raise ImageReadError(problem, str(path))
        n_frames = int(dataset.get("NumberOfFrames") or 1)
        samples = int(dataset.get("SamplesPerPixel") or 1)
        n_bytes = (
            int(dataset.Rows)
            * int(dataset.Columns)
            * samples
            * max(n_frames, 1)
            * math.ceil(int(dataset.BitsAllocated) / 8)
        )
        check_decoded_size(
            n_bytes,
            path,
            f"{dataset.Rows} x {dataset.Columns} pixels x {samples} samples x "
            f"{n_frames} frames",
        )
    except ImageReadError:
        raise
    except Exception as error:  # a corrupt header
        raise decode_error(dataset, path, error) from error
    return dataset


def decode_error(dataset: Any, path: Path, error: Exception) -> ImageReadError:
    """Return the ImageReadError for pixel data of ``path`` that failed to decode."""
    message = f"Cannot decode the pixel data of '{path}': {one_line(error, path)}"
    uid = getattr(dataset, "file_meta", {}).get("TransferSyntaxUID")
    if uid is not None and _is_compressed(uid):
        message += f" (transfer syntax {uid.name})."
        missing = _missing_plugins(uid)
        if missing:
            message += f" Plugins that may decode it: {missing}."
    return ImageReadError(message, str(path))


def read_dicom(
    path: Path, *, index: int | None, window: str | tuple[float, float] | None
) -> tuple[NDArray[Any], bool]:
    """Read a DICOM file's pixel data as ``read_image`` documents it.

    Returns
    -------
    image : ndarray
        The frame ``index``, or every frame stacked along a first axis.
    is_stack : bool
        True if ``image`` holds several frames along its first axis.
    """
    pydicom = import_pydicom()
    from pydicom.pixels import apply_color_lut, pixel_array

    dataset = read_dataset(pydicom, path)
    try:
        n_frames = int(dataset.get("NumberOfFrames") or 1)
        samples = int(dataset.get("SamplesPerPixel") or 1)
        frame = None
        if index is not None:
            frames = "frames" if n_frames > 1 else "frame"
            frame = stack_position(index, n_frames, path, frames)
        image = np.asarray(pixel_array(dataset, index=frame))
        photometric = str(dataset.get("PhotometricInterpretation", "")).strip()
        is_stack = n_frames > 1 and frame is None
        if photometric == "PALETTE COLOR":
            image = np.asarray(apply_color_lut(image, dataset))
            if window == "file":
                raise ImageReadError(
                    f"window='file' applies to grayscale DICOM; '{path}' is "
                    "PALETTE COLOR.",
                    str(path),
                )
        elif samples == 1:
            image = modality(image, dataset)
            monochrome1 = photometric == "MONOCHROME1"
            if window == "file":
                image = _file_window(image, dataset, path)
                if monochrome1:
                    image = 1 - image
            elif monochrome1:
                image = invert_monochrome1(image, dataset)
        elif window == "file":
            raise ImageReadError(
                f"window='file' applies to grayscale DICOM; '{path}' is "
                f"{photometric or 'colour'} with {samples} samples per pixel.",
                str(path),
            )
    except ImageReadError:
        raise
    except Exception as error:  # a corrupt header or undecodable pixel data
        raise decode_error(dataset, path, error) from error
    return image, is_stack
