import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_latency.py"


@pytest.mark.slow  # a fit and timed loops: a minute on busy cores
def test_quick_run_prints_its_figures(capsys):
    spec = importlib.util.spec_from_file_location("bench_latency", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--quick", "--threads", "1"])
    out = capsys.readouterr().out
    assert "one-image latency: simple_cnn, 28x28 images (synthetic)" in out
    assert "the library's own cost" in out
    assert "bare forward with 1 thread(s)" in out
    assert results["predict_proba_ms"] > 0
    assert results["bare_forward_ms"] > 0
    assert results["overhead_ms"] == (
        results["predict_proba_ms"] - results["bare_forward_ms"]
    )


def _module():
    spec = importlib.util.spec_from_file_location("bench_latency", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_einsum_baseline_scores_like_the_library():
    import numpy as np

    from sk_medcnn._ood import mahalanobis_score

    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 6))
    features[3, 2] = np.nan
    location = rng.normal(size=(2, 6))
    factor = rng.normal(size=(6, 6))
    precision = factor @ factor.T + np.eye(6)
    baseline = _module().einsum_mahalanobis(features, location, precision)
    np.testing.assert_allclose(
        baseline, mahalanobis_score(features, location, precision), rtol=1e-10
    )
    assert baseline[3] == np.inf


@pytest.mark.slow  # a fit and timed loops with each score
def test_ood_baseline_restores_the_library_score(capsys):
    from sk_medcnn.estimators import _ood

    library = _ood.mahalanobis_score
    results = _module().main(["--quick", "--threads", "1", "--ood-baseline"])
    assert _ood.mahalanobis_score is library
    assert set(results["ood_score"]) == {"torch", "einsum"}
    for figures in results["ood_score"].values():
        assert figures["images_per_s"] > 0
        assert figures["one_image_ms"] > 0
    assert "torch / einsum throughput" in capsys.readouterr().out
