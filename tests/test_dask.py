"""Hyper-parameter search on a real Dask cluster through joblib's dask backend."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.preprocessing import IntensityNormalizer

distributed = pytest.importorskip("distributed")


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
