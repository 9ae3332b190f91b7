"""Fuzzing read_image with mutated real files: an array or a ValueError naming the file.

Real PNG, JPEG and DICOM bytes get bit flips, overwritten bytes, insertions and
truncations (biased towards the headers, where a flip changes most). Whatever
comes in, read_image must return a finite array or raise an ImageReadError (a
ValueError) whose message names the file: never a TypeError, IndexError,
struct.error, ... from deep inside a decoder, and never hang (inputs are small,
and headers claiming gigabytes are refused before anything is allocated).
"""

from __future__ import annotations

import io
import struct
from collections import Counter
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sk_medcnn.exceptions import ImageReadError
from sk_medcnn.io import read_image

#: Headers hold most of the structure: mutate there more often than not.
HEADER_SPAN = 1024


def _png(image):
    buffer = io.BytesIO()
    iio.imwrite(buffer, image, extension=".png")
    return buffer.getvalue()


def _jpeg(image):
    buffer = io.BytesIO()
    iio.imwrite(buffer, image, extension=".jpg")
    return buffer.getvalue()


def _tiff(image):
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Real files as bytes, with the extension each is stored under."""
    rows, columns = np.mgrid[0:16, 0:16]
    found = {
        "png8": (_png((rows * 16 + columns).astype(np.uint8)), ".png"),
        "png16": (_png((rows * 4000 + columns * 7).astype(np.uint16)), ".png"),
        "png_rgb": (
            _png(
                np.stack([rows * 9, columns * 9, rows + columns], -1).astype(np.uint8)
            ),
            ".png",
        ),
        "jpeg": (_jpeg((rows * 16).astype(np.uint8)), ".jpg"),
        "tiff": (_tiff((rows * 100).astype(np.uint16)), ".tif"),
    }
    pydicom_data = pytest.importorskip("pydicom.data")
    for name in ["CT_small.dcm", "MR_small_RLE.dcm", "6154"]:
        path = pydicom_data.get_testdata_file(name, download=False)
        if path is not None:
            with open(path, "rb") as handle:
                found[name] = (handle.read(), ".dcm")
    nibabel = pytest.importorskip("nibabel")
    nifti = Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"
    if nifti.is_file():
        found["anatomical.nii"] = (nifti.read_bytes(), ".nii")
    return found


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _mutate(data, mutations, header_bias):
    data = bytearray(data)
    for kind, position, payload in mutations:
        span = min(len(data), HEADER_SPAN) if header_bias else len(data)
        where = position % max(span, 1)
        if kind == "flip" and data:
            data[where] ^= 1 << (payload[0] % 8)
        elif kind == "overwrite" and data:
            data[where : where + len(payload)] = payload
        elif kind == "insert":
            data[where:where] = payload
        elif kind == "truncate":
            del data[where:]
    return bytes(data)


MUTATION = st.tuples(
    st.sampled_from(["flip", "flip", "overwrite", "insert", "truncate"]),
    st.integers(min_value=0, max_value=2**20),
    st.binary(min_size=1, max_size=12),
)


def _check(path, outcomes):
    message = None
    try:
        image = read_image(path)
    except ValueError as error:  # ImageReadError subclasses ValueError
        message, kind = str(error), type(error).__name__
    if message is not None:
        assert path.name in message, f"error does not name the file: {message}"
        outcomes[kind] += 1
        return
    assert isinstance(image, np.ndarray)
    assert image.ndim in (2, 3, 4)
    assert image.dtype.kind in "iuf"
    assert image.dtype.isnative
    if image.dtype.kind == "f":
        assert np.isfinite(image).all()
    outcomes["array"] += 1


@pytest.mark.filterwarnings("ignore")  # pydicom and Pillow warn about what they fix
def test_mutated_files_give_an_array_or_a_named_value_error(seeds, fuzz_folder):
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        seed=st.sampled_from(sorted(seeds)),
        mutations=st.lists(MUTATION, min_size=1, max_size=4),
        header_bias=st.booleans(),
        keep_extension=st.booleans(),
    )
    def run(seed, mutations, header_bias, keep_extension):
        data, extension = seeds[seed]
        path = fuzz_folder / f"{seed}_mutated{extension if keep_extension else '.bin'}"
        path.write_bytes(_mutate(data, mutations, header_bias))
        _check(path, outcomes)

    run()
    n_tried = sum(outcomes.values())
    print(f"\nfuzzed read_image with {n_tried} mutated files: {dict(outcomes)}")
    assert n_tried >= 200
    # the mutations must exercise both outcomes, or the test proves little
    assert outcomes["array"] > 0
    assert outcomes["ImageReadError"] > 0


@pytest.mark.filterwarnings("ignore")
def test_truncated_real_files_fail_or_lose_nothing(seeds, fuzz_folder):
    n_arrays = 0
    for name, (data, extension) in seeds.items():
        path = fuzz_folder / f"{name}_whole{extension}"
        path.write_bytes(data)
        whole = read_image(path)
        for length in np.unique(np.linspace(0, len(data) - 1, 25).astype(int)):
            path = fuzz_folder / f"{name}_cut{extension}"
            path.write_bytes(data[:length])
            message = None
            try:
                image = read_image(path)
            except ValueError as error:
                message = str(error)
            if message is not None:
                assert path.name in message
                continue
            # a cut that only removed what the image does not need (a PNG's
            # IEND chunk, DICOM padding) may read; anything else must not
            n_arrays += 1
            np.testing.assert_array_equal(image, whole)
    assert n_arrays < 25


# --- regressions found by longer runs of the fuzzer (20,000 inputs) -------------------


def test_tiff_announcing_a_billion_rows_is_refused_before_decoding(tmp_path):
    # a flipped ImageLength made tifffile allocate and unpack 18 GB, for minutes
    data = bytearray(_tiff(np.zeros((16, 16), dtype=np.uint16)))
    entry = struct.pack("<HHI", 257, 4, 1)  # ImageLength, LONG, one value
    position = data.index(entry) + len(entry)
    data[position : position + 4] = struct.pack("<I", 2**30)
    path = tmp_path / "tall.tif"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"tall\.tif' announces.*header is"):
        read_image(path)


def test_corrupt_gzip_is_an_image_read_error(tmp_path):
    nibabel = pytest.importorskip("nibabel")
    source = Path(nibabel.__file__).parent / "tests" / "data" / "standard.nii.gz"
    if not source.is_file():
        pytest.skip("standard.nii.gz is not in nibabel's installed test data")
    data = bytearray(source.read_bytes())
    data[22] ^= 0x10  # the deflate stream: zlib.error, not OSError
    path = tmp_path / "corrupt.nii.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"corrupt\.nii\.gz"):
        read_image(path)


def test_dicom_whose_transfer_syntax_is_another_uid(tmp_path):
    pydicom_data = pytest.importorskip("pydicom.data")
    source = pydicom_data.get_testdata_file("CT_small.dcm", download=False)
    if source is None:
        pytest.skip("CT_small.dcm is not in pydicom's installed test data")
    data = Path(source).read_bytes()
    # Explicit VR Little Endian -> a UID of the same length that is a SOP class
    data = data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.5.1.4\x00", 1)
    path = tmp_path / "odd_syntax.dcm"
    path.write_bytes(data)
    with pytest.raises(ImageReadError, match=r"odd_syntax\.dcm"):
        read_image(path)
