"""fit and predict on lists of image files, read batch by batch."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.io._files_array import ImageFiles, is_path_array


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


# --- volume files -------------------------------------------------------------


def write_niftis(folder, n_volumes):
    """Write 6x5x4 (x, y, z) NIfTI volumes; return them depth first, and paths."""
    nibabel = pytest.importorskip("nibabel")
    rng = np.random.default_rng(0)
    volumes, paths = [], []
    for index in range(n_volumes):
        data = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
        path = folder / f"{index}.nii.gz"
        nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), path)
        volumes.append(data.transpose(2, 1, 0))
        paths.append(str(path))
    return np.stack(volumes), paths


@pytest.fixture
def nifti_files(tmp_path):
    """Five 6x5x4 (x, y, z) NIfTI volumes; returns them depth first, and paths."""
    return write_niftis(tmp_path, 5)


def test_nifti_paths_are_a_lazy_volume_array(nifti_files, monkeypatch):
    from sk_medcnn.io import _volume

    volumes, paths = nifti_files
    assert is_path_array(paths)
    files = ImageFiles(paths)
    assert files.shape == (5, 4, 5, 6, 1)
    assert files.ndim == 5
    assert files.spatial_dims == 3
    assert files.dtype == np.uint8
    read = []
    original = _volume.read_volume
    monkeypatch.setattr(
        _volume, "read_volume", lambda path: read.append(path) or original(path)
    )
    np.testing.assert_array_equal(files[[3, 1]][..., 0], volumes[[3, 1]])
    assert read == [paths[3], paths[1]]  # just those volumes
    np.testing.assert_array_equal(np.asarray(files)[..., 0], volumes)


def test_volume_image_shape_resizes_with_skimage(nifti_files):
    from skimage.transform import resize

    volumes, paths = nifti_files
    files = ImageFiles(paths, image_shape=(2, 10, 3))
    assert files.shape == (5, 2, 10, 3, 1)
    assert files.dtype == np.uint8
    expected = resize(
        volumes[2].astype(np.float32),
        (2, 10, 3),
        order=1,
        anti_aliasing=True,
        preserve_range=True,
    )
    np.testing.assert_array_equal(
        files[[2]][0, ..., 0], np.clip(np.rint(expected), 0, 255).astype(np.uint8)
    )
    # with the channels, as a fitted estimator passes its image_shape_
    assert ImageFiles(paths, image_shape=(4, 5, 6, 1)).shape == (5, 4, 5, 6, 1)
    with pytest.raises(ValueError, match=r"1 channel\(s\), but image_shape asks for 3"):
        ImageFiles(paths, image_shape=(4, 5, 6, 3))
    with pytest.raises(ValueError, match=r"image_shape=\(5, 6\) does not fit"):
        ImageFiles(paths, image_shape=(5, 6))


def test_volumes_of_other_sizes_need_image_shape(nifti_files, tmp_path):
    nibabel = pytest.importorskip("nibabel")
    _, paths = nifti_files
    other = tmp_path / "other.nii"
    nibabel.save(nibabel.Nifti1Image(np.zeros((6, 5, 7), np.uint8), np.eye(4)), other)
    files = ImageFiles([*paths, str(other)])
    with pytest.raises(ValueError, match=r"image_shape=\(depth, height, width\)"):
        files[4:]
    assert ImageFiles([*paths, str(other)], image_shape=(4, 5, 6))[4:].shape == (
        2,
        4,
        5,
        6,
        1,
    )


def test_spatial_dims_overrules_the_inference(nifti_files, png_files):
    from sk_medcnn.exceptions import ImageReadError

    _, paths = nifti_files
    _, _, png_paths = png_files
    # a first file of the other kind is named, with the estimator
    with pytest.raises(
        ValueError, match=r"^clf: spatial_dims=2 reads 2-D images, but .*0\.nii\.gz'"
    ):
        ImageFiles(paths, spatial_dims=2, estimator_name="clf")
    with pytest.raises(ValueError, match=r"spatial_dims=3 reads volumes.*000\.png'"):
        ImageFiles(png_paths, spatial_dims=3)
    images = ImageFiles(png_paths, spatial_dims=2)
    assert images.ndim == 4
    assert images.spatial_dims == 2
    assert ImageFiles(png_paths, spatial_dims="auto").shape == images.shape
    # a volume among images, or an image among volumes, is named
    with pytest.raises(ImageReadError, match=r"0\.nii\.gz' holds 4 images"):
        ImageFiles([*png_paths[:2], paths[0]])[:]
    with pytest.raises(ImageReadError, match=r"000\.png' is a PNG image"):
        ImageFiles([*paths, png_paths[0]])[:]
    for bad in (1, 4, True, "3"):
        with pytest.raises(ValueError, match="spatial_dims must be None"):
            ImageFiles(paths, spatial_dims=bad)


def test_a_single_slice_nifti_is_an_image(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    path = tmp_path / "slice.nii"
    data = np.arange(20, dtype=np.uint8).reshape(5, 4, 1)
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), path)
    files = ImageFiles([str(path)])
    assert files.spatial_dims == 2
    assert files.shape == (1, 5, 4, 1)


def tiny_3d(in_channels, n_outputs, image_shape):
    from torch import nn

    return nn.Sequential(
        nn.Conv3d(in_channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, n_outputs),
    )


tiny_3d.spatial_dims = (3,)


def test_fit_on_volume_paths_equals_fit_on_the_volumes(tmp_path):
    volumes, paths = write_niftis(tmp_path, 20)
    y = np.arange(20) % 2
    params = {"max_epochs": 1, "random_state": 0, "device": "cpu"}
    from_files = MedicalCNNClassifier(tiny_3d, **params).fit(paths, y)
    in_memory = MedicalCNNClassifier(tiny_3d, **params).fit(volumes, y)
    assert from_files.spatial_dims_ == 3
    assert from_files.image_shape_ == (4, 5, 6, 1)
    np.testing.assert_array_equal(
        from_files.predict_proba(paths), in_memory.predict_proba(volumes)
    )
    resized = MedicalCNNClassifier(tiny_3d, image_shape=(3, 3, 3), **params)
    assert resized.fit(paths, y).image_shape_ == (3, 3, 3, 1)
    assert resized.predict_proba(paths[:2]).shape == (2, 2)
