"""Inputs at the edges (issue 23): out of float32 range, too large, empty sizes."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor
from sk_medcnn.architectures import build_simple_cnn
from sk_medcnn.preprocessing import Pad, Resize
from sk_medcnn.utils import _memory

ESTIMATORS = [MedicalCNNClassifier, MedicalCNNRegressor]


def _targets(estimator_class, n):
    y = np.arange(n) % 2
    return y if estimator_class is MedicalCNNClassifier else y.astype(float)


class _Images(torch.utils.data.Dataset):
    """A lazy source of float64 images, one of them scaled by ``factor``."""

    def __init__(self, n, factor, y):
        self.n, self.factor, self.y = n, factor, y

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        value = self.factor if index == self.n - 1 else 1.0 + index / self.n
        image = torch.full((1, 6, 6), value, dtype=torch.float64)
        return image, self.y[index]


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
@pytest.mark.parametrize("source", ["array", "dataset", "files"])
def test_pixels_beyond_float32_are_refused_naming_X(estimator_class, source, tmp_path):
    rng = np.random.default_rng(0)
    y = _targets(estimator_class, 8)
    X = rng.random((8, 6, 6)) * 1e300
    X[-1] = 1e300
    if source == "dataset":
        X = _Images(8, 1e300, y)
    elif source == "files":  # float64 TIFFs, read lazily
        paths = [str(tmp_path / f"{i}.tif") for i in range(8)]
        for path, image in zip(paths, X, strict=True):
            tifffile.imwrite(path, image)
        X = paths
    estimator = estimator_class(max_epochs=1, device="cpu", random_state=0)
    with pytest.raises(ValueError, match=r"^X holds pixel values up to 1e\+300"):
        estimator.fit(X, None if source == "dataset" else y)
    assert not hasattr(estimator, "input_std_")  # refused, not fitted with NaN
    # values float32 holds still train, to finite statistics and predictions
    X_ok = rng.random((8, 6, 6)) * 1e30
    estimator.fit(X_ok, y)
    assert np.all(np.isfinite(estimator.input_std_))
    assert np.all(np.isfinite(estimator.predict(X_ok)))
    with pytest.raises(ValueError, match="X holds pixel values up to"):
        estimator.predict(X_ok * 1e10)


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_huge_images_are_refused_before_any_work(estimator_class):
    # the review's case, as a view that costs no memory: 2 images of 20000 x 20000
    X = np.broadcast_to(np.zeros((1, 1, 1), np.uint8), (2, 20000, 20000))
    estimator = estimator_class(max_epochs=1, device="cpu")
    with pytest.raises(ValueError, match=r"20000x20000 pixels.*batch_size=2 needs"):
        estimator.fit(X, _targets(estimator_class, 2))
    assert not hasattr(estimator, "net_")


def test_the_memory_limit_can_be_set(monkeypatch):
    X = np.zeros((4, 64, 64), np.uint8)
    y = np.array([0, 1, 0, 1])
    monkeypatch.setenv(_memory.MEMORY_LIMIT_VARIABLE, "1M")
    assert _memory.memory_limit() == 2**20
    with pytest.raises(ValueError, match=r"the 1\.0 MiB of the limit SK_MEDCNN"):
        MedicalCNNClassifier(max_epochs=1, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match=r"^Resize\(shape=\(600, 600\)\) on 4 images"):
        Resize((600, 600)).fit_transform(X)
    monkeypatch.setenv(_memory.MEMORY_LIMIT_VARIABLE, "8 GiB")
    assert _memory.memory_limit() == 8 * 2**30
    MedicalCNNClassifier(max_epochs=1, device="cpu").fit(X, y)
    monkeypatch.setenv(_memory.MEMORY_LIMIT_VARIABLE, "lots")
    with pytest.raises(ValueError, match="SK_MEDCNN_MEMORY_LIMIT='lots'"):
        _memory.memory_limit()
    monkeypatch.delenv(_memory.MEMORY_LIMIT_VARIABLE)
    assert _memory.memory_limit() > 2**20  # the machine's memory


def test_training_memory_counts_the_network():
    factory = build_simple_cnn
    small = _memory.training_memory(factory, {}, (512, 512, 1), 2, 4)
    large = _memory.training_memory(factory, {}, (1024, 1024, 1), 2, 4)
    # the first block's activations alone: 4 images x 32 channels x pixels x 4 bytes
    assert small > 4 * 32 * 512 * 512 * 4
    assert large > 3.5 * small  # four times the pixels
    assert (
        _memory.training_memory(lambda *a: "not a module", {}, (9000, 9000, 1), 2, 4)
        is None
    )


@pytest.mark.parametrize(
    ("transformer", "needle"),
    [
        (Resize((100000, 100000)), r"Resize\(shape=\(100000, 100000\)\)"),
        (Pad(10**6), r"Pad\(shape=1000000\)"),
    ],
)
def test_transformers_refuse_outputs_beyond_memory(transformer, needle):
    X = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(ValueError, match=needle + r" on 2 images of 8x8x1 uint8 needs"):
        transformer.fit_transform(X)


def test_resize_chunks_count_the_enlarged_images():
    from sk_medcnn.preprocessing._geometry import _resize_temporaries

    # 28 -> 2000: the enlarged image dominates what a chunk holds
    assert _resize_temporaries((1, 28, 28, 1), (2000, 2000), np.float32) >= (
        2 * 2000 * 2000 * 4
    )


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_empty_images_are_refused(estimator_class):
    y = _targets(estimator_class, 4)
    for X in (np.zeros((4, 16, 16, 0)), np.zeros((4, 0, 16))):
        with pytest.raises(ValueError, match=r"X holds empty images of shape"):
            estimator_class(max_epochs=1, device="cpu").fit(X, y)


def test_regressor_refuses_y_without_columns():
    X = np.random.default_rng(0).random((6, 8, 8))
    with pytest.raises(ValueError, match=r"y has shape \(6, 0\): no target column"):
        MedicalCNNRegressor(max_epochs=1, device="cpu").fit(X, np.zeros((6, 0)))


def test_simple_cnn_states_its_true_minimum_size():
    build_simple_cnn(1, 2, (1, 1))  # "same" takes a single pixel
    with pytest.raises(ValueError, match="at least 22x22 pixels"):
        build_simple_cnn(1, 2, (21, 40), padding="valid")
    build_simple_cnn(1, 2, (22, 22), padding="valid")
    with pytest.raises(ValueError, match=r"sizes >= 1; got \(0, 5\)"):
        build_simple_cnn(1, 2, (0, 5))
