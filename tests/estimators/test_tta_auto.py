"""tta="auto": test-time augmentation kept only where the held-out split allows it."""

from __future__ import annotations

import json
import logging
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from torch import nn

from sk_medcnn import MedicalCNNClassifier, load_model, save_model
from sk_medcnn.estimators._calibration import AUTO_TTA_CANDIDATE
from sk_medcnn.exceptions import ModelFileError

FAST = {"batch_size": 32, "validation_fraction": 0.25, "device": "cpu"}


def linear(in_channels, n_outputs, image_shape):
    """A logistic regression on the pixels: it can learn where a pixel is."""
    height, width = image_shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(in_channels * height * width, n_outputs)
    )


def parity_dots(n, *, size=10, seed=0):
    """One bright pixel away from the border; the label is its (row + col) parity.

    Every view of "shifts" (1 pixel at 10x10) flips the label of the image:
    averaging over them votes 4 to 1 for the wrong class.
    """
    rng = np.random.RandomState(seed)
    rows = rng.randint(2, size - 2, n)
    cols = rng.randint(2, size - 2, n)
    X = rng.randint(0, 20, size=(n, size, size)).astype(np.uint8)
    X[np.arange(n), rows, cols] = 255
    return X, (rows + cols) % 2


def flat_images(n, *, seed=0):
    """Images of one grey level each; the label is bright or dark.

    A shifted copy of a flat image (border replicated) is the same image, so
    the views agree and TTA is neutral.
    """
    rng = np.random.RandomState(seed)
    level = rng.randint(0, 256, n)
    X = np.broadcast_to(level[:, None, None], (n, 10, 10)).astype(np.uint8)
    return X, (level > 128).astype(np.int64)


@pytest.fixture(scope="module")
def parity_fit():
    X, y = parity_dots(200)
    clf = MedicalCNNClassifier(
        linear, max_epochs=6, lr=0.01, random_state=0, **FAST
    ).fit(X, y)
    return clf, X, y


def test_auto_is_the_default():
    assert MedicalCNNClassifier().tta == "auto"


def test_auto_turns_tta_off_where_shifts_destroy_the_signal(parity_fit):
    clf, _, _ = parity_fit
    scores = clf.tta_scores_
    assert clf.tta_ is None
    assert scores["candidate"] == AUTO_TTA_CANDIDATE == "shifts"
    assert scores["n_samples"] == 50  # 25% of 200 held out
    assert scores["log_loss_with"] > scores["log_loss_without"]
    assert scores["accuracy_with"] < scores["accuracy_without"]
    # on new data, the decision is right: TTA would have wrecked the predictions
    X_new, y_new = parity_dots(300, seed=1)
    auto = np.mean(clf.predict(X_new) == y_new)
    forced = clone(clf).set_params(tta="shifts")  # same fit, other tta
    forced.__dict__.update({k: v for k, v in vars(clf).items() if k.endswith("_")})
    forced.set_params(tta="shifts")
    shifted = np.mean(forced.predict(X_new) == y_new)
    assert auto > 0.9
    assert shifted < 0.5


def test_auto_keeps_tta_where_it_is_neutral():
    X, y = flat_images(120)
    clf = MedicalCNNClassifier(linear, max_epochs=3, random_state=0, **FAST)
    clf.fit(X, y)
    assert clf.tta_ == "shifts"
    scores = clf.tta_scores_
    assert scores["log_loss_with"] == pytest.approx(scores["log_loss_without"])
    # predictions use the kept TTA: the same as forcing it
    forced = clone(clf).set_params(tta="shifts").fit(X, y)
    np.testing.assert_allclose(
        clf.predict_proba(X), forced.predict_proba(X), rtol=1e-6, atol=1e-9
    )
    assert clf.temperature_ == pytest.approx(forced.temperature_)


def test_the_decision_follows_the_recorded_scores_and_predictions_follow_it(
    parity_fit,
):
    clf, X, _ = parity_fit
    scores = clf.tta_scores_
    kept = scores["log_loss_with"] <= scores["log_loss_without"]
    assert (clf.tta_ == "shifts") == kept
    # the temperature is the one fitted for the views chosen
    forced = clone(clf).set_params(tta=clf.tta_).fit(X, parity_fit[2])
    assert clf.temperature_ == pytest.approx(forced.temperature_)
    np.testing.assert_allclose(
        clf.predict_proba(X), forced.predict_proba(X), rtol=1e-6, atol=1e-9
    )


def test_explicit_tta_is_used_as_given(phantoms):
    X, y = phantoms
    params = {"max_epochs": 1, "batch_size": 16, "random_state": 0, "device": "cpu"}
    shifts = MedicalCNNClassifier(tta="shifts", **params).fit(X, y)
    assert shifts.tta_ == "shifts"
    assert shifts.tta_scores_ is None
    off = MedicalCNNClassifier(tta=None, **params).fit(X, y)
    assert off.tta_ is None
    assert off.tta_scores_ is None
    # the same network either way (tta plays no part in training)
    for name, tensor in shifts.net_.module_.state_dict().items():
        np.testing.assert_array_equal(tensor, off.net_.module_.state_dict()[name])
    # set after fit, an explicit value takes effect at once, as before "auto"
    off.set_params(tta="shifts")
    off.temperature_ = shifts.temperature_
    np.testing.assert_array_equal(off.predict_proba(X), shifts.predict_proba(X))


def test_auto_without_a_held_out_split_means_no_tta(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        calibration=None, max_epochs=1, batch_size=16, random_state=0, device="cpu"
    ).fit(X, y)
    assert clf.tta_ is None
    assert clf.tta_scores_ is None
    assert clf.temperature_ == 1.0
    # early stopping holds out a split, so auto decides there (temperature 1)
    stopped = clone(clf).set_params(early_stopping=True, max_epochs=2).fit(X, y)
    assert stopped.tta_scores_ is not None
    assert stopped.temperature_ == 1.0


def test_auto_is_deterministic(parity_fit):
    clf, X, y = parity_fit
    again = clone(clf).fit(X, y)
    assert again.tta_ == clf.tta_
    assert again.tta_scores_ == clf.tta_scores_
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_the_decision_is_reported(parity_fit, caplog, capsys):
    clf, X, y = parity_fit
    with caplog.at_level(logging.INFO, logger="sk_medcnn"):
        clone(clf).fit(X, y)
    assert "tta='auto'" in caplog.text
    assert "tta_=None" in caplog.text
    clone(clf).set_params(verbose=1).fit(X, y)
    assert "tta_=None" in capsys.readouterr().out


def test_pickle_and_clone_keep_the_decision(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        max_epochs=1, batch_size=16, random_state=0, device="cpu"
    ).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.tta_ == clf.tta_
    assert restored.tta_scores_ == clf.tta_scores_
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    fresh = clone(clf)
    assert fresh.tta == "auto"
    assert not hasattr(fresh, "tta_")
    # a pickle from before tta="auto" (no tta_) predicts with its tta
    state = clf.__getstate__()
    del state["tta_"], state["tta_scores_"]
    state["tta"] = "shifts"
    old = MedicalCNNClassifier.__new__(MedicalCNNClassifier)
    old.__setstate__(state)
    assert old.tta_ == "shifts"
    assert old.tta_scores_ is None


def test_save_and_load_keep_the_decision(
    parity_fit, tmp_path, monkeypatch, edit_model_file
):
    from sk_medcnn import register_architecture
    from sk_medcnn.registry import _ARCHITECTURES

    clf, X, _ = parity_fit
    monkeypatch.setitem(_ARCHITECTURES, "test_linear", linear)
    assert register_architecture  # the registry is what the file names
    model = clone(clf).set_params(architecture="test_linear")
    model.__dict__.update({k: v for k, v in vars(clf).items() if k.endswith("_")})
    model._validation_index = clf._validation_index
    path = tmp_path / "model.skmed"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.tta == "auto"
    assert loaded.tta_ is None
    assert loaded.tta_scores_ == clf.tta_scores_
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))

    # a file from before tta="auto": explicit tta, no tta_ -> still loads
    def drop(node):
        node["params"]["tta"] = "shifts"
        del node["attributes"]["tta_"], node["attributes"]["tta_scores_"]

    edit_model_file(path, drop)
    old = load_model(path)
    assert old.tta_ == "shifts"
    assert old.tta_scores_ is None

    # a file whose tta_ is not a TTA is refused, naming the attribute
    def tamper(node):
        node["attributes"]["tta_"] = "rotate"

    edit_model_file(path, tamper)
    with pytest.raises(ModelFileError, match="tta_"):
        load_model(path)


@pytest.mark.parametrize("value", ["auto+shifts", "AUTO", "rotate"])
def test_bad_tta_names_auto_among_the_choices(value):
    with pytest.raises(ValueError, match="tta must be 'auto', None or"):
        MedicalCNNClassifier(tta=value).fit(np.zeros((4, 8, 8)), [0, 1, 0, 1])


def test_regressor_has_no_auto():
    from sk_medcnn import MedicalCNNRegressor

    with pytest.raises(ValueError, match="tta must be None or"):
        MedicalCNNRegressor(tta="auto").fit(np.zeros((4, 8, 8)), [0.0, 1, 0, 1])


def test_cli_train_report_records_the_decision(tmp_path, phantoms):
    from sk_medcnn.cli import main

    X, y = phantoms
    np.savez(tmp_path / "d.npz", train_images=X, train_labels=y[:, None])
    model = tmp_path / "m.skmed"
    argv = ["train", str(tmp_path / "d.npz"), "--out", str(model), "--epochs", "1"]
    argv += ["--tta", "auto", "--calibration", "temperature", "--quiet"]
    assert main(argv) == 0
    report = json.loads(model.with_suffix(".report.json").read_text())
    assert report["parameters"]["tta"] == "auto"
    assert report["tta"] in ("shifts", None)
    assert report["tta_scores"]["n_samples"] == 7  # 10% of 64, rounded up
    assert load_model(model).tta_ == report["tta"]
