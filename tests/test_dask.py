"""Hyper-parameter search on a real Dask cluster through joblib's dask backend."""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.preprocessing import IntensityNormalizer

distributed = pytest.importorskip("distributed")
KilledWorker = distributed.scheduler.KilledWorker


def _search():
    pipe = make_pipeline(
        IntensityNormalizer(),
        MedicalCNNClassifier(max_epochs=2, batch_size=16, random_state=0, device="cpu"),
    )
    return GridSearchCV(
        pipe,
        {"medicalcnnclassifier__lr": [1e-3, 3e-3]},
        cv=2,
        scoring="roc_auc",
    )


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_grid_search_on_a_dask_cluster_equals_one_process(client, phantoms):
    X, y = phantoms
    # dask's nanny starts workers with OMP_NUM_THREADS=1: one torch thread each,
    # so two workers do not oversubscribe two cores
    assert set(client.run(_torch_threads).values()) == {1}

    with joblib.parallel_backend("dask"):
        on_cluster = _search().fit(X, y)
    assert len(client.scheduler_info()["workers"]) == 2

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' setting: bit-identical float results
    try:
        local = _search().fit(X, y)
    finally:
        torch.set_num_threads(previous)
    np.testing.assert_array_equal(
        on_cluster.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert on_cluster.best_params_ == local.best_params_
    # the refit of the best candidate runs in this process, with this process's
    # torch threads: equal up to float summation order
    np.testing.assert_allclose(
        on_cluster.predict_proba(X), local.predict_proba(X), rtol=1e-6, atol=1e-7
    )


class DieOnce(BaseEstimator):
    """An augmenter that kills its process at its first batch, once per flag file."""

    def __init__(self, flag: str = ""):
        self.flag = flag

    def augment_batch(self, images, generator):
        flag = Path(self.flag)
        if not flag.exists():
            flag.write_text("a worker died here")
            os._exit(1)  # as if the machine had gone: no exception, no cleanup
        return images


def _dying_search(flag: Path) -> GridSearchCV:
    clf = MedicalCNNClassifier(
        max_epochs=1,
        batch_size=16,
        augmentation=DieOnce(str(flag)),
        random_state=0,
        device="cpu",
    )
    return GridSearchCV(clf, {"lr": [1e-3, 3e-3]}, cv=2, scoring="roc_auc")


def _single_process_scores(flag: Path, X, y) -> np.ndarray:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' setting
    try:
        return _dying_search(flag).fit(X, y).cv_results_["mean_test_score"]
    finally:
        torch.set_num_threads(previous)


def test_a_worker_that_dies_gives_an_error_or_a_rerun_never_a_partial_result(
    client, phantoms, tmp_path
):
    X, y = phantoms
    flag = tmp_path / "died"
    search = _dying_search(flag)
    # Dask reruns the lost task on another worker when the data it needs
    # survives there; joblib's dask backend sends X to the workers once, and
    # when the dead worker held the only copy, dask cancels the search
    try:
        with joblib.parallel_backend("dask"):
            search.fit(X, y)
    except (distributed.client.FutureCancelledError, KilledWorker):
        assert not hasattr(search, "cv_results_")  # no partial result
        # the nanny restarts the worker: the search can simply be run again
        client.wait_for_workers(2, timeout=60)
        with joblib.parallel_backend("dask"):
            search = _dying_search(flag).fit(X, y)
    assert flag.read_text() == "a worker died here"  # one fit did die
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"], _single_process_scores(flag, X, y)
    )
