"""Properties every augmenter shares: sklearn API, shapes, dtypes, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import sk_medcnn.augmentation as augmentation
from sk_medcnn.augmentation import (
    MixUp,
    RandomAffine,
    RandomErasing,
    RandomFlip,
    RandomIntensity,
    RandomNoise,
    RandomRotation,
    _base,
)

# augmenters with augment_batch, each at settings that change every image
AUGMENTERS = [
    RandomFlip(p=0.5),
    RandomRotation(30.0),
    RandomAffine((0.2, 0.2), scale=(0.8, 1.2), shear=10.0),
    RandomAffine((0.1, 0.1), degrees=20.0),
    RandomIntensity(0.2, contrast=0.2, gamma=0.3),
    RandomNoise("gaussian", std=0.05),
    RandomNoise("rician", std=0.05),
    RandomErasing(p=0.8, scale=(0.05, 0.3)),
]
ZERO_STRENGTH = [
    RandomFlip(p=0.0),
    RandomFlip(("horizontal", "vertical"), p=0.0),
    RandomRotation(0.0),
    RandomRotation(45.0, p=0.0),
    RandomAffine((0.0, 0.0), degrees=0.0, scale=(1.0, 1.0), shear=0.0),
    RandomAffine((0.3, 0.3), degrees=30.0, scale=(0.5, 2.0), shear=20.0, p=0.0),
    RandomIntensity(0.0, contrast=0.0, gamma=0.0),
    RandomIntensity(0.5, contrast=0.5, gamma=0.5, p=0.0),
    RandomNoise("gaussian", std=0.0),
    RandomNoise("rician", std=0.0),
    RandomNoise("rician", std=0.2, p=0.0),
    RandomErasing(p=0.0),
    RandomErasing(p=1.0, scale=(0.0, 0.0)),
]
CLASSES = [
    RandomFlip,
    RandomRotation,
    RandomAffine,
    RandomIntensity,
    RandomNoise,
    RandomErasing,
    MixUp,
]


def _ids(estimators):
    return [repr(estimator) for estimator in estimators]


# --- scikit-learn's estimator checks -------------------------------------------
# fit_transform augments (a new random copy) while transform is the identity:
# checks that demand fit_transform(X) == fit(X).transform(X) cannot hold.
_AUGMENTS = "fit_transform returns a random augmented copy, transform returns X as is"
_MIXUP = "MixUp.fit_transform raises: mixing needs the labels, so it runs only inside "
_MIXUP += "MedicalCNNClassifier"


def expected_failures(estimator) -> dict[str, str]:
    # both checks compare fit_transform(X) with fit(X).transform(X)
    failures = dict.fromkeys(
        ["check_transformer_general", "check_transformer_data_not_an_array"],
        _AUGMENTS,
    )
    if isinstance(estimator, MixUp):
        failures = dict.fromkeys(
            [
                "check_fit_score_takes_y",
                "check_pipeline_consistency",
                "check_transformer_data_not_an_array",
                "check_transformer_general",
                "check_transformer_preserve_dtypes",
            ],
            _MIXUP,
        )
    return failures


@pytest.mark.filterwarnings("ignore:X has .* values per row:UserWarning")
@parametrize_with_checks(
    [cls() for cls in CLASSES], expected_failed_checks=expected_failures
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_all_is_sorted_and_complete():
    assert augmentation.__all__ == sorted(augmentation.__all__)
    functions = {"default_augmentation"}
    assert {cls.__name__ for cls in CLASSES} | functions == set(augmentation.__all__)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_constraints_cover_the_parameters(cls):
    assert set(cls._parameter_constraints) == set(cls().get_params(deep=False))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_tags(cls):
    tags = cls().__sklearn_tags__()
    assert tags.requires_fit is False
    assert tags.input_tags.three_d_array is True
    assert tags.input_tags.two_d_array is True
    assert tags.non_deterministic is False
    assert tags.transformer_tags is not None


# --- shapes, dtypes, ranges ---------------------------------------------------
def _images(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "uint8":
        return rng.integers(0, 256, size=(5, 12, 12), dtype=np.uint8)
    if kind == "uint16_rgb":
        return rng.integers(0, 4096, size=(4, 10, 14, 3)).astype(np.uint16)
    if kind == "int16_hu":
        return rng.integers(-1024, 1500, size=(4, 9, 9)).astype(np.int16)
    if kind == "float32_unit":
        return rng.random((6, 8, 8, 1), dtype=np.float32)
    if kind == "float64_flat":
        return rng.normal(size=(3, 64))  # square 8x8 images, flattened
    raise AssertionError(kind)


KINDS = ["uint8", "uint16_rgb", "int16_hu", "float32_unit", "float64_flat"]


@pytest.mark.parametrize("augmenter", AUGMENTERS, ids=_ids(AUGMENTERS))
@pytest.mark.parametrize("kind", KINDS)
def test_fit_transform_keeps_shape_dtype_and_range(augmenter, kind):
    X = _images(kind, np.random.default_rng(0))
    X.setflags(write=False)
    Xt = clone(augmenter).set_params(random_state=0).fit_transform(X)
    assert Xt.shape == X.shape
    assert Xt.dtype == X.dtype
    assert np.all(np.isfinite(Xt))
    assert not np.shares_memory(Xt, X)
    if X.dtype.kind in "iu":
        info = np.iinfo(X.dtype)
        assert info.min <= Xt.min()
        assert Xt.max() <= info.max


@pytest.mark.parametrize("augmenter", AUGMENTERS, ids=_ids(AUGMENTERS))
def test_fit_transform_changes_the_images(augmenter):
    X = _images("float32_unit", np.random.default_rng(1))
    Xt = clone(augmenter).set_params(random_state=0).fit_transform(X)
    assert not np.array_equal(Xt, X)


@pytest.mark.parametrize("augmenter", AUGMENTERS, ids=_ids(AUGMENTERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_augment_batch_keeps_shape_dtype_and_input(augmenter, dtype):
    images = torch.rand((6, 2, 9, 11), generator=torch.Generator().manual_seed(0))
    images = images.to(dtype) * 255
    before = images.clone()
    out = augmenter.augment_batch(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape
    assert out.dtype == dtype
    assert out.device == images.device
    assert torch.equal(images, before)  # the input is not modified
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("augmenter", AUGMENTERS, ids=_ids(AUGMENTERS))
def test_augment_batch_accepts_channels_last_views(augmenter):
    # the classifier passes a permuted (n, H, W, C) batch
    base = torch.rand((4, 10, 10, 3), generator=torch.Generator().manual_seed(0))
    view = base.permute(0, 3, 1, 2)
    contiguous = view.contiguous()
    out_view = augmenter.augment_batch(view, torch.Generator().manual_seed(3))
    out_contiguous = augmenter.augment_batch(
        contiguous, torch.Generator().manual_seed(3)
    )
    torch.testing.assert_close(out_view, out_contiguous)


# --- randomness -----------------------------------------------------------------
@pytest.mark.parametrize("augmenter", AUGMENTERS, ids=_ids(AUGMENTERS))
def test_same_seed_same_output_other_seed_other_output(augmenter):
    X = _images("uint8", np.random.default_rng(2))
    first = clone(augmenter).set_params(random_state=7).fit_transform(X)
    again = clone(augmenter).set_params(random_state=7).fit_transform(X)
    other = clone(augmenter).set_params(random_state=8).fit_transform(X)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("augmenter", AUGMENTERS, ids=_ids(AUGMENTERS))
def test_consecutive_batches_get_new_draws(augmenter):
    images = torch.rand((8, 1, 12, 12), generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    first = augmenter.augment_batch(images, generator)
    second = augmenter.augment_batch(images, generator)
    assert not torch.equal(first, second)
    replay = augmenter.augment_batch(images, torch.Generator().manual_seed(0))
    assert torch.equal(first, replay)


def test_random_state_instance_advances():
    X = _images("uint8", np.random.default_rng(3))
    augmenter = RandomRotation(20.0, random_state=np.random.RandomState(0))
    assert not np.array_equal(augmenter.fit_transform(X), augmenter.fit_transform(X))


def test_fit_transform_in_chunks_is_deterministic(monkeypatch):
    X = _images("uint8", np.random.default_rng(4))
    whole = RandomRotation(20.0, random_state=0).fit_transform(X)
    monkeypatch.setattr(_base, "_CHUNK_VALUES", 2 * 12 * 12)  # 2 images a chunk
    chunked = RandomRotation(20.0, random_state=0).fit_transform(X)
    again = RandomRotation(20.0, random_state=0).fit_transform(X)
    assert chunked.shape == X.shape
    np.testing.assert_array_equal(chunked, again)
    np.testing.assert_array_equal(chunked[:2], whole[:2])  # same first draws


# --- identity: zero strength, transform -----------------------------------------
@pytest.mark.parametrize("augmenter", ZERO_STRENGTH, ids=_ids(ZERO_STRENGTH))
def test_zero_strength_is_exactly_the_identity(augmenter):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(5, 9, 7, 2)) * 300 - 500
    np.testing.assert_array_equal(
        clone(augmenter).set_params(random_state=0).fit_transform(X), X
    )
    images = torch.from_numpy(X.transpose(0, 3, 1, 2).astype(np.float32))
    out = augmenter.augment_batch(images, torch.Generator().manual_seed(0))
    assert torch.equal(out, images)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("kind", KINDS)
def test_transform_returns_the_input(cls, kind):
    X = _images(kind, np.random.default_rng(6))
    augmenter = cls()
    assert augmenter.fit(X) is augmenter
    Xt = augmenter.transform(X)
    assert Xt.dtype == X.dtype
    np.testing.assert_array_equal(Xt, X)
    np.testing.assert_array_equal(cls().transform(X), X)  # no fit needed


# --- bad input ------------------------------------------------------------------
PROBABILITY_CLASSES = [
    RandomFlip,
    RandomRotation,
    RandomAffine,
    RandomIntensity,
    RandomNoise,
    RandomErasing,
]


@pytest.mark.parametrize("cls", PROBABILITY_CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_probability_outside_unit_interval_is_an_error(cls, p):
    X = np.zeros((2, 4, 4))
    augmenter = cls(p=p)
    with pytest.raises(ValueError, match="p"):
        augmenter.fit_transform(X)
    with pytest.raises(ValueError, match="p"):
        augmenter.augment_batch(torch.zeros(2, 1, 4, 4), torch.Generator())
    with pytest.raises(ValueError, match="p"):
        augmenter.fit(X)
    with pytest.raises(ValueError, match="p"):
        augmenter.transform(X)


@pytest.mark.parametrize("cls", PROBABILITY_CLASSES, ids=lambda cls: cls.__name__)
def test_probability_of_wrong_type(cls):
    with pytest.raises(TypeError, match="p"):
        cls(p="half").fit_transform(np.zeros((2, 4, 4)))


@pytest.mark.parametrize("augmenter", AUGMENTERS, ids=_ids(AUGMENTERS))
def test_bad_batches(augmenter):
    generator = torch.Generator()
    with pytest.raises(ValueError, match=r"\(n_samples, channels, height, width\)"):
        augmenter.augment_batch(torch.zeros(2, 4, 4), generator)
    with pytest.raises(TypeError, match="floating-point"):
        augmenter.augment_batch(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), generator)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        augmenter.augment_batch(np.zeros((2, 1, 4, 4)), generator)
    with pytest.raises(TypeError, match="generator"):
        augmenter.augment_batch(torch.zeros(2, 1, 4, 4), 0)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_bad_images(cls):
    # 5-D arrays are volumes now (test_augmentation_volumes.py); 6-D are not
    with pytest.raises(ValueError, match="X must be"):
        cls().fit(np.zeros((2, 3, 4, 4, 1, 1)))
    with pytest.raises(ValueError, match="X must be"):
        cls().transform(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        cls().fit(np.full((2, 4, 4), np.nan))


def test_transform_checks_the_number_of_values_per_image():
    augmenter = RandomFlip().fit(np.zeros((2, 4, 4)))
    assert augmenter.n_features_in_ == 16
    with pytest.raises(ValueError, match="X has 25 features, but RandomFlip"):
        augmenter.transform(np.zeros((2, 5, 5)))


def test_flat_rows_are_square_images():
    X = np.arange(2 * 9, dtype=np.float64).reshape(2, 9)
    flipped = RandomFlip(p=1.0).fit_transform(X)
    expected = np.flip(X.reshape(2, 3, 3), axis=2).reshape(2, 9)
    np.testing.assert_array_equal(flipped, expected)


def test_flat_rows_of_a_non_square_length_warn():
    X = np.arange(2 * 6, dtype=np.float64).reshape(2, 6)
    with pytest.warns(UserWarning, match=r"one-row image of shape \(1, 6\)"):
        flipped = RandomFlip(p=1.0).fit_transform(X)
    np.testing.assert_array_equal(flipped, X[:, ::-1])


def test_boolean_images_stay_boolean():
    X = np.zeros((3, 6, 6), dtype=bool)
    X[:, 1:3, 1:4] = True
    Xt = RandomFlip(p=1.0, random_state=0).fit_transform(X)
    assert Xt.dtype == bool
    np.testing.assert_array_equal(Xt, np.flip(X, axis=2))


def test_batch_augmenter_checks_the_parameters_once_and_augments_alike():
    from sk_medcnn.augmentation import RandomFlip

    images = torch.rand((4, 1, 8, 8))
    flip = RandomFlip(p=1.0)
    augment = flip.batch_augmenter()
    expected = flip.augment_batch(images, torch.Generator().manual_seed(0))
    assert torch.equal(augment(images, torch.Generator().manual_seed(0)), expected)
    flip.p = 2.0  # only a new batch_augmenter() (or augment_batch) checks again
    with pytest.raises(ValueError, match="p"):
        flip.batch_augmenter()
    with pytest.raises(ValueError, match="p"):
        flip.augment_batch(images, torch.Generator())


def test_batch_augmenter_of_a_subclass_runs_its_own_augment_batch():
    from sk_medcnn.augmentation import RandomFlip

    class Marked(RandomFlip):
        def augment_batch(self, images, generator):
            return images + 1.0

    images = torch.zeros((2, 1, 4, 4))
    augment = Marked().batch_augmenter()
    assert torch.equal(augment(images, torch.Generator()), images + 1.0)
