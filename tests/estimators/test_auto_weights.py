"""class_weight="auto" and lr_schedule="auto": a rare class of two is weighted,
and a class-weighted loss trains with a warm-up."""

from __future__ import annotations

import json
import logging
import pickle

import numpy as np
import pytest
from sklearn.base import clone

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor, load_model, save_model
from sk_medcnn._engine import resolve_lr_schedule
from sk_medcnn.estimators._classifier import (
    AUTO_CLASS_WEIGHT_SHARE,
    resolve_class_weight,
)
from sk_medcnn.exceptions import ModelFileError

FAST = {"max_epochs": 1, "batch_size": 16, "random_state": 0, "device": "cpu"}


def _labels(n_rare, n=100):
    return np.r_[np.zeros(n - n_rare, dtype=np.int64), np.ones(n_rare, dtype=np.int64)]


@pytest.mark.parametrize(
    ("n_rare", "expected"),
    [(5, "balanced"), (19, "balanced"), (20, None), (50, None)],
)
def test_auto_balances_two_classes_when_one_is_rare(n_rare, expected):
    assert AUTO_CLASS_WEIGHT_SHARE == 0.2
    assert resolve_class_weight("auto", _labels(n_rare), 2) == expected


def test_auto_leaves_more_classes_unweighted():
    y = np.r_[np.zeros(90), np.ones(5), np.full(5, 2)].astype(np.int64)
    assert resolve_class_weight("auto", y, 3) is None


def test_given_class_weights_pass_through():
    y = _labels(5)
    for given in (None, "balanced", {0: 1.0, 1: 3.0}):
        assert resolve_class_weight(given, y, 2) == given


def test_auto_counts_samples_of_positive_weight_once_each():
    y = _labels(10)  # 10% rare
    # weights favouring the rare class do not decide; zero weights leave out
    favour = np.where(y == 1, 20.0, 1.0)
    assert resolve_class_weight("auto", y, 2, favour) == "balanced"
    drop = np.where(np.arange(len(y)) < 60, 0.0, 1.0)  # 30 common, 10 rare left
    assert resolve_class_weight("auto", y, 2, drop) is None


@pytest.mark.parametrize(
    ("lr_schedule", "class_weight", "expected"),
    [
        ("auto", "balanced", "onecycle"),
        ("auto", {0: 1.0, 1: 3.0}, "onecycle"),
        ("auto", None, "cosine"),
        ("step", "balanced", "step"),
        (None, "balanced", None),
    ],
)
def test_auto_schedule_warms_up_a_class_weighted_loss(
    lr_schedule, class_weight, expected
):
    assert resolve_lr_schedule(lr_schedule, class_weight) == expected


def _rare_phantoms(phantoms, n_rare):
    X, y = phantoms
    rare = np.flatnonzero(y == 1)[:n_rare]
    keep = np.r_[np.flatnonzero(y == 0), rare]
    return X[keep], y[keep]


def test_fit_trains_with_what_auto_resolved_to(phantoms):
    X, y = _rare_phantoms(phantoms, 4)  # 4 of 36: 11%
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    assert clf.class_weight == "auto"
    assert clf.class_weight_ == "balanced"
    weight = clf.net_.criterion_.weight.numpy()  # n / (2 * count) per class
    np.testing.assert_allclose(weight, [36 / (2 * 32), 36 / (2 * 4)], rtol=1e-6)
    assert (clf.lr_schedule, clf.lr_schedule_) == ("auto", "onecycle")
    even = MedicalCNNClassifier(**FAST).fit(*phantoms)
    assert even.class_weight_ is None
    assert even.net_.criterion_.weight is None
    assert even.lr_schedule_ == "cosine"
    given = MedicalCNNClassifier(**FAST, class_weight=None).fit(X, y)
    assert given.class_weight_ is None
    assert given.net_.criterion_.weight is None
    assert given.lr_schedule_ == "cosine"


def _batch_rates(clf):
    """The learning rate of every training batch (recorded before its step)."""
    return [
        batch["event_lr"]
        for epoch in clf.history_
        for batch in epoch["batches"]
        if "event_lr" in batch  # not the held-out split's batches
    ]


def test_auto_schedule_trains_as_it_resolved(phantoms):
    X, y = _rare_phantoms(phantoms, 4)
    settings = {**FAST, "max_epochs": 3, "lr": 1e-3}
    warm = _batch_rates(MedicalCNNClassifier(**settings).fit(X, y))
    # one cycle: from lr / 25, up to lr, down again, stepped every batch
    assert warm[0] == pytest.approx(1e-3 / 25)
    assert max(warm) == pytest.approx(1e-3, rel=0.05)
    assert warm[-1] < warm[0]
    # cosine: per epoch, from lr
    plain = MedicalCNNClassifier(**settings, class_weight=None).fit(X, y)
    assert plain.lr_schedule_ == "cosine"
    assert plain.history_[0, "event_lr"] == pytest.approx(1e-3)
    # a class-weighted loss with a schedule given keeps it
    given = MedicalCNNClassifier(**settings, lr_schedule="cosine").fit(X, y)
    assert given.lr_schedule_ == "cosine"


def test_regressor_auto_schedule_is_cosine(phantoms):
    X, y = phantoms
    reg = MedicalCNNRegressor(**FAST, lr_schedule="auto").fit(X, y.astype(float))
    assert reg.lr_schedule_ == "cosine"
    assert MedicalCNNRegressor(**FAST).fit(X, y.astype(float)).lr_schedule_ is None


def test_auto_on_a_rare_class_raises_its_predicted_probability(phantoms):
    X, y = _rare_phantoms(phantoms, 4)
    settings = {**FAST, "max_epochs": 4, "calibration": None, "tta": None}
    auto = MedicalCNNClassifier(**settings).fit(X, y)
    # the same schedule, so that only the class weights differ
    plain = MedicalCNNClassifier(
        **settings, class_weight=None, lr_schedule="onecycle"
    ).fit(X, y)
    assert (
        auto.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean() + 0.05
    )


def test_auto_with_a_loss_module_adds_no_class_weights(phantoms, caplog):
    import torch

    X, y = _rare_phantoms(phantoms, 4)
    with caplog.at_level(logging.INFO, logger="sk_medcnn"):
        clf = MedicalCNNClassifier(**FAST, loss=torch.nn.CrossEntropyLoss()).fit(X, y)
    assert (clf.class_weight_, clf.lr_schedule_) == (None, "cosine")
    assert "none with a loss module" in caplog.text
    assert "2 classes with samples, the rarest with 11.1% of them" in caplog.text
    # given class weights do not reach a loss module either, nor start a warm-up
    given = MedicalCNNClassifier(
        **FAST, loss=torch.nn.CrossEntropyLoss(), class_weight="balanced"
    ).fit(X, y)
    assert (given.class_weight_, given.lr_schedule_) == (None, "cosine")


def test_auto_decides_on_samples_that_train_not_on_their_weights(phantoms):
    X, y = phantoms  # 50% each class
    favour = np.where(y == 1, 9.0, 1.0)
    clf = MedicalCNNClassifier(**FAST).fit(X, y, sample_weight=favour)
    assert (clf.class_weight_, clf.lr_schedule_) == (None, "cosine")
    # a class left out by weights of 0 does not count as the rare one
    only_common = np.where(y == 1, 0.0, 1.0)
    only_common[np.flatnonzero(y == 1)[:2]] = 1.0  # 2 of 34: 6%
    rare = MedicalCNNClassifier(**FAST).fit(X, y, sample_weight=only_common)
    assert rare.class_weight_ == "balanced"
    assert resolve_class_weight("auto", y, 2, np.where(y == 1, 0.0, 1.0)) is None


@pytest.mark.parametrize(
    ("optimizer", "momentum", "cycled"),
    [("adagrad", 0.9, False), ("sgd", 0.9, True), ("sgd", 0.0, False)],
)
def test_onecycle_trains_with_optimizers_with_and_without_momentum(
    phantoms, optimizer, momentum, cycled
):
    import torch

    X, y = _rare_phantoms(phantoms, 4)
    optimizer_class = {"adagrad": torch.optim.Adagrad, "sgd": "sgd"}[optimizer]
    clf = MedicalCNNClassifier(
        **FAST, optimizer=optimizer_class, momentum=momentum
    ).fit(X, y)
    assert clf.lr_schedule_ == "onecycle"
    group = clf.net_.optimizer_.param_groups[0]
    if optimizer == "adagrad":  # no momentum to cycle: torch would refuse it
        assert "momentum" not in group
    elif cycled:  # as torch's OneCycleLR does, between 0.95 and 0.85
        assert 0.85 <= group["momentum"] <= 0.95
        assert group["momentum"] != pytest.approx(momentum)
    else:  # momentum turned off stays off
        assert group["momentum"] == 0.0


def test_cycles_momentum_reads_the_optimizer():
    import torch

    from sk_medcnn._engine._optim import cycles_momentum

    class Wrapped(torch.optim.SGD):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)

    assert cycles_momentum("adam")
    assert cycles_momentum("adamw", momentum=0.0)
    assert cycles_momentum("sgd")
    assert not cycles_momentum("sgd", momentum=0.0)
    assert not cycles_momentum(torch.optim.Adagrad)
    assert cycles_momentum(Wrapped)  # **kwargs: torch decides


def test_the_decision_is_reported_and_carried(phantoms, caplog, capsys):
    X, y = _rare_phantoms(phantoms, 4)
    with caplog.at_level(logging.INFO, logger="sk_medcnn"):
        clf = MedicalCNNClassifier(**FAST).fit(X, y)
    assert "2 classes with samples, the rarest with 11.1% of them" in caplog.text
    assert "class_weight_='balanced', lr_schedule_='onecycle'" in caplog.text
    MedicalCNNClassifier(**FAST, verbose=1).fit(X, y)
    assert "class_weight_='balanced'" in capsys.readouterr().out
    assert clf.model_card_["class_weight"] == "balanced"
    assert clf.model_card_["lr_schedule"] == "onecycle"
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.class_weight_ == "balanced"
    fresh = clone(clf)
    assert fresh.class_weight == "auto"
    assert not hasattr(fresh, "class_weight_")
    # a pickle from before class_weight="auto" trained with its class_weight
    state = clf.__getstate__()
    del state["class_weight_"], state["lr_schedule_"]
    state["class_weight"], state["lr_schedule"] = None, "cosine"
    old = MedicalCNNClassifier.__new__(MedicalCNNClassifier)
    old.__setstate__(state)
    assert old.class_weight_ is None
    assert old.lr_schedule_ == "cosine"


def test_save_and_load_keep_the_decision(phantoms, tmp_path, edit_model_file):
    X, y = _rare_phantoms(phantoms, 4)
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    path = tmp_path / "model.skmed"
    save_model(clf, path)
    loaded = load_model(path)
    assert loaded.class_weight == "auto"
    assert loaded.class_weight_ == "balanced"
    assert (loaded.lr_schedule, loaded.lr_schedule_) == ("auto", "onecycle")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))

    def drop(node):  # a file from before class_weight and lr_schedule "auto"
        node["params"]["class_weight"] = None
        node["params"]["lr_schedule"] = "cosine"
        del node["attributes"]["class_weight_"], node["attributes"]["lr_schedule_"]

    edit_model_file(path, drop)
    old = load_model(path)
    assert (old.class_weight_, old.lr_schedule_) == (None, "cosine")

    def tamper(node):  # "auto" is a setting, never what a fit trained with
        node["attributes"]["class_weight_"] = "auto"

    edit_model_file(path, tamper)
    with pytest.raises(ModelFileError, match="class_weight_"):
        load_model(path)

    def tamper_schedule(node):
        node["attributes"]["class_weight_"] = "balanced"
        node["attributes"]["lr_schedule_"] = "auto"

    edit_model_file(path, tamper_schedule)
    with pytest.raises(ModelFileError, match="lr_schedule_"):
        load_model(path)


def test_cli_train_report_records_the_decision(tmp_path, phantoms):
    from sk_medcnn.cli import main

    X, y = _rare_phantoms(phantoms, 4)
    np.savez(tmp_path / "d.npz", train_images=X, train_labels=y[:, None])
    model = tmp_path / "m.skmed"
    argv = ["train", str(tmp_path / "d.npz"), "--out", str(model), "--epochs", "1"]
    assert main([*argv, "--quiet"]) == 0
    report = json.loads(model.with_suffix(".report.json").read_text())
    assert report["parameters"]["class_weight"] == "auto"
    assert report["class_weight"] == "balanced"
    assert report["parameters"]["lr_schedule"] == "auto"
    assert report["lr_schedule"] == "onecycle"
    assert load_model(model).class_weight_ == "balanced"
