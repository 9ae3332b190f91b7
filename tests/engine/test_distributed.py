"""Data-parallel training (distributed=True) under torchrun: 2 CPU ranks, gloo.

Each test launches ``torchrun --standalone --nproc-per-node=2`` (loopback
rendezvous) on a small worker script and checks what the ranks wrote.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor
from sk_medcnn.datasets import make_lesion_phantoms

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="torchrun with gloo on loopback"
)

N_TRAIN, SIZE, EPOCHS = 160, 16, 6
SETTINGS = {
    "max_epochs": EPOCHS,
    "batch_size": 16,
    "lr": 3e-3,
    "lr_schedule": None,
    "calibration": None,
    "tta": None,
    "device": "cpu",
    "random_state": 0,
}

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import torch
    from torch import nn
    from sklearn.metrics import roc_auc_score
    from sk_medcnn import MedicalCNNClassifier
    from sk_medcnn.datasets import make_lesion_phantoms
    import sk_medcnn.utils._batches as batches

    out, mode = sys.argv[1], sys.argv[2]
    settings = json.loads(sys.argv[3])
    rank = int(os.environ["RANK"])
    X, y = make_lesion_phantoms({n_train}, image_size={size}, random_state=0)
    X_test, y_test = make_lesion_phantoms(200, image_size={size}, random_state=1)

    seen = []  # every training row this rank read, in order
    original = batches.ArrayDataset.__getitems__

    def spy(self, indices):
        rows = np.asarray(indices) if self.indices is None else self.indices[indices]
        seen.extend(int(row) for row in rows)
        return original(self, indices)

    batches.ArrayDataset.__getitems__ = spy

    architecture = "resnet18"  # batch normalisation: its buffers must agree too
    settings.setdefault("architecture_params", {{"width": 8}})
    if mode == "fail":
        settings.pop("architecture_params")
        calls = [0]

        def build(in_channels, n_outputs, image_shape):
            body = nn.Sequential(
                nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                nn.Linear(4, n_outputs),
            )

            def fail_later(module, args):
                if module.training:
                    calls[0] += 1
                    if rank == 1 and calls[0] > 12:
                        raise RuntimeError("simulated failure on this rank")

            body.register_forward_pre_hook(fail_later)
            return body

        architecture = build

    clf = MedicalCNNClassifier(architecture, distributed=True, **settings).fit(X, y)
    module = clf.net_.module_
    state = {{k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}}
    np.savez(os.path.join(out, f"weights{{rank}}.npz"), **state)
    auc = roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1])
    with open(os.path.join(out, f"rank{{rank}}.json"), "w") as f:
        world = int(os.environ["WORLD_SIZE"])
        import pickle
        leaked = X.tobytes() in pickle.dumps(clf)
        json.dump({{"seen": seen, "auc": auc, "world": world, "leaked": leaked}}, f)
    """
).format(n_train=N_TRAIN, size=SIZE)


def _torchrun(tmp_path: Path, mode: str, settings: dict, timeout: float = 300):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            str(script),
            str(tmp_path),
            mode,
            json.dumps(settings),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ddp")
    completed = _torchrun(tmp_path, "train", SETTINGS)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    weights = [dict(np.load(tmp_path / f"weights{r}.npz")) for r in (0, 1)]
    return ranks, weights


def test_both_ranks_end_with_identical_weights(two_ranks):
    _, (first, second) = two_ranks
    assert any("running_mean" in name for name in first)
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_each_rank_trains_on_a_disjoint_half_of_every_epoch(two_ranks):
    ranks, _ = two_ranks
    half = N_TRAIN // 2
    epochs = [
        [set(rank["seen"][e * half : (e + 1) * half]) for e in range(EPOCHS)]
        for rank in ranks
    ]
    for rank in ranks:
        assert rank["world"] == 2
        assert len(rank["seen"]) == EPOCHS * half
    for epoch in range(EPOCHS):
        first, second = epochs[0][epoch], epochs[1][epoch]
        assert len(first) == len(second) == half
        assert not first & second
        assert first | second == set(range(N_TRAIN))
    # the shards are drawn again every epoch
    assert len({frozenset(shard) for shard in epochs[0]}) > 1


def test_the_fitted_model_does_not_carry_the_training_images(two_ranks):
    ranks, _ = two_ranks
    assert not any(rank["leaked"] for rank in ranks)


def test_distributed_auc_matches_single_process_training(two_ranks):
    ranks, _ = two_ranks
    X, y = make_lesion_phantoms(N_TRAIN, image_size=SIZE, random_state=0)
    X_test, y_test = make_lesion_phantoms(200, image_size=SIZE, random_state=1)
    single = MedicalCNNClassifier(
        "resnet18", architecture_params={"width": 8}, **SETTINGS
    ).fit(X, y)
    auc = roc_auc_score(y_test, single.predict_proba(X_test)[:, 1])
    # two ranks of 16 images take one averaged step per 32: half the steps of
    # the single process, hence "within noise" rather than equal
    assert ranks[0]["auc"] == ranks[1]["auc"]
    assert abs(ranks[0]["auc"] - auc) < 0.05
    assert min(ranks[0]["auc"], auc) > 0.85


def test_a_failing_rank_stops_the_others_with_an_error_naming_it(tmp_path):
    completed = _torchrun(tmp_path, "fail", {**SETTINGS, "max_epochs": 50}, 240)
    assert completed.returncode != 0
    output = completed.stdout + completed.stderr
    assert "simulated failure on this rank" in output
    # the failing rank's error names it (the note is added on Python >= 3.11)
    if sys.version_info >= (3, 11):
        assert "raised on rank 1 of 2" in output
    # torchrun's summary lists rank 1 among the failures; it stopped rank 0 (which
    # may itself fail first on the broken connection, so either can be the root)
    summary = output.split("FAILED", 1)[1]
    assert re.search(r"rank\s*:\s*1\b", summary)
    assert not (tmp_path / "rank0.json").exists()  # no partial result


@pytest.mark.parametrize("estimator", [MedicalCNNClassifier, MedicalCNNRegressor])
def test_distributed_outside_torchrun_says_how_to_launch(estimator, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    X, y = make_lesion_phantoms(32, image_size=16, random_state=0)
    with pytest.raises(RuntimeError, match="torchrun"):
        estimator(distributed=True, device="cpu", max_epochs=1).fit(X, y.astype(float))


def test_distributed_refuses_a_checkpoint_dir(tmp_path):
    X, y = make_lesion_phantoms(32, image_size=16, random_state=0)
    clf = MedicalCNNClassifier(distributed=True, checkpoint_dir=tmp_path, max_epochs=1)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        clf.fit(X, y)


def test_distributed_refuses_a_plateau_schedule_on_each_process_own_loss():
    X, y = make_lesion_phantoms(32, image_size=16, random_state=0)
    clf = MedicalCNNClassifier(distributed=True, lr_schedule="plateau", max_epochs=1)
    with pytest.raises(ValueError, match="plateau"):
        clf.fit(X, y)
