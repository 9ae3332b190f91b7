"""MedicalCNNRegressor: continuous targets."""

from __future__ import annotations

import numpy as np
import pytest

from sk_medcnn import MedicalCNNRegressor


@pytest.fixture(scope="module")
def brightness_data():
    rng = np.random.RandomState(0)
    X = rng.rand(160, 10, 10).astype(np.float32)
    X *= rng.uniform(0.2, 1.0, size=(160, 1, 1)).astype(np.float32)
    y = 40.0 + 100.0 * X.mean(axis=(1, 2))  # a unit far from [0, 1]
    return X, y


def test_learns_mean_brightness(brightness_data):
    X, y = brightness_data
    reg = MedicalCNNRegressor(max_epochs=15, lr=3e-3, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.8
    assert reg.predict(X).shape == (len(X),)
    assert reg.target_mean_.shape == (1,)


def test_multi_output_and_huber(brightness_data):
    X, y = brightness_data
    Y = np.column_stack([y, -y])
    reg = MedicalCNNRegressor(loss="huber", max_epochs=2, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (len(X), 2)


def test_deterministic(brightness_data):
    X, y = brightness_data
    first = MedicalCNNRegressor(max_epochs=1, random_state=3).fit(X, y).predict(X)
    second = MedicalCNNRegressor(max_epochs=1, random_state=3).fit(X, y).predict(X)
    np.testing.assert_array_equal(first, second)


def test_bad_targets(brightness_data):
    X, y = brightness_data
    with pytest.raises(ValueError, match="NaN or infinity"):
        MedicalCNNRegressor(max_epochs=1).fit(X, np.where(y > 60, np.nan, y))
    with pytest.raises(ValueError, match="y must hold numbers"):
        MedicalCNNRegressor(max_epochs=1).fit(X, np.array(["a"] * len(X)))
    with pytest.raises(ValueError, match="Did you mean 'huber'"):
        MedicalCNNRegressor(loss="hubert").fit(X, y)
