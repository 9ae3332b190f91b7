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
