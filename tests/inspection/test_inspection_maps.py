"""Grad-CAM and saliency maps: shapes, layers, targets, pipelines, side effects."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from torch import nn

from sk_medcnn import MedicalCNNClassifier, register_architecture
from sk_medcnn.inspection import grad_cam, saliency_map
from sk_medcnn.inspection._base import default_layer, resolve_model
from sk_medcnn.preprocessing import CenterCrop, IntensityNormalizer, Resize
from sk_medcnn.registry import _ARCHITECTURES

SALIENCY_METHODS = ["gradient", "smoothgrad", "integrated_gradients"]
FAST = {"n_samples": 3, "n_steps": 4}


def _explain(estimator, X, method, **kwargs):
    if method in ("grad_cam", "hires_cam"):
        return grad_cam(estimator, X, variant=method, **kwargs)
    return saliency_map(estimator, X, method=method, random_state=0, **FAST, **kwargs)


ALL_METHODS = ["grad_cam", "hires_cam", *SALIENCY_METHODS]


@pytest.fixture(scope="module")
def fitted(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        max_epochs=2, architecture_params={"width": 4}, random_state=0
    )
    return clf.fit(X, y)


def _layer_name(clf, module):
    return next(
        name
        for name, candidate in clf.net_.module_.body.named_modules()
        if candidate is module
    )


@pytest.mark.parametrize("method", ALL_METHODS)
def test_maps_are_unit_range_image_sized_and_deterministic(fitted, phantoms, method):
    X, _ = phantoms
    maps = _explain(fitted, X[:10], method)
    assert maps.shape == (10, 16, 16)
    assert maps.dtype == np.float32
    assert maps.min() >= 0.0
    assert maps.max() <= 1.0
    peaks = maps.max(axis=(1, 2))
    assert np.all((peaks == 1.0) | (peaks == 0.0))  # each map scaled by its maximum
    np.testing.assert_array_equal(maps, _explain(fitted, X[:10], method))


@pytest.mark.parametrize("method", ALL_METHODS)
def test_batches_do_not_change_the_maps(fitted, phantoms, method):
    X, _ = phantoms
    whole = _explain(fitted, X[:9], method, batch_size=64)
    if method == "smoothgrad":  # the noise is drawn batch by batch
        return
    np.testing.assert_allclose(
        _explain(fitted, X[:9], method, batch_size=4), whole, atol=1e-5
    )


def test_default_layer_is_the_last_convolutional_feature_maps(fitted, phantoms):
    # simple_cnn: the ReLU after the last convolution, before its max-pool
    assert _layer_name(fitted, default_layer(resolve_model(fitted))) == "features.7"
    X, y = phantoms
    resnet = MedicalCNNClassifier(
        "resnet18", max_epochs=1, architecture_params={"width": 4}, random_state=0
    ).fit(X[:16], y[:16])
    # ResNet: the last stage's output, not its last Conv2d (layer4.1.conv2),
    # which only feeds the residual branch
    assert _layer_name(resnet, default_layer(resolve_model(resnet))) == "layer4"
    assert grad_cam(resnet, X[:3]).shape == (3, 16, 16)
    # global average pooling: every position of layer4 gets the same gradient,
    # so HiResCAM (the default) and Grad-CAM are the same maps
    np.testing.assert_allclose(
        grad_cam(resnet, X[:6]), grad_cam(resnet, X[:6], variant="grad_cam"), atol=1e-5
    )


def test_default_variant_is_hires_cam(fitted, phantoms):
    # simple_cnn flattens its maps into a dense layer: the variants differ, and
    # the default (for grad_cam and plot_explanations) follows the model
    X, _ = phantoms
    default = grad_cam(fitted, X[:8])
    np.testing.assert_array_equal(default, grad_cam(fitted, X[:8], variant="hires_cam"))
    assert not np.allclose(default, grad_cam(fitted, X[:8], variant="grad_cam"))


def test_layer_by_name_module_or_callable(fitted, phantoms):
    X, _ = phantoms
    by_name = grad_cam(fitted, X[:4], layer="features.3")
    module = fitted.net_.module_.body.features[3]
    np.testing.assert_array_equal(grad_cam(fitted, X[:4], layer=module), by_name)
    np.testing.assert_array_equal(
        grad_cam(fitted, X[:4], layer=lambda body: body.features[3]), by_name
    )
    assert not np.array_equal(grad_cam(fitted, X[:4]), by_name)


def test_targets(fitted, phantoms):
    X, _ = phantoms
    predicted = fitted.predict(X[:8])
    np.testing.assert_array_equal(
        grad_cam(fitted, X[:8]), grad_cam(fitted, X[:8], target=predicted)
    )
    for_one = grad_cam(fitted, X[:8], target=1)
    np.testing.assert_array_equal(
        for_one, grad_cam(fitted, X[:8], target=np.ones(8, dtype=int))
    )
    assert not np.array_equal(for_one, grad_cam(fitted, X[:8], target=0))


def test_string_labels(phantoms):
    X, y = phantoms
    labels = np.where(y == 1, "lesion", "normal")
    clf = MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X, labels)
    assert grad_cam(clf, X[:3], target="lesion").shape == (3, 16, 16)
    with pytest.raises(ValueError, match=r"target 1 is not a class.*'lesion'"):
        grad_cam(clf, X[:3], target=1)


def test_pipeline_maps_come_back_at_the_input_size(phantoms):
    X, y = phantoms
    pipe = make_pipeline(
        Resize(24),
        IntensityNormalizer(),
        MedicalCNNClassifier(max_epochs=2, random_state=0),
    ).fit(X, y)
    assert pipe[-1].image_shape_ == (24, 24, 1)
    for method in ALL_METHODS:
        assert _explain(pipe, X[:5], method).shape == (5, 16, 16), method
    # the same map as explaining the classifier on the resized images, then
    # bringing it back to 16 x 16
    direct = grad_cam(pipe[-1], pipe[:-1].transform(X[:5]), variant="hires_cam")
    assert direct.shape == (5, 24, 24)
    resized = Resize(16).fit_transform(direct)
    through_pipeline = grad_cam(pipe, X[:5], variant="hires_cam")
    compared = 0
    for ours, reference in zip(through_pipeline, resized, strict=True):
        if ours.max() > 0:
            assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] > 0.95
            compared += 1
    assert compared >= 3
    # flat rows before the preprocessing have no size: the model's is kept
    assert grad_cam(pipe, X[:2].reshape(2, -1)).shape == (2, 24, 24)


def test_pipeline_from_file_paths(phantoms, tmp_path):
    iio = pytest.importorskip("imageio.v3")
    from sk_medcnn.io import ImageLoader

    X, y = phantoms
    paths = []
    for index, image in enumerate(X[:16]):
        path = tmp_path / f"{index}.png"
        iio.imwrite(path, image)
        paths.append(str(path))
    pipe = make_pipeline(ImageLoader(), Resize(20), MedicalCNNClassifier(max_epochs=1))
    pipe.fit(paths, y[:16])
    # paths have no size of their own: the maps have the size the model sees
    assert grad_cam(pipe, paths[:3]).shape == (3, 20, 20)
    assert saliency_map(pipe, paths[:3]).shape == (3, 20, 20)


def test_flat_rows_and_channels(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(max_epochs=1, random_state=0).fit(X.reshape(64, -1), y)
    assert grad_cam(clf, X[:2].reshape(2, -1)).shape == (2, 16, 16)
    rgb = np.repeat(X[..., None], 3, axis=-1)
    clf_rgb = MedicalCNNClassifier(max_epochs=1, random_state=0).fit(rgb, y)
    for method in ALL_METHODS:
        assert _explain(clf_rgb, rgb[:2], method).shape == (2, 16, 16)


def test_test_time_augmentation_and_temperature_play_no_part(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        max_epochs=2, tta="hflip", calibration="temperature", random_state=0
    ).fit(X, y)
    maps = grad_cam(clf, X[:6], target=1)
    plain = copy.deepcopy(clf).set_params(tta=None)
    np.testing.assert_array_equal(grad_cam(plain, X[:6], target=1), maps)
    assert plain.temperature_ == clf.temperature_


def test_cropping_pipeline_warns(phantoms):
    X, y = phantoms
    pipe = make_pipeline(CenterCrop(12), MedicalCNNClassifier(max_epochs=1)).fit(X, y)
    with pytest.warns(UserWarning, match=r"\['centercrop'\] crop or pad"):
        grad_cam(pipe, X[:2])


class SpotNet(nn.Module):
    """Detects bright spots: conv, ReLU, max-pool, 1x1 conv, ReLU, global max."""

    def __init__(self, in_channels: int, n_outputs: int) -> None:
        super().__init__()
        self.detect = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.mix = nn.Conv2d(1, 1, 1)
        self.relu2 = nn.ReLU(inplace=True)
        self.head = nn.Sequential(
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(1, n_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.detect(x)))
        return self.head(self.relu2(self.mix(x)))

    def set_weights(self) -> None:
        with torch.no_grad():
            self.detect.weight.fill_(1.0)
            # a 3x3 window fires when it holds more than 4 spot pixels
            self.detect.bias.fill_(-4.0)
            self.mix.weight.fill_(1.0)
            self.mix.bias.zero_()
            self.head[2].weight.copy_(torch.tensor([[-1.0], [1.0]]))
            self.head[2].bias.zero_()


@pytest.fixture
def spot_net():
    """A plugin-like architecture, registered for the test and removed after."""

    @register_architecture("_test_spot_net")
    def build(in_channels, n_outputs, image_shape):
        return SpotNet(in_channels, n_outputs)

    rng = np.random.RandomState(0)
    X = rng.normal(0.0, 0.05, (40, 16, 16)).astype(np.float32)
    centres = rng.randint(2, 14, size=(40, 2))
    for image, (row, col) in zip(X, centres, strict=True):
        image[row - 1 : row + 2, col - 1 : col + 2] += 1.0
    y = np.arange(40) % 2
    try:
        clf = MedicalCNNClassifier("_test_spot_net", max_epochs=1, random_state=0)
        clf.fit(X, y)
        clf.net_.module_.body.set_weights()
        # identity standardisation, so the weights act on the raw pixels
        clf.net_.module_.mean.zero_()
        clf.net_.module_.std.fill_(1.0)
        yield clf, X, centres
    finally:
        del _ARCHITECTURES["_test_spot_net"]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_maps_point_at_the_spot_a_hand_built_detector_sees(spot_net, method):
    # known ground truth: the only evidence for class 1 is the bright spot
    clf, X, centres = spot_net
    assert _layer_name(clf, default_layer(resolve_model(clf))) == "relu2"
    maps = _explain(clf, X, method, target=1)
    peaks = np.array(np.unravel_index(maps.reshape(40, -1).argmax(1), (16, 16))).T
    # within the spot, up to the 2-pixel cells of the pooled layer
    assert np.abs(peaks - centres).max() <= 2
    # class 0's logit falls with the spot: nothing raises it, the map is 0
    assert np.all(grad_cam(clf, X, target=0) == 0.0)


def test_no_side_effects_on_the_model(fitted, phantoms):
    X, _ = phantoms
    clf = copy.deepcopy(fitted)
    network = clf.net_.module_
    network.train()
    network.body.features[1].eval()  # a mixed state must come back as it was
    modes = [module.training for module in network.modules()]
    inplace = [
        module.inplace for module in network.modules() if hasattr(module, "inplace")
    ]
    requires_grad = [p.requires_grad for p in network.parameters()]
    state = {key: value.clone() for key, value in network.state_dict().items()}
    for method in ALL_METHODS:
        _explain(clf, X[:4], method)
    with pytest.raises(ValueError, match="feature map"):  # fails inside the hook
        grad_cam(clf, X[:4], layer="classifier.1")
    assert [module.training for module in network.modules()] == modes
    assert [
        module.inplace for module in network.modules() if hasattr(module, "inplace")
    ] == inplace
    assert [p.requires_grad for p in network.parameters()] == requires_grad
    assert all(p.grad is None for p in network.parameters())
    for module in network.modules():
        assert not module._forward_hooks
        assert not module._backward_hooks
    for key, value in network.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_inside_inference_mode_and_with_frozen_weights(fitted, phantoms):
    X, _ = phantoms
    expected = grad_cam(fitted, X[:3])
    with torch.inference_mode():
        np.testing.assert_array_equal(grad_cam(fitted, X[:3]), expected)
    clf = copy.deepcopy(fitted)
    for parameter in clf.net_.module_.parameters():
        parameter.requires_grad_(False)
    np.testing.assert_array_equal(grad_cam(clf, X[:3]), expected)
    saliency_map(clf, X[:3])


def test_errors_name_the_problem(fitted, phantoms):
    X, y = phantoms
    with pytest.raises(NotFittedError):
        grad_cam(MedicalCNNClassifier(), X[:2])
    with pytest.raises(NotFittedError):
        saliency_map(make_pipeline(Resize(8), MedicalCNNClassifier()), X[:2])
    flat = X.reshape(64, -1)
    with pytest.raises(
        TypeError, match=r"MedicalCNNClassifier.*got LogisticRegression"
    ):
        grad_cam(LogisticRegression().fit(flat, y), flat[:2])
    with pytest.raises(TypeError, match="Pipeline ending in LogisticRegression"):
        saliency_map(make_pipeline(LogisticRegression()).fit(flat, y), flat[:2])
    with pytest.raises(ValueError, match=r"layer 'features.9' is not a module.*"
                       r"'features.6'.*Did you mean"):  # fmt: skip
        grad_cam(fitted, X[:2], layer="features.9")
    with pytest.raises(ValueError, match="is not a module of the fitted"):
        grad_cam(fitted, X[:2], layer=nn.Conv2d(1, 1, 3))
    with pytest.raises(TypeError, match=r"must return a torch.nn.Module"):
        grad_cam(fitted, X[:2], layer=lambda body: "features.6")
    with pytest.raises(TypeError, match="layer must be None, a module name"):
        grad_cam(fitted, X[:2], layer=6)
    with pytest.raises(ValueError, match=r"target 7 is not a class.*\[0, 1\]"):
        grad_cam(fitted, X[:2], target=7)
    with pytest.raises(ValueError, match="target holds 3 labels but X holds 2"):
        saliency_map(fitted, X[:2], target=[0, 1, 1])
    with pytest.raises(ValueError, match="variant must be one of"):
        grad_cam(fitted, X[:2], variant="gradcam++")
    with pytest.raises(ValueError, match=r"method must be one of.*Did you mean"):
        saliency_map(fitted, X[:2], method="smooth_grad")
    with pytest.raises(ValueError, match="n_samples == 0"):
        saliency_map(fitted, X[:2], method="smoothgrad", n_samples=0)
    with pytest.raises(ValueError, match="X has 144 features, but"):
        grad_cam(fitted, np.zeros((2, 12, 12)))
    with pytest.raises(ValueError, match="X holds no images"):
        grad_cam(fitted, X[:0])


def test_architecture_without_convolutions():
    @register_architecture("_test_dense_only")
    def build(in_channels, n_outputs, image_shape):
        n_inputs = in_channels * image_shape[0] * image_shape[1]
        return nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, n_outputs))

    try:
        X = np.random.RandomState(0).rand(8, 6, 6)
        clf = MedicalCNNClassifier("_test_dense_only", max_epochs=1).fit(
            X, np.arange(8) % 2
        )
        with pytest.raises(
            ValueError, match=r"has no convolution \(torch.nn.Conv2d or Conv3d\)"
        ):
            grad_cam(clf, X[:2])
        assert saliency_map(clf, X[:2]).shape == (2, 6, 6)  # gradients still work
    finally:
        del _ARCHITECTURES["_test_dense_only"]


def test_all_zero_maps_warn():
    from sk_medcnn.inspection._grad_cam import _warn_if_blank

    maps = np.zeros((3, 4, 4), dtype=np.float32)
    maps[0, 1, 1] = 1.0
    with pytest.warns(UserWarning, match="2 of 3 Grad-CAM maps are all zero"):
        _warn_if_blank(maps, "grad_cam")
    with pytest.warns(UserWarning, match="HiResCAM maps are all zero") as caught:
        _warn_if_blank(maps, "hires_cam")
    assert "variant='hires_cam'" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_blank(maps[:1], "grad_cam")  # nothing blank, no warning


@pytest.mark.parametrize("method", ["grad_cam", "saliency"])
def test_maps_of_a_torch_dataset_equal_those_of_the_array(fitted, phantoms, method):
    # a Dataset is indexed by item: the maps read batches of its items
    X, _ = phantoms
    images = torch.from_numpy(X[:5, None].astype(np.float32))  # (n, C, H, W)
    dataset = torch.utils.data.TensorDataset(images)
    explain = grad_cam if method == "grad_cam" else saliency_map
    np.testing.assert_allclose(
        explain(fitted, dataset, batch_size=2), explain(fitted, X[:5], batch_size=2)
    )
