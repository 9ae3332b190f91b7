"""Read and download the 2D and 3D data sets of the MedMNIST collection.

The download table (file names and MD5 checksums on Zenodo record 10519652) was
transcribed from ``medmnist/info.py`` of the MedMNIST project
(https://github.com/MedMNIST/MedMNIST, ``__version__ = "3.0.2"``, commit
805b742), the version that serves the 28, 64, 128 and 224 pixel 2D files and
the 28 and 64 voxel 3D files.
"""

from __future__ import annotations

import logging
import os
import zipfile
from numbers import Integral
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..io._common import one_line

__all__ = ["fetch_medmnist", "load_medmnist"]

logger = logging.getLogger(__name__)

_ZENODO_FILES = "https://zenodo.org/records/10519652/files"
_SPLITS = ("train", "val", "test")
_SIZES = (28, 64, 128, 224)
_SIZES_3D = (28, 64)
_DATA_HOME_ENV = "SK_MEDCNN_DATA"
_SUBDIRECTORY = "medmnist"

# MD5 checksums of the official files, by data set name and image size, as
# published in MedMNIST's medmnist/info.py (v3.0.2; keys "MD5", "MD5_64",
# "MD5_128", "MD5_224"). Every entry was found there; none is None. Note that
# the 28 px organamnist, organcmnist and organsmnist files of record 10519652
# differ from those of the older record 6496656 (MedMNIST 2.1): the hashes
# below are those of the newer record, which is the one downloaded.
_MD5: dict[str, dict[int, str | None]] = {
    "pathmnist": {
        28: "a8b06965200029087d5bd730944a56c1",
        64: "55aa9c1e0525abe5a6b9d8343a507616",
        128: "ac42d08fb904d92c244187169d1fd1d9",
        224: "2c51a510bcdc9cf8ddb2af93af1eadec",
    },
    "chestmnist": {
        28: "02c8a6516a18b556561a56cbdd36c4a8",
        64: "9de6cd0b934ebb5b7426cfba5efbae16",
        128: "db107e5590b27930b62dbaf558aebee3",
        224: "45bd33e6f06c3e8cdb481c74a89152aa",
    },
    "dermamnist": {
        28: "0744692d530f8e62ec473284d019b0c7",
        64: "b70a2f5635c6199aeaa28c31d7202e1f",
        128: "2defd784463fa5243564e855ed717de1",
        224: "8974907d8e169bef5f5b96bc506ae45d",
    },
    "octmnist": {
        28: "c68d92d5b585d8d81f7112f81e2d0842",
        64: "e229e9440236b774d9f0dfef9d07bdaf",
        128: "0a97e76651ace45c5d943ee3f65b63ae",
        224: "abc493b6d529d5de7569faaef2773ba3",
    },
    "pneumoniamnist": {
        28: "28209eda62fecd6e6a2d98b1501bb15f",
        64: "8f4eceb4ccffa70c672198ea285246c6",
        128: "05b46931834c231683c68f40c47b2971",
        224: "d6a3c71de1b945ea11211b03746c1fe1",
    },
    "retinamnist": {
        28: "bd4c0672f1bba3e3a89f0e4e876791e4",
        64: "afda852cc34dcda56f86ad2b2457dbcc",
        128: "e48e916a24454daf90583d4e6efb1a18",
        224: "eae7e3b6f3fcbda4ae613ebdcbe35348",
    },
    "breastmnist": {
        28: "750601b1f35ba3300ea97c75c52ff8f6",
        64: "742edef2a1fd1524b2efff4bd7ba9364",
        128: "363e4b3f8d712e9b5de15470a2aaadf1",
        224: "b56378a6eefa9fed602bb16d192d4c8b",
    },
    "bloodmnist": {
        28: "7053d0359d879ad8a5505303e11de1dc",
        64: "2b94928a2ae4916078ca51e05b6b800b",
        128: "adace1e0ed228fccda1f39692059dd4c",
        224: "b718ff6835fcbdb22ba9eacccd7b2601",
    },
    "tissuemnist": {
        28: "ebe78ee8b05294063de985d821c1c34b",
        64: "123ece2eba09d0aa5d698fda57103344",
        128: "61b955355d7425a89687b06cca3ce0c2",
        224: "b077128c4a949f0a4eb01517f9037b9c",
    },
    "organamnist": {
        28: "68e3f8846a6bd62f0c9bf841c0d9eacc",
        64: "2dcccc29b88e6da5a01161ef20cda288",
        128: "eeae80d0a227a8d099027e1b3cfd3b60",
        224: "50747347e05c87dd3aaf92c49f9f3170",
    },
    "organcmnist": {
        28: "b9ceb9546e10131b32923c5bbeaea2b1",
        64: "3ce34a8724ea6f548e6db4744d03b6a9",
        128: "773c1f009daa3fe5d9a2a201b2a7ed94",
        224: "050f5e875dc056f6768abf94ec9995d1",
    },
    "organsmnist": {
        28: "9ab87b696fb54e2a387ebe992d6ed5f1",
        64: "53a6d115339d874c25e309a994ff46d3",
        128: "ded0c5fa01a95dc4978b956f613e9b8e",
        224: "b354719e553fbbb2513d5533f52a4cb1",
    },
}


# The 3D data sets (volumes of 28 or 64 voxels a side), from the same
# medmnist/info.py (keys "MD5" and "MD5_64"; MedMNIST+ has no 128 or 224 voxel
# volumes). Their arrays are (n, size, size, size) uint8, one channel.
_MD5_3D: dict[str, dict[int, str | None]] = {
    "organmnist3d": {
        28: "a0c5a1ff56af4f155c46d46fbb45a2fe",
        64: "58a2205adf14a9d0a189cb06dc78bf10",
    },
    "nodulemnist3d": {
        28: "8755a7e9e05a4d9ce80a24c3e7a256f3",
        64: "c47c5b7d457bf6332200d2ea6d64ecd8",
    },
    "adrenalmnist3d": {
        28: "bbd3c5a5576322bc4cdfea780653b1ce",
        64: "17721accfe9fb005146a47d33bc54b2f",
    },
    "fracturemnist3d": {
        28: "6aa7b0143a6b42da40027a9dda61302f",
        64: "f01d7e6316aedf4210da0da5b7437b42",
    },
    "vesselmnist3d": {
        28: "b41fd4f7e7e2feedddb201585ecafa1b",
        64: "6bb274a8846e1097066dcd64e2c4520f",
    },
    "synapsemnist3d": {
        28: "1235b78a3cd6280881dd7850a78eadb6",
        64: "43bd14ebf3af9d3dd072446fedc14d5e",
    },
}

_ALL_MD5 = {**_MD5, **_MD5_3D}


def _check_name(name: object) -> str:
    """Return the lower-cased MedMNIST data set name, or raise ValueError."""
    if not isinstance(name, str) or name.lower() not in _ALL_MD5:
        raise ValueError(
            f"name must be one of the MedMNIST 2D data sets {sorted(_MD5)} or 3D "
            f"data sets {sorted(_MD5_3D)}; got {name!r}."
        )
    return name.lower()


def _check_size(size: object, name: str | None = None) -> int:
    """Return ``size`` as an int if it is an available size for data set ``name``."""
    sizes = _SIZES_3D if name in _MD5_3D else _SIZES
    if (
        isinstance(size, bool)
        or not isinstance(size, Integral)
        or int(size) not in sizes
    ):
        which = f" for the 3D data set {name!r}" if name in _MD5_3D else ""
        raise ValueError(f"size must be one of {list(sizes)}{which}; got {size!r}.")
    return int(size)


def _file_name(name: str, size: int) -> str:
    """Name of the official file: ``{name}.npz`` at 28 px, else ``{name}_{size}``."""
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def _data_home(data_home: str | os.PathLike[str] | None) -> Path:
    """Resolve the cache folder: argument, then ``$SK_MEDCNN_DATA``, then pooch's."""
    if data_home is None:
        data_home = os.environ.get(_DATA_HOME_ENV) or None
    if data_home is None:
        import pooch  # imported here to keep ``import sk_medcnn`` light

        data_home = pooch.os_cache("sk_medcnn")
    return Path(data_home).expanduser()


def _looks_like_name(path_or_name: object) -> bool:
    """Whether ``path_or_name`` is a bare MedMNIST data set name, not a path."""
    return (
        isinstance(path_or_name, str)
        and os.sep not in path_or_name
        and "/" not in path_or_name
        and path_or_name.lower() in _ALL_MD5
    )


def load_medmnist(
    path_or_name: str | os.PathLike[str],
    split: str = "train",
    *,
    size: int = 28,
    data_home: str | os.PathLike[str] | None = None,
) -> tuple[NDArray[np.generic], NDArray[np.int64]]:
    """Load one split of a MedMNIST ``.npz`` file as image and label arrays.

    Parameters
    ----------
    path_or_name : str or path-like
        Path to a file in the MedMNIST layout (keys ``{split}_images`` and
        ``{split}_labels``), or the name of a MedMNIST 2D or 3D data set
        (``"pneumoniamnist"``, ``"chestmnist"``, ``"vesselmnist3d"``, ...;
        case-insensitive) already downloaded into the cache by
        :func:`fetch_medmnist`.
    split : {"train", "val", "test"}, default="train"
        Which split to read.
    size : {28, 64, 128, 224}, default=28
        Image size of the cached file to read when ``path_or_name`` is a name
        (28 or 64 for the 3D data sets); ignored when it is a path.
    data_home : str or path-like, default=None
        Cache folder holding the downloads (in its ``medmnist`` subfolder).
        By default the environment variable ``SK_MEDCNN_DATA``, or else
        ``pooch.os_cache("sk_medcnn")``.

    Returns
    -------
    X : ndarray of shape (n_samples, height, width), \
(n_samples, height, width, 3) or (n_samples, depth, height, width)
        The images as stored in the file (uint8 in the official files);
        grayscale images have no channel axis, RGB ones a trailing one. The
        3D data sets hold single-channel volumes, ``(n_samples, 28, 28, 28)``
        or ``(n_samples, 64, 64, 64)``, depth first as the estimators take
        them (``spatial_dims=3``).
    y : ndarray of shape (n_samples,) or (n_samples, n_labels), dtype int64
        The labels: 1-D for single-label tasks (the file's ``(n, 1)`` column is
        flattened), 2-D for multi-label tasks such as ChestMNIST.

    Raises
    ------
    FileNotFoundError
        If the file does not exist; for a data set name, if it has not been
        downloaded (the message says to call :func:`fetch_medmnist`).
    ValueError
        If ``split`` or ``size`` is not a valid choice, if the file is not an
        ``.npz`` archive, lacks the requested split (the message lists the
        splits it has), or holds arrays that do not fit the MedMNIST layout.

    See Also
    --------
    fetch_medmnist : Download an official MedMNIST file into the cache.

    Notes
    -----
    MedMNIST v2 [1]_ is a collection of standardised biomedical images and
    volumes, with official train, validation and test splits, distributed
    under CC BY 4.0 (check each data set's source licence as well).

    References
    ----------
    .. [1] J. Yang, R. Shi, D. Wei, Z. Liu, L. Zhao, B. Ke, H. Pfister and
       B. Ni, "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D
       biomedical image classification", Scientific Data 10:41, 2023.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from sk_medcnn.datasets import load_medmnist
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "tiny.npz"
    >>> np.savez(
    ...     path,
    ...     train_images=np.zeros((4, 28, 28), dtype=np.uint8),
    ...     train_labels=np.array([[0], [1], [1], [0]], dtype=np.uint8),
    ... )
    >>> X, y = load_medmnist(path, "train")
    >>> X.shape, X.dtype
    ((4, 28, 28), dtype('uint8'))
    >>> y
    array([0, 1, 1, 0])
    >>> folder.cleanup()
    """
    if not isinstance(split, str) or split not in _SPLITS:
        raise ValueError(f"split must be one of {list(_SPLITS)}; got {split!r}.")
    if _looks_like_name(path_or_name):
        name = _check_name(path_or_name)
        size = _check_size(size, name)
        path = _data_home(data_home) / _SUBDIRECTORY / _file_name(name, size)
        if not path.is_file():
            raise FileNotFoundError(
                f"MedMNIST data set {name!r} at size {size} is not in the cache "
                f"(no file {str(path)!r}); download it first with "
                f"sk_medcnn.datasets.fetch_medmnist({name!r}, size={size}), "
                "passing the same data_home."
            )
    else:
        path = Path(path_or_name)
        if not path.is_file():
            hint = ""
            if path.suffix == "":
                hint = (
                    f" A data set name must be one of {sorted(_ALL_MD5)}, "
                    "downloaded with fetch_medmnist."
                )
            raise FileNotFoundError(f"No MedMNIST file at {str(path)!r}.{hint}")
    return _read_split(path, split)


def _read_split(
    path: Path, split: str
) -> tuple[NDArray[np.generic], NDArray[np.int64]]:
    """Read ``{split}_images`` and ``{split}_labels`` from the archive ``path``."""
    logger.debug("Reading split %r of %s", split, path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"Could not read {str(path)!r} as a MedMNIST .npz archive: "
            f"{one_line(error, path)}"
        ) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{str(path)!r} holds a single array, not a MedMNIST .npz archive "
            "with {split}_images and {split}_labels keys."
        )
    with archive:
        keys = set(archive.files)
        available = [
            name
            for name in _SPLITS
            if f"{name}_images" in keys and f"{name}_labels" in keys
        ]
        if not available:
            raise ValueError(
                f"{str(path)!r} is not in the MedMNIST layout: it has none of the "
                f"keys {{split}}_images / {{split}}_labels for splits "
                f"{list(_SPLITS)}; found keys {sorted(keys)}."
            )
        if split not in available:
            raise ValueError(
                f"split {split!r} is not in {str(path)!r}; available splits: "
                f"{available}."
            )
        arrays = []
        for key in (f"{split}_images", f"{split}_labels"):
            try:
                arrays.append(archive[key])
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
                # object arrays (pickles), truncated or corrupt members
                reason = str(error)
                if "allow_pickle" in reason:
                    reason = (
                        "it holds Python objects (an object array, stored as a "
                        "pickle), which are not loaded; MedMNIST arrays are numbers"
                    )
                raise ValueError(
                    f"Could not read {key} from {str(path)!r}: {reason}."
                ) from error
        images, labels = arrays
    if images.dtype.kind not in "biuf":
        raise ValueError(
            f"{split}_images in {str(path)!r} has dtype {images.dtype}; expected "
            "numbers (uint8 pixel values)."
        )

    if images.ndim not in (3, 4, 5):
        raise ValueError(
            f"{split}_images in {str(path)!r} has shape {images.shape}; expected "
            "(n_samples, height, width[, channels]) or (n_samples, depth, height, "
            "width[, channels])."
        )
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.ravel()
    if labels.ndim not in (1, 2) or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{split}_labels in {str(path)!r} has shape {labels.shape}, which does "
            f"not match {images.shape[0]} images; expected (n_samples,), "
            "(n_samples, 1) or (n_samples, n_labels)."
        )
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise ValueError(
            f"{split}_labels in {str(path)!r} has dtype {labels.dtype}; expected "
            "integer class labels."
        )
    return images, labels.astype(np.int64, copy=False)


def fetch_medmnist(
    name: str,
    *,
    size: int = 28,
    data_home: str | os.PathLike[str] | None = None,
    url: str | None = None,
    known_hash: str | None = None,
    progress: bool = False,
) -> Path:
    """Download an official MedMNIST 2D or 3D file into the cache, checking its MD5.

    A file already in the cache with the right checksum is not downloaded
    again; one with a wrong checksum is replaced.

    Parameters
    ----------
    name : str
        A MedMNIST 2D data set (case-insensitive): ``"bloodmnist"``,
        ``"breastmnist"``, ``"chestmnist"``, ``"dermamnist"``, ``"octmnist"``,
        ``"organamnist"``, ``"organcmnist"``, ``"organsmnist"``,
        ``"pathmnist"``, ``"pneumoniamnist"``, ``"retinamnist"`` or
        ``"tissuemnist"``; or a 3D data set: ``"adrenalmnist3d"``,
        ``"fracturemnist3d"``, ``"nodulemnist3d"``, ``"organmnist3d"``,
        ``"synapsemnist3d"`` or ``"vesselmnist3d"``.
    size : {28, 64, 128, 224}, default=28
        Image size. The 28 px files are MedMNIST v2's; the larger ones are
        those of MedMNIST+ on the same Zenodo record. The 3D data sets come
        at 28 and 64 voxels a side.
    data_home : str or path-like, default=None
        Cache folder; the file is stored in its ``medmnist`` subfolder. By
        default the environment variable ``SK_MEDCNN_DATA``, or else
        ``pooch.os_cache("sk_medcnn")``.
    url : str, default=None
        Download from this address instead of Zenodo (a mirror, or a local
        server in tests). The file is still stored under its official name.
    known_hash : str, default=None
        Checksum as pooch spells it (``"md5:..."``, ``"sha256:..."``). By
        default the official MD5 of the requested file.
    progress : bool, default=False
        Show a download progress bar (needs tqdm).

    Returns
    -------
    path : pathlib.Path
        Path of the verified file in the cache; pass it, or ``name``, to
        :func:`load_medmnist`.

    Raises
    ------
    ValueError
        If ``name`` or ``size`` is unknown (the message lists the valid ones),
        or if the downloaded file does not match the checksum (it is then
        deleted).

    See Also
    --------
    load_medmnist : Read one split of the downloaded file.

    Notes
    -----
    Files come from Zenodo record 10519652, MedMNIST v2 [1]_ and MedMNIST+;
    their MD5 checksums are those published by the MedMNIST project in its
    ``medmnist/info.py``. The data sets are under CC BY 4.0.

    References
    ----------
    .. [1] J. Yang, R. Shi, D. Wei, Z. Liu, L. Zhao, B. Ke, H. Pfister and
       B. Ni, "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D
       biomedical image classification", Scientific Data 10:41, 2023.

    Examples
    --------
    >>> from sk_medcnn.datasets import fetch_medmnist, load_medmnist
    >>> path = fetch_medmnist("pneumoniamnist")  # doctest: +SKIP
    >>> X, y = load_medmnist("pneumoniamnist", split="val")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (524, 28, 28)
    >>> path = fetch_medmnist("vesselmnist3d", size=64)  # doctest: +SKIP
    >>> X, y = load_medmnist(path, split="val")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (191, 64, 64, 64)
    """
    name = _check_name(name)
    size = _check_size(size, name)
    file_name = _file_name(name, size)
    if url is None:
        url = f"{_ZENODO_FILES}/{file_name}?download=1"
    if known_hash is None:
        md5 = _ALL_MD5[name][size]
        known_hash = None if md5 is None else f"md5:{md5}"
    folder = _data_home(data_home) / _SUBDIRECTORY

    import pooch  # imported here to keep ``import sk_medcnn`` light

    logger.info("Fetching %s from %s into %s", file_name, url, folder)
    path = pooch.retrieve(
        url,
        known_hash=known_hash,
        fname=file_name,
        path=folder,
        progressbar=progress,
    )
    return Path(path)
