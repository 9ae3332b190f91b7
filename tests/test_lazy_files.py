"""fit and predict on lists of image files, read batch by batch."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.utils._files_array import ImageFiles, is_path_array


@pytest.fixture
def png_files(tmp_path, phantoms):
    X, y = phantoms
    paths = []
    for index, image in enumerate(X):
        path = tmp_path / f"{index:03d}.png"
        iio.imwrite(path, image)
        paths.append(str(path))
    return X, y, np.array(paths)


def test_fit_on_paths_equals_fit_on_the_images(png_files):
    X, y, paths = png_files
    params = {"max_epochs": 2, "random_state": 0, "device": "cpu"}
    from_files = MedicalCNNClassifier(**params).fit(paths, y)
    in_memory = MedicalCNNClassifier(**params).fit(X, y)
    assert from_files.image_shape_ == (16, 16, 1)
    np.testing.assert_array_equal(
        from_files.predict_proba(paths), in_memory.predict_proba(X)
    )
    np.testing.assert_array_equal(
        from_files.predict_proba(X), in_memory.predict_proba(X)
    )


def test_data_loader_workers_give_the_same_model(png_files):
    X, y, paths = png_files
    params = {"max_epochs": 1, "random_state": 0, "device": "cpu"}
    one = MedicalCNNClassifier(**params).fit(list(paths), y)
    two = MedicalCNNClassifier(num_workers=2, **params).fit(list(paths), y)
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))


def test_files_of_another_size_need_image_shape(png_files, tmp_path):
    _, y, paths = png_files
    big = tmp_path / "big.png"
    iio.imwrite(big, np.zeros((20, 20), dtype=np.uint8))
    paths = np.concatenate([paths, [str(big)]])
    y = np.concatenate([y, [0]])
    with pytest.raises(ValueError, match="image_shape"):
        MedicalCNNClassifier(max_epochs=1, device="cpu").fit(paths, y)
    clf = MedicalCNNClassifier(max_epochs=1, device="cpu", image_shape=(16, 16))
    clf.fit(paths, y)
    assert clf.predict(paths[-2:]).shape == (2,)


def test_path_detection():
    assert is_path_array(["a.png", "b.png"])
    assert is_path_array(np.array(["a.png"]))
    assert not is_path_array("a.png")
    assert not is_path_array(np.zeros((3, 4)))
    assert not is_path_array([1, 2])


def test_image_files_reads_only_what_is_asked(png_files):
    X, _, paths = png_files
    files = ImageFiles(paths)
    assert files.shape == (len(X), 16, 16, 1)
    np.testing.assert_array_equal(files[[3, 0]][..., 0], X[[3, 0]])
    np.testing.assert_array_equal(files[5:8][..., 0], X[5:8])


def test_path_detection_of_lists_and_columns():
    images = [np.zeros((4, 4)) for _ in range(3)]
    assert not is_path_array(images)  # a list of images is not paths
    assert not is_path_array(np.array([["a.png"], ["b.png"]]))  # 2-D
    assert not is_path_array([])
    assert is_path_array(("a.png", "b.dcm"))
