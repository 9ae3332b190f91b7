"""Read one image file (PNG, JPEG, TIFF, DICOM or NIfTI) as a numpy array.

The format is recognised from the file's first bytes (its "magic number"), and
from its extension only when the content says nothing (DICOM files written
without their 128-byte preamble). Every failure of a decoding library becomes
an :class:`~sk_medcnn.exceptions.ImageReadError` naming the file, so a caller
(a folder loader, the command line) can report or skip it in one place.
"""

from __future__ import annotations

import gzip
import math
import os
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ImageReadError
from ..utils._validation import finite_number, positive_float
from ..utils._window import WINDOW_PRESETS, apply_window
from ._common import (
    HEADER_BYTES,
    check_decoded_size,
    missing_path_message,
    one_line,
    read_errors,
    read_header,
    stack_position,
)
from ._dicom import read_dicom
from ._nifti import read_nifti

__all__ = ["SUPPORTED_EXTENSIONS", "read_image"]

#: File name extensions recognised as images (compared case-insensitively).
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".dcm",
    ".dicom",
    ".jpeg",
    ".jpg",
    ".nii",
    ".nii.gz",
    ".png",
    ".tif",
    ".tiff",
)

_FORMAT_OF_EXTENSION = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".dcm": "DICOM",
    ".dicom": "DICOM",
    ".nii": "NIfTI",
    ".nii.gz": "NIfTI",
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NIFTI2_MAGIC = b"n+2\x00\r\n\x1a\n"


# --- parameters ---------------------------------------------------------------


def check_window(value: Any, name: str) -> None:
    """Check a ``window``: None, ``"file"``, a preset name or ``(level, width)``."""
    if value is None or (isinstance(value, str) and value == "file"):
        return
    if isinstance(value, str):
        if value in WINDOW_PRESETS:
            return
        shown = ", ".join(repr(preset) for preset in ("file", *WINDOW_PRESETS))
        raise ValueError(
            f"{name} must be None, one of {shown} or a tuple (level, width) in "
            f"the image's units (HU for CT); got {value!r}."
        )
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(
            f"{name} must be None, 'file', a preset name or a tuple (level, width); "
            f"got {value!r} ({type(value).__name__})."
        )
    finite_number(value[0], f"{name} level")
    positive_float(value[1], f"{name} width")


def check_index(value: Any, name: str) -> None:
    """Check an ``index``: None or an int (negative counts from the end)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be None or an int (a slice or frame number); "
            f"got {value!r} ({type(value).__name__})."
        )


def check_slice_axis(value: Any, name: str) -> None:
    """Check a ``slice_axis``: 0, 1 or 2 (an axis of a canonical RAS+ volume)."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be 0, 1 or 2 (sagittal, coronal, axial slices of the "
            f"canonical volume); got {value!r} ({type(value).__name__})."
        )
    if value not in (0, 1, 2):
        raise ValueError(
            f"{name} must be 0, 1 or 2 (sagittal, coronal, axial slices of the "
            f"canonical volume); got {value!r}."
        )


def check_path(value: Any, name: str = "path") -> Path:
    """Return ``value`` as a :class:`~pathlib.Path`, or raise a TypeError."""
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, str | os.PathLike):
        raise TypeError(
            f"{name} must be a str or os.PathLike naming a file; got "
            f"{type(value).__name__}."
        )
    return Path(value)


# --- format detection ---------------------------------------------------------


def extension_of(path: str | os.PathLike[str]) -> str:
    """Return the lower-case extension of ``path``, ``".nii.gz"`` counted as one."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def sniff_format(header: bytes) -> str | None:
    """Return the format the first bytes of a file announce, or None.

    Parameters
    ----------
    header : bytes
        The file's first ``HEADER_BYTES`` bytes (fewer if it is shorter).

    Returns
    -------
    format : {"PNG", "JPEG", "TIFF", "DICOM", "NIfTI", "gzip"} or None
        ``"gzip"`` for gzip data, which may hold a NIfTI volume.
    """
    # DICOM first: its 128-byte preamble is free and may itself hold a TIFF
    # header (dual-personality files), so "DICM" at 128 is the stronger sign
    if header[128:132] == b"DICM":
        return "DICOM"
    if header.startswith(_PNG_SIGNATURE):
        return "PNG"
    if header.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if header.startswith(_TIFF_SIGNATURES):
        return "TIFF"
    if header[344:348] == b"n+1\x00" or header[4:12] == _NIFTI2_MAGIC:
        return "NIfTI"
    if header.startswith(b"\x1f\x8b"):
        return "gzip"
    return None


def detect_format(path: Path) -> str:
    """Return the format of the file ``path``, from its content, then its extension.

    Raises
    ------
    ImageReadError
        If the file is missing, unreadable or of no supported format.
    """
    if not path.exists():
        reason = missing_path_message(path) or f"No such file: '{path}'."
        raise ImageReadError(reason, str(path))
    if path.is_dir():
        raise ImageReadError(
            f"'{path}' is a folder, not an image file (use load_image_folder or "
            "list_image_files for folders).",
            str(path),
        )
    if not path.is_file():
        raise ImageReadError(f"'{path}' is not a regular file.", str(path))
    try:
        header = read_header(path)
    except OSError as error:
        raise ImageReadError(
            f"Cannot open '{path}': {one_line(error, path)}.", str(path)
        ) from error
    found = sniff_format(header)
    extension = extension_of(path)
    if found == "gzip":
        try:
            with gzip.open(path, "rb") as handle:
                inner = handle.read(HEADER_BYTES)
        except Exception:  # corrupt gzip data (zlib.error, EOFError, ...)
            inner = b""
        if sniff_format(inner) == "NIfTI":
            return "NIfTI"
        found = None
    if found is not None:
        return found
    if extension in (".dcm", ".dicom"):
        return "DICOM"  # a DICOM data set written without preamble and "DICM"
    expected = _FORMAT_OF_EXTENSION.get(extension)
    start = header[:8]
    if expected is not None:
        raise ImageReadError(
            f"'{path}' is not a valid {expected} file: its content does not start "
            f"like one (first bytes {start!r}); the file is corrupt or misnamed.",
            str(path),
        )
    if not header:
        raise ImageReadError(f"'{path}' is empty (0 bytes).", str(path))
    raise ImageReadError(
        f"'{path}' is not an image sk_medcnn can read (first bytes {start!r}); "
        "supported: PNG, JPEG, TIFF, DICOM and NIfTI (.nii, .nii.gz).",
        str(path),
    )


# --- dtype policy -------------------------------------------------------------


def finish(image: NDArray[Any], path: Path) -> NDArray[Any]:
    """Return ``image`` native-endian and writable, booleans as uint8; refuse NaN."""
    if image.dtype == np.bool_:
        image = image.astype(np.uint8)
    if not image.dtype.isnative:
        image = image.astype(image.dtype.newbyteorder("="))
    if image.dtype.kind == "f":
        finite = np.isfinite(image)
        if not finite.all():
            n_bad = int(image.size - np.count_nonzero(finite))
            raise ImageReadError(
                f"'{path}' holds {n_bad} NaN or infinite values (of {image.size}); "
                "sk_medcnn refuses them rather than guess a pixel value. Replace "
                "them (e.g. numpy.nan_to_num on the array) before training.",
                str(path),
            )
    if image.dtype.kind not in "iuf":
        raise ImageReadError(
            f"'{path}' holds {image.dtype} pixel values; only integer and real "
            "images are supported.",
            str(path),
        )
    image = np.ascontiguousarray(image)
    return image if image.flags.writeable else image.copy()


def select(
    images: NDArray[Any], index: int | None, path: Path, what: str
) -> NDArray[Any]:
    """Return ``images[index]`` of a stack, with an error naming the file."""
    n_images = images.shape[0]
    if index is None:
        return images
    return images[stack_position(index, n_images, path, what)]


# --- PNG, JPEG, TIFF ----------------------------------------------------------


def _read_pillow(path: Path, kind: str) -> NDArray[Any]:
    import imageio.v3 as iio

    if kind == "PNG":
        header = read_header(path)
        # IHDR: bit depth at byte 24, colour type at 25 (2 RGB, 4 grey + alpha,
        # 6 RGBA); Pillow reduces these 16-bit images to 8 bits without a word
        if len(header) > 25 and header[24] == 16 and header[25] in (2, 4, 6):
            raise ImageReadError(
                f"'{path}' is a 16-bit colour PNG, which Pillow can only read as "
                "8 bits, losing precision; save it as 16-bit TIFF (or 16-bit "
                "grayscale PNG) instead.",
                str(path),
            )
    with read_errors(path, kind):
        from PIL import Image

        with Image.open(path) as opened:  # reads the header only
            width, height = opened.size
            n_bands = len(opened.getbands())
        check_decoded_size(
            width * height * n_bands * 2, path, f"{height} x {width} pixels"
        )
        image: NDArray[Any] = iio.imread(path, plugin="pillow", index=0)
    if image.ndim not in (2, 3):
        raise ImageReadError(
            f"'{path}' decoded to an array of shape {image.shape}; expected "
            "(height, width) or (height, width, channels).",
            str(path),
        )
    return image


def _read_tiff(path: Path) -> tuple[NDArray[Any], bool]:
    import tifffile

    with read_errors(path, "TIFF"):
        with tifffile.TiffFile(path) as tiff:
            series = tiff.series[0]
            axes = series.axes
            check_decoded_size(
                math.prod(series.shape) * series.dtype.itemsize,
                path,
                f"an image of shape {series.shape}",
            )
            image: NDArray[Any] = series.asarray()
    if image.ndim != len(axes) or "Y" not in axes or "X" not in axes:
        raise ImageReadError(
            f"'{path}' is a TIFF of unsupported layout (axes {axes!r}, shape "
            f"{image.shape}).",
            str(path),
        )
    # samples (S, interleaved RGB) or planar channels (C) go last
    channel_axes = [i for i, axis in enumerate(axes) if axis in "SC"]
    if len(channel_axes) > 1:
        raise ImageReadError(
            f"'{path}' is a TIFF with two channel axes (axes {axes!r}, shape "
            f"{image.shape}); read it with tifffile.",
            str(path),
        )
    if channel_axes:
        image = np.moveaxis(image, channel_axes[0], -1)
        axes = axes.replace(axes[channel_axes[0]], "") + "S"
    leading = axes[: axes.index("Y")]
    if axes.index("X") != axes.index("Y") + 1 or len(leading) > 1:
        raise ImageReadError(
            f"'{path}' is a TIFF of unsupported layout (axes {axes!r}, shape "
            f"{image.shape}): read_image reads an image or one stack of images.",
            str(path),
        )
    return image, len(leading) == 1


# --- public -------------------------------------------------------------------


def read_image_stack(
    path: str | os.PathLike[str],
    *,
    index: int | None = None,
    slice_axis: int = 2,
    window: str | tuple[float, float] | None = None,
) -> tuple[NDArray[Any], bool]:
    """Read ``path`` as :func:`read_image` does; also say whether it is a stack.

    Returns
    -------
    image : ndarray
        As returned by :func:`read_image`.
    is_stack : bool
        True if the first axis of ``image`` counts images (slices, frames or
        pages), False for a single ``(H, W)`` or ``(H, W, C)`` image.
    """
    path = check_path(path)
    check_index(index, "index")
    check_slice_axis(slice_axis, "slice_axis")
    check_window(window, "window")
    kind = detect_format(path)
    if window == "file" and kind != "DICOM":
        raise ImageReadError(
            f"window='file' applies to DICOM files, whose header holds a window; "
            f"'{path}' is {kind}. Pass window=(level, width) or a preset name.",
            str(path),
        )
    if kind == "DICOM":
        image, is_stack = read_dicom(path, index=index, window=window)
    elif kind == "NIfTI":
        image, is_stack = read_nifti(path, index=index, slice_axis=slice_axis)
    else:
        if kind == "TIFF":
            image, is_stack = _read_tiff(path)
        else:
            image, is_stack = _read_pillow(path, kind), False
        if is_stack and index is not None:
            image, is_stack = select(image, index, path, "pages"), False
        elif index is not None and index not in (0, -1):
            raise ImageReadError(
                f"index={index} is out of range for '{path}', which holds one image.",
                str(path),
            )
    if 0 in image.shape:
        raise ImageReadError(
            f"'{path}' holds an empty image (shape {image.shape}).", str(path)
        )
    image = finish(image, path)
    if isinstance(window, str) and window != "file":
        image = apply_window(image, *WINDOW_PRESETS[window])
    elif isinstance(window, tuple | list):
        image = apply_window(image, float(window[0]), float(window[1]))
    return image, is_stack


def read_image(
    path: str | os.PathLike[str],
    *,
    index: int | None = None,
    slice_axis: int = 2,
    window: str | tuple[float, float] | None = None,
) -> NDArray[Any]:
    """Read a PNG, JPEG, TIFF, DICOM or NIfTI file as a channels-last array.

    The format is recognised from the file's content (its first bytes), so a
    misnamed file is read correctly; the extension is used only for DICOM files
    written without preamble (recognised by ``.dcm`` or ``.dicom``).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    index : int, default=None
        The image to return from a file that holds several: a frame of a
        multi-frame DICOM, a slice of a NIfTI volume, a page of a multi-page
        TIFF. Negative values count from the end. ``None`` returns them all.
        A file holding one image accepts ``0`` and ``-1``.
    slice_axis : {0, 1, 2}, default=2
        NIfTI only: the axis of the canonical (RAS+) volume to slice along:
        0 sagittal, 1 coronal, 2 axial.
    window : {"file", "lung", "mediastinum", "abdomen", "bone", "brain"} or \
            tuple of (float, float), default=None
        Map intensities through a window onto [0, 1], as float32.
        ``"file"``: the DICOM file's own VOI LUT or first Window Center /
        Width (other formats refuse it). A preset name or ``(level, width)``:
        the linear window of :class:`~sk_medcnn.preprocessing.IntensityWindow`,
        in the image's units (HU for CT). ``None`` returns the values.

    Returns
    -------
    image : ndarray of shape (height, width), (height, width, channels), \
            (n_images, height, width) or (n_images, height, width, channels)
        Grayscale images are 2-D, colour images carry their channels last
        (3 for RGB, 4 for RGBA, 2 for grey + alpha). Several frames, slices
        or pages, with ``index=None``, are stacked along a new first axis.
        Values are native-endian and free of NaN:

        - PNG, JPEG: uint8, or uint16 for 16-bit grayscale PNG; 1-bit images
          become uint8 0 / 1; palette images RGB.
        - TIFF: the stored dtype (uint8, uint16, int16, float32, ...).
        - DICOM, grayscale: the Modality LUT or Rescale Slope / Intercept is
          applied (CT values in Hounsfield units). Without rescaling (or with
          slope 1, intercept 0) the stored dtype is kept; rescaled values are
          float32 (float64 for 32-bit stored integers). MONOCHROME1 images
          (low values shown white) are inverted, so high values are bright
          in every image. DICOM colour: RGB (YBR data converted, PALETTE
          COLOR expanded through its palette), uint8 or uint16.
        - NIfTI: the stored dtype, or float32 when the header scales the data
          (``scl_slope``, ``scl_inter``; float64 for 32-bit stored integers).
        - With a ``window``: float32 in [0, 1].

    Raises
    ------
    ImageReadError
        If the file is missing, corrupt, of an unsupported format, holds NaN
        values, or holds DICOM pixel data that no installed plugin decodes
        (the message names the file and the plugin to install). It subclasses
        ValueError.
    ImportError
        If the file is DICOM and pydicom is missing, or NIfTI and nibabel is
        missing; the message gives the command that installs them.
    TypeError, ValueError
        If a parameter is of the wrong type or value.

    See Also
    --------
    load_image_folder : Read a folder with one subfolder per class.
    ImageLoader : A transformer reading file paths inside a Pipeline.

    Notes
    -----
    DICOM files are decoded by pydicom and its installed plugins. With
    pydicom 3.0 and Pillow (and no pylibjpeg, pyjpegls or GDCM), these
    transfer syntaxes decode: Implicit and Explicit VR Little Endian,
    Explicit VR Big Endian, Deflated Explicit VR Little Endian, RLE Lossless
    (pydicom), JPEG Baseline 8-bit, JPEG Extended with 8-bit samples, JPEG
    2000 and JPEG 2000 Lossless (Pillow with OpenJPEG). JPEG Extended 12-bit,
    JPEG Lossless (processes 14 and 14 SV1), JPEG-LS and High-Throughput JPEG
    2000 need ``pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg``
    (or pyjpegls, or GDCM); without them the error names the missing plugin.
    The file's window is the first of several; the windowing is pydicom's
    :func:`~pydicom.pixels.apply_voi_lut` (DICOM's LINEAR, LINEAR_EXACT and
    SIGMOID functions), rescaled to [0, 1], and inverted after windowing for
    MONOCHROME1. An explicit window is applied after the inversion, to the
    values this function returns. Per-frame rescaling of enhanced multi-frame
    files (functional groups) and the Presentation LUT Shape are not applied.

    NIfTI volumes are reoriented with :func:`nibabel.as_closest_canonical`,
    so that the array axes run left to Right, posterior to Anterior and
    inferior to Superior (RAS+), whatever the stored orientation. Slice ``k``
    along ``slice_axis=2`` is ``canonical_data[:, :, k]``: its rows run from
    left to right and its columns from posterior to anterior; use
    ``numpy.rot90`` to show it the radiological way.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import imageio.v3 as iio
    >>> import numpy as np
    >>> from sk_medcnn.io import read_image
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "scan.png"
    >>> iio.imwrite(path, np.array([[0, 1000], [40000, 65535]], dtype=np.uint16))
    >>> read_image(path)
    array([[    0,  1000],
           [40000, 65535]], dtype=uint16)
    >>> read_image(path, window=(500, 1000))
    array([[0., 1.],
           [1., 1.]], dtype=float32)
    >>> folder.cleanup()
    """
    image, _ = read_image_stack(path, index=index, slice_axis=slice_axis, window=window)
    return image
