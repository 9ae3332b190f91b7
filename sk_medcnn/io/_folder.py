"""Image folders: list the image files of a folder, load a class-per-subfolder tree."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ImageReadError
from ..utils._validation import Checker, boolean, image_size_like, one_of, optional
from ._batch import check_channels, read_images
from ._common import is_dicom_file, is_ignored, missing_path_message
from ._nifti import nifti_spatial_dims
from ._readers import (
    SUPPORTED_EXTENSIONS,
    check_index,
    check_path,
    check_slice_axis,
    check_window,
    extension_of,
)

__all__ = ["list_image_files", "load_image_folder"]

_NIFTI_EXTENSIONS = (".nii", ".nii.gz")


def check_extensions(value: Any, name: str) -> tuple[str, ...] | None:
    """Check ``extensions`` and return them lower-cased, or None."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise TypeError(
            f"{name} must be None or a list of extensions such as ['.png', '.dcm']; "
            f"got {value!r} ({type(value).__name__})."
        )
    extensions = []
    for extension in value:
        if not isinstance(extension, str):
            raise TypeError(
                f"{name} must hold str extensions such as '.png'; got {extension!r}."
            )
        if extension and not extension.startswith("."):
            raise ValueError(
                f"{name} must hold extensions starting with a dot, or '' for files "
                f"without extension; got {extension!r}. Did you mean '.{extension}'?"
            )
        extensions.append(extension.lower())
    if not extensions:
        raise ValueError(f"{name} must not be empty; pass None for the default.")
    return tuple(extensions)


def _selected(path: Path, extensions: tuple[str, ...] | None) -> bool:
    name = path.name
    if is_ignored(path):
        return False
    if extensions is None:
        # files named by UID ("1.2.840.113619.2.55.3.6") or without extension
        # are common in DICOM exports: keep any file whose content is DICOM
        return extension_of(path) in SUPPORTED_EXTENSIONS or is_dicom_file(path)
    lowered = name.lower()
    return extension_of(path) in extensions or any(
        extension and lowered.endswith(extension) for extension in extensions
    )


def _walk(folder: Path, *, recursive: bool) -> list[Path]:
    """Regular files under ``folder``, hidden files and folders left out."""
    found = []
    visited = set()
    for root, folders, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:  # a symbolic link back up the tree: walk it once
            folders[:] = []
            continue
        visited.add(real)
        folders[:] = (
            []
            if not recursive
            else [name for name in folders if not name.startswith(".")]
        )
        for name in files:
            path = Path(root) / name
            if path.is_file():
                found.append(path)
    return found


def _sort_key(path: Path, folder: Path) -> tuple[str, ...]:
    return path.relative_to(folder).parts


def list_image_files(
    folder: str | os.PathLike[str],
    *,
    extensions: Sequence[str] | None = None,
    recursive: bool = True,
) -> list[Path]:
    """List the image files under ``folder``, sorted.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to search.
    extensions : list of str, default=None
        File name extensions to keep, such as ``[".png", ".dcm"]`` (compared
        case-insensitively; ``""`` keeps files without extension). None
        keeps the supported extensions (:data:`SUPPORTED_EXTENSIONS`) and any
        other file whose content is DICOM (``"DICM"`` at byte 128), since
        DICOM exports often name files by UID or give them no extension.
    recursive : bool, default=True
        Search the subfolders too.

    Returns
    -------
    paths : list of pathlib.Path
        The files, sorted by their path relative to ``folder`` (folder by
        folder, name by name), so the order is the same on every machine.
        Hidden files and folders (names starting with ``"."``), ``DICOMDIR``,
        ``Thumbs.db`` and ``desktop.ini`` are left out.

    Raises
    ------
    ImageReadError
        If ``folder`` does not exist or is not a folder.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sk_medcnn.io import list_image_files
    >>> folder = tempfile.TemporaryDirectory()
    >>> for name in ["b.png", "a.PNG", "notes.txt"]:
    ...     _ = (Path(folder.name) / name).write_bytes(b"")
    >>> [path.name for path in list_image_files(folder.name)]
    ['a.PNG', 'b.png']
    >>> folder.cleanup()
    """
    root = _check_folder(folder, "folder")
    chosen = check_extensions(extensions, "extensions")
    boolean(recursive, "recursive")
    files = [
        path for path in _walk(root, recursive=recursive) if _selected(path, chosen)
    ]
    return sorted(files, key=lambda path: _sort_key(path, root))


def _check_folder(folder: Any, name: str) -> Path:
    root = check_path(folder, name)
    if not root.exists():
        reason = missing_path_message(root) or f"The folder '{root}' does not exist."
        raise ImageReadError(reason, str(root))
    if not root.is_dir():
        raise ImageReadError(
            f"'{root}' is a file, not a folder (use read_image for one file).",
            str(root),
        )
    return root


def _check_shape(value: Any, name: str) -> None:
    """Check ``shape``: an int, ``(height, width)`` or ``(depth, height, width)``."""
    if isinstance(value, tuple | list) and len(value) == 3:
        image_size_like(tuple(value[1:]), name)
        image_size_like(value[0], name)
        return
    try:
        image_size_like(value, name)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{error} Volumes take (depth, height, width).") from error


def _check_spatial_dims(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or value not in (2, 3)):
        raise ValueError(
            f"{name} must be None (infer), 2 (images) or 3 (volumes); got {value!r}."
        )


def _infer_spatial_dims(files: list[Path], index: int | None) -> int:
    """Volumes (3) if the first NIfTI file is a volume and no index is given."""
    if index is not None:
        return 2
    for path in files:
        if extension_of(path) in _NIFTI_EXTENSIONS:
            try:
                return nifti_spatial_dims(path)
            except ImageReadError:
                continue  # reported when it is read
    return 2


def _volume_items(class_folder: Path, files: list[Path]) -> list[Path]:
    """Group the files of a class folder into volumes: NIfTI files, series folders.

    Raises
    ------
    ValueError
        If the class folder also holds 2-D image files (PNG, JPEG, TIFF).
    """
    items: set[Path] = set()
    flat = []
    for path in files:
        extension = extension_of(path)
        if extension in _NIFTI_EXTENSIONS:
            items.add(path)
        elif extension in (".dcm", ".dicom") or is_dicom_file(path):
            items.add(path.parent)  # one DICOM series per folder
        else:
            flat.append(path)
    if flat:
        what = (
            "mixes 2-D images and volumes"
            if items
            else "holds 2-D images, but the files are read as volumes"
        )
        raise ValueError(
            f"The class folder '{class_folder}' {what}: {len(flat)} image "
            f"file{'s' if len(flat) > 1 else ''} such as '{flat[0]}'. Keep images "
            "and volumes in separate folders, or pass spatial_dims=2 (with "
            "index= for the slice of each volume)."
        )
    return sorted(items, key=lambda item: _sort_key(item, class_folder))


_FOLDER_PARAMETERS: dict[str, Checker] = {
    "shape": optional(_check_shape),
    "channels": check_channels,
    "lazy": boolean,
    "on_error": one_of(("raise", "skip")),
    "index": check_index,
    "slice_axis": check_slice_axis,
    "window": check_window,
    "spatial_dims": _check_spatial_dims,
}


def _check_volume_options(
    spatial_dims: int,
    shape: Any,
    channels: int | None,
    index: int | None,
    window: Any,
) -> None:
    """Refuse the options that do not apply to the resolved ``spatial_dims``."""
    size = shape if isinstance(shape, tuple | list) else ()
    if spatial_dims == 2:
        if len(size) == 3:
            raise ValueError(
                f"shape={tuple(shape)} is a volume size (depth, height, width), "
                "but the files are read as 2-D images; pass shape=(height, "
                "width), or spatial_dims=3 for volumes."
            )
        return
    if len(size) == 2:
        raise ValueError(
            f"shape={tuple(shape)} is an image size, but the files are read as "
            "volumes; pass shape=(depth, height, width), or spatial_dims=2 "
            "(with index=) for one slice of each."
        )
    if index is not None:
        raise ValueError(
            f"index={index!r} takes one slice of each file, as a 2-D image, but "
            "the files are read as volumes (NIfTI files or DICOM series); pass "
            "index=None, or spatial_dims=2."
        )
    if window == "file":
        raise ValueError(
            "window='file' applies to 2-D DICOM images; volumes take a preset "
            "name or (level, width)."
        )


def _class_folders(folder: Path, chosen: tuple[str, ...] | None) -> list[Path]:
    """List the class subfolders of ``folder``, or say why there are none."""
    entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    class_folders = [
        Path(entry.path)
        for entry in entries
        if entry.is_dir() and not entry.name.startswith(".")
    ]
    if not class_folders:
        loose = [
            path for path in _walk(folder, recursive=False) if _selected(path, chosen)
        ]
        message = f"The folder '{folder}' holds no class subfolders"
        if loose:
            message += (
                f" but {len(loose)} image files directly (e.g. '{loose[0].name}'). "
                "load_image_folder expects root/<class name>/<image files>; for "
                "unlabelled images use list_image_files and ImageLoader."
            )
        else:
            message += " and no images."
        raise ValueError(message)
    return class_folders


def _labelled_items(
    folder: Path,
    files_of: dict[Path, list[Path]],
    spatial_dims: int,
    chosen: tuple[str, ...] | None,
) -> tuple[list[Path], list[str]]:
    """Pair each image (or volume) with its class; refuse empty class folders."""
    paths: list[Path] = []
    labels: list[str] = []
    empty: list[str] = []
    for class_folder, files in files_of.items():
        if spatial_dims == 3:
            files = _volume_items(class_folder, files)
        if not files:
            empty.append(class_folder.name)
        paths.extend(files)
        labels.extend([class_folder.name] * len(files))
    if empty:
        looked_for = (
            "the supported extensions or DICOM content"
            if chosen is None
            else "extensions " + ", ".join(repr(ext) for ext in chosen)
        )
        raise ValueError(
            f"Class folders without images in '{folder}': "
            + ", ".join(repr(name) for name in empty)
            + f" (looked for {looked_for}). Remove them or add images."
        )
    return paths, labels


def load_image_folder(
    root: str | os.PathLike[str],
    *,
    shape: int | tuple[int, int] | None = None,
    channels: int | None = None,
    lazy: bool = False,
    on_error: str = "raise",
    extensions: Sequence[str] | None = None,
    index: int | None = None,
    slice_axis: int = 2,
    window: str | tuple[float, float] | None = None,
    spatial_dims: int | None = None,
) -> tuple[NDArray[Any], NDArray[np.str_]]:
    """Load a folder with one subfolder of images (or volumes) per class as ``(X, y)``.

    ``root/pneumonia/001.png`` is an image of class ``"pneumonia"``. Class
    folders may hold subfolders (``root/pneumonia/patient_7/IM0001``): every
    image file below a class folder belongs to that class.

    Volumes (``spatial_dims=3``) are NIfTI files (``root/tumour/case_3.nii.gz``)
    and DICOM series, one per folder holding DICOM files
    (``root/tumour/patient_7/`` with ``IM0001``, ``IM0002`` ...), each read
    with :func:`read_volume`.

    Parameters
    ----------
    root : str or os.PathLike
        The folder holding one subfolder per class.
    shape : int or tuple of int, default=None
        Resize every image to ``(height, width)`` (an int gives a square)
        with :class:`~sk_medcnn.preprocessing.Resize` (bilinear, anti-aliased;
        the aspect ratio is not kept), every volume to ``(depth, height,
        width)`` (an int gives a cube) with :func:`skimage.transform.resize`
        (linear, anti-aliased when shrinking). None requires all images to
        have one size, and names two that differ if they do not.
    channels : {1, 3}, default=None
        Convert every image to grayscale (1: RGB by its luminance, alpha
        dropped) or to RGB (3: grayscale repeated). None keeps the files'
        channels, which must then agree. Volumes keep their channels: it must
        be None for them.
    lazy : bool, default=False
        If True, read nothing: return the file paths as ``X``, to be read later
        by :class:`ImageLoader` (in a Pipeline, or batch by batch). Unreadable
        files are then found when they are read.
    on_error : {"raise", "skip"}, default="raise"
        An unreadable file raises its :class:`~sk_medcnn.exceptions.ImageReadError`,
        or is skipped with one :class:`UnreadableFilesWarning` listing every
        skipped file (in its ``paths`` attribute).
    extensions : list of str, default=None
        File name extensions to read (see :func:`list_image_files`); None
        reads the supported extensions and DICOM files of any name.
    index : int, default=None
        Passed to :func:`read_image`: which frame or slice to take from files
        holding several. Without it, such files are errors (one image per
        file is expected).
    slice_axis : {0, 1, 2}, default=2
        Passed to :func:`read_image`, for NIfTI volumes.
    window : str or tuple of (float, float), default=None
        Passed to :func:`read_image`: ``"file"`` (DICOM), a preset name or
        ``(level, width)``; the images are then float32 in [0, 1]. Volumes
        take a preset name or ``(level, width)``.
    spatial_dims : {None, 2, 3}, default=None
        2 reads every file as a 2-D image (a DICOM file per image, a NIfTI
        slice with ``index``), 3 reads volumes: NIfTI files and DICOM series
        folders. None infers it: volumes if ``index`` is None and the first
        NIfTI file is a volume (more than one voxel thick on each axis),
        images otherwise. Folders of DICOM files stay images unless
        ``spatial_dims=3``, since a folder of DICOM slices may hold 2-D images
        of one patient as well as one series.

    Returns
    -------
    X : ndarray of shape (n_samples, height, width), \
            (n_samples, height, width, channels), (n_samples, depth, height, \
            width[, channels]), or of shape (n_samples,)
        The images or volumes, in the common dtype of the files (uint8 for
        ordinary PNG and JPEG files; see :func:`read_image` and
        :func:`read_volume`), or their paths (str: files, and folders for
        DICOM series) with ``lazy=True``, which
        :class:`~sk_medcnn.MedicalCNNClassifier` reads batch by batch.
    y : ndarray of shape (n_samples,), dtype str
        The class of each image: the name of its class folder.

    Raises
    ------
    ImageReadError
        If ``root`` does not exist, or a file cannot be read
        (``on_error="raise"``).
    ValueError
        If ``root`` holds no class folder, a class folder holds no image, or
        the images differ in size (without ``shape``) or in channels (without
        ``channels``), or a class folder holds both 2-D images and volumes
        (``spatial_dims=3``, or inferred).

    See Also
    --------
    ImageLoader : Read file paths inside a Pipeline.
    list_image_files : The files of one folder, without labels.

    Notes
    -----
    The order is deterministic: classes sorted by name, then files by their
    path inside the class folder. Hidden files and folders are ignored.
    The images are read one by one into a single preallocated array; images
    of different integer bit depths (8 and 16-bit PNGs) are stacked in the
    wider dtype without rescaling, with a warning.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import imageio.v3 as iio
    >>> import numpy as np
    >>> from sk_medcnn.io import load_image_folder
    >>> root = tempfile.TemporaryDirectory()
    >>> for label, value in [("healthy", 0), ("lesion", 255)]:
    ...     (Path(root.name) / label).mkdir()
    ...     for i in range(2):
    ...         image = np.full((4, 4), value, dtype=np.uint8)
    ...         iio.imwrite(Path(root.name) / label / f"{i}.png", image)
    >>> X, y = load_image_folder(root.name)
    >>> X.shape, X.dtype, y
    ((4, 4, 4), dtype('uint8'), array(['healthy', 'healthy', 'lesion', 'lesion'], dtype='<U7'))
    >>> load_image_folder(root.name, shape=(2, 3))[0].shape
    (4, 2, 3)
    >>> root.cleanup()

    Volumes, from NIfTI files:

    >>> import nibabel
    >>> root = tempfile.TemporaryDirectory()
    >>> for label in ["vessel", "aneurysm"]:
    ...     (Path(root.name) / label).mkdir()
    ...     volume = nibabel.Nifti1Image(np.zeros((6, 5, 4), np.uint8), np.eye(4))
    ...     nibabel.save(volume, Path(root.name) / label / "case.nii.gz")
    >>> X, y = load_image_folder(root.name)
    >>> X.shape, y
    ((2, 4, 5, 6), array(['aneurysm', 'vessel'], dtype='<U8'))
    >>> root.cleanup()
    """  # noqa: E501
    arguments = {
        "shape": shape,
        "channels": channels,
        "lazy": lazy,
        "on_error": on_error,
        "index": index,
        "slice_axis": slice_axis,
        "window": window,
        "spatial_dims": spatial_dims,
    }
    for name, checker in _FOLDER_PARAMETERS.items():
        checker(arguments[name], name)
    chosen = check_extensions(extensions, "extensions")
    folder = _check_folder(root, "root")
    class_folders = _class_folders(folder, chosen)
    files_of = {
        class_folder: sorted(
            (
                path
                for path in _walk(class_folder, recursive=True)
                if _selected(path, chosen)
            ),
            key=lambda path: _sort_key(path, class_folder),
        )
        for class_folder in class_folders
    }
    if spatial_dims is None:
        all_files = [path for files in files_of.values() for path in files]
        spatial_dims = _infer_spatial_dims(all_files, index)
    _check_volume_options(spatial_dims, shape, channels, index, window)
    paths, labels = _labelled_items(folder, files_of, spatial_dims, chosen)
    y = np.asarray(labels, dtype=str)
    if lazy:
        return np.asarray([str(path) for path in paths], dtype=str), y
    X, read = read_images(
        paths,
        shape=shape,
        channels=channels,
        on_error=on_error,
        read_params={"index": index, "slice_axis": slice_axis, "window": window},
        stacklevel=3,
        spatial_dims=spatial_dims,
    )
    y = y[read]
    missing = sorted(set(labels) - set(y.tolist()))
    if missing:
        raise ValueError(
            "Every image of class folder "
            + ", ".join(repr(name) for name in missing)
            + f" in '{folder}' was unreadable and skipped; the class would be "
            "missing from y. Fix or remove those files."
        )
    return X, y
