import pickle

import numpy as np
import pytest

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.utils._batches import RowReader, _file_rows


@pytest.fixture
def memmap(tmp_path):
    data = np.arange(30 * 4 * 5, dtype=np.int16).reshape(30, 4, 5)
    path = tmp_path / "x.bin"
    path.write_bytes(b"HEADER!!" + data.tobytes())
    mapped = np.memmap(path, dtype=np.int16, mode="r", offset=8, shape=(30, 4, 5))
    return data, mapped


def test_reads_rows_of_memmaps_and_their_views_from_the_file(memmap):
    data, mapped = memmap
    rows = np.array([29, 0, 7, 7, -1])
    for array, expected in [
        (mapped, data),
        (mapped.reshape(30, 4, 5, 1), data.reshape(30, 4, 5, 1)),  # channel axis
        (mapped[10:20], data[10:20]),  # a view with its own start
        (np.asarray(mapped), data),  # an ndarray view of the memmap
    ]:
        reader = RowReader(array)
        assert reader._location is not None
        np.testing.assert_array_equal(
            reader(rows % len(array)), expected[rows % len(expected)]
        )
        np.testing.assert_array_equal(reader(slice(2, 6)), expected[2:6])
        np.testing.assert_array_equal(reader(slice(0, 0)), expected[0:0])
    with pytest.raises(IndexError, match="out of range"):
        RowReader(mapped)(np.array([30]))


def test_other_arrays_are_indexed_as_usual(memmap):
    data, mapped = memmap
    assert _file_rows(data) is None
    assert _file_rows(mapped[:, ::2]) is None  # not C-contiguous: no file rows
    np.testing.assert_array_equal(RowReader(data)(np.array([3, 1])), data[[3, 1]])
    strided = mapped[:, ::2]
    np.testing.assert_array_equal(RowReader(strided)(np.array([5])), data[:, ::2][[5]])


def test_reader_pickles_and_reopens(memmap):
    data, mapped = memmap
    reader = RowReader(mapped)
    reader(np.array([1]))
    copy = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(copy(np.array([4, 2])), data[[4, 2]])


def test_fit_on_a_memmap_equals_fit_in_memory(tmp_path, phantoms):
    X, y = phantoms
    path = tmp_path / "phantoms.u8"
    X.tofile(path)
    mapped = np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)
    params = {"max_epochs": 2, "random_state": 0, "device": "cpu"}
    in_memory = MedicalCNNClassifier(**params).fit(X, y)
    from_file = MedicalCNNClassifier(**params).fit(mapped, y)
    np.testing.assert_array_equal(
        from_file.predict_proba(mapped), in_memory.predict_proba(X)
    )
