"""read_volume: NIfTI files and DICOM series folders, depth first, with spacing."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from sk_medcnn.exceptions import ImageReadError
from sk_medcnn.io import read_volume
from sk_medcnn.io._dicom_series import list_series_files
from sk_medcnn.io._files_array import ImageFiles, is_path_array

nibabel = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")


# --- NIfTI --------------------------------------------------------------------


def test_nifti_is_the_canonical_volume_depth_first(nifti_path):
    path = nifti_path("anatomical.nii")  # stored LAS: reorienting flips x
    image = nibabel.load(path)
    assert nibabel.aff2axcodes(image.affine) == ("L", "A", "S")
    canonical = np.asarray(nibabel.as_closest_canonical(image).dataobj)
    volume, spacing = read_volume(path, return_spacing=True)
    assert volume.shape == (25, 41, 33)
    np.testing.assert_array_equal(volume, canonical.transpose(2, 1, 0))
    # the stored data runs right to left: the canonical volume is its mirror
    np.testing.assert_array_equal(
        volume, np.asarray(image.dataobj)[::-1].transpose(2, 1, 0)
    )
    assert volume.dtype == np.int16
    assert volume.dtype.isnative  # stored big-endian
    assert spacing == (2.0, 2.0, 2.0)
    np.testing.assert_array_equal(read_volume(str(path)), volume)


def test_nifti_spacing_follows_the_axes(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)  # (x, y, z)
    # stored L-P-S: both x and y are flipped into RAS+
    affine = np.diag([-0.5, -0.8, 2.0, 1.0])
    path = tmp_path / "lps.nii.gz"
    nibabel.save(nibabel.Nifti1Image(data, affine), path)
    volume, spacing = read_volume(path, return_spacing=True)
    assert volume.shape == (4, 3, 2)
    assert spacing == pytest.approx((2.0, 0.8, 0.5))
    np.testing.assert_array_equal(volume, data[::-1, ::-1].transpose(2, 1, 0))
    assert volume.dtype == np.uint8


def test_standard_nifti_gz(nifti_path):
    path = nifti_path("standard.nii.gz")
    volume, spacing = read_volume(path, return_spacing=True)
    data = np.asarray(nibabel.load(path).dataobj)
    np.testing.assert_array_equal(volume, data.transpose(2, 1, 0))
    zooms = nibabel.load(path).header.get_zooms()
    assert spacing == tuple(float(zoom) for zoom in zooms[::-1])


def test_scaled_nifti_is_float32(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    image = nibabel.Nifti1Image(data, np.eye(4))
    image.header.set_slope_inter(0.5, -3)
    path = tmp_path / "scaled.nii"
    nibabel.save(image, path)
    volume = read_volume(path)
    assert volume.dtype == np.float32
    np.testing.assert_allclose(volume, data.transpose(2, 1, 0) * 0.5 - 3)


def test_4d_nifti_with_few_volumes_is_channels(nifti_path):
    path = nifti_path("example4d.nii.gz")
    image = nibabel.load(path)
    canonical = np.asarray(nibabel.as_closest_canonical(image).dataobj)
    volume, spacing = read_volume(path, return_spacing=True)
    assert volume.shape == (24, 96, 128, 2)
    np.testing.assert_array_equal(volume, canonical.transpose(2, 1, 0, 3))
    assert spacing == pytest.approx((2.2, 2.0, 2.0), abs=1e-5)


def test_4d_nifti_series_is_refused(nifti_path):
    with pytest.raises(ImageReadError, match=r"functional\.nii.*series of 20"):
        read_volume(nifti_path("functional.nii"))


def test_nifti_with_nan_is_refused(tmp_path):
    data = np.zeros((3, 3, 3), dtype=np.float32)
    data[1, 1, 1] = np.nan
    path = tmp_path / "nan.nii"
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(ImageReadError, match=r"nan\.nii' holds 1 NaN"):
        read_volume(path)


def test_two_d_files_are_not_volumes(tmp_path, dicom_path):
    png = tmp_path / "slice.png"
    iio.imwrite(png, np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ImageReadError, match=r"slice\.png' is a PNG image, not a"):
        read_volume(png)
    single = dicom_path("CT_small.dcm")
    with pytest.raises(ImageReadError, match=r"one DICOM file.*read_volume\('"):
        read_volume(single)
    with pytest.raises(ImageReadError, match=r"absent\.nii"):
        read_volume(tmp_path / "absent.nii")


def test_read_volume_parameters_are_checked(nifti_path):
    with pytest.raises(TypeError, match="return_spacing must be a bool"):
        read_volume(nifti_path("standard.nii.gz"), return_spacing=1)
    with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike"):
        read_volume(3)


# --- DICOM series -------------------------------------------------------------


@pytest.fixture
def ct_small(dicom_path):
    return dicom_path("CT_small.dcm")


def axial(*z):
    return [(-158.1, -179.0, value) for value in z]


def test_series_is_sorted_by_position_not_name_or_instance_number(
    tmp_path, ct_small, write_series
):
    # file k is at z[k]; names and instance numbers run against the positions
    z = [10.0, 0.0, 7.5, 2.5, 5.0]
    folder = tmp_path / "series"
    stored = write_series(
        folder,
        ct_small,
        axial(*z),
        names=["a.dcm", "b.dcm", "c.dcm", "d.dcm", "e.dcm"],
        instance_numbers=[1, 2, 3, 4, 5],
    )
    volume, spacing = read_volume(folder, return_spacing=True)
    assert volume.shape == (5, 128, 128)
    # sorted by z (the normal of an axial slice): files 1, 3, 4, 2, 0; rows and
    # columns of an axial slice run posterior and to the patient's left, so the
    # canonical volume (anterior, right) holds each stored slice flipped twice
    np.testing.assert_array_equal(volume[:, -1, -1], np.array([1, 3, 4, 2, 0]) - 1024)
    np.testing.assert_array_equal(
        volume[0, ::-1, ::-1][1:], stored[1:].astype(np.int32) - 1024
    )
    assert spacing == pytest.approx((2.5, 0.661468, 0.661468))


def test_series_is_sorted_along_the_slice_normal(tmp_path, ct_small, write_series):
    # columns run towards -y: the normal is -z, so the slices sorted along it
    # run from head to foot, and the canonical volume reverses them (foot to
    # head); rows already run anteriorly, columns to the left (flipped)
    folder = tmp_path / "flipped"
    write_series(
        folder, ct_small, axial(0.0, 3.0, 6.0), orientation=(1, 0, 0, 0, -1, 0)
    )
    volume = read_volume(folder)
    np.testing.assert_array_equal(volume[:, 0, -1], np.array([0, 1, 2]) - 1024)
    # an oblique series: positions along the normal (0, -sin, cos), not along z
    angle = np.deg2rad(30)
    row, column = (1, 0, 0), (0, np.cos(angle), np.sin(angle))
    normal = np.cross(row, column)
    origin = np.array([-100.0, -50.0, 20.0])
    distances = [4.0, 0.0, 8.0, 2.0, 6.0]
    positions = [origin + distance * normal for distance in distances]
    write_series(tmp_path / "oblique", ct_small, positions, orientation=row + column)
    volume, spacing = read_volume(tmp_path / "oblique", return_spacing=True)
    np.testing.assert_array_equal(volume[:, -1, -1], np.array([1, 3, 0, 4, 2]) - 1024)
    assert spacing[0] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "orientation",
    [
        (1, 0, 0, 0, 1, 0),  # axial, as CT is stored
        (0, 1, 0, 0, 0, -1),  # sagittal
        (1, 0, 0, 0, 0, -1),  # coronal
        (0.866025, 0.5, 0, -0.5, 0.866025, 0),  # axial, rotated 30 degrees
    ],
)
def test_a_series_and_its_nifti_read_the_same(
    tmp_path, ct_small, write_series, orientation
):
    """One geometry written as a DICOM series and as NIfTI gives one volume."""
    nibabel = pytest.importorskip("nibabel")
    row, column = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row, column)
    origin = np.array([-20.0, 30.0, 12.0])
    steps = [0.0, 2.5, 5.0]
    folder = tmp_path / "series"
    positions = [origin + step * normal for step in steps]
    write_series(folder, ct_small, positions, orientation=orientation)
    slices = [pydicom.dcmread(folder / f"IM{k:04d}.dcm") for k in range(3)]
    row_spacing, column_spacing = (float(v) for v in slices[0].PixelSpacing)
    hu = np.stack([s.pixel_array.astype(np.int32) - 1024 for s in slices], axis=-1)
    # NIfTI voxel (i, j, k) = (column, row, slice); its affine maps to RAS+
    lps = np.eye(4)
    lps[:3, 0] = row * column_spacing
    lps[:3, 1] = column * row_spacing
    lps[:3, 2] = normal * 2.5
    lps[:3, 3] = origin
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    path = tmp_path / "same.nii.gz"
    nibabel.save(nibabel.Nifti1Image(hu.transpose(1, 0, 2), affine), path)
    from_nifti, nifti_spacing = read_volume(path, return_spacing=True)
    from_dicom, dicom_spacing = read_volume(folder, return_spacing=True)
    np.testing.assert_array_equal(from_dicom, from_nifti)
    assert dicom_spacing == pytest.approx(nifti_spacing, rel=1e-5)


def test_series_spacing_is_depth_rows_columns(tmp_path, ct_small, write_series):
    folder = tmp_path / "series"
    write_series(folder, ct_small, axial(0.0, 1.25, 2.5))
    for path in folder.iterdir():
        dataset = pydicom.dcmread(path)
        dataset.PixelSpacing = [0.5, 0.75]  # between rows, between columns
        dataset.save_as(path)
    _, spacing = read_volume(folder, return_spacing=True)
    assert spacing == pytest.approx((1.25, 0.5, 0.75))


def test_series_rescale_keeps_integers_or_goes_float(tmp_path, ct_small, write_series):
    folder = tmp_path / "series"
    stored = write_series(folder, ct_small, axial(0.0, 5.0))
    volume = read_volume(folder)
    assert volume.dtype.kind == "i"  # slope 1, intercept -1024: integer HU
    np.testing.assert_array_equal(
        volume[1, ::-1, ::-1][1:], stored[1:].astype(np.int64) - 1024
    )
    # 12 bits stored: the HU fit int16
    for path in folder.iterdir():
        dataset = pydicom.dcmread(path)
        dataset.BitsStored = 12
        dataset.HighBit = 11
        dataset.PixelRepresentation = 0
        twelve_bits = np.clip(dataset.pixel_array, 0, 4095).astype(np.uint16)
        dataset.PixelData = twelve_bits.tobytes()
        dataset.save_as(path)
    assert read_volume(folder).dtype == np.int16
    for path in folder.iterdir():
        dataset = pydicom.dcmread(path)
        dataset.RescaleSlope = 0.5
        dataset.save_as(path)
    volume = read_volume(folder)
    assert volume.dtype == np.float32
    expected = np.clip(stored[1:], 0, 4095) * 0.5 - 1024
    np.testing.assert_allclose(volume[1, ::-1, ::-1][1:], expected)


def test_other_files_in_the_folder_are_ignored(tmp_path, ct_small, write_series):
    folder = tmp_path / "series"
    write_series(folder, ct_small, axial(0.0, 5.0))
    (folder / "README.txt").write_text("not an image")
    (folder / ".hidden.dcm").write_bytes(b"")
    (folder / "sub").mkdir()
    assert [path.name for path in list_series_files(folder)] == [
        "IM0000.dcm",
        "IM0001.dcm",
    ]
    assert read_volume(folder).shape == (2, 128, 128)


def test_a_series_of_one_slice(tmp_path, ct_small, write_series):
    folder = tmp_path / "one"
    write_series(folder, ct_small, axial(0.0))
    volume, spacing = read_volume(folder, return_spacing=True)
    assert volume.shape == (1, 128, 128)
    assert spacing == pytest.approx((5.0, 0.661468, 0.661468))  # Slice Thickness


def test_a_series_of_one_slice_takes_spacing_between_slices(
    tmp_path, ct_small, write_series
):
    folder = tmp_path / "one"
    write_series(folder, ct_small, axial(0.0))
    path = folder / "IM0000.dcm"
    dataset = pydicom.dcmread(path)
    dataset.SpacingBetweenSlices = 3.0
    dataset.save_as(path)
    _, spacing = read_volume(folder, return_spacing=True)
    assert spacing[0] == 3.0


def test_an_unreadable_pixel_description_names_the_file(
    tmp_path, ct_small, write_series
):
    folder = tmp_path / "series"
    write_series(folder, ct_small, axial(0.0, 2.5))
    path = folder / "IM0001.dcm"
    dataset = pydicom.dcmread(path)
    del dataset.BitsStored
    dataset.save_as(path)
    with pytest.raises(ImageReadError, match=r"IM0001\.dcm' has an unreadable pixel"):
        read_volume(folder)


def test_mixed_series_name_the_folder_and_files(tmp_path, ct_small, write_series):
    folder = tmp_path / "mixed"
    write_series(folder, ct_small, axial(0.0, 5.0), series_uid="1.2.3.4")
    write_series(
        folder, ct_small, axial(10.0), names=["other.dcm"], series_uid="1.2.3.5"
    )
    pattern = (
        r"mixed' is not one DICOM series.*2 series.*1\.2\.3\.5: 1 file \('other\.dcm'\)"
    )
    with pytest.raises(ImageReadError, match=pattern) as caught:
        read_volume(folder)
    assert caught.value.path == str(folder)


def test_missing_slices_name_the_files_around_the_gap(
    tmp_path, ct_small, write_series, monkeypatch
):
    import pydicom.pixels

    decoded = []
    monkeypatch.setattr(pydicom.pixels, "pixel_array", decoded.append)
    folder = tmp_path / "gap"
    write_series(
        folder,
        ct_small,
        axial(0.0, 2.5, 5.0, 12.5, 15.0),
        names=["s1.dcm", "s2.dcm", "s3.dcm", "s6.dcm", "s7.dcm"],
    )
    with pytest.raises(
        ImageReadError,
        match=r"gap'.*slices are missing.*median step is 2\.500 mm.*7\.500 mm "
        r"between 's3\.dcm' \(5\.000\) and 's6\.dcm' \(12\.500\), about 2 slice",
    ):
        read_volume(folder)
    assert decoded == []  # refused from the headers, before any pixel data


def test_a_gap_below_one_and_a_half_steps_is_accepted(tmp_path, ct_small, write_series):
    folder = tmp_path / "uneven"
    write_series(folder, ct_small, axial(0.0, 2.5, 5.0, 8.5, 11.0))
    assert read_volume(folder).shape[0] == 5


def test_duplicate_positions_name_both_files(tmp_path, ct_small, write_series):
    folder = tmp_path / "dup"
    write_series(
        folder,
        ct_small,
        axial(0.0, 2.5, 2.5, 5.0),
        names=["a.dcm", "b.dcm", "c.dcm", "d.dcm"],
    )
    with pytest.raises(
        ImageReadError, match=r"dup'.*1 duplicate slice position.*'b\.dcm' and 'c\.dcm'"
    ):
        read_volume(folder)


def test_inconsistent_orientation_names_the_file(tmp_path, ct_small, write_series):
    folder = tmp_path / "tilted"
    write_series(folder, ct_small, axial(0.0, 2.5, 5.0))
    path = folder / "IM0002.dcm"
    dataset = pydicom.dcmread(path)
    dataset.ImageOrientationPatient = [1, 0, 0, 0, 0.98, 0.2]
    dataset.save_as(path)
    with pytest.raises(
        ImageReadError, match=r"tilted'.*Image Orientation \(Patient\).*'IM0002\.dcm'"
    ):
        read_volume(folder)


def test_inconsistent_pixel_spacing_names_the_file(tmp_path, ct_small, write_series):
    folder = tmp_path / "spacing"
    write_series(folder, ct_small, axial(0.0, 2.5, 5.0))
    path = folder / "IM0001.dcm"
    dataset = pydicom.dcmread(path)
    dataset.PixelSpacing = [0.7, 0.7]
    dataset.save_as(path)
    with pytest.raises(
        ImageReadError, match=r"spacing'.*Pixel Spacing differs.*'IM0001\.dcm'"
    ):
        read_volume(folder)


def test_inconsistent_rows_and_columns_name_the_file(tmp_path, ct_small, write_series):
    folder = tmp_path / "sizes"
    write_series(folder, ct_small, axial(0.0, 2.5, 5.0))
    path = folder / "IM0000.dcm"
    dataset = pydicom.dcmread(path)
    dataset.PixelData = dataset.pixel_array[:64].tobytes()
    dataset.Rows = 64
    dataset.save_as(path)
    with pytest.raises(
        ImageReadError, match=r"sizes'.*slice size.*\(64, 128, 1\) in 'IM0000\.dcm'"
    ):
        read_volume(folder)


def test_slices_without_position_are_refused(tmp_path, ct_small, write_series):
    folder = tmp_path / "nowhere"
    write_series(folder, ct_small, axial(0.0, 2.5))
    path = folder / "IM0001.dcm"
    dataset = pydicom.dcmread(path)
    del dataset.ImagePositionPatient
    dataset.save_as(path)
    with pytest.raises(ImageReadError, match=r"nowhere'.*Position.*'IM0001\.dcm'"):
        read_volume(folder)


def test_folder_without_dicom_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ImageReadError, match=r"empty' holds no DICOM files\.$"):
        read_volume(empty)
    (empty / "patient_1").mkdir()
    with pytest.raises(ImageReadError, match="1 subfolders: pass one series folder"):
        read_volume(empty)


def test_a_broken_file_is_named_before_decoding(tmp_path, ct_small, write_series):
    folder = tmp_path / "broken"
    write_series(folder, ct_small, axial(0.0, 2.5))
    (folder / "IM0002.dcm").write_bytes(b"\0" * 300)
    with pytest.raises(ImageReadError, match=r"IM0002\.dcm' is not a DICOM file"):
        read_volume(folder)


# --- volumes as lazily read files ---------------------------------------------


def test_image_files_read_series_folders(tmp_path, ct_small, write_series):
    folders = []
    for k in range(3):
        folder = tmp_path / f"patient_{k}"
        write_series(folder, ct_small, axial(0.0, 2.5, 5.0, 7.5))
        folders.append(str(folder))
    assert is_path_array(folders)
    files = ImageFiles(folders, image_shape=(4, 32, 32))
    assert files.shape == (3, 4, 32, 32, 1)
    assert files.ndim == 5
    assert files.spatial_dims == 3
    batch = files[[2, 0]]
    assert batch.shape == (2, 4, 32, 32, 1)
    assert batch.dtype == files.dtype
    assert batch.dtype.kind == "i"
