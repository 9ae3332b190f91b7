"""ImageLoader: the sklearn contract, input forms, errors, and a Pipeline from paths."""

from __future__ import annotations

import pickle
from pathlib import Path

import imageio.v3 as iio
import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.exceptions import ImageReadError
from sk_medcnn.io import ImageLoader, UnreadableFilesWarning, load_image_folder
from sk_medcnn.preprocessing import IntensityNormalizer


@pytest.fixture
def png_paths(tmp_path):
    """Four 6x8 uint8 PNGs of constant values 0, 10, 20, 30."""
    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        iio.imwrite(path, np.full((6, 8), 10 * i, dtype=np.uint8))
        paths.append(path)
    return paths


def test_parameters_and_constraints_agree():
    loader = ImageLoader()
    assert set(loader._parameter_constraints) == set(loader.get_params(deep=False))


def test_get_set_params_clone_and_pickle():
    loader = ImageLoader((16, 16), channels=1, window="lung", index=3, on_error="fill")
    params = loader.get_params()
    assert params == {
        "shape": (16, 16),
        "channels": 1,
        "window": "lung",
        "index": 3,
        "slice_axis": 2,
        "spatial_dims": None,
        "on_error": "fill",
    }
    twin = clone(loader)
    assert twin is not loader
    assert twin.get_params() == params
    assert pickle.loads(pickle.dumps(loader)).get_params() == params
    loader.set_params(shape=8, window=None)
    assert (loader.shape, loader.window) == (8, None)
    assert "shape=8" in repr(loader)


def test_tags_say_it_takes_paths():
    tags = ImageLoader().__sklearn_tags__()
    assert tags.input_tags.string
    assert tags.input_tags.one_d_array
    assert not tags.input_tags.two_d_array
    assert not tags.requires_fit


def test_transform_without_fit_reads_in_order(png_paths):
    X = ImageLoader().transform(png_paths[::-1])
    assert X.shape == (4, 6, 8)
    assert X.dtype == np.uint8
    np.testing.assert_array_equal(X[:, 0, 0], [30, 20, 10, 0])


def test_fit_reads_nothing_and_returns_self(png_paths, tmp_path):
    loader = ImageLoader()
    assert loader.fit([tmp_path / "does_not_exist.png"]) is loader
    assert vars(loader) == vars(ImageLoader())  # no fitted state


@pytest.mark.parametrize(
    "convert",
    [
        list,
        lambda paths: [str(path) for path in paths],
        lambda paths: np.array([str(path) for path in paths]),
        lambda paths: np.array([str(path) for path in paths], dtype=object),
        lambda paths: np.array([str(path) for path in paths])[:, np.newaxis],
        tuple,
    ],
)
def test_input_forms(png_paths, convert):
    X = ImageLoader(shape=(3, 4)).fit_transform(convert(png_paths))
    assert X.shape == (4, 3, 4)
    np.testing.assert_array_equal(X[:, 1, 1], [0, 10, 20, 30])


def test_pandas_input(png_paths):
    pd = pytest.importorskip("pandas")
    series = pd.Series([str(path) for path in png_paths], name="path")
    np.testing.assert_array_equal(
        ImageLoader().transform(series)[:, 0, 0], [0, 10, 20, 30]
    )
    frame = series.to_frame()
    np.testing.assert_array_equal(
        ImageLoader().transform(frame)[:, 0, 0], [0, 10, 20, 30]
    )
    frame["label"] = 1
    with pytest.raises(ValueError, match="one column of file paths; got a DataFrame"):
        ImageLoader().transform(frame)


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        ("a.png", TypeError, r"single path 'a\.png'.*\[path\]"),
        (Path("a.png"), TypeError, "single path"),
        (np.zeros((3, 4, 4)), ValueError, "1-D array of file paths"),
        (np.zeros(3), TypeError, r"X\[0\] is 0\.0 \(float"),
        ([], ValueError, "X holds no file paths"),
        (["a.png", None], TypeError, r"X\[1\] is None"),
    ],
)
def test_input_errors(X, error, match):
    with pytest.raises(error, match=match):
        ImageLoader().transform(X)
    with pytest.raises(error, match=match):
        ImageLoader().fit(X)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"on_error": "skip"}, ValueError, "on_error must be one of 'raise', 'fill'"),
        ({"shape": (4, 0)}, ValueError, "shape must hold sizes >= 1"),
        ({"channels": 4}, ValueError, "channels must be None, 1"),
        ({"window": (40, -1)}, ValueError, "window width"),
        ({"slice_axis": -1}, ValueError, "slice_axis must be 0, 1 or 2"),
        ({"spatial_dims": 1}, ValueError, "spatial_dims must be None"),
        ({"shape": (4, 0, 4)}, ValueError, "shape must hold sizes >= 1"),
    ],
)
def test_parameter_errors(png_paths, params, error, match):
    with pytest.raises(error, match=match):
        ImageLoader(**params).fit(png_paths)
    with pytest.raises(error, match=match):
        ImageLoader(**params).transform(png_paths)


def test_unreadable_file_raises_naming_it(png_paths, tmp_path):
    missing = tmp_path / "gone.png"
    with pytest.raises(ImageReadError, match=r"No such file: '.*gone\.png'"):
        ImageLoader().transform([*png_paths, missing])


def test_fill_keeps_one_row_per_path(png_paths, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    paths = [broken, *png_paths[1:], tmp_path / "gone.png"]
    with pytest.warns(UnreadableFilesWarning, match="replaced by blank") as caught:
        X = ImageLoader(on_error="fill").transform(paths)
    assert [Path(p).name for p in caught[0].message.paths] == ["broken.png", "gone.png"]
    assert X.shape == (5, 6, 8)
    np.testing.assert_array_equal(X[:, 0, 0], [0, 10, 20, 30, 0])
    assert not X[0].any()
    assert not X[4].any()
    with pytest.raises(
        ImageReadError, match=r"None of the 2 files could be read.*gone"
    ):
        ImageLoader(on_error="fill").transform([broken, tmp_path / "gone.png"])


def test_set_output_is_accepted_and_arrays_stay(png_paths):
    pipe = make_pipeline(ImageLoader(), IntensityNormalizer())
    pipe.set_output(transform="default")
    assert isinstance(pipe.fit_transform(png_paths), np.ndarray)
    with pytest.raises(ValueError, match="transform must be one of"):
        ImageLoader().set_output(transform="arrow")


def _phantom_folder(root, n_per_class=10, size=16):
    """A class-per-folder tree of PNGs from make_lesion_phantoms."""
    from sk_medcnn.datasets import make_lesion_phantoms

    X, y = make_lesion_phantoms(2 * n_per_class, image_size=size, random_state=0)
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        folder = root / ("lesion" if label else "healthy")
        folder.mkdir(parents=True, exist_ok=True)
        iio.imwrite(folder / f"{i:03d}.png", image)
    return X, y


def test_pipeline_fits_and_predicts_from_paths(tmp_path):
    X_images, _ = _phantom_folder(tmp_path / "data")
    paths, y = load_image_folder(tmp_path / "data", lazy=True)
    assert len(paths) == 20
    pipe = make_pipeline(
        ImageLoader(shape=(16, 16)),
        MedicalCNNClassifier(max_epochs=1, batch_size=8, random_state=0),
    )
    pipe.fit(paths, y)
    classifier = pipe[-1]
    assert classifier.classes_.tolist() == ["healthy", "lesion"]
    assert classifier.image_shape_[:2] == (16, 16)
    predicted = pipe.predict(paths)
    assert predicted.shape == (20,)
    assert set(predicted) <= {"healthy", "lesion"}
    probabilities = pipe.predict_proba(paths[:3])
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    # the same images given as arrays to the fitted classifier: same output
    arrays = ImageLoader(shape=(16, 16)).transform(paths)
    np.testing.assert_allclose(classifier.predict_proba(arrays[:3]), probabilities)
    # a saved pipeline predicts straight from files
    joblib.dump(pipe, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_allclose(loaded.predict_proba(paths[:3]), probabilities)
    assert X_images.shape == (20, 16, 16)


# --- volumes ------------------------------------------------------------------


@pytest.fixture
def nifti_paths(tmp_path):
    """Three NIfTI volumes of 6x5x4 voxels (x, y, z), constant 0, 10, 20."""
    nibabel = pytest.importorskip("nibabel")
    paths = []
    for i in range(3):
        path = tmp_path / f"case_{i}.nii.gz"
        data = np.full((6, 5, 4), 10 * i, dtype=np.int16)
        data[0, 0, 0] = 7  # a marker voxel, to check the orientation
        nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), path)
        paths.append(path)
    return paths


def test_volumes_are_read_depth_first(nifti_paths):
    from sk_medcnn.io import read_volume

    X = ImageLoader().fit_transform(nifti_paths)  # spatial_dims inferred
    assert X.shape == (3, 4, 5, 6)  # (n, z, y, x)
    np.testing.assert_array_equal(X[1], read_volume(nifti_paths[1]))
    assert X[2, 0, 0, 0] == 7
    assert X[2, 1, 1, 1] == 20
    same = ImageLoader(spatial_dims=3).transform(nifti_paths)
    np.testing.assert_array_equal(same, X)


def test_volumes_resized_to_a_shape(nifti_paths):
    X = ImageLoader(shape=(8, 8, 8)).transform(nifti_paths)
    assert X.shape == (3, 8, 8, 8)
    cube = ImageLoader(shape=6, spatial_dims=3).transform(nifti_paths)
    assert cube.shape == (3, 6, 6, 6)


def test_index_takes_one_slice_of_each_volume(nifti_paths):
    X = ImageLoader(index=1).transform(nifti_paths)
    assert X.ndim == 3
    assert len(X) == 3
    with pytest.raises(ValueError, match="index=1 takes one slice"):
        ImageLoader(index=1, spatial_dims=3).transform(nifti_paths)


def test_a_volume_shape_for_images_is_an_error(png_paths):
    # fit reads no file, so it cannot tell; transform can
    with pytest.raises(ValueError, match=r"shape=\(4, 4, 4\) is a volume size"):
        ImageLoader(shape=(4, 4, 4)).transform(png_paths)


def test_images_given_as_volumes_name_the_file(png_paths):
    with pytest.raises(ImageReadError, match=r"is a PNG image, not a volume"):
        ImageLoader(spatial_dims=3).transform(png_paths)


def test_volume_pipeline_from_paths(nifti_paths):
    from sk_medcnn.preprocessing import Resize

    paths = nifti_paths * 4
    y = np.array([0, 1, 1] * 4)
    pipe = make_pipeline(
        ImageLoader(),
        Resize((8, 8, 8)),
        MedicalCNNClassifier(max_epochs=1, batch_size=4, device="cpu", random_state=0),
    )
    pipe.fit(paths, y)
    assert pipe[-1].spatial_dims_ == 3
    assert pipe[-1].image_shape_ == (8, 8, 8, 1)
    proba = pipe.predict_proba(paths[:3])
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
