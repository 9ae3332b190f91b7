from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from sk_medcnn.datasets import _medmnist, fetch_medmnist, load_medmnist

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PNEUMONIAMNIST = SHARED_DATA / "pneumoniamnist_28_trainval.npz"
VESSELMNIST3D = SHARED_DATA / "vesselmnist3d_28_trainval.npz"


def write_npz(
    path, *, splits=("train", "val", "test"), channels=None, n_labels=1, volumes=False
):
    """Write a tiny MedMNIST-layout file; return the arrays written."""
    rng = np.random.RandomState(0)
    arrays = {}
    for offset, split in enumerate(splits):
        n = 5 + offset
        shape = (n, 8, 8) if channels is None else (n, 8, 8, channels)
        if volumes:
            shape = (n, 8, 8, 8)
        arrays[f"{split}_images"] = rng.randint(0, 256, shape).astype(np.uint8)
        arrays[f"{split}_labels"] = rng.randint(0, 2, (n, n_labels)).astype(np.uint8)
    np.savez(path, **arrays)
    return arrays


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.npz"
    return path, write_npz(path)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_load_from_path(tiny_file, split):
    path, arrays = tiny_file
    X, y = load_medmnist(path, split)
    np.testing.assert_array_equal(X, arrays[f"{split}_images"])
    assert X.dtype == np.uint8
    assert y.dtype == np.int64
    assert y.shape == (X.shape[0],)
    np.testing.assert_array_equal(y, arrays[f"{split}_labels"].ravel())


def test_load_accepts_str_path(tiny_file):
    path, arrays = tiny_file
    X, _ = load_medmnist(str(path), "val")
    assert X.shape == arrays["val_images"].shape


def test_rgb_images_keep_channel_axis(tmp_path):
    path = tmp_path / "rgb.npz"
    write_npz(path, channels=3)
    X, y = load_medmnist(path)
    assert X.shape == (5, 8, 8, 3)
    assert X.dtype == np.uint8
    assert y.shape == (5,)


def test_volumes_are_read_depth_first_as_stored(tmp_path):
    path = tmp_path / "volumes.npz"
    arrays = write_npz(path, volumes=True)
    X, y = load_medmnist(path, "val")
    assert X.shape == (6, 8, 8, 8)
    assert X.dtype == np.uint8
    np.testing.assert_array_equal(X, arrays["val_images"])
    assert y.shape == (6,)


def test_multi_label_stays_two_dimensional(tmp_path):
    path = tmp_path / "chest.npz"
    arrays = write_npz(path, n_labels=14)
    _, y = load_medmnist(path, "test")
    assert y.shape == (7, 14)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, arrays["test_labels"])


def test_missing_file_names_path(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(FileNotFoundError, match=r"absent\.npz"):
        load_medmnist(path)


def test_missing_split_lists_available(tmp_path):
    path = tmp_path / "trainval.npz"
    write_npz(path, splits=("train", "val"))
    with pytest.raises(
        ValueError, match=r"'test'.*available splits: \['train', 'val'\]"
    ):
        load_medmnist(path, "test")


@pytest.mark.parametrize("split", ["trainval", "Train", "", None])
def test_invalid_split(tiny_file, split):
    path, _ = tiny_file
    with pytest.raises(ValueError, match="split must be one of"):
        load_medmnist(path, split)


def test_file_without_medmnist_keys(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"not in the MedMNIST layout.*'images'"):
        load_medmnist(path)


def test_file_that_is_not_npz(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"not an archive at all")
    with pytest.raises(ValueError, match=r"garbage\.npz"):
        load_medmnist(path)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        load_medmnist(single)


def test_float_labels_are_refused(tmp_path):
    path = tmp_path / "float.npz"
    np.savez(
        path,
        train_images=np.zeros((2, 8, 8), np.uint8),
        train_labels=np.array([[0.5], [1.0]]),
    )
    with pytest.raises(ValueError, match="dtype float64"):
        load_medmnist(path)


def test_name_not_cached_says_fetch(tmp_path):
    with pytest.raises(FileNotFoundError, match="fetch_medmnist"):
        load_medmnist("pneumoniamnist", data_home=tmp_path)


@pytest.mark.parametrize(
    ("size", "file_name"),
    [(28, "pneumoniamnist.npz"), (64, "pneumoniamnist_64.npz")],
)
def test_name_reads_cache(tmp_path, size, file_name):
    (tmp_path / "medmnist").mkdir()
    arrays = write_npz(tmp_path / "medmnist" / file_name)
    X, _ = load_medmnist("PneumoniaMNIST", "val", size=size, data_home=tmp_path)
    np.testing.assert_array_equal(X, arrays["val_images"])


def test_data_home_from_environment(tmp_path, monkeypatch):
    (tmp_path / "medmnist").mkdir()
    write_npz(tmp_path / "medmnist" / "breastmnist.npz")
    monkeypatch.setenv("SK_MEDCNN_DATA", str(tmp_path))
    X, _ = load_medmnist("breastmnist")
    assert X.shape == (5, 8, 8)


def test_load_bad_size_for_name(tmp_path):
    with pytest.raises(ValueError, match=r"size must be one of \[28, 64, 128, 224\]"):
        load_medmnist("pneumoniamnist", size=32, data_home=tmp_path)


def test_unknown_name_without_suffix_hints_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="A data set name must be one of"):
        load_medmnist(tmp_path / "pneumonia")


def test_download_table_is_complete():
    names = {
        "pathmnist",
        "chestmnist",
        "dermamnist",
        "octmnist",
        "pneumoniamnist",
        "retinamnist",
        "breastmnist",
        "bloodmnist",
        "tissuemnist",
        "organamnist",
        "organcmnist",
        "organsmnist",
    }
    assert set(_medmnist._MD5) == names
    for hashes in _medmnist._MD5.values():
        assert set(hashes) == {28, 64, 128, 224}
        for md5 in hashes.values():
            assert md5 is not None
            assert len(md5) == 32
            int(md5, 16)
    volumes = {
        "organmnist3d",
        "nodulemnist3d",
        "adrenalmnist3d",
        "fracturemnist3d",
        "vesselmnist3d",
        "synapsemnist3d",
    }
    assert set(_medmnist._MD5_3D) == volumes
    for hashes in _medmnist._MD5_3D.values():
        assert set(hashes) == {28, 64}
        for md5 in hashes.values():
            assert len(md5) == 32
            int(md5, 16)
    every = [
        md5
        for table in (_medmnist._MD5, _medmnist._MD5_3D)
        for md5 in (md5 for hashes in table.values() for md5 in hashes.values())
    ]
    assert len(set(every)) == len(every)  # no hash copied twice


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "mnist"}, r"name must be one of .*'pneumoniamnist'"),
        ({"name": "organmnist3d", "size": 128}, r"one of \[28, 64\] for the 3D"),
        ({"name": "organmnist", "size": 28}, r"3D data sets \['adrenalmnist3d'"),
        ({"name": "pneumoniamnist", "size": 32}, r"size must be one of \[28, 64"),
        ({"name": "pneumoniamnist", "size": 28.0}, "size must be one of"),
    ],
)
def test_fetch_rejects_unknown(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fetch_medmnist(data_home=tmp_path, **kwargs)


@pytest.mark.parametrize(
    ("size", "file_name", "md5"),
    [
        (28, "pneumoniamnist.npz", "28209eda62fecd6e6a2d98b1501bb15f"),
        (224, "pneumoniamnist_224.npz", "d6a3c71de1b945ea11211b03746c1fe1"),
        (28, "vesselmnist3d.npz", "b41fd4f7e7e2feedddb201585ecafa1b"),
        (64, "synapsemnist3d_64.npz", "43bd14ebf3af9d3dd072446fedc14d5e"),
    ],
)
def test_fetch_defaults_use_official_file(tmp_path, monkeypatch, size, file_name, md5):
    # pooch.retrieve is replaced: nothing here may reach the network.
    pooch = pytest.importorskip("pooch")
    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        calls.append((url, known_hash, fname, Path(path), progressbar))
        return str(Path(path) / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    name = file_name.split(".")[0].split("_")[0]
    path = fetch_medmnist(name, size=size, data_home=tmp_path)
    url = f"https://zenodo.org/records/10519652/files/{file_name}?download=1"
    assert calls == [(url, f"md5:{md5}", file_name, tmp_path / "medmnist", False)]
    assert path == tmp_path / "medmnist" / file_name


@pytest.fixture
def npz_server(tmp_path_factory, monkeypatch):
    """Serve a tiny MedMNIST file over HTTP on 127.0.0.1; count the requests."""
    yield from serve_npz(
        tmp_path_factory, monkeypatch, "pneumoniamnist.npz", volumes=False
    )


@pytest.fixture
def volume_server(tmp_path_factory, monkeypatch):
    """Serve a tiny 3D MedMNIST file (8x8x8 volumes) over HTTP on 127.0.0.1."""
    yield from serve_npz(
        tmp_path_factory, monkeypatch, "vesselmnist3d_64.npz", volumes=True
    )


def serve_npz(tmp_path_factory, monkeypatch, file_name, *, volumes):
    folder = tmp_path_factory.mktemp("served")
    arrays = write_npz(folder / file_name, splits=("train", "val"), volumes=volumes)
    content = (folder / file_name).read_bytes()
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    # A proxy set in the environment must not capture loopback requests.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield {
        "url": f"http://127.0.0.1:{server.server_address[1]}/{file_name}",
        "md5": hashlib.md5(content).hexdigest(),
        "arrays": arrays,
        "requests": requests,
    }
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_fetch_from_local_server_then_cache(npz_server, tmp_path):
    url, md5 = npz_server["url"], npz_server["md5"]
    path = fetch_medmnist(
        "pneumoniamnist", data_home=tmp_path, url=url, known_hash=f"md5:{md5}"
    )
    assert path == tmp_path / "medmnist" / "pneumoniamnist.npz"
    assert len(npz_server["requests"]) == 1
    X, y = load_medmnist(path, "val")
    np.testing.assert_array_equal(X, npz_server["arrays"]["val_images"])
    assert y.shape == (6,)
    X_by_name, _ = load_medmnist("pneumoniamnist", "val", data_home=tmp_path)
    np.testing.assert_array_equal(X_by_name, X)

    again = fetch_medmnist(
        "pneumoniamnist", data_home=tmp_path, url=url, known_hash=f"md5:{md5}"
    )
    assert again == path
    assert len(npz_server["requests"]) == 1  # served from the cache


def test_fetch_a_3d_data_set_from_local_server(volume_server, tmp_path):
    url, md5 = volume_server["url"], volume_server["md5"]
    path = fetch_medmnist(
        "VesselMNIST3D", size=64, data_home=tmp_path, url=url, known_hash=f"md5:{md5}"
    )
    assert path == tmp_path / "medmnist" / "vesselmnist3d_64.npz"
    X, y = load_medmnist("vesselmnist3d", "train", size=64, data_home=tmp_path)
    assert y.shape == (5,)
    np.testing.assert_array_equal(X, volume_server["arrays"]["train_images"])
    assert X.shape == (5, 8, 8, 8)
    with pytest.raises(FileNotFoundError, match=r"fetch_medmnist\('vesselmnist3d'"):
        load_medmnist("vesselmnist3d", size=28, data_home=tmp_path)
    with pytest.raises(ValueError, match=r"size must be one of \[28, 64\]"):
        load_medmnist("vesselmnist3d", size=224, data_home=tmp_path)


def test_fetch_wrong_hash_leaves_nothing(npz_server, tmp_path):
    with pytest.raises(ValueError, match=r"(?i)hash"):
        fetch_medmnist(
            "pneumoniamnist",
            data_home=tmp_path,
            url=npz_server["url"],
            known_hash="md5:" + "0" * 32,
        )
    assert len(npz_server["requests"]) == 1
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


@pytest.mark.skipif(
    not PNEUMONIAMNIST.is_file(),
    reason=f"real PneumoniaMNIST file not available at {PNEUMONIAMNIST}",
)
def test_real_pneumoniamnist():
    X_train, y_train = load_medmnist(PNEUMONIAMNIST, "train")
    X_val, y_val = load_medmnist(PNEUMONIAMNIST, "val")
    assert X_train.shape == (4708, 28, 28)
    assert X_val.shape == (524, 28, 28)
    assert X_train.dtype == X_val.dtype == np.uint8
    assert y_train.shape == (4708,)
    assert y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_train), [1214, 3494])
    np.testing.assert_array_equal(np.bincount(y_val), [135, 389])
    with pytest.raises(ValueError, match=r"available splits: \['train', 'val'\]"):
        load_medmnist(PNEUMONIAMNIST, "test")


@pytest.mark.skipif(
    not VESSELMNIST3D.is_file(),
    reason=f"real VesselMNIST3D file not available at {VESSELMNIST3D}",
)
def test_real_vesselmnist3d():
    X_train, y_train = load_medmnist(VESSELMNIST3D, "train")
    X_val, y_val = load_medmnist(VESSELMNIST3D, "val")
    assert X_train.shape == (1335, 28, 28, 28)
    assert X_val.shape == (191, 28, 28, 28)
    assert X_train.dtype == X_val.dtype == np.uint8
    assert set(np.unique(X_val).tolist()) == {0, 255}  # shape masks
    np.testing.assert_array_equal(np.bincount(y_train), [1185, 150])
    np.testing.assert_array_equal(np.bincount(y_val), [169, 22])
    with pytest.raises(ValueError, match=r"available splits: \['train', 'val'\]"):
        load_medmnist(VESSELMNIST3D, "test")


def test_object_arrays_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "objects.npz"
    images = np.empty(2, dtype=object)
    images[:] = [np.zeros((8, 8)), np.zeros((8, 8))]
    np.savez(path, train_images=images, train_labels=np.array([0, 1]))
    with pytest.raises(
        ValueError, match=r"train_images from .*objects\.npz'.*Python objects"
    ):
        load_medmnist(path)


def test_a_missing_archive_error_names_the_file_once(tmp_path, monkeypatch):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(np, "load", denied)
    with pytest.raises(ValueError, match=r"MedMNIST \.npz archive") as caught:
        load_medmnist(path)
    message = str(caught.value)
    assert message.count("broken.npz") == 1
    assert message.endswith("archive: Permission denied")
