"""ConformalClassifier and the prediction-set metrics (issue 22, part 3)."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.conformal import ConformalClassifier
from sk_medcnn.metrics import (
    clinical_report,
    mean_set_size,
    referral_rate,
    set_coverage,
)


class TableClassifier(ClassifierMixin, BaseEstimator):
    """A fitted classifier whose probabilities are a table indexed by X[:, 0]."""

    def __init__(self, table=None, classes=None):
        self.table = table
        self.classes = classes

    def fit(self, X, y):
        self.classes_ = np.asarray(self.classes)
        return self

    def predict_proba(self, X):
        return self.table[np.asarray(X)[:, 0].astype(int)]

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def noisy_task(n, n_classes, seed):
    """Labels drawn from the model's own (noisy) probabilities: exchangeable."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, n_classes))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(n_classes, p=row) for row in proba])
    X = np.arange(n)[:, None]
    return X, y, TableClassifier(proba, np.arange(n_classes)).fit(X, y)


@pytest.mark.parametrize("method", ["lac", "aps"])
@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_coverage_is_within_the_finite_sample_bounds(method, alpha):
    X, y, model = noisy_task(4000, 4, seed=1)
    n_calibration, coverages = 300, []
    rng = np.random.default_rng(2)
    for _ in range(300):
        order = rng.permutation(len(y))
        calibration, test = order[:n_calibration], order[n_calibration:]
        conformal = ConformalClassifier(model, alpha=alpha, method=method, cv="prefit")
        conformal.fit(X[calibration], y[calibration])
        sets = conformal.predict_set(X[test])
        coverages.append(set_coverage(y[test], sets, labels=conformal.classes_))
    mean = np.mean(coverages)
    # E[coverage] >= 1 - alpha, and <= 1 - alpha + 1/(n+1) for LAC's continuous
    # scores (APS without randomisation over-covers: it is conservative); the
    # mean of 300 splits has a standard error below 0.002 here
    assert mean >= 1 - alpha - 0.006
    if method == "lac":
        assert mean <= 1 - alpha + 1 / (n_calibration + 1) + 0.006


def test_lac_sets_are_smaller_and_aps_sets_are_never_empty():
    X, y, model = noisy_task(2000, 5, seed=3)
    lac = ConformalClassifier(model, method="lac", cv="prefit").fit(X[:1000], y[:1000])
    aps = ConformalClassifier(model, method="aps", cv="prefit").fit(X[:1000], y[:1000])
    lac_sets, aps_sets = lac.predict_set(X[1000:]), aps.predict_set(X[1000:])
    assert mean_set_size(lac_sets) < mean_set_size(aps_sets)
    assert aps_sets.sum(axis=1).min() >= 1
    # the most probable class is in every APS set
    top = model.predict_proba(X[1000:]).argmax(axis=1)
    assert aps_sets[np.arange(1000), top].all()


def test_alpha_after_fit_and_nested_sets():
    X, y, model = noisy_task(1500, 3, seed=4)
    conformal = ConformalClassifier(model, cv="prefit").fit(X[:500], y[:500])
    wide = conformal.predict_set(X[500:], alpha=0.05)
    narrow = conformal.predict_set(X[500:], alpha=0.3)
    assert (narrow <= wide).all()  # a lower error rate never shrinks a set
    assert conformal.threshold(0.05) >= conformal.threshold(0.3)
    np.testing.assert_array_equal(
        conformal.set_params(alpha=0.3).predict_set(X[500:]), narrow
    )


def test_too_few_calibration_samples_give_full_sets_and_a_warning():
    X, y, model = noisy_task(30, 3, seed=5)
    conformal = ConformalClassifier(model, alpha=0.05, cv="prefit").fit(X[:10], y[:10])
    with pytest.warns(UserWarning, match="at least 19 are needed"):
        sets = conformal.predict_set(X[10:])
    assert sets.all()
    with pytest.warns(UserWarning, match="too few for alpha=0.05"):
        assert math.isinf(conformal.threshold())


def test_split_mode_trains_on_the_rest_and_calibrates_on_the_held_out_part():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=500) > 0, "lesion", "benign")
    conformal = ConformalClassifier(
        LogisticRegression(), calibration_size=0.3, random_state=0
    ).fit(X, y)
    assert conformal.n_calibration_ == 150
    assert conformal.classes_.tolist() == ["benign", "lesion"]
    assert conformal.estimator_ is not conformal.estimator
    assert (
        conformal.predict(X[:5]).tolist()
        == conformal.estimator_.predict(X[:5]).tolist()
    )
    # same seed, same split and sets; picklable and clonable
    again = ConformalClassifier(
        LogisticRegression(), calibration_size=0.3, random_state=0
    ).fit(X, y)
    np.testing.assert_array_equal(
        again.calibration_scores_, conformal.calibration_scores_
    )
    restored = pickle.loads(pickle.dumps(conformal))
    np.testing.assert_array_equal(restored.predict_set(X), conformal.predict_set(X))
    assert clone(conformal).get_params()["calibration_size"] == 0.3
    assert cross_val_score(conformal, X, y, cv=3).mean() > 0.7


def test_split_mode_routes_sample_weight_with_the_samples():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    weights = np.where(np.arange(200) % 2 == 0, 1.0, 3.0)
    conformal = ConformalClassifier(LogisticRegression(), random_state=0)
    conformal.fit(X, y, sample_weight=weights)
    assert conformal.n_calibration_ == 40


def test_prefit_uses_the_fitted_estimator_as_it_is(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(max_epochs=1, device="cpu", random_state=0)
    clf.fit(X[:40], y[:40])
    conformal = ConformalClassifier(clf, alpha=0.2, cv="prefit").fit(X[40:], y[40:])
    assert conformal.estimator_ is clf
    assert conformal.n_calibration_ == 24
    sets = conformal.predict_set(X[:8])
    assert sets.shape == (8, 2)
    np.testing.assert_array_equal(
        conformal.predict_proba(X[:8]), clf.predict_proba(X[:8])
    )
    with pytest.raises(NotFittedError):
        ConformalClassifier(MedicalCNNClassifier(), cv="prefit").fit(X, y)


def test_default_estimator_is_the_medical_cnn(phantoms):
    X, y = phantoms
    conformal = ConformalClassifier(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conformal.set_params(estimator=None)
    assert conformal.get_params()["estimator"] is None
    conformal.set_params(
        estimator=MedicalCNNClassifier(max_epochs=1, device="cpu", random_state=0)
    ).fit(X, y)
    assert isinstance(conformal.estimator_, MedicalCNNClassifier)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"alpha": 0.0}, ValueError, "alpha"),
        ({"alpha": 1.5}, ValueError, "alpha"),
        ({"method": "apss"}, ValueError, "Did you mean 'aps'"),
        ({"cv": "prefitted"}, ValueError, "cv must be one of"),
        ({"calibration_size": 1}, ValueError, "calibration_size must be >= 2"),
        ({"calibration_size": 1.0}, ValueError, "calibration_size"),
        ({"calibration_size": "half"}, TypeError, "calibration_size"),
        ({"estimator": object()}, TypeError, "predict_proba"),
    ],
)
def test_bad_parameters_are_named(params, error, match):
    X, y, _ = noisy_task(50, 2, seed=0)
    conformal = ConformalClassifier(LogisticRegression()).set_params(**params)
    with pytest.raises(error, match=match):
        conformal.fit(X, y)


def test_bad_calibration_input_is_named():
    X, y, model = noisy_task(50, 3, seed=0)
    conformal = ConformalClassifier(model, cv="prefit")
    with pytest.raises(ValueError, match=r"labels \[7\] that the estimator"):
        conformal.fit(X[:3], np.array([0, 1, 7]))
    with pytest.raises(ValueError, match="fit parameters"):
        conformal.fit(X, y, sample_weight=np.ones(50))
    with pytest.raises(ValueError, match="needs a fitted estimator"):
        ConformalClassifier(cv="prefit").fit(X, y)
    with pytest.raises(ValueError, match="requires y"):
        conformal.fit(X, None)
    with pytest.raises(ValueError, match="Unknown label type"):
        conformal.fit(X, np.linspace(0, 1, 50))
    with pytest.raises(NotFittedError):
        ConformalClassifier(model).predict_set(X)


def test_set_metrics():
    sets = np.array([[True, False], [True, True], [False, False], [False, True]])
    assert set_coverage(["a", "b", "a", "b"], sets, labels=["a", "b"]) == 0.75
    assert mean_set_size(sets) == 1.0
    assert referral_rate(sets) == 0.5
    with pytest.raises(ValueError, match="boolean array"):
        mean_set_size(sets.astype(int))
    with pytest.raises(ValueError, match="holds no samples"):
        referral_rate(np.zeros((0, 2), dtype=bool))
    with pytest.raises(ValueError, match="labels must name the 2 columns"):
        set_coverage(["a"] * 4, sets, labels=["a"])
    with pytest.raises(ValueError, match=r"labels \['c'\]"):
        set_coverage(["a", "b", "c", "a"], sets, labels=["a", "b"])
    with pytest.raises(ValueError, match=r"same length|lengths"):
        set_coverage(["a"], sets, labels=["a", "b"])


def test_clinical_report_takes_prediction_sets():
    X, y, model = noisy_task(800, 2, seed=6)
    conformal = ConformalClassifier(model, alpha=0.1, cv="prefit").fit(X[:400], y[:400])
    sets = conformal.predict_set(X[400:])
    scores = model.predict_proba(X[400:])[:, 1]
    report = clinical_report(
        y[400:], scores, prediction_sets=sets, n_bootstraps=200, random_state=0
    )
    coverage = report["coverage"]
    assert coverage.value == pytest.approx(
        set_coverage(y[400:], sets, labels=conformal.classes_)
    )
    assert coverage.low <= coverage.value <= coverage.high
    assert report["set_size"].value == pytest.approx(mean_set_size(sets))
    assert report["referral_rate"].value == pytest.approx(referral_rate(sets))
    text = str(report)
    assert "Set coverage" in text
    assert "Referral rate" in text
    # the positive label's column is found whatever the label order
    flipped = clinical_report(
        1 - y[400:],
        1 - scores,
        prediction_sets=sets[:, ::-1],
        n_bootstraps=50,
        random_state=0,
    )
    assert flipped["coverage"].value == pytest.approx(coverage.value)
    with pytest.raises(ValueError, match="2 columns"):
        clinical_report(y[400:], scores, prediction_sets=np.ones((400, 3), bool))


@parametrize_with_checks([ConformalClassifier(LogisticRegression(), random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
