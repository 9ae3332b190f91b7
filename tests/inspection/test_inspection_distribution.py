"""check_intensities: a word when images are unlike the training images."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.inspection import IntensityCheck, check_intensities
from sk_medcnn.preprocessing import Resize


@pytest.fixture(scope="module")
def fitted(phantoms):
    X, y = phantoms
    return MedicalCNNClassifier(
        max_epochs=1, architecture_params={"width": 4}, random_state=0
    ).fit(X, y)


def test_training_like_images_pass(fitted, phantoms):
    X, _ = phantoms
    check = check_intensities(fitted, X)
    assert isinstance(check, IntensityCheck)
    assert check.in_distribution.dtype == bool
    assert check.in_distribution.all()
    assert check.reasons == [""] * len(X)


@pytest.mark.parametrize(
    ("transform", "reason"),
    [
        (lambda X: X.astype(np.float32) * 8.0 - 1000.0, "training range"),  # HU
        (lambda X: X.astype(np.float32) / 255.0, "almost uniform"),  # 0-1 scale
        (lambda X: np.full_like(X, 128), "almost uniform"),  # blank
        (lambda X: X.astype(np.float32) * 40.0, "spread"),  # 16 bits
    ],
)
def test_other_intensities_are_flagged_with_a_reason(
    fitted, phantoms, transform, reason
):
    X, _ = phantoms
    mixed = np.concatenate([X[:3], transform(X[:3])])
    check = check_intensities(fitted, mixed)
    assert check.in_distribution.tolist() == [True] * 3 + [False] * 3
    assert all(reason in text for text in check.reasons[3:]), check.reasons


def test_a_pipeline_checks_what_the_classifier_sees(phantoms):
    X, y = phantoms
    pipe = make_pipeline(
        Resize((12, 12)), MedicalCNNClassifier(max_epochs=1, random_state=0)
    ).fit(X, y)
    check = check_intensities(pipe, np.concatenate([X[:2], X[:2] * 8.0 - 1000.0]))
    assert check.in_distribution.tolist() == [True, True, False, False]


def test_errors(fitted, phantoms):
    X, y = phantoms
    with pytest.raises(ValueError, match="max_shift"):
        check_intensities(fitted, X, max_shift=0)
    with pytest.raises(NotFittedError):
        check_intensities(MedicalCNNClassifier(), X)
    flat = X.reshape(len(X), -1)
    with pytest.raises(TypeError, match="LogisticRegression"):
        check_intensities(LogisticRegression().fit(flat, y), flat)
