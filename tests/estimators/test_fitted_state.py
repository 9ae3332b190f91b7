"""The invariants of a fitted estimator, checked in one place."""

import numpy as np
import pytest

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor
from sk_medcnn.estimators._fitted import FittedStateError, check_fitted_state

FAST = {"max_epochs": 1, "batch_size": 8, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.random((24, 8, 8)).astype(np.float32)
    y = np.arange(24) % 2
    classifier = MedicalCNNClassifier(**FAST).fit(X, y)
    regressor = MedicalCNNRegressor(**FAST).fit(X, y.astype(float))
    return classifier, regressor


def test_a_fitted_estimator_passes(fitted):
    for estimator in fitted:
        check_fitted_state(estimator)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("image_shape_", (8, 8)),
        ("n_features_in_", 65),
        ("input_std_", np.array([np.nan])),
        ("classes_", np.array([1, 1])),
        ("temperature_", 100.0),
        ("tta_", "auto"),
        ("ood_threshold_", -1.0),
        ("memory_format_", "auto"),
    ],
)
def test_a_broken_attribute_is_named(fitted, name, value):
    estimator = fitted[0]
    saved = getattr(estimator, name)
    setattr(estimator, name, value)
    try:
        with pytest.raises(FittedStateError, match=name) as info:
            check_fitted_state(estimator)
        assert info.value.name == name
        assert not info.value.parameter
    finally:
        setattr(estimator, name, saved)
    check_fitted_state(estimator)


def test_a_regressor_checks_its_target_scaling(fitted):
    regressor = fitted[1]
    saved = regressor.target_scale_
    regressor.target_scale_ = np.array([1.0, 2.0])
    try:
        with pytest.raises(FittedStateError, match="target_scale_"):
            check_fitted_state(regressor)
    finally:
        regressor.target_scale_ = saved


def test_a_factory_architecture_is_a_parameter_error(fitted):
    estimator = fitted[0]
    saved = estimator.architecture
    estimator.architecture = lambda *args, **kwargs: None
    try:
        with pytest.raises(FittedStateError) as info:
            check_fitted_state(estimator)
        assert info.value.parameter
        assert info.value.name == "architecture"
    finally:
        estimator.architecture = saved
