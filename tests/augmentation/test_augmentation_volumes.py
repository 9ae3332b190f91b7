"""The augmenters on volumes: (n, D, H, W[, C]) arrays and (n, C, D, H, W) batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sk_medcnn.augmentation import (
    MixUp,
    RandomAffine,
    RandomErasing,
    RandomFlip,
    RandomIntensity,
    RandomNoise,
    RandomRotation,
    default_augmentation,
)
from sk_medcnn.augmentation._warp import (
    affine_grid_3d,
    plane_rotation,
    volume_theta,
)

SHAPE = (6, 8, 10)  # depth, height, width

VOLUME_AUGMENTERS = [
    RandomFlip(("horizontal", "vertical", "depth"), p=0.5),
    RandomRotation(20.0),
    RandomRotation(15.0, plane=("depth", "width")),
    RandomAffine((0.1, 0.1, 0.1), degrees=(10.0, 5.0, 5.0), shear=5.0),
    RandomAffine((0.2, 0.2), degrees=10.0, scale=(0.8, 1.2)),
    RandomIntensity(0.2, contrast=0.2, gamma=0.3),
    RandomNoise("gaussian", std=0.05),
    RandomNoise("rician", std=0.05),
    RandomErasing(p=1.0, scale=(0.05, 0.3)),
]


def _ids(estimators):
    return [repr(estimator) for estimator in estimators]


def _volumes(n=4, channels=None, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, *SHAPE) if channels is None else (n, *SHAPE, channels)
    if np.dtype(dtype).kind == "u":
        return rng.integers(0, 256, size=shape).astype(dtype)
    return (rng.random(shape) * 1000 - 500).astype(dtype)


def _ramp(axis: int, n: int = 3) -> np.ndarray:
    """Volumes whose values rise along one spatial axis (0 depth, 1 height, 2 width)."""
    profile = np.arange(SHAPE[axis], dtype=np.float64)
    shape = [1, 1, 1]
    shape[axis] = SHAPE[axis]
    return np.broadcast_to(profile.reshape(shape), (n, *SHAPE)).copy()


def _all(n):
    return torch.ones(n, dtype=torch.bool)


def _ncdhw(volumes: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(volumes[:, None]))


# --- shapes, dtypes, determinism ---------------------------------------------------
@pytest.mark.parametrize("augmenter", VOLUME_AUGMENTERS, ids=_ids(VOLUME_AUGMENTERS))
@pytest.mark.parametrize(
    ("channels", "dtype"), [(None, np.uint8), (1, np.float32), (2, np.float64)]
)
def test_shape_and_dtype_are_kept_and_seed_repeats(augmenter, channels, dtype):
    X = _volumes(channels=channels, dtype=dtype)
    if channels == 2:  # (n, D, H, W, 2) is read as volumes only if 5-D
        assert X.ndim == 5
    first = clone(augmenter).set_params(random_state=0).fit_transform(X)
    again = clone(augmenter).set_params(random_state=0).fit_transform(X)
    other = clone(augmenter).set_params(random_state=1).fit_transform(X)
    assert first.shape == X.shape
    assert first.dtype == X.dtype
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, X)


@pytest.mark.parametrize("augmenter", VOLUME_AUGMENTERS, ids=_ids(VOLUME_AUGMENTERS))
def test_augment_batch_on_5d_tensors(augmenter):
    images = torch.rand((3, 2, *SHAPE), generator=torch.Generator().manual_seed(0))
    before = images.clone()
    out = augmenter.augment_batch(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape
    assert out.dtype == images.dtype
    assert torch.equal(images, before)  # not modified in place
    assert torch.isfinite(out).all()


def test_transform_returns_volumes_unchanged():
    X = _volumes(dtype=np.uint8)
    out = RandomAffine(random_state=0).fit(X).transform(X)
    np.testing.assert_array_equal(out, X)


# --- flips ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("axis_name", "axis"), [("depth", 0), ("vertical", 1), ("horizontal", 2)]
)
def test_flip_reverses_the_named_axis(axis_name, axis):
    X = _ramp(axis)
    out = RandomFlip(axis_name, p=1.0, random_state=0).fit_transform(X)
    np.testing.assert_array_equal(out, np.flip(X, axis=axis + 1))
    # the other axes keep their (constant) profile: only this one is reversed
    assert not np.array_equal(out, X)


def test_flip_depth_on_images_names_the_shape():
    with pytest.raises(ValueError, match=r"'depth'.*2-D images of shape \(2, 1, 4"):
        RandomFlip("depth", p=1.0).augment_batch(
            torch.zeros(2, 1, 4, 4), torch.Generator()
        )


# --- rotations ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("plane", "still"),
    [(("height", "width"), 0), (("depth", "width"), 1), (("depth", "height"), 2)],
)
def test_rotation_in_a_plane_keeps_the_other_axis_profile(plane, still):
    # a ramp along the axis the rotation turns about keeps its profile: the
    # central voxels keep their values, and the corners only take the minimum
    # (0) from outside, so the largest value of every plane is unchanged
    X = _ramp(still)
    out = RandomRotation(30.0, plane=plane, random_state=0).fit_transform(X)
    plane_axes = tuple(axis + 1 for axis in range(3) if axis != still)
    np.testing.assert_allclose(out.max(axis=plane_axes), X.max(axis=plane_axes))
    centre = [slice(None)] * 4
    for axis in plane_axes:
        middle = X.shape[axis] // 2
        centre[axis] = slice(middle - 1, middle + 1)
    np.testing.assert_allclose(out[tuple(centre)], X[tuple(centre)], atol=1e-9)
    assert not np.allclose(out, X)  # the corners did turn
    # and a ramp along an axis of the plane is changed
    moved = next(axis for axis in range(3) if axis != still)
    Y = _ramp(moved)
    assert not np.allclose(
        RandomRotation(30.0, plane=plane, random_state=0).fit_transform(Y), Y
    )


@pytest.mark.parametrize(
    "plane", [("height", "width"), ("width", "height"), ("depth", "height")]
)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_turns_equal_np_rot90(plane, k):
    axes = {"depth": 0, "height": 1, "width": 2}
    rng = np.random.default_rng(k)
    X = rng.random((2, 8, 8, 8))
    rotation = RandomRotation(0.0, plane=plane, quarter_turns=True)
    params = {
        "angles": torch.full((1, 2), 90.0 * k, dtype=torch.float64),
        "turns": torch.full((2,), float(k), dtype=torch.float64),
        "active": _all(2),
    }
    exact = rotation._apply(_ncdhw(X), params)[:, 0].numpy()
    expected = np.rot90(X, k, axes=(axes[plane[0]] + 1, axes[plane[1]] + 1))
    np.testing.assert_array_equal(exact, expected)
    # the resampled path (a non-zero degrees) agrees to float precision
    warped = RandomRotation(1.0, plane=plane, quarter_turns=True)._apply(
        _ncdhw(X), params
    )[:, 0]
    np.testing.assert_allclose(warped.numpy(), expected, atol=1e-9)


def test_quarter_turns_draw_each_turn():
    rotation = RandomRotation(0.0, plane=("height", "width"), quarter_turns=True)
    params = rotation._draw(torch.zeros((4000, 1, 2, 2, 2)), torch.Generator())
    counts = torch.bincount(params["turns"].long(), minlength=4)
    assert counts.min() > 900  # each of 0, 90, 180, 270 about a quarter


def test_rotation_of_images_in_their_plane_matches_the_default():
    X = np.random.default_rng(0).random((3, 9, 11))
    default = RandomRotation(25.0, random_state=3).fit_transform(X)
    in_plane = RandomRotation(25.0, plane=("height", "width"), random_state=3)
    np.testing.assert_array_equal(in_plane.fit_transform(X), default)


def test_rotation_about_the_depth_axis_turns_every_slice_like_2d():
    X = np.random.default_rng(1).random((2, *SHAPE))
    X[:, :, 0, 0] = 0.0  # every slice has the volume's minimum, the fill value
    angles = torch.tensor([[17.0, -40.0]], dtype=torch.float64)
    out = RandomRotation(45.0, plane=("height", "width"))._apply(
        _ncdhw(X), {"angles": angles, "active": _all(2)}
    )[:, 0]
    for sample in range(2):
        slices = torch.from_numpy(np.ascontiguousarray(X[sample][:, None]))
        expected = RandomRotation(45.0)._apply(
            slices,
            {"angle": angles[0, sample].repeat(SHAPE[0]), "active": _all(SHAPE[0])},
        )[:, 0]
        np.testing.assert_allclose(out[sample].numpy(), expected.numpy(), atol=1e-9)


def test_rotation_errors_name_the_shape():
    images = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"depth axis.*\(2, 1, 4, 4\)"):
        RandomRotation(plane=("depth", "width")).augment_batch(
            images, torch.Generator()
        )
    volumes = torch.zeros(2, 1, 4, 4, 4)
    with pytest.raises(ValueError, match=r"needs a plane.*\(2, 1, 4, 4, 4\)"):
        RandomRotation(quarter_turns=True).augment_batch(volumes, torch.Generator())
    with pytest.raises(ValueError, match="plane must be None or a pair"):
        RandomRotation(plane=("depth", "depth")).fit_transform(np.zeros((2, 4, 4, 4)))


# --- affine ---------------------------------------------------------------------------
def test_affine_grid_3d_equals_torch():
    theta = torch.randn((3, 3, 4), generator=torch.Generator().manual_seed(0))
    ours = affine_grid_3d(theta.double(), *SHAPE)
    expected = F.affine_grid(theta.double(), (3, 1, *SHAPE), align_corners=False)
    torch.testing.assert_close(ours, expected)


def test_3d_identity_returns_the_input():
    X = _volumes(dtype=np.float64)
    identity = RandomAffine((0.0, 0.0, 0.0), scale=(1.0, 1.0), random_state=0)
    np.testing.assert_array_equal(identity.fit_transform(X), X)
    # the identity map through grid_sample is the input to float precision
    theta = volume_theta(
        torch.eye(3, dtype=torch.float64)[None].repeat(4, 1, 1),
        torch.zeros((4, 3), dtype=torch.float64),
        *SHAPE,
    )
    grid = affine_grid_3d(theta, *SHAPE)
    out = F.grid_sample(_ncdhw(X), grid, align_corners=False)[:, 0]
    np.testing.assert_allclose(out.numpy(), X, atol=1e-9)


def test_plane_rotation_matches_np_rot90_direction():
    # a quarter turn in (depth, height) moves depth towards height, as np.rot90
    matrix = plane_rotation(torch.tensor([90.0], dtype=torch.float64), 0, 1)[0]
    # the output voxel at (0, 1, 0) reads the input at (1, 0, 0)
    source = matrix @ torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(source, torch.tensor([1.0, 0.0, 0.0]).double())


def test_affine_shift_moves_a_blob_along_depth_only():
    X = np.zeros((1, 8, 8, 8))
    X[0, 2:4, 3:5, 3:5] = 1.0
    params = {
        "shift": torch.tensor([[2.0], [0.0], [0.0]], dtype=torch.float64),
        "angles": torch.zeros((3, 1), dtype=torch.float64),
        "zoom": torch.ones(1, dtype=torch.float64),
        "shear": torch.zeros(1, dtype=torch.float64),
        "active": _all(1),
    }
    out = RandomAffine()._apply(_ncdhw(X), params)[:, 0].numpy()
    np.testing.assert_allclose(out, np.roll(X, 2, axis=1), atol=1e-9)


def test_affine_pair_translate_keeps_volumes_in_their_slices():
    params = RandomAffine((0.3, 0.3))._draw(
        torch.zeros((500, 1, *SHAPE)), torch.Generator()
    )
    assert torch.all(params["shift"][0] == 0)  # no shift along the depth
    assert params["shift"][1].abs().max() > 0.5 * 0.3 * SHAPE[1]
    per_axis = RandomAffine((0.5, 0.0, 0.0), degrees=(0.0, 0.0, 7.0))._draw(
        torch.zeros((500, 1, *SHAPE)), torch.Generator()
    )
    assert per_axis["shift"][0].abs().max() <= 0.5 * SHAPE[0]
    assert torch.all(per_axis["shift"][1:] == 0)
    assert torch.all(per_axis["angles"][:2] == 0)
    assert per_axis["angles"][2].abs().max() <= 7.0


def test_affine_volume_parameters_on_images_name_the_shape():
    with pytest.raises(ValueError, match=r"depth, height, width.*\(2, 1, 4, 4\)"):
        RandomAffine((0.1, 0.1, 0.1)).augment_batch(
            torch.zeros(2, 1, 4, 4), torch.Generator()
        )
    with pytest.raises(ValueError, match="degrees must be a float in"):
        RandomAffine(degrees=(1.0, 2.0)).fit_transform(np.zeros((2, 4, 4, 4)))


# --- erasing ------------------------------------------------------------------------
def test_erasing_fills_one_box():
    X = np.zeros((5, 8, 8, 8))
    X[:, 0, 0, 0] = 1.0  # a range to draw fill values in
    out = RandomErasing(p=1.0, scale=(0.1, 0.1), random_state=0).fit_transform(X)
    for volume in out:
        changed = np.argwhere(volume != np.where(np.indices(volume.shape).sum(0), 0, 1))
        low, high = changed.min(0), changed.max(0) + 1
        box = np.prod(high - low)
        assert 0.5 * 51 <= box <= 2 * 51  # about 10% of 512 voxels
        assert len(changed) >= 0.9 * box  # changed voxels fill one box


# --- sklearn --------------------------------------------------------------------------
def test_spatial_dims_overrules_the_inference():
    # (n, H, W, 2) is read as volumes by default; spatial_dims=2 reads 2 channels
    X = np.random.default_rng(0).random((3, 9, 9, 2))
    flipped = RandomFlip(p=1.0, spatial_dims=2).fit_transform(X)
    np.testing.assert_array_equal(flipped, X[:, :, ::-1])
    as_volumes = RandomFlip(p=1.0).fit_transform(X)
    np.testing.assert_array_equal(as_volumes, X[..., ::-1])
    with pytest.raises(ValueError, match=r"spatial_dims=2.*\(2, 1, 4, 4, 4\)"):
        RandomFlip(spatial_dims=2).augment_batch(
            torch.zeros(2, 1, 4, 4, 4), torch.Generator()
        )
    with pytest.raises(ValueError, match="spatial_dims must be 'auto', 2"):
        RandomFlip(spatial_dims=4).fit_transform(X)


def test_grid_search_over_per_axis_parameters():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 8)
    X = rng.random((16, *SHAPE)) + y[:, None, None, None]  # class 1 is brighter
    pipe = make_pipeline(
        RandomAffine(random_state=0),
        FunctionTransformer(lambda volumes: volumes.reshape(len(volumes), -1)),
        LogisticRegression(),
    )
    grid = {
        "randomaffine__translate": [(0.1, 0.1), (0.0, 0.1, 0.1)],
        "randomaffine__degrees": [(10.0, 0.0, 0.0), 5.0],
    }
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ == 1.0
    best = search.best_estimator_.named_steps["randomaffine"]
    assert best.translate in grid["randomaffine__translate"]
    rotation = clone(RandomRotation(plane=("depth", "width"), quarter_turns=True))
    assert rotation.get_params()["plane"] == ("depth", "width")


def test_mixup_mixes_volume_batches():
    images = torch.rand((4, 1, *SHAPE), generator=torch.Generator().manual_seed(0))
    targets = torch.eye(2)[[0, 1, 0, 1]]
    mixed, soft = MixUp(alpha=0.4).mix_batch(
        images, targets, torch.Generator().manual_seed(0)
    )
    assert mixed.shape == images.shape
    assert soft.shape == targets.shape
    assert not torch.equal(mixed, images)


def test_default_augmentation_for_volumes():
    pipeline = default_augmentation(spatial_dims=3)
    assert pipeline[0].translate == (0.05, 0.05, 0.05)
    assert [name for name, _ in pipeline.steps] == [
        name for name, _ in default_augmentation().steps
    ]
    images = torch.rand((4, 1, *SHAPE), generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    out = images
    for _, step in pipeline.steps:
        out = step.augment_batch(out, generator)
    assert out.shape == images.shape
    assert not torch.equal(out, images)
    with pytest.raises(ValueError, match="spatial_dims must be 2"):
        default_augmentation(spatial_dims=1)


def test_inactive_volumes_are_kept_and_active_ones_warped_alike():
    volumes = torch.rand((4, 2, *SHAPE), generator=torch.Generator().manual_seed(0))
    affine = RandomAffine((0.2, 0.2, 0.2), degrees=20.0, p=0.5)
    params = affine._draw(volumes, torch.Generator().manual_seed(1))
    params["active"] = torch.tensor([True, False, True, False])
    some = affine._apply(volumes, params)
    params["active"] = torch.ones(4, dtype=torch.bool)
    every = affine._apply(volumes, params)
    assert torch.equal(some[1::2], volumes[1::2])
    torch.testing.assert_close(some[::2], every[::2])
    assert not torch.equal(some[::2], volumes[::2])


def test_affine_within_slices_equals_the_2d_affine_slice_by_slice():
    # no zoom, no depth shift, rotation about the depth axis only: every slice
    # is warped as the 2-D RandomAffine warps an image with the same numbers
    X = np.random.default_rng(2).random((2, *SHAPE))
    X[:, :, 0, 0] = 0.0  # every slice holds the volume's minimum (the fill)
    angle = torch.tensor([12.0, -25.0], dtype=torch.float64)
    shear = torch.tensor([8.0, -4.0], dtype=torch.float64)
    shift_y = torch.tensor([1.5, -0.7], dtype=torch.float64)
    shift_x = torch.tensor([-2.0, 0.4], dtype=torch.float64)
    zeros = torch.zeros(2, dtype=torch.float64)
    volumes = RandomAffine()._apply(
        _ncdhw(X),
        {
            "shift": torch.stack([zeros, shift_y, shift_x]),
            "angles": torch.stack([angle, zeros, zeros]),
            "zoom": torch.ones(2, dtype=torch.float64),
            "shear": shear,
            "active": _all(2),
        },
    )[:, 0]
    for sample in range(2):
        slices = torch.from_numpy(np.ascontiguousarray(X[sample][:, None]))
        depth = SHAPE[0]
        expected = RandomAffine()._apply(
            slices,
            {
                "shift_x": shift_x[sample].repeat(depth),
                "shift_y": shift_y[sample].repeat(depth),
                "zoom": torch.ones(depth, dtype=torch.float64),
                "shear": shear[sample].repeat(depth),
                "angle": angle[sample].repeat(depth),
                "active": _all(depth),
            },
        )[:, 0]
        np.testing.assert_allclose(volumes[sample].numpy(), expected.numpy(), atol=1e-9)


# --- inside the classifier --------------------------------------------------------
def _tiny_3d(in_channels, n_outputs, image_shape):
    return torch.nn.Sequential(
        torch.nn.Conv3d(in_channels, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool3d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, n_outputs),
    )


_tiny_3d.spatial_dims = (3,)


def _fit(augmentation, X, y):
    from sk_medcnn import MedicalCNNClassifier

    return MedicalCNNClassifier(
        _tiny_3d,
        augmentation=augmentation,
        max_epochs=1,
        batch_size=8,
        device="cpu",
        random_state=0,
    ).fit(X, y)


# eight volumes leave no room for a stratified validation split; it is not used
@pytest.mark.filterwarnings("ignore:the held-out validation split cannot be stratified")
def test_the_classifier_trains_volumes_with_every_augmenter():
    X = _volumes(n=8, dtype=np.uint8)
    y = np.arange(8) % 2
    augmentation = make_pipeline(
        MixUp(0.2),
        RandomFlip(("horizontal", "depth")),
        RandomRotation(0.0, plane=("height", "width"), quarter_turns=True),
        *(step for _, step in default_augmentation(spatial_dims=3).steps),
        RandomErasing(),
    )
    first = _fit(augmentation, X, y).predict_proba(X)
    again = _fit(clone(augmentation), X, y).predict_proba(X)
    plain = _fit(None, X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)  # seeded by random_state
    assert not np.array_equal(first, plain)  # the batches were augmented
    with pytest.raises(ValueError, match=r"spatial_dims=2.*shape \(\d+, 1, 6, 8, 10\)"):
        _fit(RandomFlip(spatial_dims=2), X, y)
