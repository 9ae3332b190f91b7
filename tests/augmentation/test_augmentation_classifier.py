"""The augmenters inside MedicalCNNClassifier and scikit-learn's search tools."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.augmentation import (
    RandomAffine,
    RandomErasing,
    RandomFlip,
    RandomIntensity,
    RandomNoise,
    RandomRotation,
)
from sk_medcnn.datasets import make_lesion_phantoms


@pytest.fixture(scope="module")
def lesions():
    return make_lesion_phantoms(64, image_size=16, random_state=0)


def _classifier(augmentation, **params):
    params = {"max_epochs": 2, "random_state": 0, **params}
    return MedicalCNNClassifier(augmentation=augmentation, **params)


def test_fit_with_augmentation_is_deterministic(lesions):
    X, y = lesions
    augmentation = make_pipeline(RandomFlip(), RandomRotation(10))
    first = _classifier(augmentation).fit(X, y)
    second = _classifier(augmentation).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    plain = _classifier(None).fit(X, y)
    assert not np.allclose(first.predict_proba(X), plain.predict_proba(X))
    assert first.augmentation_ is not augmentation  # fit used a clone


def test_every_augmenter_runs_in_the_classifier(lesions):
    X, y = lesions
    augmentation = make_pipeline(
        RandomFlip(("horizontal", "vertical")),
        RandomRotation(15),
        RandomAffine(),
        RandomIntensity(gamma=0.2),
        RandomNoise("rician"),
        RandomErasing(),
    )
    clf = _classifier(augmentation, max_epochs=1).fit(X, y)
    assert clf.predict_proba(X).shape == (64, 2)


def test_grid_search_reaches_the_augmenters_through_a_pipeline(lesions):
    X, y = lesions
    pipe = make_pipeline(
        _classifier(make_pipeline(RandomFlip(), RandomRotation(10)), max_epochs=1)
    )
    name = "medicalcnnclassifier__augmentation__randomrotation__degrees"
    assert pipe.get_params()[name] == 10
    pipe.set_params(**{name: 25.0})
    assert pipe.get_params()[name] == 25.0
    assert clone(pipe).get_params()[name] == 25.0
    search = GridSearchCV(pipe, {name: [0.0, 25.0]}, cv=2)
    assert search.get_params()[f"estimator__{name}"] == 25.0
    pipe.set_params(**{name: -5.0})
    with pytest.raises(ValueError, match="degrees"):
        pipe.fit(X, y)


def test_augmenter_in_a_pipeline_before_the_classifier(lesions):
    # placed as a Pipeline step, it augments the training copy once and
    # leaves prediction data alone
    X, y = lesions
    pipe = make_pipeline(
        RandomFlip(random_state=0), MedicalCNNClassifier(max_epochs=1, random_state=0)
    ).fit(X, y)
    direct = pipe[-1].predict_proba(X)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct)


def test_nested_pipelines_and_lists_are_flattened_in_order(lesions):
    X, y = lesions
    flat = _classifier([RandomFlip(), RandomRotation(10), RandomNoise()]).fit(X, y)
    nested = _classifier(
        make_pipeline(make_pipeline(RandomFlip(), "passthrough"), RandomRotation(10))
    )
    nested.set_params(augmentation=[nested.augmentation, [RandomNoise()]])
    nested.fit(X, y)
    np.testing.assert_array_equal(flat.predict_proba(X), nested.predict_proba(X))
    with pytest.raises(TypeError, match="holding None"):
        _classifier([RandomFlip(), None]).fit(X, y)


def test_mixup_does_not_change_the_draws_of_the_other_augmenters(lesions):
    # MixUp owns its generator: with alpha=0 (no mixing) the other augmenters draw
    # exactly what they draw without MixUp, so the fits are identical
    from sk_medcnn.augmentation import MixUp

    X, y = lesions
    augmenters = [RandomFlip(), RandomRotation(10)]
    plain = _classifier(augmenters).fit(X, y)
    with_mixup = _classifier([MixUp(alpha=0.0), *augmenters]).fit(X, y)
    np.testing.assert_allclose(
        with_mixup.predict_proba(X), plain.predict_proba(X), rtol=1e-5, atol=1e-6
    )
