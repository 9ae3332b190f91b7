"""default_augmentation and MedicalCNNClassifier(augmentation="auto")."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor
from sk_medcnn.augmentation import (
    RandomAffine,
    RandomIntensity,
    RandomNoise,
    default_augmentation,
)
from sk_medcnn.datasets import make_lesion_phantoms
from sk_medcnn.persistence import load_model, save_model


@pytest.fixture(scope="module")
def lesions():
    return make_lesion_phantoms(48, image_size=16, random_state=0)


def test_default_augmentation_is_the_documented_pipeline():
    pipeline = default_augmentation()
    affine, intensity, noise = (step for _, step in pipeline.steps)
    assert isinstance(affine, RandomAffine)
    assert (
        affine.get_params()
        == RandomAffine(
            translate=(0.05, 0.05), degrees=10.0, scale=(0.95, 1.05), p=0.5
        ).get_params()
    )
    assert isinstance(intensity, RandomIntensity)
    assert (intensity.brightness, intensity.contrast, intensity.gamma) == (
        0.15,
        0.3,
        0.3,
    )
    assert isinstance(noise, RandomNoise)
    assert (noise.kind, noise.std, noise.p) == ("gaussian", 0.02, 0.5)


def test_volumes_shift_along_the_depth_with_the_images_intensity_changes():
    images = dict(default_augmentation(spatial_dims=2).steps)
    affine, intensity, noise = (
        step for _, step in default_augmentation(spatial_dims=3).steps
    )
    assert affine.translate == (0.05, 0.05, 0.05)
    assert (affine.degrees, affine.scale, affine.p) == (10.0, (0.95, 1.05), 0.5)
    assert intensity.get_params() == images["randomintensity"].get_params()
    assert noise.get_params() == images["randomnoise"].get_params()
    assert (intensity.contrast, noise.std) == (0.3, 0.02)
    assert default_augmentation(spatial_dims=3.0)[0].translate == affine.translate


def test_default_augmentation_returns_a_new_pipeline_every_call():
    first, second = default_augmentation(), default_augmentation()
    assert first is not second
    for (_, a), (_, b) in zip(first.steps, second.steps, strict=True):
        assert a is not b


def test_auto_is_the_classifier_default_and_survives_clone():
    clf = MedicalCNNClassifier()
    assert clf.get_params()["augmentation"] == "auto"
    assert clone(clf).augmentation == "auto"
    assert MedicalCNNRegressor().augmentation is None


@pytest.mark.slow
def test_auto_trains_with_a_fresh_default_pipeline(lesions):
    X, y = lesions
    params = {"max_epochs": 1, "batch_size": 16, "tta": None, "random_state": 0}
    auto = MedicalCNNClassifier(**params).fit(X, y)
    assert auto.augmentation == "auto"  # the parameter is left as it was
    names = [name for name, _ in auto.augmentation_.steps]
    assert names == [name for name, _ in default_augmentation().steps]
    again = MedicalCNNClassifier(**params).fit(X, y)
    assert again.augmentation_ is not auto.augmentation_
    explicit = MedicalCNNClassifier(augmentation=default_augmentation(), **params)
    np.testing.assert_array_equal(
        auto.predict_proba(X), explicit.fit(X, y).predict_proba(X)
    )
    plain = MedicalCNNClassifier(augmentation=None, **params).fit(X, y)
    assert plain.augmentation_ is None
    assert not np.allclose(auto.predict_proba(X), plain.predict_proba(X))


@pytest.mark.slow
def test_auto_in_the_regressor(lesions):
    X, y = lesions
    reg = MedicalCNNRegressor(augmentation="auto", max_epochs=1, random_state=0)
    assert len(reg.fit(X, y * 1.0).augmentation_.steps) == 3


@pytest.mark.parametrize("value", ["none", "AUTO", ""])
def test_other_strings_are_refused(lesions, value):
    X, y = lesions
    with pytest.raises(ValueError, match=r"augmentation must be None, 'auto'"):
        MedicalCNNClassifier(augmentation=value, max_epochs=1).fit(X, y)


@pytest.mark.slow
def test_auto_model_saves_and_loads(lesions, tmp_path):
    X, y = lesions
    clf = MedicalCNNClassifier(max_epochs=1, tta=None, random_state=0).fit(X, y)
    path = tmp_path / "auto.skmed"
    save_model(clf, path)
    loaded = load_model(path)
    assert loaded.augmentation == "auto"
    assert [n for n, _ in loaded.augmentation_.steps] == [
        n for n, _ in clf.augmentation_.steps
    ]
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@pytest.mark.slow
def test_auto_leaves_feature_rows_and_tiny_images_alone():
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    for X in (rng.normal(size=(40, 6)), rng.normal(size=(40, 7, 30))):
        clf = MedicalCNNClassifier(max_epochs=1, tta=None, random_state=0).fit(X, y)
        assert clf.augmentation_ is None
    X = rng.normal(size=(40, 8, 8))
    clf = MedicalCNNClassifier(max_epochs=1, tta=None, random_state=0).fit(X, y)
    assert clf.augmentation_ is not None
