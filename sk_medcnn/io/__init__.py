"""Read medical and ordinary image files: DICOM, NIfTI, PNG, JPEG and TIFF.

:func:`read_image` reads one file as a channels-last numpy array,
:func:`load_image_folder` a folder with one subfolder per class as ``(X, y)``,
and :class:`ImageLoader` turns file paths into images inside a
:class:`~sklearn.pipeline.Pipeline`. pydicom and nibabel are imported only
when a DICOM or NIfTI file is read.
"""

from ._batch import UnreadableFilesWarning
from ._folder import list_image_files, load_image_folder
from ._loader import ImageLoader
from ._readers import SUPPORTED_EXTENSIONS, read_image

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "ImageLoader",
    "UnreadableFilesWarning",
    "list_image_files",
    "load_image_folder",
    "read_image",
]
