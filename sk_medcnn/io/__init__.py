"""Read medical and ordinary image files: DICOM, NIfTI, PNG, JPEG and TIFF.

:func:`read_image` reads one file as a channels-last numpy array,
:func:`read_volume` a NIfTI file or a DICOM series folder as a depth-first volume,
:func:`load_image_folder` a folder with one subfolder per class as ``(X, y)``,
and :class:`ImageLoader` turns file paths into images inside a
:class:`~sklearn.pipeline.Pipeline`. pydicom and nibabel are imported only
when a DICOM or NIfTI file is read. :func:`write_dicom_report` writes a
prediction back as a DICOM Structured Report in the source's study (highdicom).
:func:`atomic_path` and :func:`atomic_open` write a file so that a failure
halfway leaves the previous one intact; every file sk_medcnn writes goes through
them, and scripts can use them for their own outputs.
"""

from ..utils._files import atomic_open, atomic_path
from ._batch import UnreadableFilesWarning
from ._dicom_results import write_dicom_report
from ._folder import list_image_files, load_image_folder
from ._loader import ImageLoader
from ._readers import SUPPORTED_EXTENSIONS, read_image
from ._volume import read_volume

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "ImageLoader",
    "UnreadableFilesWarning",
    "atomic_open",
    "atomic_path",
    "list_image_files",
    "load_image_folder",
    "read_image",
    "read_volume",
    "write_dicom_report",
]
