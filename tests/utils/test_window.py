"""The one CT window formula, used by the file readers and IntensityWindow."""

from __future__ import annotations

import numpy as np
import pytest

from sk_medcnn.io import read_image
from sk_medcnn.preprocessing import IntensityWindow, _intensity
from sk_medcnn.utils._window import WINDOW_PRESETS, apply_window


@pytest.mark.parametrize("dtype", [np.int16, np.float64])
def test_apply_window_maps_the_window_onto_the_unit_interval(dtype):
    hu = np.array([-1000, -160, 40, 240, 3000], dtype=dtype)
    out = apply_window(hu, 40.0, 400.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0])


def test_readers_and_the_transformer_share_the_window(tmp_path):
    # a CT slice read with window="lung" equals IntensityWindow(preset="lung")
    # applied to the same slice read in Hounsfield units
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    assert pydicom.dcmread(path).Modality == "CT"
    hu = read_image(path)
    windowed = read_image(path, window="lung")
    expected = IntensityWindow(preset="lung").fit_transform(hu[None])[0]
    np.testing.assert_array_equal(windowed, expected)
    # one table: the transformer's presets are the readers'
    assert _intensity.WINDOW_PRESETS is WINDOW_PRESETS
