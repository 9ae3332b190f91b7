"""MedicalCNNClassifier: training, inputs, labels, options and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils.class_weight import compute_class_weight

from sk_medcnn import MedicalCNNClassifier

FAST = {"max_epochs": 2, "batch_size": 16, "random_state": 0, "device": "cpu"}


def test_learns_a_separable_task(separable_images):
    X, y = separable_images
    clf = MedicalCNNClassifier(max_epochs=6, lr=3e-3, random_state=0).fit(X, y)
    assert clf.score(X, y) >= 0.95
    assert clf.n_epochs_ == 6
    assert clf.image_shape_ == (12, 12, 1)
    assert clf.n_features_in_ == 144
    assert clf.device_ == "cpu"


def test_fitted_attributes_and_proba(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    decision = clf.decision_function(X)
    assert decision.shape == (len(X),)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(decision > 0) * 1])
    np.testing.assert_array_equal(proba[:, 1] > 0.5, decision > 0)
    assert len(clf.history_) == 2
    assert clf.net_.module_ is not None


def test_same_seed_same_predictions(phantoms):
    X, y = phantoms
    first = MedicalCNNClassifier(**FAST).fit(X, y).predict_proba(X)
    second = MedicalCNNClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)
    other = MedicalCNNClassifier(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.array_equal(first, other.predict_proba(X))


def test_fit_leaves_global_torch_rng_alone(phantoms):
    X, y = phantoms
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MedicalCNNClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    "labels",
    [np.array(["normal", "pneumonia"]), np.array([3, 10]), np.array([-1, 1])],
)
def test_any_sklearn_labels(phantoms, labels):
    X, y = phantoms
    y_labels = labels[y]
    clf = MedicalCNNClassifier(**FAST).fit(X, y_labels)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    assert set(clf.predict(X)) <= set(labels)


def test_multiclass(phantoms):
    X, y = phantoms
    y3 = np.where(np.arange(len(y)) % 3 == 0, 7, y)  # labels 0, 1, 7
    clf = MedicalCNNClassifier(**FAST).fit(X, y3)
    assert clf.predict_proba(X).shape == (len(X), 3)
    assert clf.decision_function(X).shape == (len(X), 3)
    np.testing.assert_array_equal(
        clf.predict(X), clf.classes_[clf.predict_proba(X).argmax(axis=1)]
    )


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_dtypes(separable_images, dtype):
    X, y = separable_images
    X = X.astype(dtype) * (200 if dtype == np.uint16 else 1)
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    assert clf.predict(X).shape == (len(X),)


def test_rgb_and_flat_inputs(separable_images):
    X, y = separable_images
    rgb = np.repeat(X[..., None], 3, axis=3)
    clf = MedicalCNNClassifier(**FAST).fit(rgb, y)
    assert clf.image_shape_ == (12, 12, 3)
    # flat rows of the fitted size are reshaped to the fitted image shape
    np.testing.assert_array_equal(
        clf.predict_proba(rgb.reshape(len(X), -1)), clf.predict_proba(rgb)
    )
    flat = MedicalCNNClassifier(**FAST).fit(X.reshape(len(X), -1), y)
    assert flat.image_shape_ == (12, 12, 1)
    rect = MedicalCNNClassifier(**FAST, image_shape=(6, 24)).fit(
        X.reshape(len(X), -1), y
    )
    assert rect.image_shape_ == (6, 24, 1)
    row = MedicalCNNClassifier(**FAST).fit(X.reshape(len(X), -1)[:, :10], y)
    assert row.image_shape_ == (1, 10, 1)


def test_input_is_not_copied_or_changed(separable_images):
    X, y = separable_images  # read-only: an in-place change would raise
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    clf.predict(X)
    assert X.dtype == np.uint8


def test_fit_makes_no_float_copy_of_X():
    tracemalloc = pytest.importorskip("tracemalloc")
    rng = np.random.RandomState(0)
    X = rng.randint(0, 255, size=(1024, 64, 64), dtype=np.uint8)  # 4 MiB
    y = np.arange(len(X)) % 2
    clf = MedicalCNNClassifier(
        max_epochs=1, batch_size=64, random_state=0, architecture_params={"width": 4}
    )
    clf.fit(X[:8], y[:8])  # warm up: lazy imports (torch._dynamo, ...) allocate too
    tracemalloc.start()
    try:
        clf.fit(X, y)
        clf.predict_proba(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a float32 copy of X alone would be 16 MiB, float64 32 MiB
    assert peak < X.nbytes * 1.5, f"peak numpy memory {peak / 2**20:.1f} MiB"


def test_early_stopping_restores_best_weights(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        max_epochs=30,
        lr=0.05,
        early_stopping=True,
        patience=2,
        validation_fraction=0.25,
        random_state=0,
    ).fit(X, y)
    valid_losses = clf.history_[:, "valid_loss"]
    assert clf.n_epochs_ < 30
    assert clf.best_epoch_ == int(np.argmin(valid_losses)) + 1
    assert clf.best_epoch_ < clf.n_epochs_
    assert "valid_acc" in clf.history_[-1]
    # the validation split is stratified
    valid_index = clf._validation_index
    assert len(valid_index) == 16
    assert np.bincount(np.asarray(y)[valid_index]).tolist() == [8, 8]
    # the restored weights are the best epoch's: their loss is the minimum
    outputs = torch.from_numpy(clf.decision_function(X[valid_index]))
    logits = torch.stack([torch.zeros_like(outputs), outputs], dim=1)
    loss = torch.nn.functional.cross_entropy(
        logits, torch.as_tensor(np.asarray(y)[valid_index])
    )
    assert loss.item() == pytest.approx(min(valid_losses), rel=1e-4)


@pytest.mark.parametrize("schedule", ["cosine", "step", "plateau", "onecycle"])
def test_lr_schedules(phantoms, schedule):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        max_epochs=4, lr=1e-2, lr_schedule=schedule, random_state=0
    ).fit(X, y)
    final_lr = clf.net_.optimizer_.param_groups[0]["lr"]
    if schedule == "plateau":
        assert final_lr <= 1e-2
    else:
        assert final_lr < 1e-2


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", torch.optim.RMSprop])
def test_optimizers(phantoms, optimizer):
    X, y = phantoms
    clf = MedicalCNNClassifier(optimizer=optimizer, weight_decay=1e-4, **FAST)
    clf.fit(X, y)
    expected = optimizer if isinstance(optimizer, type) else None
    if expected is not None:
        assert isinstance(clf.net_.optimizer_, expected)
    if optimizer == "sgd":
        assert clf.net_.optimizer_.param_groups[0]["momentum"] == 0.9


def test_class_weight(phantoms):
    X, y = phantoms
    y_imbalanced = np.where(np.arange(len(y)) < 48, 0, 1)
    clf = MedicalCNNClassifier(class_weight="balanced", **FAST).fit(X, y_imbalanced)
    expected = compute_class_weight(
        "balanced", classes=np.array([0, 1]), y=y_imbalanced
    )
    np.testing.assert_allclose(clf.net_.criterion_.weight.numpy(), expected)
    y_str = np.array(["a", "b"])[y]
    clf = MedicalCNNClassifier(class_weight={"b": 3.0}, **FAST).fit(X, y_str)
    np.testing.assert_allclose(clf.net_.criterion_.weight.numpy(), [1.0, 3.0])
    with pytest.raises(ValueError, match="class_weight names classes"):
        MedicalCNNClassifier(class_weight={"c": 2.0}, **FAST).fit(X, y_str)


def test_focal_loss(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(loss="focal", gamma=1.5, **FAST).fit(X, y)
    assert clf.net_.criterion_.gamma == 1.5


def test_custom_loss_module_is_copied(phantoms):
    X, y = phantoms
    loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    clf = MedicalCNNClassifier(loss=loss, **FAST).fit(X, y)
    assert clf.net_.criterion_ is not loss
    assert clf.net_.criterion_.label_smoothing == 0.1


def test_verbose_prints_epoch_table(phantoms, capsys):
    X, y = phantoms
    MedicalCNNClassifier(**FAST).fit(X, y)
    assert capsys.readouterr().out == ""
    MedicalCNNClassifier(**{**FAST, "verbose": 1}).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out
    assert "epoch" in out


class CountingFlip(BaseEstimator):
    """A test augmenter: flips every image left-right and counts the calls."""

    def __init__(self, calls=None):
        self.calls = calls

    def augment_batch(self, images, generator):
        assert images.dtype == torch.float32
        assert images.ndim == 4
        assert isinstance(generator, torch.Generator)
        self.calls.append(len(images))
        return torch.flip(images, dims=[3])


def test_augmentation_runs_on_training_batches_only(phantoms):
    X, y = phantoms
    calls: list[int] = []
    clf = MedicalCNNClassifier(
        augmentation=make_pipeline(CountingFlip(calls), CountingFlip(calls)),
        early_stopping=True,
        validation_fraction=0.25,
        **{**FAST, "max_epochs": 3},
    )
    clf.fit(X, y)
    assert calls == []  # fit works on a clone of the augmenters
    assert clf.augmentation_ is not clf.augmentation
    fitted_calls = [step.calls for _, step in clf.augmentation_.steps]
    # 48 training images in batches of 16, 3 epochs: 9 calls per augmenter
    assert fitted_calls == [[16] * 9, [16] * 9]
    clf.predict_proba(X)
    clf.score(X, y)
    assert fitted_calls == [[16] * 9, [16] * 9]
    assert clf.net_.module_.augment is None


def test_augmentation_changes_training(phantoms):
    X, y = phantoms
    plain = MedicalCNNClassifier(**FAST).fit(X, y).predict_proba(X)
    calls: list[int] = []
    flipped = MedicalCNNClassifier(augmentation=CountingFlip(calls), **FAST).fit(X, y)
    assert not np.allclose(plain, flipped.predict_proba(X))


def test_bad_augmentation():
    X = np.zeros((4, 8, 8))
    y = np.array([0, 1, 0, 1])
    with pytest.raises(TypeError, match="augmentation"):
        MedicalCNNClassifier(augmentation=lambda x: x).fit(X, y)
    with pytest.raises(TypeError, match="augment_batch"):
        MedicalCNNClassifier(augmentation=make_pipeline(clone(BaseEstimator()))).fit(
            X, y
        )


def test_factory_callable_and_params(phantoms):
    X, y = phantoms

    def tiny(in_channels, n_outputs, image_shape, *, hidden=4):
        n_inputs = in_channels * image_shape[0] * image_shape[1]
        return torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(n_inputs, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, n_outputs),
        )

    clf = MedicalCNNClassifier(tiny, architecture_params={"hidden": 3}, **FAST)
    clf.fit(X, y)
    assert clf.net_.module_.body[1].out_features == 3
    with pytest.raises(TypeError, match="architecture_params"):
        MedicalCNNClassifier(tiny, architecture_params={"depth": 3}, **FAST).fit(X, y)


def test_resnet_trains(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        "resnet18", architecture_params={"width": 8}, max_epochs=1, random_state=0
    )
    assert clf.fit(X, y).predict_proba(X).shape == (len(X), 2)


def test_not_fitted():
    clf = MedicalCNNClassifier()
    for method in (clf.predict, clf.predict_proba, clf.decision_function):
        with pytest.raises(NotFittedError):
            method(np.zeros((2, 8, 8)))


def _xy(n=8, size=8):
    X = np.random.RandomState(0).rand(n, size, size)
    y = np.arange(n) % 2
    return X, y


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels(value):
    X, y = _xy()
    X[1, 2, 3] = value
    with pytest.raises(ValueError, match="X"):
        MedicalCNNClassifier(**FAST).fit(X, y)


@pytest.mark.parametrize("shape", [(8,), (2, 2, 8, 8, 1)])
def test_wrong_ndim(shape):
    X = np.zeros(shape)
    with pytest.raises(ValueError, match="X"):
        MedicalCNNClassifier(**FAST).fit(X, np.arange(shape[0]) % 2)


def test_too_few_samples_and_classes():
    X, y = _xy()
    with pytest.raises(ValueError, match="1 sample"):
        MedicalCNNClassifier(**FAST).fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        MedicalCNNClassifier(**FAST).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MedicalCNNClassifier(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        MedicalCNNClassifier(**FAST).fit(X, np.linspace(0, 1, len(X)))


def test_images_too_small_for_architecture():
    X, y = _xy(size=16)
    with pytest.raises(ValueError, match="too small"):
        MedicalCNNClassifier(architecture_params={"padding": "valid"}, **FAST).fit(X, y)


def test_predict_on_other_image_shape(separable_images):
    X, y = separable_images
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(12, 12, 1\)"):
        clf.predict(np.zeros((2, 16, 9)))
    with pytest.raises(ValueError, match="expecting 144 features"):
        clf.predict(np.zeros((2, 100)))
    with pytest.raises(ValueError, match="expecting 144 features"):
        clf.predict(np.zeros((2, 12, 12, 3)))


@pytest.mark.parametrize(
    ("param", "value", "error", "match"),
    [
        ("loss", "crossentropy", ValueError, "Did you mean 'cross_entropy'"),
        ("loss", "mse", ValueError, "loss must be one of"),
        ("optimizer", "adan", ValueError, "Did you mean 'adam'"),
        ("optimizer", 3, ValueError, "optimizer must be one of"),
        ("lr_schedule", "cosin", ValueError, "Did you mean 'cosine'"),
        ("lr", 0.0, ValueError, "lr == 0.0, must be > 0"),
        ("lr", "fast", TypeError, "lr must be a real number"),
        ("max_epochs", 0, ValueError, "max_epochs == 0, must be >= 1"),
        ("batch_size", 2.5, TypeError, "batch_size must be an instance of int"),
        ("early_stopping", "yes", TypeError, "early_stopping must be a bool"),
        ("validation_fraction", 1.0, ValueError, "validation_fraction == 1.0"),
        ("class_weight", "auto", ValueError, "class_weight must be None"),
        ("architecture", 3, TypeError, "architecture must be a registered"),
        ("architecture", "resnet1", ValueError, "available: .*resnet18"),
        ("architecture_params", [1], TypeError, "architecture_params must be a dict"),
        ("device", "gpu0", ValueError, "device must be"),
        ("random_state", "0", TypeError, "random_state must be None"),
        ("image_shape", (0, 4), ValueError, "image_shape must hold integers"),
        ("verbose", -1, ValueError, "verbose == -1"),
    ],
)
def test_bad_parameters(param, value, error, match):
    X, y = _xy()
    with pytest.raises(error, match=match):
        MedicalCNNClassifier(**{**FAST, param: value}).fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda():
    X, y = _xy()
    with pytest.raises(ValueError, match="CUDA is not available"):
        MedicalCNNClassifier(**{**FAST, "device": "cuda"}).fit(X, y)


@pytest.mark.gpu
def test_fit_on_cuda(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(**{**FAST, "device": "cuda"}).fit(X, y)
    assert clf.device_.startswith("cuda")
    assert clf.predict_proba(X).shape == (len(X), 2)
