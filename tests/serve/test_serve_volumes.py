"""The service with a volume model: NIfTI uploads, 3-D Grad-CAM, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from sk_medcnn.serve import create_app


@pytest.fixture(scope="module")
def volume_service(tmp_path_factory):
    """``(client, files)``: a 1-epoch 3-D phantom model and NIfTI files."""
    nibabel = pytest.importorskip("nibabel")
    from starlette.testclient import TestClient

    from sk_medcnn import MedicalCNNClassifier, save_model
    from sk_medcnn.datasets import make_lesion_phantoms

    root = tmp_path_factory.mktemp("served_volumes")
    X, y = make_lesion_phantoms(
        24, image_size=12, spatial_dims=3, lesion_radius=(2, 3), random_state=0
    )
    labels = np.array(["normal", "lesion"])[y]
    clf = MedicalCNNClassifier(max_epochs=1, batch_size=8, random_state=0, device="cpu")
    clf.fit(X, labels)
    save_model(clf, root / "volumes.skmed")
    files = {}
    # NIfTI stores (x, y, z); read_volume returns (z, y, x) depth first
    files["nifti"] = root / "scan.nii.gz"
    nibabel.save(
        nibabel.Nifti1Image(X[0].transpose(2, 1, 0), np.eye(4)), files["nifti"]
    )
    files["big"] = root / "big.nii"  # another size: resized to the model's
    big = np.kron(X[1], np.ones((2, 2, 2), dtype=X.dtype))
    nibabel.save(nibabel.Nifti1Image(big.transpose(2, 1, 0), np.eye(4)), files["big"])
    from skimage.io import imsave

    files["png"] = root / "slice.png"
    imsave(files["png"], X[0][6])
    with TestClient(create_app(root / "volumes.skmed")) as client:
        yield client, files, clf, X


def _post(client, route, path):
    return client.post(route, files={"file": (path.name, path.read_bytes())})


def test_model_describes_volumes(volume_service):
    client, *_ = volume_service
    assert client.get("/model").json()["image_shape"] == [12, 12, 12, 1]


def test_predict_a_nifti_volume_as_the_model_does(volume_service):
    client, files, clf, X = volume_service
    answer = _post(client, "/predict", files["nifti"]).json()
    expected = clf.predict_proba(X[:1])[0]
    served = [answer["probabilities"][label] for label in clf.classes_]
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)
    resized = _post(client, "/predict", files["big"])
    assert resized.status_code == 200
    assert sum(resized.json()["probabilities"].values()) == pytest.approx(1.0)


def test_explain_draws_three_slices(volume_service):
    client, files, *_ = volume_service
    response = _post(client, "/explain", files["nifti"])
    assert response.status_code == 200
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    from io import BytesIO

    from skimage.io import imread

    picture = imread(BytesIO(response.content))
    assert picture.shape[1] > 2 * picture.shape[0]  # three panels side by side


def test_a_2d_file_for_a_volume_model_is_a_clear_400(volume_service):
    client, files, *_ = volume_service
    response = _post(client, "/predict", files["png"])
    assert response.status_code == 400
    message = response.json()["error"]
    assert "takes volumes of (12, 12, 12) voxels" in message
    assert "slice.png" in message
    assert client.get("/health").json()["status"] == "ok"
