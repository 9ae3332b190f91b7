"""MedicalCNNClassifier: training, inputs, labels, options and errors."""

from __future__ import annotations

import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils.class_weight import compute_class_weight

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor

# the plain network (constant learning rate, trained on all the data, one view
# at prediction): these tests check the mechanics; the defaults are checked by
# tests/test_eval_defaults.py and by scikit-learn's estimator checks
PLAIN = {"lr_schedule": None, "calibration": None, "tta": None}
FAST = {"max_epochs": 2, "batch_size": 16, "random_state": 0, "device": "cpu", **PLAIN}


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
    assert clf.best_epoch_ == 2


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
    with pytest.warns(UserWarning, match="one-row image"):
        row = MedicalCNNClassifier(**FAST).fit(X.reshape(len(X), -1)[:, :10], y)
    assert row.image_shape_ == (1, 10, 1)


def test_read_only_input_works_and_is_left_alone(separable_images):
    X, y = separable_images  # read-only: an in-place change would raise
    before = X.copy()
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    clf.predict(X)
    np.testing.assert_array_equal(X, before)
    Xf = X.astype(np.float32)
    Xf.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on read-only memory
        clf.predict_proba(Xf)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_fit_makes_no_copy_of_X(early_stopping):
    rng = np.random.RandomState(0)
    X = rng.randint(0, 255, size=(1024, 64, 64), dtype=np.uint8)  # 4 MiB
    y = np.arange(len(X)) % 2
    clf = MedicalCNNClassifier(
        max_epochs=1,
        batch_size=64,
        random_state=0,
        early_stopping=early_stopping,
        architecture_params={"width": 4},
    )
    clf.fit(X[:40], y[:40])  # warm up: lazy imports (torch._dynamo, ...) allocate too
    tracemalloc.start()
    try:
        clf.fit(X, y)
        clf.predict_proba(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a copy of X would be 4 MiB (float32 16 MiB); float32 batches are 1-2 MiB
    assert peak < X.nbytes * 0.75, f"peak numpy memory {peak / 2**20:.1f} MiB"


def test_early_stopping_restores_best_weights(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        max_epochs=30,
        lr=0.05,
        early_stopping=True,
        patience=2,
        validation_fraction=0.25,
        random_state=0,
        **PLAIN,
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


@pytest.mark.parametrize(
    ("schedule", "expected_final_lr"),
    [
        ("cosine", 0.0),  # annealed to zero over max_epochs
        ("step", 1e-2 * 0.1**4),  # step_size max(1, 4 // 3) = 1 epoch
    ],
)
def test_epoch_lr_schedules(phantoms, schedule, expected_final_lr):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        max_epochs=4, lr=1e-2, lr_schedule=schedule, random_state=0
    ).fit(X, y)
    final_lr = clf.net_.optimizer_.param_groups[0]["lr"]
    assert final_lr == pytest.approx(expected_final_lr, abs=1e-12)


def test_onecycle_schedule_steps_every_batch(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        max_epochs=4, lr=1e-2, lr_schedule="onecycle", calibration=None, random_state=0
    ).fit(X, y)
    used = [batch["event_lr"] for epoch in clf.history_ for batch in epoch["batches"]]
    assert len(used) == 8  # 64 images, batches of 32, 4 epochs
    assert max(used) == pytest.approx(1e-2, rel=0.05)  # the peak is lr
    assert used[0] == pytest.approx(1e-2 / 25)  # torch's default div_factor
    assert used[-1] == pytest.approx(1e-2 / 25 / 1e4)  # and final_div_factor


@pytest.mark.parametrize("early_stopping", [False, True])
def test_plateau_schedule_monitors_the_right_loss(phantoms, early_stopping):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        max_epochs=2,
        lr_schedule="plateau",
        early_stopping=early_stopping,
        validation_fraction=0.25,
        random_state=0,
    ).fit(X, y)
    callback = dict(clf.net_.callbacks_)["lr_schedule"]
    assert callback.policy is torch.optim.lr_scheduler.ReduceLROnPlateau
    assert callback.monitor == ("valid_loss" if early_stopping else "train_loss")


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", torch.optim.RMSprop])
def test_optimizers(phantoms, optimizer):
    X, y = phantoms
    clf = MedicalCNNClassifier(optimizer=optimizer, weight_decay=1e-4, **FAST)
    clf.fit(X, y)
    expected = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}.get(
        optimizer, torch.optim.AdamW if optimizer == "adamw" else optimizer
    )
    assert type(clf.net_.optimizer_) is expected
    assert clf.net_.optimizer_.param_groups[0]["weight_decay"] == 1e-4
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
    clf = MedicalCNNClassifier(
        loss="focal", gamma=1.5, class_weight={1: 2.0}, **FAST
    ).fit(X, y)
    assert clf.net_.criterion_.gamma == 1.5
    np.testing.assert_allclose(clf.net_.criterion_.weight.numpy(), [1.0, 2.0])


def test_custom_loss_module_is_copied(phantoms):
    X, y = phantoms
    loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    clf = MedicalCNNClassifier(loss=loss, **FAST).fit(X, y)
    assert clf.net_.criterion_.loss is not loss
    assert clf.net_.criterion_.loss.label_smoothing == 0.1


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
    assert clf.net_.augmenter is None  # training-only: dropped after fit


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


def test_narrow_resnet_trains_on_odd_batches(phantoms):
    # torch 2.13's oneDNN backward of a channels-last 1x1 stride-2 convolution
    # (8 -> 16 channels, 16 px, a batch of 9) corrupted the heap: networks now
    # run in the plain NCHW layout
    X, y = phantoms
    clf = MedicalCNNClassifier(
        "resnet18", architecture_params={"width": 8}, batch_size=16, **PLAIN
    )
    clf.set_params(max_epochs=1, random_state=0, device="cpu")
    assert clf.fit(X[:41], y[:41]).predict_proba(X).shape == (len(X), 2)


def test_predict_log_proba_is_the_log_of_predict_proba(phantoms):
    X, y = phantoms
    y3 = np.where(np.arange(len(y)) % 3 == 0, 7, y)
    for labels in (y, y3):
        clf = MedicalCNNClassifier(**{**FAST, "tta": "hflip"}).fit(X, labels)
        log_proba = clf.predict_log_proba(X)
        assert log_proba.shape == (len(X), len(clf.classes_))
        np.testing.assert_allclose(np.exp(log_proba), clf.predict_proba(X), atol=1e-12)


def test_predict_log_proba_stays_finite_where_proba_underflows(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    clf.temperature_ = 1e-4  # a sharp model: probabilities round to 0 and 1
    log_proba = clf.predict_log_proba(X)
    assert np.isfinite(log_proba).all()
    assert (clf.predict_proba(X) == 0).any()


def test_not_fitted():
    clf = MedicalCNNClassifier()
    methods = (
        clf.predict,
        clf.predict_proba,
        clf.predict_log_proba,
        clf.decision_function,
    )
    for method in methods:
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


@pytest.mark.parametrize("shape", [(8,), (2, 2, 8, 8, 1, 1)])  # 5-D: volumes
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

    def unpadded(in_channels, n_outputs, image_shape):
        return torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, 2, 5),
            torch.nn.Flatten(),
            torch.nn.LazyLinear(n_outputs),
        )

    with pytest.raises(ValueError, match=r"images of shape \(4, 4, 1\) do not fit"):
        MedicalCNNClassifier(unpadded, **FAST).fit(_xy(size=4)[0], y)
    # a lazy module is initialised by the probe and then trains
    clf = MedicalCNNClassifier(unpadded, **FAST).fit(X, y)
    assert clf.net_.module_.body[2].in_features == 2 * 12 * 12


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
        ("optimizer", 3, TypeError, "optimizer must be one of"),
        ("class_weight", 3, TypeError, "class_weight must be 'auto', None"),
        ("image_shape", "ab", TypeError, "image_shape must be a tuple"),
        ("lr_schedule", "cosin", ValueError, "Did you mean 'cosine'"),
        ("lr", 0.0, ValueError, "lr == 0.0, must be > 0"),
        ("lr", "fast", TypeError, "lr must be a real number"),
        ("max_epochs", 0, ValueError, "max_epochs == 0, must be >= 1"),
        ("batch_size", 2.5, TypeError, "batch_size must be an instance of int"),
        ("early_stopping", "yes", TypeError, "early_stopping must be a bool"),
        ("validation_fraction", 1.0, ValueError, "validation_fraction == 1.0"),
        ("class_weight", "balance", ValueError, "class_weight must be 'auto', None"),
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


def test_failed_refit_leaves_no_stale_state(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    clf.set_params(architecture="no_such_net")
    with pytest.raises(ValueError, match="unknown architecture"):
        clf.fit(X, np.array(["a", "b", "c", "d"])[np.arange(len(X)) % 4])
    assert not hasattr(clf, "classes_")
    with pytest.raises(NotFittedError):
        clf.predict(X)


class InterruptingAugmenter(BaseEstimator):
    """Raises KeyboardInterrupt (a user's Ctrl-C) on batch number ``at``."""

    def __init__(self, at=3):
        self.at = at

    def augment_batch(self, images, generator):
        self.n_calls_ = getattr(self, "n_calls_", 0) + 1
        if self.n_calls_ == self.at:
            raise KeyboardInterrupt
        return images


def test_ctrl_c_stops_fit_and_leaves_a_usable_model(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(augmentation=InterruptingAugmenter(), **FAST)
    with pytest.raises(KeyboardInterrupt, match="interrupted after 1 epoch"):
        clf.fit(X, y)
    assert clf.predict_proba(X).shape == (len(X), 2)
    assert clf.n_epochs_ == 1


def test_ctrl_c_with_early_stopping_keeps_the_best_weights_so_far(phantoms):
    # 58 training images in batches of 16: 4 batches an epoch; batch 10 is in epoch 3
    X, y = phantoms
    params = {**FAST, "early_stopping": True, "patience": 10}
    clf = MedicalCNNClassifier(
        augmentation=InterruptingAugmenter(at=10), **{**params, "max_epochs": 5}
    )
    with pytest.raises(KeyboardInterrupt, match=r"weights of epoch [12]"):
        clf.fit(X, y)
    # the best of the two finished epochs: what a 2-epoch fit ends with
    two_epochs = MedicalCNNClassifier(
        augmentation=InterruptingAugmenter(at=0), **params
    )
    two_epochs.fit(X, y)
    assert clf.best_epoch_ == two_epochs.best_epoch_
    np.testing.assert_array_equal(clf.predict_proba(X), two_epochs.predict_proba(X))


def test_deterministic_with_early_stopping_dropout_and_augmentation(phantoms):
    X, y = phantoms

    class RandomFlip(BaseEstimator):
        def augment_batch(self, images, generator):
            flip = torch.rand(len(images), generator=generator) < 0.5
            return torch.where(flip[:, None, None, None], images.flip(3), images)

    params = {
        **FAST,
        "max_epochs": 3,
        "early_stopping": True,
        "augmentation": RandomFlip(),
        "architecture_params": {"dropout": 0.5},
    }
    first = MedicalCNNClassifier(**params).fit(X, y).predict_proba(X)
    second = MedicalCNNClassifier(**params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)


def test_progress_bar_with_verbose_2(phantoms, capsys):
    X, y = phantoms
    clf = MedicalCNNClassifier(**{**FAST, "verbose": 2}).fit(X, y)
    assert "progress_bar" in dict(clf.net_.callbacks_)
    captured = capsys.readouterr()
    assert "train_loss" in captured.out


def test_device_auto_resolves(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(**{**FAST, "device": "auto"}).fit(X, y)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert clf.device_ == expected


def test_non_square_flat_rows_warn():
    X, y = _xy()
    with pytest.warns(UserWarning, match="one-row image"):
        MedicalCNNClassifier(**FAST).fit(X.reshape(len(X), -1)[:, :10], y)


def test_pickle_after_early_stopping_and_schedule(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(
        **{**FAST, "lr_schedule": "cosine"},
        early_stopping=True,
        validation_fraction=0.25,
    ).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


class HalfMix(BaseEstimator):
    """A test label mixer: averages each sample with the next one."""

    def mix_batch(self, images, targets, generator):
        assert targets.shape[1] == 2
        assert isinstance(generator, torch.Generator)
        self.n_calls_ = getattr(self, "n_calls_", 0) + 1
        shifted = torch.roll(torch.arange(len(images)), 1)
        return (images + images[shifted]) / 2, (targets + targets[shifted]) / 2


@pytest.mark.parametrize("loss", ["cross_entropy", "focal"])
def test_label_mixer_in_a_list(phantoms, loss):
    X, y = phantoms
    calls: list[int] = []
    clf = MedicalCNNClassifier(
        augmentation=[HalfMix(), CountingFlip(calls)], loss=loss, **FAST
    ).fit(X, y)
    mixer, flip = clf.augmentation_
    assert mixer.n_calls_ == 8  # 4 batches of 16, 2 epochs
    assert clf.net_.iterator_train__mixers is None  # training-only state released
    assert not clf.net_.module_.training
    assert flip.calls == [16] * 8
    assert clf.predict_proba(X).shape == (len(X), 2)


def test_label_mixer_refused_by_regressor(phantoms):
    from sk_medcnn import MedicalCNNRegressor

    X, y = phantoms
    with pytest.raises(ValueError, match="mixes class labels"):
        MedicalCNNRegressor(augmentation=HalfMix(), max_epochs=1).fit(X, y * 1.0)


def test_mixup_with_augmenters_is_deterministic(phantoms):
    from sk_medcnn.augmentation import MixUp, RandomFlip

    X, y = phantoms
    params = {**FAST, "augmentation": [MixUp(alpha=0.4), RandomFlip()]}
    first = MedicalCNNClassifier(**params).fit(X, y).predict_proba(X)
    second = MedicalCNNClassifier(**params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, second)
    plain = MedicalCNNClassifier(**FAST).fit(X, y).predict_proba(X)
    assert not np.allclose(first, plain)


@pytest.mark.parametrize("estimator_class", [MedicalCNNClassifier, MedicalCNNRegressor])
def test_restore_net_rebuilds_identical_predictions(phantoms, estimator_class):
    # the private hook the safe loader uses: parameters + fitted attributes +
    # weights give back the same predictions, without unpickling the network
    X, y = phantoms
    fitted = estimator_class(max_epochs=1, random_state=0).fit(X, y)
    restored = estimator_class(**fitted.get_params())
    for name, value in vars(fitted).items():
        private = name in {"_y_ndim", "_validation_index"}
        if (name.endswith("_") or private) and name not in {"net_", "history_"}:
            setattr(restored, name, value)
    restored._restore_net(
        fitted.net_.module_.state_dict(), history=fitted.history_.to_list()
    )
    method = "predict_proba" if estimator_class is MedicalCNNClassifier else "predict"
    np.testing.assert_array_equal(
        getattr(restored, method)(X), getattr(fitted, method)(X)
    )
    assert len(restored.history_) == fitted.n_epochs_
    state = fitted.net_.module_.state_dict()
    state.pop(next(iter(state)))
    with pytest.raises(ValueError, match="do not fit architecture"):
        restored._restore_net(state)
    state = {k: v.double() for k, v in fitted.net_.module_.state_dict().items()}
    with pytest.raises(ValueError, match="wrong dtype"):
        restored._restore_net(state)


def test_a_pickled_model_holds_no_training_images():
    # a model shared between sites must not carry its training data
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (200, 16, 16), dtype=np.uint8)
    y = np.arange(200) % 2
    clf = MedicalCNNClassifier(
        max_epochs=1, early_stopping=True, random_state=0, device="cpu"
    ).fit(X, y)
    data = pickle.dumps(clf)
    for index in (0, 57, 199):  # any training image's bytes
        assert X[index].tobytes() not in data
    # the weights, their copy in module__body and Adam's two moments; no data
    weights = len(pickle.dumps(clf.net_.module_.state_dict()))
    assert len(data) < 4 * weights + 2**16
    clf.predict_proba(X[:2])  # still predicts


def test_the_epoch_table_has_no_colour_codes_when_piped(phantoms, capsys):
    X, y = phantoms
    MedicalCNNClassifier(max_epochs=3, verbose=1, random_state=0, **PLAIN).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out
    assert "\x1b[" not in out  # captured output is not a terminal


def test_the_epoch_table_keeps_colours_on_a_terminal(monkeypatch):
    from sk_medcnn._engine import EpochTable

    row = {"train_loss": 0.5, "train_loss_best": True}
    table = EpochTable().initialize()
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert "\x1b[" in table.format_row(row, "train_loss", "\x1b[32m")
    monkeypatch.setenv("NO_COLOR", "1")
    assert table.format_row(row, "train_loss", "\x1b[32m") == "0.5000"


def test_the_epoch_table_works_when_stdout_has_no_isatty(phantoms, monkeypatch):
    import io
    import sys

    class Capture(io.TextIOBase):  # as some log capturers are: write and flush
        def __init__(self):
            self.parts = []

        def write(self, text):
            self.parts.append(text)
            return len(text)

    capture = Capture()
    monkeypatch.setattr(Capture, "isatty", property(lambda self: None))
    monkeypatch.setattr(sys, "stdout", capture)
    MedicalCNNClassifier(max_epochs=2, verbose=1, random_state=0, **PLAIN).fit(
        *phantoms
    )
    assert "train_loss" in "".join(capture.parts)


def test_an_empty_no_color_keeps_colours(monkeypatch):
    from sk_medcnn._engine import EpochTable

    row = {"train_loss": 0.5, "train_loss_best": True}
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    monkeypatch.setenv("NO_COLOR", "")
    assert "\x1b[" in EpochTable().initialize().format_row(
        row, "train_loss", "\x1b[32m"
    )
