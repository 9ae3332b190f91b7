"""Clinical metrics, the bootstrap report and the scorers."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import GridSearchCV

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.metrics import (
    ClinicalReport,
    MetricEstimate,
    _report_metrics,
    clinical_report,
    expected_calibration_error,
    make_sensitivity_at_specificity_scorer,
    make_specificity_at_sensitivity_scorer,
    npv_score,
    npv_scorer,
    ppv_score,
    ppv_scorer,
    sensitivity_at_specificity,
    sensitivity_score,
    sensitivity_scorer,
    specificity_at_sensitivity,
    specificity_score,
    specificity_scorer,
)

METRICS = ["accuracy", "auc", "sensitivity", "specificity", "ppv", "npv", "f1",
           "balanced_accuracy"]  # fmt: skip


def _scores(n_samples, *, seed=0, separation=1.0, prevalence=0.5):
    rng = np.random.RandomState(seed)
    y = (rng.rand(n_samples) < prevalence).astype(int)
    score = 1 / (1 + np.exp(-(separation * (2 * y - 1) + rng.randn(n_samples))))
    return y, score


# --- sensitivity, specificity, PPV, NPV -------------------------------------------
def test_label_scores_by_hand():
    y_true = [0, 0, 0, 1, 1, 1, 1, 1]
    y_pred = [0, 1, 0, 1, 1, 0, 1, 1]
    # TP 4, FN 1, FP 1, TN 2
    assert sensitivity_score(y_true, y_pred) == pytest.approx(4 / 5)
    assert specificity_score(y_true, y_pred) == pytest.approx(2 / 3)
    assert ppv_score(y_true, y_pred) == pytest.approx(4 / 5)
    assert npv_score(y_true, y_pred) == pytest.approx(2 / 3)


binary_pairs = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=2, max_size=60
).filter(
    lambda pairs: len({t for t, _ in pairs}) == 2 and len({p for _, p in pairs}) == 2
)


@settings(max_examples=60, deadline=None)
@given(binary_pairs)
def test_label_scores_match_the_confusion_matrix(pairs):
    y_true, y_pred = (np.array(column) for column in zip(*pairs, strict=True))
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    assert sensitivity_score(y_true, y_pred) == pytest.approx(tp / (tp + fn))
    assert specificity_score(y_true, y_pred) == pytest.approx(tn / (tn + fp))
    assert ppv_score(y_true, y_pred) == pytest.approx(tp / (tp + fp))
    assert npv_score(y_true, y_pred) == pytest.approx(tn / (tn + fn))
    assert sensitivity_score(y_true, y_pred) == pytest.approx(
        recall_score(y_true, y_pred)
    )
    # the negative class's sensitivity is the specificity
    assert specificity_score(y_true, y_pred) == pytest.approx(
        sensitivity_score(y_true, y_pred, pos_label=0)
    )


def test_string_labels_and_sample_weight():
    y_true = np.array(["normal", "pneumonia", "pneumonia", "normal", "pneumonia"])
    y_pred = np.array(["normal", "pneumonia", "normal", "pneumonia", "pneumonia"])
    weight = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    assert sensitivity_score(
        y_true, y_pred, pos_label="pneumonia", sample_weight=weight
    ) == pytest.approx(
        recall_score(y_true, y_pred, pos_label="pneumonia", sample_weight=weight)
    )
    assert ppv_score(y_true, y_pred, pos_label="pneumonia") == pytest.approx(
        precision_score(y_true, y_pred, pos_label="pneumonia")
    )
    assert specificity_score(y_true, y_pred, pos_label="pneumonia") == 0.5


def test_label_scores_reject_bad_input():
    with pytest.raises(ValueError, match=r"same length; got 3 and 2"):
        sensitivity_score([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"sensitivity is undefined: y_true holds no"):
        sensitivity_score([0, 0, 0], [0, 1, 0])
    with pytest.raises(ValueError, match=r"specificity is undefined: y_true holds no"):
        specificity_score([1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"binary metric.*3 labels"):
        sensitivity_score([0, 1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match=r"pos_label=1 is not a label.*'a', 'b'"):
        sensitivity_score(["a", "b"], ["a", "b"])
    with pytest.raises(ValueError, match=r"continuous values, not labels"):
        specificity_score([0, 1, 1], [0.2, 0.7, 0.9])
    with pytest.raises(ValueError, match=r"1-D array"):
        npv_score([[0, 1], [1, 0]], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"empty"):
        ppv_score([], [])
    with pytest.raises(ValueError, match=r"sample_weight has 2 values"):
        sensitivity_score([0, 1, 1], [0, 1, 1], sample_weight=[1, 2])


def test_predictive_values_without_predictions():
    with pytest.raises(ValueError, match=r"PPV is undefined: no sample is predicted"):
        ppv_score([0, 1, 1], [0, 0, 0])
    with pytest.raises(ValueError, match=r"NPV is undefined: no sample is predicted"):
        npv_score([0, 1, 1], [1, 1, 1])
    assert np.isnan(ppv_score([0, 1, 1], [0, 0, 0], zero_division=np.nan))
    assert npv_score([0, 1, 1], [1, 1, 1], zero_division=0.0) == 0.0
    with pytest.raises(ValueError, match=r"zero_division must be"):
        ppv_score([0, 1], [0, 1], zero_division="warn")


# --- operating points -------------------------------------------------------------
def _brute_force_sensitivity(y_true, y_score, specificity):
    best = 0.0
    for threshold in np.append(np.unique(y_score), np.inf):
        predicted = y_score >= threshold
        spec = np.mean(~predicted[y_true == 0])
        if spec >= specificity:
            best = max(best, np.mean(predicted[y_true == 1]))
    return best


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 8)), min_size=2, max_size=40
    ).filter(lambda pairs: len({t for t, _ in pairs}) == 2),
    st.sampled_from([0.0, 0.5, 0.8, 0.9, 1.0]),
)
def test_sensitivity_at_specificity_is_the_best_threshold(pairs, specificity):
    y_true, y_score = (np.array(column) for column in zip(*pairs, strict=True))
    y_score = y_score / 8.0  # ties on purpose
    assert sensitivity_at_specificity(
        y_true, y_score, specificity=specificity
    ) == pytest.approx(_brute_force_sensitivity(y_true, y_score, specificity))


def test_operating_points_by_hand():
    y_true = np.array([0] * 10 + [1] * 4)
    y_score = np.array([0.1] * 9 + [0.8] + [0.2, 0.6, 0.7, 0.9])
    # specificity exactly 0.9 (1 - 1/10) counts as reaching 0.9
    assert sensitivity_at_specificity(y_true, y_score, specificity=0.9) == 1.0
    assert sensitivity_at_specificity(y_true, y_score, specificity=0.95) == 0.25
    assert specificity_at_sensitivity(y_true, y_score, sensitivity=1.0) == 0.9
    proba = np.column_stack([1 - y_score, y_score])
    assert sensitivity_at_specificity(y_true, proba, specificity=0.95) == 0.25
    with pytest.raises(ValueError, match=r"specificity must be in"):
        sensitivity_at_specificity(y_true, y_score, specificity=1.5)
    with pytest.raises(ValueError, match=r"needs both classes"):
        sensitivity_at_specificity(np.zeros(4), np.arange(4.0))


# --- calibration --------------------------------------------------------------------
def test_expected_calibration_error_by_hand():
    y_true = [0, 0, 1, 1]
    # bins [0, 0.5] and (0.5, 1]: mean confidence 0.2 vs frequency 0, 0.8 vs 1
    assert expected_calibration_error(
        y_true, [0.1, 0.3, 0.7, 0.9], n_bins=2
    ) == pytest.approx(0.2)
    # perfectly calibrated: half the 0.5 predictions are positive
    assert expected_calibration_error([0, 1, 0, 1], [0.5] * 4) == 0.0
    # top-label ECE of predict_proba output: confidences 0.9 (right), 0.6 (wrong)
    proba = np.array([[0.9, 0.1], [0.4, 0.6]])
    assert expected_calibration_error([0, 0], proba, labels=[0, 1]) == pytest.approx(
        (abs(1 - 0.9) + abs(0 - 0.6)) / 2
    )


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_expected_calibration_error_matches_calibration_curve(strategy):
    y, score = _scores(500, seed=1)
    frequency, confidence = calibration_curve(y, score, n_bins=8, strategy=strategy)
    if strategy == "uniform":
        edges = np.linspace(0, 1, 9)
    else:
        edges = np.quantile(score, np.linspace(0, 1, 9))
    counts = np.bincount(np.searchsorted(edges[1:-1], score), minlength=8)
    counts = counts[counts > 0]
    expected = np.sum(counts / counts.sum() * np.abs(frequency - confidence))
    assert expected_calibration_error(
        y, score, n_bins=8, strategy=strategy
    ) == pytest.approx(expected)


def test_expected_calibration_error_rejects_bad_input():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        expected_calibration_error([0, 1], [-0.5, 2.0])
    with pytest.raises(ValueError, match=r"3 columns but there are 2 labels"):
        expected_calibration_error([0, 1], np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"n_bins == 0, must be >= 1"):
        expected_calibration_error([0, 1], [0.2, 0.8], n_bins=0)
    with pytest.raises(ValueError, match=r"strategy must be one of"):
        expected_calibration_error([0, 1], [0.2, 0.8], strategy="kmeans")
    with pytest.raises(ValueError, match=r"same length"):
        expected_calibration_error([0, 1, 1], [0.2, 0.8])


# --- the clinical report ----------------------------------------------------------
def test_report_point_estimates_match_sklearn():
    y, score = _scores(300, seed=2, prevalence=0.3)
    report = clinical_report(y, score, threshold=0.4, n_bootstraps=50, random_state=0)
    predicted = (score >= 0.4).astype(int)
    expected = {
        "accuracy": accuracy_score(y, predicted),
        "auc": roc_auc_score(y, score),
        "sensitivity": recall_score(y, predicted),
        "specificity": recall_score(y, predicted, pos_label=0),
        "ppv": precision_score(y, predicted),
        "npv": precision_score(y, predicted, pos_label=0),
        "f1": f1_score(y, predicted),
        "balanced_accuracy": balanced_accuracy_score(y, predicted),
    }
    assert list(report) == METRICS
    for name, value in expected.items():
        assert report[name].value == pytest.approx(value), name
    np.testing.assert_array_equal(
        report.confusion_matrix, confusion_matrix(y, predicted)
    )
    assert (report.n_samples, report.n_positive) == (300, int(y.sum()))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=50
    ).filter(lambda pairs: len({t for t, _ in pairs}) == 2),
    st.integers(1, 4),
)
def test_bootstrap_auc_matches_sklearn_on_resamples(pairs, n_rows):
    truth, score = (np.array(column) for column in zip(*pairs, strict=True))
    rng = np.random.RandomState(len(pairs))
    rows = rng.randint(0, len(truth), size=(n_rows, len(truth)))
    distinct, groups = np.unique(score, return_inverse=True)
    metrics = _report_metrics(truth[rows], truth[rows], groups[rows], len(distinct))
    for row, auc in zip(rows, metrics["auc"], strict=True):
        if truth[row].all() or not truth[row].any():
            assert np.isnan(auc)
        else:
            assert auc == pytest.approx(roc_auc_score(truth[row], score[row]))


def test_report_intervals_contain_the_estimate_and_narrow_with_data():
    small = clinical_report(*_scores(100, seed=3), n_bootstraps=400, random_state=0)
    large = clinical_report(*_scores(2000, seed=3), n_bootstraps=400, random_state=0)
    for name in METRICS:
        for report in (small, large):
            value, low, high = report[name]
            assert low <= value <= high, name
        width_small = small[name].high - small[name].low
        width_large = large[name].high - large[name].low
        assert width_large < 0.5 * width_small, name  # about sqrt(20) narrower


def test_report_is_deterministic_and_seeded():
    y, score = _scores(200, seed=4)
    first = clinical_report(y, score, n_bootstraps=200, random_state=7)
    second = clinical_report(y, score, n_bootstraps=200, random_state=7)
    other = clinical_report(y, score, n_bootstraps=200, random_state=8)
    assert dict(first) == dict(second)
    assert dict(first) != dict(other)
    assert str(first) == str(second)


def test_report_is_a_mapping_and_a_table():
    y, score = _scores(120, seed=5)
    report = clinical_report(y, score, n_bootstraps=100, random_state=0)
    assert isinstance(report, ClinicalReport)
    assert isinstance(report["auc"], MetricEstimate)
    _value, low, _high = report["auc"]
    assert report["auc"].low == low
    assert set(dict(report)) == set(METRICS)
    table = str(report)
    labels = ["ACC", "AUC", "Sensitivity", "Specificity", "PPV", "NPV", "F1",
              "Balanced accuracy", "actual negative", "predicted pos."]  # fmt: skip
    for label in labels:
        assert label in table
    (tn, fp), (fn, tp) = report.confusion_matrix
    assert f"{tn:>16}{fp:>16}" in table
    assert f"{fn:>16}{tp:>16}" in table
    assert repr(report) == table
    with pytest.raises(KeyError, match=r"'precision' is not a metric.*'ppv'"):
        report["precision"]


def test_report_inputs_labels_and_shapes():
    y, score = _scores(150, seed=6)
    one_column = clinical_report(y, score, n_bootstraps=50, random_state=0)
    two_columns = clinical_report(
        y, np.column_stack([1 - score, score]), n_bootstraps=50, random_state=0
    )
    assert dict(one_column) == dict(two_columns)
    labels = np.where(y == 1, "pneumonia", "normal")
    named = clinical_report(
        labels, score, pos_label="pneumonia", n_bootstraps=50, random_state=0
    )
    assert dict(named) == dict(one_column)
    # the negative class as positive: its column of predict_proba is taken
    flipped = clinical_report(
        labels, np.column_stack([1 - score, score]), pos_label="normal",
        threshold=0.5, n_bootstraps=50, random_state=0,
    )  # fmt: skip
    assert flipped["auc"].value == pytest.approx(one_column["auc"].value)


def test_report_rejects_bad_input():
    y, score = _scores(50, seed=7)
    with pytest.raises(ValueError, match=r"needs both classes.*no sample of pos_label"):
        clinical_report(np.zeros(10, int), np.linspace(0, 1, 10))
    with pytest.raises(ValueError, match=r"needs both classes.*every sample is"):
        clinical_report(np.ones(10, int), np.linspace(0, 1, 10))
    strings = np.array(["normal", "pneumonia"] * 5)
    with pytest.raises(ValueError, match=r"pos_label=1 is not a label.*'pneumonia'"):
        clinical_report(strings, np.linspace(0, 1, 10))
    with pytest.raises(ValueError, match=r"pos_label='Pneumonia' is not a label"):
        sensitivity_at_specificity(
            strings, np.linspace(0, 1, 10), pos_label="Pneumonia"
        )
    with pytest.raises(ValueError, match=r"same length; got 50 and 49"):
        clinical_report(y, score[:-1])
    with pytest.raises(ValueError, match=r"y_score must be \(n_samples,\).*\(50, 3\)"):
        clinical_report(y, np.ones((50, 3)) / 3)
    with pytest.raises(ValueError, match=r"y_score must be"):
        clinical_report(y, score[:, None, None])
    with pytest.raises(ValueError, match=r"NaN"):
        clinical_report(y, np.where(y == 1, np.nan, score))
    with pytest.raises(ValueError, match=r"is for binary problems"):
        clinical_report(np.arange(50) % 3, score)
    with pytest.raises(ValueError, match=r"n_bootstraps == 0"):
        clinical_report(y, score, n_bootstraps=0)
    with pytest.raises(ValueError, match=r"confidence_level"):
        clinical_report(y, score, confidence_level=1.0)
    with pytest.raises(TypeError, match=r"threshold must be a real number"):
        clinical_report(y, score, threshold="0.5")


def test_report_undefined_metrics_are_nan_with_a_warning():
    y, score = _scores(60, seed=8)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        report = clinical_report(y, score, threshold=2.0, n_bootstraps=50)
    messages = [str(warning.message) for warning in record]
    assert any("ppv undefined at threshold=2" in message for message in messages)
    assert np.isnan(report["ppv"].value)
    assert np.isnan(report["ppv"].low)
    assert report["sensitivity"] == (0.0, 0.0, 0.0)
    assert report.n_undefined["ppv"] == 50


def test_report_warns_when_an_interval_collapses():
    # no false positive: specificity and PPV are 1 in every resample
    y = np.repeat([0, 1], 30)
    score = np.concatenate([np.linspace(0.0, 0.45, 30), np.linspace(0.3, 1.0, 30)])
    with pytest.warns(UserWarning, match=r"specificity, ppv has zero width.*binomtest"):
        report = clinical_report(y, score, n_bootstraps=100, random_state=0)
    assert report["specificity"] == (1.0, 1.0, 1.0)


@pytest.mark.filterwarnings("ignore:the bootstrap interval of auc")
def test_plain_resampling_counts_undefined_resamples():
    # 3 positives in 40: about 1 plain resample in 20 has none
    y = np.zeros(40, dtype=int)
    y[:3] = 1
    score = np.linspace(0, 1, 40)[::-1]
    plain = clinical_report(y, score, stratify=False, n_bootstraps=400, random_state=0)
    stratified = clinical_report(y, score, n_bootstraps=400, random_state=0)
    assert plain.n_undefined["auc"] > 0
    assert plain.n_undefined["sensitivity"] > 0
    assert stratified.n_undefined["auc"] == 0
    assert "plain resamples" in str(plain)
    assert "stratified" in str(stratified)


def test_bootstrap_is_fast():
    y, score = _scores(624, seed=9, prevalence=390 / 624)
    clinical_report(y, score, n_bootstraps=10)  # warm up
    start = time.perf_counter()
    clinical_report(y, score, n_bootstraps=1000, random_state=0)
    # about 25 ms on the project machine; generous for a loaded CI runner
    assert time.perf_counter() - start < 2.0


# --- scorers --------------------------------------------------------------------------
def test_scorers_in_grid_search():
    X, y = make_classification(300, n_features=8, weights=[0.7], random_state=0)
    scoring = {
        "sens_at_spec": make_sensitivity_at_specificity_scorer(0.9),
        "spec_at_sens": make_specificity_at_sensitivity_scorer(0.9),
        "sensitivity": sensitivity_scorer,
        "specificity": specificity_scorer,
        "ppv": ppv_scorer,
        "npv": npv_scorer,
    }
    search = GridSearchCV(
        LogisticRegression(),
        {"C": [0.1, 1.0]},
        scoring=scoring,
        refit="sens_at_spec",
        cv=3,
        error_score="raise",
    ).fit(X, y)
    results = search.cv_results_
    for name in scoring:
        scores = results[f"mean_test_{name}"]
        assert np.all((scores >= 0) & (scores <= 1)), name
    # the scorer computes the metric on decision_function of the held-out data
    model = LogisticRegression(C=1.0).fit(X[:200], y[:200])
    expected = sensitivity_at_specificity(
        y[200:], model.decision_function(X[200:]), specificity=0.9
    )
    scorer = make_sensitivity_at_specificity_scorer(0.9)
    assert scorer(model, X[200:], y[200:]) == pytest.approx(expected)


def test_scorer_with_string_labels_uses_the_positive_class():
    X, y = make_classification(200, n_features=6, random_state=1)
    labels = np.where(y == 1, "pneumonia", "normal")
    model = LogisticRegression().fit(X, labels)
    proba = model.predict_proba(X)[:, list(model.classes_).index("normal")]
    scorer = make_sensitivity_at_specificity_scorer(0.8, pos_label="normal")
    assert scorer(model, X, labels) == pytest.approx(
        sensitivity_at_specificity(labels, proba, specificity=0.8, pos_label="normal")
    )


def test_ppv_scorer_gives_nan_without_positive_predictions():
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    assert np.isnan(ppv_scorer(model, np.array([[-50.0], [-60.0]]), [0, 1]))


def test_scorer_with_the_cnn_in_grid_search(phantoms):
    X, y = phantoms
    search = GridSearchCV(
        MedicalCNNClassifier(max_epochs=1, architecture_params={"width": 4},
                             random_state=0),
        {"lr": [1e-3, 1e-2]},
        scoring=make_sensitivity_at_specificity_scorer(0.8),
        cv=2,
        refit=False,
        error_score="raise",
    ).fit(X, y)  # fmt: skip
    scores = search.cv_results_["mean_test_score"]
    assert np.all((scores >= 0) & (scores <= 1))
    assert search.best_params_["lr"] in (1e-3, 1e-2)


def test_roc_points_agree_with_sklearn():
    y, score = _scores(200, seed=10)
    fpr, tpr, thresholds = roc_curve(y, score)
    for threshold, expected_tpr, expected_fpr in zip(
        thresholds[1:], tpr[1:], fpr[1:], strict=True
    ):
        predicted = (score >= threshold).astype(int)
        assert sensitivity_score(y, predicted) == pytest.approx(expected_tpr)
        assert specificity_score(y, predicted) == pytest.approx(1 - expected_fpr)


def test_expected_calibration_error_refuses_a_pos_label_that_is_no_label():
    strings = np.array(["n", "p"] * 10)
    with pytest.raises(ValueError, match=r"pos_label=1 is not a label.*\['n', 'p'\]"):
        expected_calibration_error(strings, np.full(20, 0.5))
    assert expected_calibration_error(strings, np.full(20, 0.5), pos_label="p") == 0.0
