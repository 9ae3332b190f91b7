"""ImageEmbedder: a fitted network or a pretrained backbone as a transformer."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_medcnn import ImageEmbedder, MedicalCNNClassifier, get_architecture

SMALL_RESNET = {"width": 8}


@pytest.fixture(scope="module")
def data(phantoms):
    X, y = phantoms
    return X[:32], y[:32]


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return MedicalCNNClassifier(max_epochs=2, random_state=0, device="cpu").fit(X, y)


def _hidden_features(clf, X):
    """The input of simple_cnn's output layer, computed by hand."""
    module = clf.net_.module_
    x = torch.from_numpy(X.astype(np.float32))[..., None].permute(0, 3, 1, 2)
    x = (x - module.mean) / module.std
    body = module.body
    with torch.no_grad():
        hidden = body.classifier[:4](body.features(x))
    return hidden.numpy()


def test_model_embedding_is_the_input_of_the_output_layer(fitted, data):
    X, _ = data
    embedder = ImageEmbedder(fitted).fit(X)
    Z = embedder.transform(X)
    assert Z.dtype == np.float32
    assert Z.shape == (len(X), 128) == (len(X), embedder.n_embedding_)
    np.testing.assert_allclose(Z, _hidden_features(fitted, X), rtol=1e-4, atol=1e-5)
    names = embedder.get_feature_names_out()
    assert names[0] == "embedding0"
    assert names[-1] == "embedding127"
    # the output layer applied to the embedding gives the model's logits
    head = fitted.net_.module_.body.classifier[4]
    with torch.no_grad():
        logits = head(torch.from_numpy(Z)).numpy()
    raw = fitted._raw_outputs(X)[0]
    np.testing.assert_allclose(logits, raw, rtol=1e-4, atol=1e-4)


def test_model_is_not_changed_and_clone_keeps_it(fitted, data):
    X, _ = data
    before = fitted.predict_proba(X)
    embedder = ImageEmbedder(fitted)
    cloned = clone(embedder)
    assert cloned.model is fitted
    Z = cloned.fit(X).transform(X)
    np.testing.assert_array_equal(Z, ImageEmbedder(fitted).fit_transform(X))
    np.testing.assert_array_equal(fitted.predict_proba(X), before)
    frozen = ImageEmbedder(FrozenEstimator(fitted)).fit(X)
    np.testing.assert_array_equal(frozen.transform(X), Z)


def test_pipeline_model_applies_its_steps(data):
    X, y = data
    pipe = make_pipeline(
        FunctionTransformer(lambda images: images / 255.0),
        MedicalCNNClassifier(max_epochs=1, random_state=0, device="cpu"),
    ).fit(X, y)
    Z = ImageEmbedder(pipe).fit(X).transform(X)
    direct = ImageEmbedder(pipe[-1]).fit(X / 255.0).transform(X / 255.0)
    np.testing.assert_array_equal(Z, direct)


def test_linear_probe_pipeline_and_pickles(fitted, data):
    X, y = data
    pipe = make_pipeline(ImageEmbedder(fitted), LogisticRegression(max_iter=500))
    pipe.fit(X, y)
    expected = pipe.predict_proba(X)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(pipe)).predict_proba(X), expected
    )
    np.testing.assert_array_equal(clone(pipe).fit(X, y).predict_proba(X), expected)


def test_set_output_pandas(fitted, data):
    pd = pytest.importorskip("pandas")
    X, _ = data
    frame = ImageEmbedder(fitted).set_output(transform="pandas").fit(X).transform(X)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns[:2]) == ["embedding0", "embedding1"]


def test_backbone_with_pretrained_file_and_layers(tmp_path, data):
    X, _ = data
    with torch.random.fork_rng():
        torch.manual_seed(0)
        source = get_architecture("resnet18")(
            3, 1000, (224, 224), stem="imagenet", **SMALL_RESNET
        )
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    embedder = ImageEmbedder(architecture="resnet18", pretrained=path).fit(X)
    assert embedder.input_normalization_ == "imagenet"
    Z = embedder.transform(X)
    assert Z.shape == (len(X), 64)
    # by hand: the grayscale image through the summed RGB kernels
    mean, std = (
        np.mean([0.485, 0.456, 0.406]) * 255,
        np.mean([0.229, 0.224, 0.225]) * 255,
    )
    net = get_architecture("resnet18")(1, 2, (16, 16), stem="imagenet", **SMALL_RESNET)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    state["conv1.weight"] = state["conv1.weight"].sum(1, keepdim=True)
    net.load_state_dict(state, strict=False)
    net.eval()
    x = torch.from_numpy(((X - mean) / std).astype(np.float32))[:, None]
    with torch.no_grad():
        h = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        h = net.layer4(net.layer3(net.layer2(net.layer1(h))))
    np.testing.assert_allclose(Z, h.mean(dim=(2, 3)).numpy(), rtol=1e-4, atol=1e-5)
    layer3 = ImageEmbedder(architecture="resnet18", pretrained=path, layer="layer3")
    assert layer3.fit(X).transform(X).shape == (len(X), 32)
    with pytest.raises(ValueError, match="layer='layer9' is not a module"):
        ImageEmbedder(architecture="resnet18", pretrained=path, layer="layer9").fit(X)


@pytest.mark.slow
def test_grid_search_over_layer(data):
    X, y = data
    pipe = make_pipeline(
        ImageEmbedder(
            architecture="resnet18", architecture_params=SMALL_RESNET, random_state=0
        ),
        LogisticRegression(max_iter=200),
    )
    search = GridSearchCV(
        pipe, {"imageembedder__layer": [None, "layer2"]}, cv=2, scoring="accuracy"
    )
    search.fit(X, y)
    assert set(search.cv_results_["param_imageembedder__layer"]) == {None, "layer2"}
    assert pickle.loads(pickle.dumps(search.best_estimator_)).score(X, y) == (
        search.best_estimator_.score(X, y)
    )


def test_errors(fitted, data):
    X, _ = data
    with pytest.raises(ValueError, match="needs a fitted model, or an architecture"):
        ImageEmbedder().fit(X)
    with pytest.raises(ValueError, match="describe a backbone"):
        ImageEmbedder(fitted, architecture="resnet18").fit(X)
    with pytest.raises(TypeError, match="model must be"):
        ImageEmbedder("model.skmed").fit(X)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ImageEmbedder(MedicalCNNClassifier()).fit(X)
    with pytest.raises(NotFittedError):
        ImageEmbedder(fitted).transform(X)
    with pytest.raises(ValueError, match="load_model"):
        ImageEmbedder(architecture="resnet18", pretrained="x.skmed").fit(X)
    embedder = ImageEmbedder(architecture="simple_cnn", random_state=0).fit(X)
    with pytest.raises(ValueError, match="fitted on images of shape"):
        embedder.transform(X[:, :8, :8])


CHECKED = [
    ImageEmbedder(architecture="simple_cnn", random_state=0, device="cpu"),
    ImageEmbedder(
        architecture="resnet18",
        architecture_params=SMALL_RESNET,
        layer="layer2",
        random_state=0,
        device="cpu",
    ),
]


@parametrize_with_checks(CHECKED)
def test_sklearn_compatible(estimator, check):
    # ImageEmbedder(model) is not run here: its input shape is the model's, and
    # the checks fit on data of their own shapes. Every check applies to a
    # backbone embedder and passes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        check(estimator)


def test_parameter_constraints_cover_every_parameter():
    assert set(ImageEmbedder._parameter_constraints) == set(
        ImageEmbedder().get_params(deep=False)
    )


def test_benchmark_script_runs_quick(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_embedding.py"
    spec = importlib.util.spec_from_file_location("eval_embedding", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "embedding.json"
    module.main(["--quick", "--repeats", "1", "--json", str(out)])
    import json

    results = json.loads(out.read_text())
    assert results["split"] == "validation"
    run = results["runs"][0]
    assert 0.0 <= run["embedding + logistic regression"]["AUC"] <= 1.0
    assert run["embedding_images_per_s_val"] > 0
    assert "embedding+LR AUC" in capsys.readouterr().out
