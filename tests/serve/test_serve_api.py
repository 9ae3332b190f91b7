"""The service's API through an in-process client: answers, errors, limits."""

from __future__ import annotations

import os
import threading

import pytest

from sk_medcnn.cli import main
from sk_medcnn.serve import create_app


@pytest.fixture(scope="module")
def client(served):
    from starlette.testclient import TestClient

    with TestClient(create_app(served[0], max_upload_bytes=2**20)) as test_client:
        yield test_client


def _post(client, route, path, name=None):
    return client.post(route, files={"file": (name or path.name, path.read_bytes())})


def test_health_model_and_page(client):
    assert client.get("/health").json() == {"status": "ok", "model": "lesions"}
    model = client.get("/model").json()
    assert model["classes"] == ["lesion", "normal"]
    assert model["image_shape"] == [16, 16, 1]
    assert model["card"].startswith("# Model card: MedicalCNNClassifier")
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="file"' in page.text


def test_predict_a_png_and_a_dicom(client, served):
    _, files = served
    answer = _post(client, "/predict", files["png"]).json()
    assert answer["label"] in ("lesion", "normal")
    assert set(answer["probabilities"]) == {"lesion", "normal"}
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
    assert answer["probability"] == max(answer["probabilities"].values())
    assert answer["in_distribution"] is True
    assert answer["model"]["name"] == "lesions"
    ct = _post(client, "/predict", files["dicom"]).json()
    assert ct["in_distribution"] is False  # a head CT in HU, for a phantom model
    assert "out-of-distribution score" in ct["ood_reason"]
    assert ct["ood_score"] > answer["ood_score"]


def test_explain_returns_a_png(client, served):
    response = _post(client, "/explain", served[1]["dicom"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    ("content", "name", "status", "needle"),
    [
        (b"not an image", "x.png", 400, "not a valid PNG file"),
        (b"\x00" * 300, "scan.dcm", 400, "scan.dcm"),
        (b"x" * (2**20 + 10), "big.png", 413, "larger than"),
    ],
    ids=["corrupt", "bad-dicom", "too-large"],
)
def test_bad_uploads_get_a_json_error_and_the_service_goes_on(
    client, served, content, name, status, needle
):
    response = client.post("/predict", files={"file": (name, content)})
    assert response.status_code == status
    assert needle in response.json()["error"]
    assert "Traceback" not in response.text
    assert _post(client, "/predict", served[1]["png"]).status_code == 200


def test_a_form_without_a_file(client):
    response = client.post("/predict", data={"other": "1"})
    assert response.status_code == 400
    assert "'file'" in response.json()["error"]
    assert client.post("/predict", content=b"raw").status_code == 400
    assert client.get("/predict").status_code == 405


def test_nothing_is_left_in_the_temporary_folders(client, served):
    before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    for _ in range(3):
        _post(client, "/predict", served[1]["dicom"])
    after = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    assert not {name for name in after - before if name.startswith("sk-medcnn-")}


def test_concurrent_requests_are_all_answered(client, served):
    results = []

    def ask():
        results.append(_post(client, "/predict", served[1]["png"]).status_code)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 8


def test_slow_requests_time_out(served, monkeypatch):
    import time

    from starlette.testclient import TestClient

    from sk_medcnn.serve import _app

    app = create_app(served[0], timeout=0.2)
    original = _app._Service.predict
    monkeypatch.setattr(
        _app._Service,
        "predict",
        lambda self, *args: (time.sleep(1.0), original(self, *args))[1],
    )
    with TestClient(app) as slow:
        response = _post(slow, "/predict", served[1]["png"])
    assert response.status_code == 503
    assert "longer than 0.2 s" in response.json()["error"]


def test_only_skmed_files_are_served(tmp_path, served):
    joblib_file = tmp_path / "model.joblib"
    joblib_file.write_bytes(b"pickle")
    with pytest.raises(ValueError, match=r"\.skmed files only"):
        create_app(joblib_file)
    with pytest.raises(ValueError, match="max_upload_bytes"):
        create_app(served[0], max_upload_bytes=0)


def test_the_command_refuses_a_pickle(tmp_path, capsys):
    (tmp_path / "m.joblib").write_bytes(b"x")
    assert main(["serve", str(tmp_path / "m.joblib")]) == 2
    assert ".skmed files only" in capsys.readouterr().err
