"""load_image_folder and list_image_files on small trees built in tmp_path."""

from __future__ import annotations

import shutil
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from sk_medcnn.exceptions import ImageReadError
from sk_medcnn.io import (
    ImageLoader,
    UnreadableFilesWarning,
    list_image_files,
    load_image_folder,
    read_image,
)
from sk_medcnn.io._files_array import ImageFiles
from sk_medcnn.preprocessing import Resize, ToGrayscale


def write_tree(root, layout, *, size=(8, 8), dtype=np.uint8):
    """Write PNGs ``root/<class>/<name>``; return {relative path: image}."""
    rng = np.random.default_rng(0)
    written = {}
    for label, names in layout.items():
        for name in names:
            path = root / label / name
            path.parent.mkdir(parents=True, exist_ok=True)
            image = rng.integers(0, np.iinfo(dtype).max, size=size, dtype=dtype)
            iio.imwrite(path, image)
            written[f"{label}/{name}"] = image
    return written


def test_loads_classes_in_sorted_order_with_their_images(tmp_path):
    written = write_tree(
        tmp_path,
        {"pneumonia": ["b.png", "a.png", "c.png"], "normal": ["z.png", "y.png"]},
    )
    X, y = load_image_folder(tmp_path)
    assert X.shape == (5, 8, 8)
    assert X.dtype == np.uint8
    assert y.tolist() == ["normal"] * 2 + ["pneumonia"] * 3
    order = [
        "normal/y.png",
        "normal/z.png",
        "pneumonia/a.png",
        "pneumonia/b.png",
        "pneumonia/c.png",
    ]
    np.testing.assert_array_equal(X, np.stack([written[name] for name in order]))
    # the same call gives the same arrays
    X_again, y_again = load_image_folder(tmp_path)
    np.testing.assert_array_equal(X_again, X)
    np.testing.assert_array_equal(y_again, y)


def test_nested_hidden_and_other_files(tmp_path):
    written = write_tree(
        tmp_path, {"a": ["patient1/1.png", "patient2/1.png"], "b": ["1.PNG"]}
    )
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".hidden.png").write_text("not an image either")
    (tmp_path / "a" / ".cache").mkdir()
    iio.imwrite(tmp_path / "a" / ".cache" / "x.png", np.zeros((8, 8), np.uint8))
    (tmp_path / ".git").mkdir()  # a hidden class folder is no class
    X, y = load_image_folder(tmp_path)
    assert y.tolist() == ["a", "a", "b"]
    np.testing.assert_array_equal(X[1], written["a/patient2/1.png"])
    paths, _ = load_image_folder(tmp_path, lazy=True)
    assert [p.split("/")[-2:] for p in paths.tolist()] == [
        ["patient1", "1.png"],
        ["patient2", "1.png"],
        ["b", "1.PNG"],
    ]


def test_dicom_files_named_by_uid_and_resized(tmp_path, dicom_path):
    ct, mr = dicom_path("CT_small.dcm"), dicom_path("MR_small.dcm")
    (tmp_path / "ct").mkdir()
    (tmp_path / "mr").mkdir()
    shutil.copy(ct, tmp_path / "ct" / "1.2.840.113619.2.1")  # a UID, no extension
    shutil.copy(ct, tmp_path / "ct" / "IM0002")
    shutil.copy(mr, tmp_path / "mr" / "IM0001.dcm")
    shutil.copy(mr, tmp_path / "mr" / "DICOMDIR")  # never an image
    X, y = load_image_folder(tmp_path, shape=(32, 32))
    assert y.tolist() == ["ct", "ct", "mr"]
    assert X.shape == (3, 32, 32)
    assert X.dtype == np.float32  # CT in HU (float32) and MR int16: float32
    expected_ct = Resize((32, 32)).fit_transform(read_image(ct)[None])[0]
    np.testing.assert_array_equal(X[0], expected_ct)
    expected_mr = Resize((32, 32)).fit_transform(read_image(mr)[None])[0]
    np.testing.assert_array_equal(X[2], expected_mr)


def test_different_sizes_name_both_and_suggest_shape(tmp_path):
    write_tree(tmp_path, {"a": ["1.png"]}, size=(8, 8))
    write_tree(tmp_path, {"b": ["2.png"]}, size=(10, 6))
    with pytest.raises(
        ValueError, match=r"a/1\.png' is 8x8.*b/2\.png' is 10x6.*shape="
    ):
        load_image_folder(tmp_path)
    X, _ = load_image_folder(tmp_path, shape=(4, 5))
    assert X.shape == (2, 4, 5)
    X, _ = load_image_folder(tmp_path, shape=6)
    assert X.shape == (2, 6, 6)


def test_channels_mismatch_and_conversion(tmp_path):
    write_tree(tmp_path, {"grey": ["1.png"]}, size=(8, 8))
    rgb = write_tree(tmp_path, {"rgb": ["1.png"]}, size=(8, 8, 3))["rgb/1.png"]
    rgba = write_tree(tmp_path, {"rgba": ["1.png"]}, size=(8, 8, 4))["rgba/1.png"]
    with pytest.raises(ValueError, match=r"differ in channels.*channels=1.*channels=3"):
        load_image_folder(tmp_path)
    grey, _ = load_image_folder(tmp_path, channels=1)
    assert grey.shape == (3, 8, 8)
    np.testing.assert_array_equal(
        grey[1], ToGrayscale().fit_transform(rgb[None])[0, ..., 0]
    )
    np.testing.assert_array_equal(
        grey[2], ToGrayscale().fit_transform(rgba[None, ..., :3])[0, ..., 0]
    )
    colour, _ = load_image_folder(tmp_path, channels=3)
    assert colour.shape == (3, 8, 8, 3)
    np.testing.assert_array_equal(colour[0, ..., 0], colour[0, ..., 2])
    np.testing.assert_array_equal(colour[1], rgb)
    np.testing.assert_array_equal(colour[2], rgba[..., :3])


def test_unreadable_file_raises_with_its_name(tmp_path):
    write_tree(tmp_path, {"a": ["1.png", "2.png"], "b": ["3.png"]})
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageReadError, match=r"broken\.png") as info:
        load_image_folder(tmp_path)
    assert info.value.path.endswith("broken.png")


def test_skip_warns_with_the_skipped_files(tmp_path):
    written = write_tree(tmp_path, {"a": ["1.png", "3.png"], "b": ["4.png"]})
    (tmp_path / "a" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "b" / "5.dcm").write_bytes(b"not dicom at all")
    with pytest.warns(
        UnreadableFilesWarning, match=r"2 unreadable image files skipped"
    ) as caught:
        X, y = load_image_folder(tmp_path, on_error="skip")
    warning = caught[0].message
    assert [path.split("/")[-1] for path in warning.paths] == ["2.png", "5.dcm"]
    assert "2.png" in str(warning)
    assert "5.dcm" in str(warning)
    assert len(warning.errors) == 2
    assert caught[0].filename == __file__  # points at the caller
    assert y.tolist() == ["a", "a", "b"]
    np.testing.assert_array_equal(
        X, np.stack([written["a/1.png"], written["a/3.png"], written["b/4.png"]])
    )


def test_skip_lists_many_files_briefly(tmp_path):
    write_tree(tmp_path, {"a": ["ok.png"]})
    for i in range(12):
        (tmp_path / "a" / f"bad{i:02d}.png").write_bytes(b"")
    with pytest.warns(UnreadableFilesWarning, match=r"and 2 more") as caught:
        X, _ = load_image_folder(tmp_path, on_error="skip")
    assert len(caught[0].message.paths) == 12
    assert X.shape == (1, 8, 8)


def test_class_whose_files_are_all_unreadable(tmp_path):
    write_tree(tmp_path, {"a": ["1.png"]})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "1.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"class folder 'b'.*unreadable"):
        with pytest.warns(UnreadableFilesWarning):
            load_image_folder(tmp_path, on_error="skip")


def test_missing_root_and_root_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"folder '.*nothere' does not exist"):
        load_image_folder(tmp_path / "nothere")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="is a file, not a folder"):
        load_image_folder(tmp_path / "file.png")


def test_no_class_folders(tmp_path):
    with pytest.raises(ValueError, match="holds no class subfolders and no images"):
        load_image_folder(tmp_path)
    iio.imwrite(tmp_path / "loose.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(
        ValueError, match=r"but 1 image files directly.*list_image_files"
    ):
        load_image_folder(tmp_path)


def test_empty_classes_are_named(tmp_path):
    write_tree(tmp_path, {"full": ["1.png"]})
    (tmp_path / "empty1").mkdir()
    (tmp_path / "empty2").mkdir()
    (tmp_path / "empty2" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"without images.*'empty1', 'empty2'"):
        load_image_folder(tmp_path)


def test_extensions_select_files(tmp_path):
    write_tree(tmp_path, {"a": ["1.png"], "b": ["2.png"]})
    tifffile.imwrite(tmp_path / "a" / "3.tif", np.zeros((8, 8), np.uint8))
    _, y = load_image_folder(tmp_path, extensions=[".png"])
    assert y.tolist() == ["a", "b"]
    _, y = load_image_folder(tmp_path, extensions=[".PNG", ".tif"])
    assert y.tolist() == ["a", "a", "b"]
    with pytest.raises(ValueError, match=r"'b'.*looked for extensions '\.tif'"):
        load_image_folder(tmp_path, extensions=[".tif"])


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"extensions": "png"}, TypeError, "extensions must be None or a list"),
        ({"extensions": ["png"]}, ValueError, r"Did you mean '\.png'"),
        ({"extensions": []}, ValueError, "extensions must not be empty"),
        ({"extensions": [3]}, TypeError, "extensions must hold str"),
        ({"on_error": "ignore"}, ValueError, "on_error must be one of 'raise', 'skip'"),
        ({"on_error": "fill"}, ValueError, "on_error must be one of 'raise', 'skip'"),
        ({"lazy": "yes"}, TypeError, "lazy must be a bool"),
        ({"shape": 0}, ValueError, "shape must be >= 1"),
        ({"channels": 2}, ValueError, r"channels must be None, 1 \(grayscale\)"),
        ({"channels": True}, TypeError, "channels must be None, 1"),
        ({"window": "wide"}, ValueError, "window must be None, one of"),
        ({"index": "0"}, TypeError, "index must be None or an int"),
    ],
)
def test_parameter_errors(tmp_path, params, error, match):
    write_tree(tmp_path, {"a": ["1.png"]})
    with pytest.raises(error, match=match):
        load_image_folder(tmp_path, **params)


def test_lazy_paths_load_like_the_arrays(tmp_path):
    write_tree(tmp_path, {"a": ["1.png", "2.png"], "b": ["3.png"]}, size=(6, 9))
    X, y = load_image_folder(tmp_path, shape=(4, 4))
    paths, y_lazy = load_image_folder(tmp_path, lazy=True)
    assert paths.shape == (3,)
    assert paths.dtype.kind == "U"
    np.testing.assert_array_equal(y_lazy, y)
    np.testing.assert_array_equal(ImageLoader(shape=(4, 4)).transform(paths), X)


def test_stacks_need_an_index(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(2):
        pages = np.full((3, 4, 4), i, dtype=np.uint16) + np.arange(3)[:, None, None]
        tifffile.imwrite(tmp_path / "a" / f"{i}.tif", pages, photometric="minisblack")
    with pytest.raises(ImageReadError, match=r"0\.tif' holds 3 images.*index="):
        load_image_folder(tmp_path)
    X, _ = load_image_folder(tmp_path, index=2)
    np.testing.assert_array_equal(X[:, 0, 0], [2, 3])


def test_mixed_bit_depths_warn(tmp_path):
    write_tree(tmp_path, {"a": ["8.png"]}, dtype=np.uint8)
    write_tree(tmp_path, {"b": ["16.png"]}, dtype=np.uint16)
    with pytest.warns(UserWarning, match=r"different bit depths.*uint8.*uint16"):
        X, _ = load_image_folder(tmp_path)
    assert X.dtype == np.uint16


def test_window_gives_float32_in_unit_range(tmp_path):
    write_tree(tmp_path, {"a": ["1.png"], "b": ["2.png"]})
    X, _ = load_image_folder(tmp_path, window=(128, 256))
    assert X.dtype == np.float32
    assert 0 <= X.min() <= X.max() <= 1


def test_list_image_files(tmp_path):
    write_tree(tmp_path, {"x": ["b.png", "a.png"]})
    iio.imwrite(tmp_path / "top.png", np.zeros((2, 2), np.uint8))
    (tmp_path / "notes.txt").write_text("no")
    names = [
        path.relative_to(tmp_path).as_posix() for path in list_image_files(tmp_path)
    ]
    assert names == ["top.png", "x/a.png", "x/b.png"]
    flat = list_image_files(tmp_path, recursive=False)
    assert [path.name for path in flat] == ["top.png"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list_image_files(tmp_path, extensions=[".txt"])[0].name == "notes.txt"
    with pytest.raises(TypeError, match="recursive must be a bool"):
        list_image_files(tmp_path, recursive=1)
    with pytest.raises(ImageReadError, match="does not exist"):
        list_image_files(tmp_path / "nothere")


# --- volumes ------------------------------------------------------------------


def write_nifti(path, data):
    nibabel = pytest.importorskip("nibabel")
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), path)
    return data.transpose(2, 1, 0)  # as read_volume returns it


def test_nifti_volumes_per_class(tmp_path):
    rng = np.random.default_rng(0)
    expected = {}
    for label, names in {
        "vessel": ["b.nii.gz", "a.nii"],
        "aneurysm": ["c.nii"],
    }.items():
        for name in names:
            data = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
            expected[(label, name)] = write_nifti(tmp_path / label / name, data)
    X, y = load_image_folder(tmp_path)
    assert X.shape == (3, 4, 5, 6)
    assert X.dtype == np.uint8
    np.testing.assert_array_equal(y, ["aneurysm", "vessel", "vessel"])
    np.testing.assert_array_equal(X[0], expected[("aneurysm", "c.nii")])
    np.testing.assert_array_equal(X[1], expected[("vessel", "a.nii")])
    np.testing.assert_array_equal(X[2], expected[("vessel", "b.nii.gz")])
    # resized to (depth, height, width); an int is a cube
    assert load_image_folder(tmp_path, shape=(2, 3, 4))[0].shape == (3, 2, 3, 4)
    assert load_image_folder(tmp_path, shape=3)[0].shape == (3, 3, 3, 3)
    # channels=1 is what grayscale volumes have (as the command line passes it)
    np.testing.assert_array_equal(load_image_folder(tmp_path, channels=1)[0], X)
    windowed = load_image_folder(tmp_path, window=(128, 256))[0]
    assert windowed.dtype == np.float32
    np.testing.assert_allclose(windowed[0], expected[("aneurysm", "c.nii")] / 256)
    # lazily: the paths, which ImageFiles reads as volumes
    paths, y_lazy = load_image_folder(tmp_path, lazy=True)
    np.testing.assert_array_equal(y_lazy, y)
    assert [path.rsplit("/", 1)[-1] for path in paths] == ["c.nii", "a.nii", "b.nii.gz"]
    np.testing.assert_array_equal(ImageFiles(paths)[:][..., 0], X)


def test_dicom_series_per_class(tmp_path, dicom_path, write_series):
    ct = dicom_path("CT_small.dcm")
    positions = [(0.0, 0.0, z) for z in (0.0, 2.5, 5.0)]
    write_series(tmp_path / "tumour" / "patient_2", ct, positions[::-1])
    write_series(tmp_path / "tumour" / "patient_1", ct, positions)
    write_series(tmp_path / "healthy" / "patient_3", ct, positions)
    X, y = load_image_folder(tmp_path, spatial_dims=3, shape=(3, 16, 16))
    assert X.shape == (3, 3, 16, 16)
    assert X.dtype.kind == "i"
    np.testing.assert_array_equal(y, ["healthy", "tumour", "tumour"])
    paths, _ = load_image_folder(tmp_path, spatial_dims=3, lazy=True)
    assert [path.rsplit("/", 1)[-1] for path in paths] == [
        "patient_3",
        "patient_1",
        "patient_2",
    ]
    # without spatial_dims=3, each DICOM file stays a 2-D image (as before)
    X_2d, y_2d = load_image_folder(tmp_path)
    assert X_2d.shape == (9, 128, 128)
    assert len(y_2d) == 9


def test_a_class_folder_mixing_images_and_volumes(tmp_path):
    write_nifti(tmp_path / "a" / "volume.nii", np.zeros((4, 4, 4), np.uint8))
    iio.imwrite(tmp_path / "a" / "image.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(
        ValueError, match=r"/a' mixes 2-D images and volumes.*image\.png"
    ):
        load_image_folder(tmp_path)
    (tmp_path / "a" / "volume.nii").unlink()
    write_nifti(tmp_path / "b" / "volume.nii", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"/a' holds 2-D images, but the files"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="holds 2-D images"):
        load_image_folder(tmp_path, spatial_dims=3)


def test_volumes_as_slices_with_spatial_dims_2_or_an_index(tmp_path):
    data = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    write_nifti(tmp_path / "a" / "volume.nii", data)
    with pytest.raises(ImageReadError, match="holds 3 images"):
        load_image_folder(tmp_path, spatial_dims=2)
    X, _ = load_image_folder(tmp_path, index=1)
    np.testing.assert_array_equal(X[0], data[:, :, 1])


def test_volumes_of_different_sizes_need_a_shape(tmp_path):
    write_nifti(tmp_path / "a" / "1.nii", np.zeros((4, 4, 4), np.uint8))
    write_nifti(tmp_path / "a" / "2.nii", np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(
        ValueError, match=r"Volumes differ.*2\.nii' is \(5, 4, 4\).*shape=\(depth"
    ):
        load_image_folder(tmp_path)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"shape": (4, 4)}, r"shape=\(4, 4\) is an image size"),
        ({"channels": 3}, r"holds a volume of 1 channel\(s\), but channels=3"),
        ({"index": 0, "spatial_dims": 3}, "index=0 takes one slice of each file"),
        ({"window": "file"}, "window='file' applies to 2-D DICOM"),
        ({"spatial_dims": 1}, r"spatial_dims must be None \(infer\), 2"),
        ({"shape": (0, 4, 4)}, "shape must be >= 1"),
        ({"shape": (2, 4, 4, 1)}, "Volumes take"),
    ],
)
def test_volume_parameter_errors(tmp_path, params, match):
    write_nifti(tmp_path / "a" / "1.nii", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=match):
        load_image_folder(tmp_path, **params)


def test_a_volume_shape_for_images_is_refused(tmp_path):
    write_tree(tmp_path, {"a": ["1.png"]})
    with pytest.raises(ValueError, match=r"shape=\(2, 4, 4\) is a volume size"):
        load_image_folder(tmp_path, shape=(2, 4, 4))


def test_skip_an_unreadable_series(tmp_path, dicom_path, write_series):
    ct = dicom_path("CT_small.dcm")
    positions = [(0.0, 0.0, z) for z in (0.0, 2.5, 5.0)]
    write_series(tmp_path / "a" / "good", ct, positions)
    write_series(tmp_path / "a" / "gap", ct, [*positions, (0.0, 0.0, 20.0)])
    write_series(tmp_path / "b" / "good", ct, positions)
    with pytest.warns(UnreadableFilesWarning, match="slices are missing") as caught:
        X, y = load_image_folder(tmp_path, spatial_dims=3, on_error="skip")
    assert caught[0].message.paths == [str(tmp_path / "a" / "gap")]
    assert X.shape == (2, 3, 128, 128)
    np.testing.assert_array_equal(y, ["a", "b"])
