"""Read one volume: a NIfTI file or a DICOM series folder, depth first."""

from __future__ import annotations

import os
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ImageReadError
from ..utils._arrays import cast_like, float_dtype_for
from ..utils._validation import boolean
from ._dicom_series import read_dicom_series
from ._nifti import nifti_spatial_dims, read_nifti_volume
from ._readers import check_path, detect_format, finish

__all__ = ["read_volume", "resize_volume", "spatial_dims_of_file"]


def spatial_dims_of_file(path: str | os.PathLike[str]) -> int:
    """Return 3 for a volume file (a NIfTI volume, a folder), 2 for an image.

    A folder is a DICOM series; a NIfTI file is a volume unless one of its
    first three axes has a single voxel; every other file (PNG, JPEG, TIFF, a
    DICOM file) is a 2-D image. Reads at most the file's header.
    """
    path = check_path(path)
    if path.is_dir():
        return 3
    if detect_format(path) == "NIfTI":
        return nifti_spatial_dims(path)
    return 2


@overload
def read_volume(
    path: str | os.PathLike[str], *, return_spacing: Literal[False] = ...
) -> NDArray[Any]: ...


@overload
def read_volume(
    path: str | os.PathLike[str], *, return_spacing: Literal[True]
) -> tuple[NDArray[Any], tuple[float, float, float]]: ...


def read_volume(
    path: str | os.PathLike[str], *, return_spacing: bool = False
) -> NDArray[Any] | tuple[NDArray[Any], tuple[float, float, float]]:
    """Read a NIfTI file or a DICOM series folder as a volume, depth first.

    Parameters
    ----------
    path : str or os.PathLike
        A NIfTI file (``.nii``, ``.nii.gz``; recognised by its content), or a
        folder holding the files of one DICOM series (every DICOM file
        directly in it: files with ``"DICM"`` at byte 128, or named
        ``.dcm``/``.dicom``; other files and subfolders are ignored).
    return_spacing : bool, default=False
        Also return the voxel spacing.

    Returns
    -------
    volume : ndarray of shape (depth, height, width) or \
            (depth, height, width, channels)
        Native-endian and free of NaN.

        - NIfTI: reoriented with :func:`nibabel.as_closest_canonical` (RAS+),
          then ``canonical_data.transpose(2, 1, 0)``: depth runs along the
          inferior-to-superior axis (axial slices, foot to head), rows from
          posterior to anterior, columns from the patient's left to right
          (``volume[k]`` shown as an image has the patient's left on the
          left and row 0, the posterior side, at the top;
          :func:`~sk_medcnn.inspection.plot_volume_overlay` draws it with
          anterior at the top). A 4-D file whose 4th axis has at most
          4 entries (MRI contrasts) gives ``(depth, height, width,
          channels)``; a longer 4th axis (fMRI, diffusion) is refused. The
          stored dtype is kept, or float32 when the header scales the data
          (float64 for 32-bit stored integers).
        - DICOM series: slices sorted by the projection of Image Position
          (Patient) on the slice normal (the cross product of Image
          Orientation (Patient)'s row and column directions), increasing,
          then permuted and flipped into the closest canonical orientation,
          as a NIfTI file is read (only permuted and flipped: an oblique
          series is not resampled). The same anatomy stored as a series or
          converted to NIfTI gives the same array; for axial CT each stored
          slice is flipped up-down and left-right (it is stored anterior to
          posterior, patient's right to left: the radiological view).
          Values are modality values (HU for CT), through each slice's
          Rescale Slope and Intercept or Modality LUT: integers stay
          integers when slope and intercept are integers
          (in the smallest integer dtype holding every value Bits Stored
          allows: int32 for signed 16-bit CT), else float32. MONOCHROME1
          slices are inverted; colour slices keep their samples last.
    spacing : tuple of 3 float
        Only with ``return_spacing=True``: the voxel size in mm, in the order
        of the volume's axes ``(depth, height, width)``. NIfTI: the header's
        zooms of the canonical volume (0.8 for a float32 zoom of 0.8).
        DICOM: the median step between sorted slice positions, then Pixel
        Spacing (between rows, between columns); a series of one slice takes
        its Spacing Between Slices, else its Slice Thickness, else 1.0 as
        depth spacing.

    Raises
    ------
    ImageReadError
        If ``path`` does not exist, is not a volume (a 2-D image file, one
        DICOM file, a folder without DICOM files), is corrupt, or is a
        folder that is not one complete series: files of more than one
        Series Instance UID, missing slices (a step between neighbouring
        slice positions over 1.5 times the median step), duplicate slice
        positions, differing Image Orientation (Patient), Pixel Spacing or
        rows and columns, slices without position or orientation. The
        message names the folder and the files at fault. It subclasses
        ValueError.
    ImportError
        If nibabel (NIfTI) or pydicom (DICOM) is missing; the message gives
        the command that installs it.
    TypeError
        If ``path`` or ``return_spacing`` is of the wrong type.

    See Also
    --------
    read_image : Read one 2-D image, or the slices of a file as a stack.
    load_image_folder : Read a folder of class folders of images or volumes.

    Notes
    -----
    A DICOM series is read in two passes: every file's header first, to check
    the series and sort it, then the pixel data, slice by slice, into one
    preallocated array; a folder that is not one complete series fails
    before any pixel data is decoded. Gantry tilt (slices shifted along
    their rows) is not corrected, and multi-frame (enhanced) DICOM files are
    left to :func:`read_image`.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import nibabel
    >>> import numpy as np
    >>> from sk_medcnn.io import read_volume
    >>> folder = tempfile.TemporaryDirectory()
    >>> data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)  # (x, y, z)
    >>> affine = np.diag([0.5, 0.8, 2.0, 1.0])  # RAS+, voxel sizes in mm
    >>> path = Path(folder.name) / "scan.nii.gz"
    >>> nibabel.save(nibabel.Nifti1Image(data, affine), path)
    >>> volume, spacing = read_volume(path, return_spacing=True)
    >>> volume.shape, volume.dtype, spacing
    ((4, 3, 2), dtype('int16'), (2.0, 0.8, 0.5))
    >>> bool((volume == data.transpose(2, 1, 0)).all())
    True
    >>> folder.cleanup()
    """
    path = check_path(path)
    boolean(return_spacing, "return_spacing")
    if path.is_dir():
        volume, spacing = read_dicom_series(path)
    else:
        kind = detect_format(path)
        if kind == "DICOM":
            raise ImageReadError(
                f"'{path}' is one DICOM file; read_volume reads a DICOM series "
                f"from its folder (read_volume('{path.parent}')), and read_image "
                "reads one file.",
                str(path),
            )
        if kind != "NIfTI":
            raise ImageReadError(
                f"'{path}' is a {kind} image, not a volume; read_volume reads "
                "NIfTI files (.nii, .nii.gz) and DICOM series folders (use "
                "read_image for 2-D images).",
                str(path),
            )
        volume, spacing = read_nifti_volume(path)
    if 0 in volume.shape:
        raise ImageReadError(
            f"'{path}' holds an empty volume (shape {volume.shape}).", str(path)
        )
    volume = finish(volume, path)
    if return_spacing:
        return volume, spacing
    return volume


def resize_volume(volume: NDArray[Any], shape: tuple[int, int, int]) -> NDArray[Any]:
    """Resize ``volume`` ``(D, H, W[, C])`` to ``shape`` ``(depth, height, width)``.

    :func:`skimage.transform.resize` with linear interpolation (``order=1``),
    anti-aliased along the axes that shrink (as
    :class:`~sk_medcnn.preprocessing.Resize` does in 2-D); the dtype is kept
    (integers rounded and clipped), computed in float32 for up to 16-bit data.
    A volume of that size is returned as it is.
    """
    from skimage.transform import resize

    shape = tuple(int(size) for size in shape)  # type: ignore[assignment]
    if tuple(volume.shape[:3]) == shape:
        return volume
    compute = float_dtype_for(volume.dtype)
    shrinking = any(new < old for new, old in zip(shape, volume.shape[:3], strict=True))
    resized = resize(
        volume.astype(compute, copy=False),
        shape + tuple(volume.shape[3:]),
        order=1,
        mode="reflect",
        anti_aliasing=shrinking,
        preserve_range=True,
    )
    return cast_like(np.asarray(resized, dtype=compute), volume.dtype)
