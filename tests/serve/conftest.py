"""A small saved classifier and image files for the service's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")
pytest.importorskip("httpx")


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """``(model_path, files)``: a 1-epoch phantom model and files to upload."""
    from skimage.io import imsave

    from sk_medcnn import MedicalCNNClassifier, save_model
    from sk_medcnn.datasets import make_lesion_phantoms

    root = tmp_path_factory.mktemp("served")
    X, y = make_lesion_phantoms(120, image_size=16, random_state=0)
    labels = np.array(["normal", "lesion"])[y]
    clf = MedicalCNNClassifier(max_epochs=2, random_state=0, device="cpu")
    clf.fit(X, labels)
    save_model(clf, root / "lesions.skmed")
    files = {"png": root / "phantom.png", "noise": root / "noise.png"}
    imsave(files["png"], X[0])
    rng = np.random.default_rng(0)
    imsave(files["noise"], rng.integers(0, 256, (16, 16)).astype(np.uint8))
    pydicom_data = pytest.importorskip("pydicom.data")
    files["dicom"] = Path(pydicom_data.get_testdata_file("CT_small.dcm"))
    return root / "lesions.skmed", files
