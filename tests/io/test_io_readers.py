"""read_image on real files: PNG/JPEG/TIFF round trips, DICOM and NIfTI values."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from PIL import Image

from sk_medcnn.exceptions import ImageReadError
from sk_medcnn.io import SUPPORTED_EXTENSIONS, read_image
from sk_medcnn.io._readers import read_image_stack
from sk_medcnn.preprocessing import IntensityWindow

pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")


def raw_pixels(path):
    """Stored values as pydicom decodes them, before any LUT."""
    return pydicom.dcmread(path).pixel_array


# --- PNG, JPEG, TIFF ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((5, 7), np.uint8),
        ((5, 7), np.uint16),
        ((5, 7, 3), np.uint8),
        ((5, 7, 4), np.uint8),
        ((5, 7, 2), np.uint8),
    ],
)
def test_png_round_trip_is_exact(tmp_path, shape, dtype):
    rng = np.random.default_rng(0)
    image = rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(
        dtype
    )
    path = tmp_path / "image.png"
    iio.imwrite(path, image)
    out = read_image(path)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, image)


def test_png_16_bit_keeps_full_range(tmp_path):
    image = np.array([[0, 1, 255, 256], [4095, 40000, 65534, 65535]], dtype=np.uint16)
    iio.imwrite(tmp_path / "a.png", image)
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, image)


def test_one_bit_png_reads_as_uint8_zero_one(tmp_path):
    mask = np.array([[0, 1, 1], [1, 0, 0]], dtype=bool)
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = read_image(tmp_path / "mask.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, mask.astype(np.uint8))


def _png_bytes(image, color_type):
    """A PNG written by the specification: 16-bit samples, no filter."""
    height, width = image.shape[:2]
    rows = b"".join(b"\x00" + image[i].astype(">u2").tobytes() for i in range(height))

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_16_bit_colour_png_is_refused_not_truncated(tmp_path):
    # Pillow would silently return 8 bits per sample
    image = np.random.default_rng(0).integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    path.write_bytes(_png_bytes(image, color_type=2))
    with pytest.raises(ImageReadError, match=r"rgb16\.png.*16-bit colour PNG"):
        read_image(path)


def test_jpeg_reads_like_imageio(tmp_path):
    rows, columns = np.mgrid[0:16, 0:12]
    image = np.stack([rows * 15, columns * 20, rows + columns * 5], axis=-1)
    image = image.astype(np.uint8)  # smooth, so that JPEG keeps it closely
    path = tmp_path / "photo.jpg"
    iio.imwrite(path, image, quality=95)
    out = read_image(path)
    assert out.dtype == np.uint8
    assert out.shape == (16, 12, 3)
    np.testing.assert_array_equal(out, iio.imread(path))
    assert np.abs(out.astype(int) - image).mean() < 3  # lossy, but the same image


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_tiff_round_trip_keeps_dtype(tmp_path, dtype):
    image = (np.arange(30).reshape(5, 6) * 7 - 40).astype(dtype)
    tifffile.imwrite(tmp_path / "a.tif", image)
    out = read_image(tmp_path / "a.tif")
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, image)


def test_multipage_tiff_is_a_stack_and_index_picks_a_page(tmp_path):
    pages = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    tifffile.imwrite(tmp_path / "stack.tiff", pages, photometric="minisblack")
    stack, is_stack = read_image_stack(tmp_path / "stack.tiff")
    assert is_stack
    np.testing.assert_array_equal(stack, pages)
    np.testing.assert_array_equal(
        read_image(tmp_path / "stack.tiff", index=1), pages[1]
    )
    np.testing.assert_array_equal(
        read_image(tmp_path / "stack.tiff", index=-1), pages[2]
    )
    with pytest.raises(ImageReadError, match=r"index=3 is out of range.*3 pages"):
        read_image(tmp_path / "stack.tiff", index=3)


def test_planar_rgb_tiff_comes_back_channels_last(tmp_path):
    image = np.random.default_rng(0).integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "chunky.tif", image, photometric="rgb")
    tifffile.imwrite(
        tmp_path / "planar.tif",
        np.moveaxis(image, -1, 0),
        photometric="rgb",
        planarconfig="separate",
    )
    np.testing.assert_array_equal(read_image(tmp_path / "chunky.tif"), image)
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif"), image)


def test_format_comes_from_content_not_extension(tmp_path):
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    iio.imwrite(tmp_path / "real.png", image)
    for name in ["scan.dat", "scan.tif", "noextension"]:
        shutil.copy(tmp_path / "real.png", tmp_path / name)
        np.testing.assert_array_equal(read_image(tmp_path / name), image)


def test_single_image_accepts_index_zero_only(tmp_path):
    image = np.ones((3, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "a.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", index=0), image)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", index=-1), image)
    with pytest.raises(ImageReadError, match=r"index=1 is out of range.*one image"):
        read_image(tmp_path / "a.png", index=1)


def test_explicit_window_matches_intensity_window(tmp_path):
    image = np.array([[0, 100, 1000], [2000, 3000, 65535]], dtype=np.uint16)
    iio.imwrite(tmp_path / "a.png", image)
    out = read_image(tmp_path / "a.png", window=(1000, 2000))
    expected = IntensityWindow(level=1000, width=2000).fit_transform(image[None])[0]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


# --- errors on files ------------------------------------------------------------------


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ImageReadError, match=r"No such file: '.*nothere\.png'") as info:
        read_image(tmp_path / "nothere.png")
    assert info.value.path == str(tmp_path / "nothere.png")
    assert isinstance(info.value, ValueError)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match=r"is a folder.*load_image_folder"):
        read_image(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty.*0 bytes"):
        read_image(tmp_path / "empty")


def test_misnamed_text_file(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageReadError, match=r"notes\.png' is not a valid PNG file"):
        read_image(tmp_path / "notes.png")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageReadError, match=r"notes\.txt' is not an image"):
        read_image(tmp_path / "notes.txt")


def test_truncated_png_is_named(tmp_path):
    iio.imwrite(tmp_path / "a.png", np.zeros((64, 64), dtype=np.uint8) + 7)
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png"):
        read_image(tmp_path / "cut.png")


def test_nan_pixels_are_refused(tmp_path):
    image = np.array([[1.0, np.nan], [0.5, 2.0]], dtype=np.float32)
    tifffile.imwrite(tmp_path / "nan.tif", image)
    with pytest.raises(ImageReadError, match=r"nan\.tif' holds 1 NaN"):
        read_image(tmp_path / "nan.tif")


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"index": 1.0}, TypeError, "index must be None or an int"),
        ({"index": True}, TypeError, "index must be None or an int"),
        ({"slice_axis": 3}, ValueError, "slice_axis must be 0, 1 or 2"),
        ({"slice_axis": True}, TypeError, "slice_axis must be 0, 1 or 2"),
        ({"window": "lungs"}, ValueError, "window must be None, one of 'file'"),
        ({"window": (40,)}, TypeError, r"window must be None, 'file'"),
        ({"window": (40, 0)}, ValueError, "window width"),
        ({"window": (float("nan"), 10)}, ValueError, "window level must be finite"),
    ],
)
def test_parameter_errors(tmp_path, params, error, match):
    iio.imwrite(tmp_path / "a.png", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(error, match=match):
        read_image(tmp_path / "a.png", **params)


def test_path_type_error():
    with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike"):
        read_image(42)


def test_file_window_needs_dicom(tmp_path):
    iio.imwrite(tmp_path / "a.png", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ImageReadError, match=r"window='file' applies to DICOM"):
        read_image(tmp_path / "a.png", window="file")


def test_supported_extensions_are_lower_case_and_dotted():
    assert all(
        ext.startswith(".") and ext == ext.lower() for ext in SUPPORTED_EXTENSIONS
    )
    assert list(SUPPORTED_EXTENSIONS) == sorted(SUPPORTED_EXTENSIONS)


# --- DICOM ----------------------------------------------------------------------------


def test_ct_is_in_hounsfield_units(dicom_path):
    path = dicom_path("CT_small.dcm")
    header = pydicom.dcmread(path)
    slope, intercept = float(header.RescaleSlope), float(header.RescaleIntercept)
    assert (slope, intercept) == (1.0, -1024.0)
    hu = read_image(path)
    assert hu.dtype == np.float32
    assert hu.shape == (128, 128)
    expected = raw_pixels(path).astype(np.float64) * slope + intercept
    np.testing.assert_array_equal(hu, expected)
    # the HU range of CT_small.dcm: stored 128 .. 2191, minus 1024
    assert (hu.min(), hu.max()) == (-896.0, 1167.0)


def test_ct_explicit_and_preset_windows_match_intensity_window(dicom_path):
    path = dicom_path("CT_small.dcm")
    hu = read_image(path)
    for window, transformer in [
        ((40, 400), IntensityWindow(level=40, width=400)),
        ("lung", IntensityWindow(preset="lung")),
    ]:
        out = read_image(path, window=window)
        assert out.dtype == np.float32
        assert 0 <= out.min() <= out.max() <= 1
        np.testing.assert_array_equal(out, transformer.fit_transform(hu[None])[0])


def test_file_window_without_window_in_the_header(dicom_path):
    with pytest.raises(ImageReadError, match=r"CT_small\.dcm' has no Window Center"):
        read_image(dicom_path("CT_small.dcm"), window="file")


def test_mr_without_rescale_keeps_int16(dicom_path):
    path = dicom_path("MR_small.dcm")
    out = read_image(path)
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, raw_pixels(path))
    assert (out.min(), out.max()) == (127, 2145)


def test_file_window_is_dicom_linear_window(dicom_path):
    # MR_small.dcm: Window Center 600, Width 1600, no rescale, signed 16 bits
    path = dicom_path("MR_small.dcm")
    header = pydicom.dcmread(path)
    center, width = float(header.WindowCenter), float(header.WindowWidth)
    assert (center, width) == (600.0, 1600.0)
    x = raw_pixels(path).astype(np.float64)
    # DICOM PS3.3 C.11.2.1.2.1, LINEAR, onto [0, 1]
    expected = np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0, 1)
    out = read_image(path, window="file")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_monochrome1_is_inverted(dicom_path):
    # a computed radiograph: MONOCHROME1 (low values white), 12 bits stored,
    # Rescale Slope 0.684 and Intercept 200, Window 1600 / 2800
    path = dicom_path("6154")
    header = pydicom.dcmread(path)
    assert header.PhotometricInterpretation == "MONOCHROME1"
    assert (header.BitsStored, header.PixelRepresentation) == (12, 0)
    slope, intercept = float(header.RescaleSlope), float(header.RescaleIntercept)
    values = raw_pixels(path).astype(np.float64) * slope + intercept
    low, high = intercept, 4095 * slope + intercept
    out = read_image(path)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, low + high - values, rtol=1e-6)
    # the darkest stored pixel is the brightest output pixel
    raw = raw_pixels(path)
    assert out.flat[np.argmin(raw)] == out.max()


def test_monochrome1_file_window_is_inverted_after_windowing(dicom_path):
    path = dicom_path("6154")
    header = pydicom.dcmread(path)
    slope, intercept = float(header.RescaleSlope), float(header.RescaleIntercept)
    center, width = float(header.WindowCenter), float(header.WindowWidth)
    values = raw_pixels(path).astype(np.float64) * slope + intercept
    shown = np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1)
    out = read_image(path, window="file")
    np.testing.assert_allclose(out, 1 - shown, atol=1e-6)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_implicit.dcm",  # Implicit VR Little Endian
        "MR_small_bigendian.dcm",  # Explicit VR Big Endian
        "MR_small_expb.dcm",  # Explicit VR Big Endian
        "MR_small_padded.dcm",  # pixel data with excess padding
        "MR_small_RLE.dcm",  # RLE Lossless
        "MR_small_jp2klossless.dcm",  # JPEG 2000 Lossless (Pillow)
    ],
)
@pytest.mark.filterwarnings("ignore:The pixel data is 8320 bytes long:UserWarning")
def test_transfer_syntaxes_decode_to_the_same_values(dicom_path, name):
    reference = read_image(dicom_path("MR_small.dcm"))
    out = read_image(dicom_path(name))
    assert out.dtype == np.int16
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, reference)


def test_deflated_transfer_syntax(dicom_path):
    out = read_image(dicom_path("image_dfl.dcm"))
    assert out.shape == (512, 512)
    assert out.dtype == np.uint8


def test_jpeg_2000_lossy_ct_is_rescaled(dicom_path):
    path = dicom_path("693_J2KI.dcm")
    header = pydicom.dcmread(path)
    out = read_image(path)
    expected = raw_pixels(path) * float(header.RescaleSlope) + float(
        header.RescaleIntercept
    )
    np.testing.assert_array_equal(out, expected.astype(np.float32))


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless"),
        ("JPEGLSNearLossless_16.dcm", "JPEG-LS Lossy"),
        ("SC_rgb_jpeg_gdcm.dcm", "JPEG Lossless"),
    ],
)
def test_undecodable_syntax_names_file_and_plugin(dicom_path, name, syntax):
    pytest.importorskip("pydicom.pixels")
    from pydicom.pixels import get_decoder

    path = dicom_path(name)
    uid = pydicom.dcmread(path).file_meta.TransferSyntaxUID
    if get_decoder(uid).is_available:
        pytest.skip(f"a plugin decoding {uid.name} is installed here")
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert name in message
    assert syntax in message
    assert "pylibjpeg" in message
    assert "\n" not in message  # one line, for the command line


def test_12_bit_jpeg_extended_names_file_and_plugins(dicom_path):
    path = dicom_path("JPGExtended.dcm")
    message = None
    try:
        read_image(path)
    except ImageReadError as error:
        message = str(error)
    if message is None:
        pytest.skip("a plugin decoding 12-bit JPEG is installed here")
    assert "JPGExtended.dcm" in message
    assert "JPEG Extended" in message
    assert "pylibjpeg" in message


def test_multiframe_is_a_stack_and_index_picks_a_frame(dicom_path):
    path = dicom_path("rtdose.dcm")
    stack, is_stack = read_image_stack(path)
    assert is_stack
    assert stack.shape == (15, 10, 10)
    np.testing.assert_array_equal(stack, raw_pixels(path))
    np.testing.assert_array_equal(read_image(path, index=3), stack[3])
    np.testing.assert_array_equal(read_image(path, index=-1), stack[14])
    with pytest.raises(ImageReadError, match=r"index=15 is out of range.*15 frames"):
        read_image(path, index=15)


def test_multiframe_rle_colour(dicom_path):
    path = dicom_path("SC_rgb_rle_2frame.dcm")
    out = read_image(path)
    assert out.shape == (2, 100, 100, 3)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], read_image(path, index=1))


def test_ybr_jpeg_is_converted_to_rgb(dicom_path):
    ybr = read_image(dicom_path("SC_rgb_jpeg_dcmtk.dcm"))  # YBR_FULL, JPEG
    rgb = read_image(dicom_path("SC_rgb_rle.dcm"))  # the same picture, RGB, RLE
    assert ybr.shape == rgb.shape == (100, 100, 3)
    difference = np.abs(ybr.astype(int) - rgb.astype(int))
    assert difference.mean() < 1.5  # lossy JPEG, measured 0.57
    assert difference.max() <= 10


def test_palette_colour_is_expanded(dicom_path):
    from pydicom.pixels import apply_color_lut

    path = dicom_path("examples_palette.dcm")
    out = read_image(path)
    assert out.shape == (350, 800, 3)
    expected = apply_color_lut(raw_pixels(path), pydicom.dcmread(path))
    np.testing.assert_array_equal(out, expected)


def test_file_window_on_colour_dicom_is_refused(dicom_path):
    with pytest.raises(ImageReadError, match="window='file' applies to grayscale"):
        read_image(dicom_path("SC_rgb_rle.dcm"), window="file")


def test_dicom_without_preamble_is_read_by_extension(dicom_path, tmp_path):
    source = dicom_path("CT_small.dcm")
    data = source.read_bytes()
    assert data[128:132] == b"DICM"
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    # the data set alone: no preamble, no "DICM", no file meta information
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, pydicom.dcmread(source))
    bare = tmp_path / "bare.dcm"
    bare.write_bytes(buffer.getvalue())
    assert bare.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(read_image(bare), read_image(source))


def test_dicom_without_pixel_data(dicom_path):
    with pytest.raises(ImageReadError, match=r"rtplan\.dcm' is a DICOM file without"):
        read_image(dicom_path("rtplan.dcm"))


def test_truncated_dicom_is_named(dicom_path):
    with pytest.raises(ImageReadError, match=r"MR_truncated\.dcm.*less than expected"):
        read_image(dicom_path("MR_truncated.dcm"))


# --- NIfTI ----------------------------------------------------------------------------


def test_nifti_slices_are_canonical_slices(nifti_path):
    path = nifti_path("anatomical.nii")
    volume = nibabel.load(path)
    assert nibabel.aff2axcodes(volume.affine) == ("L", "A", "S")
    canonical = np.asanyarray(nibabel.as_closest_canonical(volume).dataobj)
    stack = read_image(path)
    assert stack.shape == (25, 33, 41)
    assert stack.dtype == np.int16  # stored big-endian >i2, returned native
    assert stack.dtype.isnative
    np.testing.assert_array_equal(stack, np.moveaxis(canonical, 2, 0))
    slice_12 = read_image(path, index=12)
    np.testing.assert_array_equal(slice_12, canonical[:, :, 12])
    # LAS to RAS: the first (left-right) axis of the stored data is flipped
    stored = np.asanyarray(volume.dataobj)
    np.testing.assert_array_equal(slice_12, stored[::-1, :, 12])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_nifti_slice_axis(nifti_path, axis):
    path = nifti_path("anatomical.nii")
    canonical = np.asanyarray(nibabel.as_closest_canonical(nibabel.load(path)).dataobj)
    stack = read_image(path, slice_axis=axis)
    np.testing.assert_array_equal(stack, np.moveaxis(canonical, axis, 0))
    np.testing.assert_array_equal(
        read_image(path, slice_axis=axis, index=-1), np.take(canonical, -1, axis=axis)
    )


def test_nifti_gz_and_float(nifti_path):
    gz = nifti_path("standard.nii.gz")
    out = read_image(gz)
    expected = np.asanyarray(nibabel.as_closest_canonical(nibabel.load(gz)).dataobj)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.moveaxis(expected, 2, 0))
    floats = read_image(nifti_path("reoriented_anat_moved.nii"), index=5)
    assert floats.dtype == np.float32  # stored >f4
    assert floats.dtype.isnative


def test_nifti_index_out_of_range(nifti_path):
    with pytest.raises(ImageReadError, match=r"index=25 is out of range.*25 slices"):
        read_image(nifti_path("anatomical.nii"), index=25)


def test_4d_nifti_is_refused(nifti_path):
    with pytest.raises(ImageReadError, match=r"example4d\.nii\.gz.*4-D series"):
        read_image(nifti_path("example4d.nii.gz"))


def test_truncated_nifti(nifti_path, tmp_path):
    data = nifti_path("anatomical.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(data[:5000])
    with pytest.raises(ImageReadError, match=r"cut\.nii' is truncated"):
        read_image(tmp_path / "cut.nii")


# --- optional dependencies ------------------------------------------------------------


def test_missing_pydicom_names_the_extra(dicom_path, monkeypatch):
    path = dicom_path("CT_small.dcm")
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(ImportError, match=r"sk-medcnn\[dicom\]"):
        read_image(path)


def test_missing_nibabel_names_the_extra(nifti_path, monkeypatch):
    path = nifti_path("standard.nii.gz")
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(ImportError, match=r"sk-medcnn\[nifti\]"):
        read_image(path)


def test_importing_io_imports_neither_pydicom_nor_nibabel():
    code = (
        "import sys, sk_medcnn.io; "
        "print(sorted(m for m in ('pydicom', 'nibabel', 'matplotlib') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- messages that say what is really wrong (issue 23) --------------------------------
def test_a_zero_filled_dcm_is_not_called_a_report(tmp_path):
    fake = tmp_path / "fake.dcm"
    fake.write_bytes(bytes(2048))
    with pytest.raises(ImageReadError, match="is not a DICOM file") as caught:
        read_image(fake)
    assert "zero-filled" in str(caught.value)
    assert "report" not in str(caught.value)


def test_a_dicom_without_pixel_data_is_still_named_so(tmp_path):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # basic SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    report = Dataset()
    report.file_meta = meta
    report.PatientName = "Test^Report"
    report.Modality = "SR"
    path = tmp_path / "report.dcm"
    report.save_as(path, enforce_file_format=True)
    with pytest.raises(ImageReadError, match="without pixel data"):
        read_image(path)


def test_a_path_under_a_file_is_named_as_such(tmp_path):
    from sk_medcnn.io import load_image_folder

    (tmp_path / "notes").write_text("x")
    with pytest.raises(ImageReadError, match=r"notes' is a file, not a folder"):
        read_image(tmp_path / "notes" / "x.png")
    with pytest.raises(ImageReadError, match=r"notes' is a file, not a folder"):
        load_image_folder(tmp_path / "notes" / "classes")


def test_nested_errors_name_the_file_once(tmp_path, monkeypatch):
    import sk_medcnn.io._readers as readers

    path = tmp_path / "scan.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")

    def denied(where):
        raise PermissionError(13, "Permission denied", str(where))

    monkeypatch.setattr(readers, "read_header", denied)
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert str(caught.value) == f"Cannot open '{path}': Permission denied."


def test_one_line_drops_the_repeated_path():
    from sk_medcnn.io._common import one_line

    error = OSError("cannot identify image file '/data/x.png'")
    assert one_line(error, "/data/x.png") == "cannot identify image file"
    assert one_line(ValueError("a\n  b"), "/data/x.png") == "a b"
    assert one_line(ValueError("a\n  b")) == "a b"
