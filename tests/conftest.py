"""Shared fixtures: tiny data sets, built once per run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PNEUMONIAMNIST = SHARED_DATA / "pneumoniamnist_28_trainval.npz"


def pytest_configure(config):
    # pytest-xdist runs one process per core: one torch thread each avoids the
    # oversubscription that slows OpenMP kernels down by large factors.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def phantoms():
    """64 labelled 16x16 uint8 phantoms, half with a lesion."""
    from sk_medcnn.datasets import make_lesion_phantoms

    X, y = make_lesion_phantoms(64, image_size=16, random_state=0)
    X.setflags(write=False)  # a test must not change shared data
    y.setflags(write=False)
    return X, y


@pytest.fixture(scope="session")
def separable_images():
    """A task a CNN learns in a few epochs: a bright square or not, 12x12."""
    rng = np.random.RandomState(0)
    n = 80
    X = rng.randint(0, 60, size=(n, 12, 12)).astype(np.uint8)
    y = np.arange(n) % 2
    X[y == 1, 3:9, 3:9] += 150
    X.setflags(write=False)
    return X, y


def _edit_model_file(path: Path, edit) -> None:
    """Rewrite a ``.skmed`` file with ``edit`` applied to its estimator node."""
    import io
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members["model.json"])
    edit(document["model"]["__estimator__"])
    members["model.json"] = json.dumps(document).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    path.write_bytes(buffer.getvalue())


@pytest.fixture
def edit_model_file():
    """``edit_model_file(path, edit)``: change a saved model's JSON in place
    (``edit`` gets the estimator node: its ``params`` and ``attributes``), as a
    hand-edited or hostile file would."""
    return _edit_model_file
