"""Checkpoints every epoch, resume after an interruption, Ctrl-C and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor
from sk_medcnn.augmentation import RandomFlip

PARAMS = {
    "max_epochs": 4,
    "batch_size": 16,
    "early_stopping": True,
    "patience": 10,
    "lr_schedule": "cosine",
    "architecture_params": {"dropout": 0.3},
    "random_state": 0,
    "device": "cpu",
}


class Interrupter(BaseEstimator):
    """Raises KeyboardInterrupt on the batch counted down in a class attribute.

    The countdown lives outside the parameters so that the interrupted and the
    resumed fit have the same settings.
    """

    countdown = 0

    def augment_batch(self, images, generator):
        if Interrupter.countdown > 0:
            Interrupter.countdown -= 1
            if Interrupter.countdown == 0:
                raise KeyboardInterrupt
        return images


def _augmentation():
    return [RandomFlip(), Interrupter()]


def test_resume_after_interrupt_equals_an_uninterrupted_fit(phantoms, tmp_path):
    X, y = phantoms
    reference = MedicalCNNClassifier(augmentation=_augmentation(), **PARAMS).fit(X, y)

    interrupted = MedicalCNNClassifier(
        augmentation=_augmentation(), checkpoint_dir=tmp_path, **PARAMS
    )
    Interrupter.countdown = 10  # 4 batches an epoch: stops in epoch 3
    with pytest.raises(KeyboardInterrupt, match="resume=True"):
        interrupted.fit(X, y)
    assert (tmp_path / "checkpoint.pt").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]

    resumed = MedicalCNNClassifier(
        augmentation=_augmentation(), checkpoint_dir=tmp_path, resume=True, **PARAMS
    ).fit(X, y)
    assert resumed.n_epochs_ == reference.n_epochs_ == 4
    assert resumed.best_epoch_ == reference.best_epoch_
    np.testing.assert_array_equal(resumed.predict_proba(X), reference.predict_proba(X))
    np.testing.assert_allclose(
        resumed.history_[:, "valid_loss"], reference.history_[:, "valid_loss"]
    )

    # a finished checkpoint resumes to the same model without training
    again = MedicalCNNClassifier(
        augmentation=_augmentation(), checkpoint_dir=tmp_path, resume=True, **PARAMS
    ).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), reference.predict_proba(X))


def test_resume_checks_the_data_and_settings(phantoms, tmp_path):
    X, y = phantoms
    params = {**PARAMS, "max_epochs": 1, "checkpoint_dir": tmp_path}
    MedicalCNNClassifier(**params).fit(X, y)
    with pytest.raises(ValueError, match="lr"):
        MedicalCNNClassifier(**{**params, "lr": 0.1}, resume=True).fit(X, y)
    with pytest.raises(ValueError, match="y_crc32"):
        MedicalCNNClassifier(**params, resume=True).fit(X, 1 - y)
    # resume=False starts afresh and replaces the checkpoint
    MedicalCNNClassifier(**{**params, "lr": 0.1}).fit(X, y)
    MedicalCNNClassifier(**{**params, "lr": 0.1}, resume=True).fit(X, y)


def test_resume_compares_settings_as_resolved(phantoms, tmp_path):
    """A checkpoint belongs to what trained: "auto" matches what it resolves to."""
    X, y = phantoms  # balanced: "auto" is unweighted with cosine annealing
    params = {**PARAMS, "max_epochs": 2, "checkpoint_dir": tmp_path}
    params.pop("lr_schedule")
    MedicalCNNClassifier(**params, class_weight=None, lr_schedule="cosine").fit(X, y)
    _damage_unfinished(tmp_path / "checkpoint.pt", lambda state: None)
    resumed = MedicalCNNClassifier(**params, resume=True).fit(X, y)
    assert (resumed.class_weight_, resumed.lr_schedule_) == (None, "cosine")
    assert resumed.n_epochs_ == 2
    # settings that resolve otherwise (balanced weights warm up) are refused
    MedicalCNNClassifier(**params).fit(X, y)
    _damage_unfinished(tmp_path / "checkpoint.pt", lambda state: None)
    with pytest.raises(ValueError, match="lr_schedule"):
        MedicalCNNClassifier(**params, class_weight="balanced", resume=True).fit(X, y)


def test_resume_without_checkpoint_starts_afresh(phantoms, tmp_path):
    X, y = phantoms
    params = {**PARAMS, "max_epochs": 2}
    fresh = MedicalCNNClassifier(**params).fit(X, y)
    resumed = MedicalCNNClassifier(
        **params, checkpoint_dir=tmp_path / "new", resume=True
    ).fit(X, y)
    np.testing.assert_array_equal(fresh.predict_proba(X), resumed.predict_proba(X))


def test_checkpoint_errors_name_the_parameter(phantoms, tmp_path):
    X, y = phantoms
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        MedicalCNNClassifier(max_epochs=1, resume=True).fit(X, y)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ValueError, match=r"checkpoint_dir=.* is a file"):
        MedicalCNNClassifier(max_epochs=1, checkpoint_dir=afile).fit(X, y)
    with pytest.raises(TypeError, match="checkpoint_dir"):
        MedicalCNNClassifier(max_epochs=1, checkpoint_dir=3).fit(X, y)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read as a training checkpoint"):
        MedicalCNNClassifier(
            max_epochs=1, checkpoint_dir=tmp_path / "bad", resume=True
        ).fit(X, y)


def test_checkpoint_loads_without_unpickling_code(phantoms, tmp_path):
    X, y = phantoms
    MedicalCNNClassifier(max_epochs=1, checkpoint_dir=tmp_path).fit(X, y)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["finished"] is True
    assert set(state["rng"]) >= {"torch", "loader", "augment"}


def test_regressor_resumes_too(phantoms, tmp_path):
    X, y = phantoms
    targets = y.astype(float) + np.linspace(0, 1, len(y))
    params = {**PARAMS, "lr_schedule": None}
    reference = MedicalCNNRegressor(augmentation=_augmentation(), **params).fit(
        X, targets
    )
    Interrupter.countdown = 6
    with pytest.raises(KeyboardInterrupt):
        MedicalCNNRegressor(
            augmentation=_augmentation(), checkpoint_dir=tmp_path, **params
        ).fit(X, targets)
    resumed = MedicalCNNRegressor(
        augmentation=_augmentation(), checkpoint_dir=tmp_path, resume=True, **params
    ).fit(X, targets)
    np.testing.assert_array_equal(resumed.predict(X), reference.predict(X))


_SCRIPT = """
import json
import os
import signal
import sys
import numpy as np
from sklearn.base import BaseEstimator
from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.datasets import make_lesion_phantoms


class Signaller(BaseEstimator):
    # sends the signal in SIGNAL to this process on training batch AT_BATCH: a
    # real SIGKILL or SIGINT at a known point, whatever the machine's load
    def augment_batch(self, images, generator):
        self.n_ = getattr(self, "n_", 0) + 1
        if self.n_ == int(os.environ.get("AT_BATCH", "0")):
            os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
        return images


# as in a terminal: a child of a background job inherits an ignored SIGINT
signal.signal(signal.SIGINT, signal.default_int_handler)
X, y = make_lesion_phantoms(96, image_size=16, random_state=0)
clf = MedicalCNNClassifier(
    max_epochs=int(sys.argv[2]), batch_size=16, early_stopping=True, patience=20,
    random_state=0, device="cpu", verbose=1, augmentation=Signaller(),
    checkpoint_dir=sys.argv[1] or None, resume=sys.argv[3] == "resume",
)
try:
    clf.fit(X, y)
except KeyboardInterrupt as error:
    print("INTERRUPTED", error, flush=True)
np.save(sys.argv[4], clf.predict_proba(X))
print("EPOCHS", clf.n_epochs_, flush=True)
"""

# 86 training images in batches of 16: 6 batches an epoch
BATCHES_PER_EPOCH = 6


def _start(
    tmp_path: Path, *args: str, signal_name: str = "", at_batch: int = 0
) -> subprocess.Popen[str]:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "SIGNAL": signal_name,
        "AT_BATCH": str(at_batch),
    }
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigkill_then_resume_reaches_the_same_model(tmp_path):
    ckpt = tmp_path / "ckpt"
    # the reference: uninterrupted, no checkpoints
    ref = _start(tmp_path, "", "8", "fresh", str(tmp_path / "ref.npy"))
    assert ref.wait(timeout=300) == 0, ref.stdout.read()

    # killed in the 2nd batch of epoch 4, after the checkpoint of epoch 3
    killed = _start(
        tmp_path,
        str(ckpt),
        "8",
        "fresh",
        str(tmp_path / "k.npy"),
        signal_name="SIGKILL",
        at_batch=3 * BATCHES_PER_EPOCH + 2,
    )
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert (ckpt / "checkpoint.pt").is_file()
    assert [p.name for p in ckpt.iterdir()] == ["checkpoint.pt"]  # no temp files

    resumed = _start(tmp_path, str(ckpt), "8", "resume", str(tmp_path / "r.npy"))
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert "EPOCHS 8" in output
    first_epoch_printed = next(
        int(fields[0])
        for fields in map(str.split, output.splitlines())
        if fields and fields[0].isdigit()
    )
    assert first_epoch_printed == 4  # it continued, it did not start over
    np.testing.assert_array_equal(
        np.load(tmp_path / "r.npy"), np.load(tmp_path / "ref.npy")
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_leaves_a_usable_model(tmp_path):
    process = _start(
        tmp_path,
        "",
        "50",
        "fresh",
        str(tmp_path / "p.npy"),
        signal_name="SIGINT",
        at_batch=2 * BATCHES_PER_EPOCH + 3,  # in epoch 3
    )
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output
    assert "INTERRUPTED" in output
    assert "EPOCHS 3" in output  # two finished epochs and the interrupted one
    proba = np.load(tmp_path / "p.npy")
    assert proba.shape == (96, 2)
    assert np.all(np.isfinite(proba))


def _damage_unfinished(path, change):
    """Make the checkpoint at ``path`` an unfinished one (1 epoch), then damage it."""
    state = torch.load(path, weights_only=True)
    state["finished"] = False
    state["history"] = json.dumps(json.loads(state["history"])[:1])
    change(state)
    torch.save(state, path)


def _first(mapping):
    return next(iter(mapping))


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["module"].update({_first(s["module"]): torch.zeros(3)}),
        lambda s: s["module"].pop(_first(s["module"])),
        lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(2)),
        lambda s: s["early_stopping"]["best_module"].update(
            {_first(s["module"]): torch.zeros(3)}
        ),
        lambda s: s["rng"].update(loader=torch.zeros(5, dtype=torch.uint8)),
        lambda s: s["rng"].update(torch=torch.zeros(7, dtype=torch.uint8)),
        lambda s: s["rng"].pop("augment"),
    ],
    ids=[
        "weight-shape",
        "weight-missing",
        "moment-shape",
        "best-shape",
        "rng",
        "torch-rng",
        "rng-missing",
    ],
)
def test_a_damaged_checkpoint_is_named_on_resume(phantoms, tmp_path, change):
    X, y = phantoms
    params = {**PARAMS, "max_epochs": 2, "checkpoint_dir": tmp_path}
    MedicalCNNClassifier(**params).fit(X, y)
    path = tmp_path / "checkpoint.pt"
    _damage_unfinished(path, change)
    resumed = MedicalCNNClassifier(**params, resume=True)
    with pytest.raises(
        ValueError, match=r"the checkpoint .*checkpoint\.pt' is damaged"
    ):
        resumed.fit(X, y)
    assert not hasattr(resumed, "net_")


def test_an_undamaged_unfinished_checkpoint_resumes(phantoms, tmp_path):
    X, y = phantoms
    params = {**PARAMS, "max_epochs": 2, "checkpoint_dir": tmp_path}
    MedicalCNNClassifier(**params).fit(X, y)
    _damage_unfinished(tmp_path / "checkpoint.pt", lambda state: None)
    resumed = MedicalCNNClassifier(**params, resume=True).fit(X, y)
    assert resumed.n_epochs_ == 2


def test_checkpoint_dir_under_a_file_is_named(phantoms, tmp_path):
    X, y = phantoms
    (tmp_path / "notes").write_text("x")
    with pytest.raises(
        ValueError, match=r"checkpoint_dir=.*notes/ck' cannot be created"
    ):
        MedicalCNNClassifier(
            max_epochs=1, checkpoint_dir=tmp_path / "notes" / "ck"
        ).fit(X, y)
