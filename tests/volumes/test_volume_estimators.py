"""Volumes through the estimators: fit, predict, explain, persist."""

import io

import joblib
import numpy as np
import pytest
import torch
from torch import nn

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor
from sk_medcnn.inspection import grad_cam, saliency_map


def tiny_3d(in_channels, n_outputs, image_shape):
    assert len(image_shape) == 3  # the estimator passes (depth, height, width)
    return nn.Sequential(
        nn.Conv3d(in_channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, n_outputs),
    )


tiny_3d.spatial_dims = (3,)


def tiny_2d(in_channels, n_outputs, image_shape):
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, n_outputs),
    )


@pytest.fixture(scope="module")
def volumes():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 200, (24, 6, 8, 10), dtype=np.uint8)
    y = np.arange(24) % 2
    X[y == 1, 2:4, 3:5, 4:6] = 255  # a bright blob in the positive volumes
    return X, y


@pytest.fixture(scope="module")
def fitted(volumes):
    X, y = volumes
    return MedicalCNNClassifier(
        tiny_3d, max_epochs=2, device="cpu", random_state=0
    ).fit(X, y)


def test_volumes_fit_as_volumes(fitted, volumes):
    X, _ = volumes
    assert fitted.spatial_dims_ == 3
    assert fitted.image_shape_ == (6, 8, 10, 1)
    assert fitted.n_features_in_ == 6 * 8 * 10
    assert fitted.net_.module_.mean.shape == (1, 1, 1, 1, 1)
    proba = fitted.predict_proba(X[:5])
    assert proba.shape == (5, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


def test_volume_layouts_predict_alike(fitted, volumes):
    X, _ = volumes
    expected = fitted.predict_proba(X[:3])
    np.testing.assert_allclose(fitted.predict_proba(X[:3, ..., None]), expected)
    np.testing.assert_allclose(
        fitted.predict_proba(X[:3].reshape(3, -1)), expected, rtol=1e-6
    )
    tensor = torch.as_tensor(X[:3, None], dtype=torch.float32)  # (n, C, D, H, W)
    np.testing.assert_allclose(fitted.predict_proba(tensor), expected, rtol=1e-6)


def test_images_given_to_a_volume_model_name_the_shapes(fitted, volumes):
    X, _ = volumes
    with pytest.raises(ValueError, match=r"fitted on volumes of shape \(6, 8, 10, 1\)"):
        fitted.predict(X[:, 0])
    with pytest.raises(ValueError, match=r"volumes of shape \(6, 8, 9, 1\)"):
        fitted.predict(X[:, :, :, :9])


def test_volumes_given_to_an_image_model_name_the_shapes(volumes):
    X, y = volumes
    clf = MedicalCNNClassifier(tiny_2d, max_epochs=1, device="cpu", random_state=0)
    clf.fit(X[:, 0], y)  # (n, 8, 10): images
    assert clf.spatial_dims_ == 2
    with pytest.raises(
        ValueError, match=r"X of shape \(24, 6, 8, 10\) looks like volumes"
    ):
        clf.predict(X)


def test_spatial_dims_overrules_the_inference(volumes):
    X, y = volumes
    # the same array as 2-D images with 10 channels
    clf = MedicalCNNClassifier(
        tiny_2d, spatial_dims=2, max_epochs=1, device="cpu", random_state=0
    ).fit(X, y)
    assert clf.image_shape_ == (6, 8, 10)
    with pytest.raises(ValueError, match="supports 2-D images only"):
        MedicalCNNClassifier(tiny_2d, max_epochs=1, device="cpu").fit(X, y)
    with pytest.raises(ValueError, match="supports 3-D volumes only"):
        MedicalCNNClassifier(tiny_3d, max_epochs=1, device="cpu").fit(X[:, 0], y)


def test_explanations_of_volumes_are_volumes(fitted, volumes):
    X, _ = volumes
    maps = grad_cam(fitted, X[:2], target=1)
    assert maps.shape == (2, 6, 8, 10)
    assert maps.min() >= 0
    assert maps.max() == pytest.approx(1)
    for method in ("gradient", "smoothgrad", "integrated_gradients"):
        assert saliency_map(fitted, X[:2], method=method).shape == (2, 6, 8, 10)


def test_volume_model_pickles(fitted, volumes):
    X, _ = volumes
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(
        loaded.predict_proba(X[:4]), fitted.predict_proba(X[:4])
    )


def test_regressor_takes_volumes(volumes):
    X, _ = volumes
    target = X.reshape(len(X), -1).mean(axis=1)
    reg = MedicalCNNRegressor(tiny_3d, max_epochs=1, device="cpu", random_state=0)
    reg.fit(X, target)
    assert reg.spatial_dims_ == 3
    assert reg.predict(X[:3]).shape == (3,)


def test_tta_flips_volumes_in_plane(fitted, volumes):
    X, _ = volumes
    fitted_flip = MedicalCNNClassifier(
        tiny_3d, tta="hflip", max_epochs=1, device="cpu", random_state=0
    ).fit(*volumes)
    raw = fitted_flip._raw_outputs(X[:2])
    assert raw.shape[0] == 2  # the volume and its left-right mirror


def test_training_memory_of_volumes():
    from sk_medcnn.utils._memory import training_memory

    need = training_memory(tiny_3d, {}, (16, 16, 16, 1), 2, 8)
    # at least the batch, twice (input and its gradient's worth)
    assert need >= 2 * 8 * 16**3 * 4


class _VolumeDataset(torch.utils.data.Dataset):
    """Items ``(volume (C, D, H, W) tensor, label)``, as MONAI's would be."""

    def __init__(self, X, y):
        self.X, self.targets = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return torch.as_tensor(self.X[index][None]), int(self.targets[index])


def test_a_dataset_of_volumes_fits_and_predicts_like_the_array(volumes):
    X, y = volumes
    params = {"max_epochs": 1, "device": "cpu", "random_state": 0}
    from_array = MedicalCNNClassifier(tiny_3d, **params).fit(X, y)
    from_dataset = MedicalCNNClassifier(tiny_3d, **params).fit(_VolumeDataset(X, y))
    assert from_dataset.image_shape_ == (6, 8, 10, 1)
    np.testing.assert_allclose(
        from_dataset.predict_proba(_VolumeDataset(X[:4], y[:4])),
        from_array.predict_proba(X[:4]),
        rtol=1e-5,
    )


def test_explanation_figures_of_volumes(fitted, volumes):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sk_medcnn.inspection import plot_explanations, plot_volume_overlay

    X, y = volumes
    figure = plot_explanations(fitted, X[:2], y_true=y[:2])
    assert len(figure.axes) == 6  # three slices per volume
    assert figure.axes[0].get_title().startswith("true ")
    heat = np.zeros((6, 8, 10))
    heat[1, 2, 3] = 1.0
    axes = plot_volume_overlay(X[0], heat)
    # the slices cross where the map peaks
    assert [ax.get_title() for ax in axes] == [
        "axial, depth 1",
        "coronal, row 2",
        "sagittal, column 3",
    ]
    with pytest.raises(ValueError, match="differ in depth, height and width"):
        plot_volume_overlay(X[0, :5], heat)
    with pytest.raises(ValueError, match="position must be"):
        plot_volume_overlay(X[0], heat, position=(6, 0, 0))
    with pytest.raises(ValueError, match="origin must be one of"):
        plot_volume_overlay(X[0], heat, origin="top")
    matplotlib.pyplot.close("all")


def test_volume_slices_are_drawn_the_right_way_up():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sk_medcnn.inspection import plot_volume_overlay

    # a ramp along each axis: depth (superior), rows (anterior), columns
    volume = np.zeros((6, 8, 10))
    volume += np.arange(6)[:, None, None] * 100
    volume += np.arange(8)[None, :, None] * 10
    volume += np.arange(10)[None, None, :]
    axes = plot_volume_overlay(volume, None, position=(2, 3, 4))
    drawn = [ax.get_images()[0].get_array() for ax in axes]
    assert len(axes[0].get_images()) == 1  # no heat map over a bare volume
    # "lower": the first row of each slice at the bottom, so anterior (the
    # last row) at the top of the axial view and superior (the last depth)
    # at the top of the coronal and sagittal views
    np.testing.assert_array_equal(drawn[0], volume[2][::-1])
    np.testing.assert_array_equal(drawn[1], volume[:, 3][::-1])
    np.testing.assert_array_equal(drawn[2], volume[:, :, 4][::-1])
    upper = plot_volume_overlay(volume, None, position=(2, 3, 4), origin="upper")
    np.testing.assert_array_equal(upper[0].get_images()[0].get_array(), volume[2])
    matplotlib.pyplot.close("all")


def test_trust_tools_take_volumes(fitted, volumes):
    from sk_medcnn import ConformalClassifier
    from sk_medcnn.inspection import check_distribution

    X, y = volumes
    assert fitted.temperature_ > 0
    scores = fitted.ood_score(X[:4])
    assert scores.shape == (4,)
    assert np.isfinite(scores).all()
    # noise on another scale is flagged by the intensity check or the score
    noise = np.random.default_rng(1).normal(0, 3000, (2, 6, 8, 10))
    check = check_distribution(fitted, noise)
    assert not check.in_distribution.any()
    conformal = ConformalClassifier(fitted, cv="prefit", alpha=0.2).fit(X[:12], y[:12])
    assert conformal.predict_set(X[12:16]).shape == (4, 2)


def test_explanation_scores_refuse_volumes_clearly(fitted, volumes):
    from sk_medcnn.metrics import explanation_score

    X, y = volumes
    with pytest.raises(ValueError, match="defined for 2-D images"):
        explanation_score(fitted, X[:4], y[:4], metric="road")


def test_volume_files_given_to_an_image_model_name_the_file(tmp_path, volumes):
    nibabel = pytest.importorskip("nibabel")
    X, y = volumes
    path = tmp_path / "volume.nii.gz"
    nibabel.save(nibabel.Nifti1Image(X[0].astype(np.int16), np.eye(4)), path)
    clf = MedicalCNNClassifier(tiny_2d, max_epochs=1, device="cpu", random_state=0)
    clf.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="volume"):
        clf.predict([str(path)])


def test_volume_model_round_trips_through_skmed(tmp_path):
    from sk_medcnn.datasets import make_lesion_phantoms
    from sk_medcnn.persistence import load_model, save_model

    X, y = make_lesion_phantoms(16, image_size=16, spatial_dims=3, random_state=0)
    clf = MedicalCNNClassifier(max_epochs=1, device="cpu", random_state=0).fit(X, y)
    assert clf.spatial_dims_ == 3
    save_model(clf, tmp_path / "volumes.skmed")
    loaded = load_model(tmp_path / "volumes.skmed")
    assert loaded.spatial_dims_ == 3
    np.testing.assert_array_equal(loaded.predict_proba(X[:3]), clf.predict_proba(X[:3]))


def test_too_small_volumes_get_a_clear_error():
    def unpadded_3d(in_channels, n_outputs, image_shape):
        return nn.Sequential(
            nn.Conv3d(in_channels, 2, 5), nn.Flatten(), nn.LazyLinear(n_outputs)
        )

    unpadded_3d.spatial_dims = (3,)
    X = np.zeros((4, 3, 3, 3), dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"volumes of shape \(3, 3, 3, 1\) do not fit architecture"
    ):
        MedicalCNNClassifier(unpadded_3d, spatial_dims=3, device="cpu").fit(
            X, [0, 0, 1, 1]
        )


def test_grad_cam_finds_the_last_acs_convolution():
    from sk_medcnn.architectures import ACSConv
    from sk_medcnn.inspection._base import default_layer, resolve_model

    X = np.random.default_rng(0).random((8, 16, 16, 16)).astype(np.float32)
    y = np.arange(8) % 2
    clf = MedicalCNNClassifier(
        "acs_resnet18",
        architecture_params={"width": 4},
        max_epochs=1,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    layer = default_layer(resolve_model(clf))
    assert any(isinstance(m, ACSConv) for m in layer.modules())
    assert grad_cam(clf, X[:2], target=1).shape == (2, 16, 16, 16)


def test_a_volume_model_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from sk_medcnn.datasets import make_lesion_phantoms
    from sk_medcnn.export import export_onnx

    X, y = make_lesion_phantoms(16, image_size=16, spatial_dims=3, random_state=0)
    clf = MedicalCNNClassifier(
        max_epochs=1, tta=None, device="cpu", random_state=0
    ).fit(X, y)
    path = export_onnx(clf, tmp_path / "volumes.onnx")
    session = ort.InferenceSession(str(path))
    name = session.get_inputs()[0].name
    proba = session.run(None, {name: X[:3, ..., None].astype(np.float32)})[0]
    np.testing.assert_allclose(proba, clf.predict_proba(X[:3]), atol=1e-5)


def test_fit_architecture_params_layers_the_user_over_the_checkpoint_or_defaults():
    from sk_medcnn import MedicalCNNClassifier
    from sk_medcnn.estimators._network import fit_architecture_params

    plain = MedicalCNNClassifier()
    assert fit_architecture_params(plain, 3) == {"global_pool": "max"}
    assert fit_architecture_params(plain, 2) == {}
    # a checkpoint's implied network replaces the defaults, not merges with them
    assert fit_architecture_params(plain, 3, {"width": 8}) == {"width": 8}
    user = MedicalCNNClassifier(architecture_params={"global_pool": None})
    assert fit_architecture_params(user, 3) == {"global_pool": None}
    assert fit_architecture_params(user, 3, {"global_pool": "avg", "width": 8}) == {
        "global_pool": None,
        "width": 8,
    }
    assert user.architecture_params == {"global_pool": None}  # not mutated


def test_simple_cnn_pools_volumes_globally_by_default(tmp_path):
    from sk_medcnn.architectures import GlobalPool
    from sk_medcnn.datasets import make_lesion_phantoms
    from sk_medcnn.estimators._network import default_architecture_params
    from sk_medcnn.persistence import load_model, save_model

    assert default_architecture_params("simple_cnn", 3) == {"global_pool": "max"}
    assert default_architecture_params("simple_cnn", 2) == {}
    assert default_architecture_params("resnet18", 3) == {}
    X, y = make_lesion_phantoms(
        16, image_size=12, spatial_dims=3, lesion_radius=(2, 3), random_state=0
    )
    fast = {"max_epochs": 1, "device": "cpu", "random_state": 0}
    clf = MedicalCNNClassifier(**fast).fit(X, y)
    head = clf.net_.module_.body.classifier[0]
    assert isinstance(head, GlobalPool)
    assert head.mode == "max"
    assert clf.architecture_params_ == {"global_pool": "max"}
    assert clf.memory_format_ == "channels_last"  # GlobalPool is scanned
    # the user's parameters win; None is the Keras model's flattened head
    flat = MedicalCNNClassifier(architecture_params={"global_pool": None}, **fast)
    flat.fit(X, y)
    assert isinstance(flat.net_.module_.body.classifier[0], nn.Flatten)
    # a model saved before the default existed (no architecture_params_) was
    # built with the factory's own default, the flattened head, and loads as such
    flat.architecture_params = None
    del flat.architecture_params_
    save_model(flat, tmp_path / "old.skmed")
    loaded = load_model(tmp_path / "old.skmed")
    assert isinstance(loaded.net_.module_.body.classifier[0], nn.Flatten)
    np.testing.assert_array_equal(
        loaded.predict_proba(X[:3]), flat.predict_proba(X[:3])
    )
    # fine-tuning keeps the source's network, not today's default
    tuned = MedicalCNNClassifier(pretrained=flat, **fast).fit(X, y)
    assert isinstance(tuned.net_.module_.body.classifier[0], nn.Flatten)
    # images keep the Keras model
    X2, y2 = make_lesion_phantoms(16, image_size=16, random_state=0)
    images = MedicalCNNClassifier(**fast).fit(X2, y2)
    assert images.architecture_params_ == {}
    assert isinstance(images.net_.module_.body.classifier[0], nn.Flatten)
