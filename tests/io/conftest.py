"""Real test files shipped with pydicom and nibabel, found without downloading."""

from __future__ import annotations

from pathlib import Path

import pytest


def pydicom_file(name: str) -> Path:
    """Path of a file of pydicom's installed test data; skip the test if absent.

    ``download=False``: only files already on this machine (the package's own
    data folder, or an installed pydicom-data) are used, never the network.
    """
    pydicom_data = pytest.importorskip("pydicom.data")
    path = pydicom_data.get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not in pydicom's installed test data")
    return Path(path)


def nibabel_file(name: str) -> Path:
    """Path of a file under nibabel/tests/data; skip the test if absent."""
    nibabel = pytest.importorskip("nibabel")
    path = Path(nibabel.__file__).parent / "tests" / "data" / name
    if not path.is_file():
        pytest.skip(f"{name} is not in nibabel's installed test data")
    return path


@pytest.fixture
def dicom_path():
    return pydicom_file


@pytest.fixture
def nifti_path():
    return nibabel_file


def _write_series(
    folder,
    source,
    positions,
    *,
    names=None,
    instance_numbers=None,
    orientation=(1, 0, 0, 0, 1, 0),
    series_uid=None,
):
    """Write one CT slice per position, pixel [0, 0] holding the slice's number.

    Returns the stored pixel data of the source file.
    """
    pydicom = pytest.importorskip("pydicom")
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    names = names or [f"IM{k:04d}.dcm" for k in range(len(positions))]
    instance_numbers = instance_numbers or list(range(1, len(positions) + 1))
    stored = pydicom.dcmread(source).pixel_array
    for k, position in enumerate(positions):
        dataset = pydicom.dcmread(source)
        dataset.ImagePositionPatient = [float(v) for v in position]
        dataset.ImageOrientationPatient = [float(v) for v in orientation]
        dataset.InstanceNumber = instance_numbers[k]
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.SeriesInstanceUID = series_uid
        pixels = stored.copy()
        pixels[0, 0] = k  # which file this slice came from
        dataset.PixelData = pixels.tobytes()
        dataset.save_as(folder / names[k])
    return stored


@pytest.fixture
def write_series():
    """Write a synthetic DICOM series from a real file (see _write_series)."""
    return _write_series
