"""Data for the commands: labelled images to fit or score, files to predict."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._common import CommandError, _describe_missing, _warn
from ._models import _final_estimator, _reads_paths, _takes_volumes


def _is_npz(path: Path) -> bool:
    return path.suffix.lower() == ".npz"


def load_data(
    source: str,
    *,
    split: str,
    image_size: int | None = None,
    channels: int | None = None,
    on_error: str = "raise",
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Read labelled images from an image folder or a MedMNIST ``.npz`` file.

    Parameters
    ----------
    source : str
        A folder with one subfolder per class, or a ``.npz`` file in the
        MedMNIST layout.
    split : {"train", "val", "test"}
        The split of a ``.npz`` file; ignored for folders.
    image_size : int, optional
        Resize every image of a folder to this square size.
    channels : {1, 3}, optional
        Convert the images of a folder to grayscale or RGB.
    on_error : {"raise", "skip"}, default="raise"
        What to do with an unreadable file in a folder.

    Returns
    -------
    X : ndarray
        The images.
    y : ndarray of shape (n_samples,)
        The labels.

    Raises
    ------
    CommandError
        If ``source`` does not exist, or is neither a folder nor a ``.npz`` file.
    """
    path = Path(source)
    if not (path.is_dir() or path.is_file()):
        raise CommandError(_describe_missing(path))
    if path.is_dir():
        from ..io import load_image_folder

        return load_image_folder(
            path, shape=image_size, channels=channels, on_error=on_error
        )
    if _is_npz(path):
        from ..datasets import load_medmnist
        from ..utils._validation import infer_spatial_dims

        X, y = load_medmnist(path, split)
        spatial = X.shape[1 : 1 + infer_spatial_dims(X)]
        if image_size is not None and spatial != (image_size,) * len(spatial):
            from ..preprocessing import Resize

            X = Resize((image_size,) * len(spatial)).fit_transform(X)
        if y.ndim != 1:
            raise CommandError(
                f"{source}: the {split!r} labels have shape {y.shape}; the command "
                "line trains single-label classifiers only (see the Python API "
                "for multi-label tasks)"
            )
        return X, y
    raise CommandError(
        f"{source}: expected a folder with one subfolder per class or a MedMNIST "
        ".npz file"
    )


def _has_split(source: str, split: str) -> bool:
    path = Path(source)
    if not (path.is_file() and _is_npz(path)):
        return False
    with np.load(path, allow_pickle=False) as data:
        return f"{split}_images" in data.files


def _images_for(
    model: Any, paths: Sequence[str], *, on_error: str = "raise"
) -> tuple[Any, list[str]]:
    """Return what ``model`` predicts from, and the paths that were read.

    What it predicts from is the paths (a Pipeline that reads them) or the
    images read; the paths read are all of them unless ``on_error="skip"``.
    """
    from ..exceptions import ImageReadError
    from ..io._batch import read_images

    if _reads_paths(model):
        if on_error == "skip":  # each file read with the model's own loader
            loader = model.steps[0][1]
            readable = []
            for path in paths:
                try:
                    loader.transform(np.asarray([path], dtype=object))
                except (ImageReadError, ValueError) as error:
                    _warn(f"skipped {path}: {str(error).splitlines()[0]}")
                else:
                    readable.append(path)
            paths = readable
        return np.asarray(paths, dtype=object), list(paths)
    estimator = _final_estimator(model)
    if _takes_volumes(model):
        return _volumes_for(estimator, paths, on_error=on_error)
    height, width, channels = estimator.image_shape_
    images, read = read_images(
        paths, shape=(height, width), channels=channels, on_error=on_error
    )
    kept = [path for path, ok in zip(paths, read, strict=True) if ok]
    if images.ndim == 3:
        images = images[..., np.newaxis]
    return images, kept


def _volumes_for(
    estimator: Any, paths: Sequence[str], *, on_error: str
) -> tuple[Any, list[str]]:
    """Read volume files and series folders for a model of volumes, one at a time."""
    from ..exceptions import ImageReadError
    from ..io._files_array import ImageFiles

    volumes, kept = [], []
    for path in paths:
        try:
            files = ImageFiles(
                [path], image_shape=estimator.image_shape_, spatial_dims=3
            )
            volumes.append(files[:])
        except (ImageReadError, ValueError) as error:
            if on_error != "skip":
                raise
            _warn(f"skipped {path}: {str(error).splitlines()[0]}")
        else:
            kept.append(path)
    if not volumes:
        return np.zeros((0, *estimator.image_shape_), dtype=np.float32), kept
    return np.concatenate(volumes), kept


def _is_series_folder(path: Path) -> bool:
    """Whether a folder holds DICOM files directly (one series, one volume)."""
    from ..io._dicom_series import list_series_files

    return bool(list_series_files(path))


def _collect_files(inputs: Sequence[str], *, volumes: bool = False) -> list[str]:
    """Expand folders into the files (volumes: and series folders) they hold."""
    from ..io import list_image_files
    from ..io._volume import spatial_dims_of_file

    files: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and volumes:
            if _is_series_folder(path):
                files.append(str(path))
                continue
            found = sorted(
                child
                for child in path.iterdir()
                if (child.is_file() and spatial_dims_of_file(child) == 3)
                or (child.is_dir() and _is_series_folder(child))
            )
            if not found:
                raise CommandError(
                    f"{item}: the folder holds no NIfTI files and no DICOM series"
                )
            files.extend(str(found_path) for found_path in found)
        elif path.is_dir():
            found = list_image_files(path)
            if not found:
                raise CommandError(f"{item}: the folder holds no image files")
            files.extend(str(found_path) for found_path in found)
        elif path.is_file():
            files.append(str(path))
        else:
            raise CommandError(_describe_missing(path))
    return files
