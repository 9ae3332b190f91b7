"""The corruptions and robustness_report on volumes (issue 19: robustness)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from skimage.filters import gaussian
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.pipeline import make_pipeline

import sk_medcnn.robustness as robustness
from sk_medcnn import MedicalCNNClassifier
from sk_medcnn.exceptions import OutOfDistributionWarning
from sk_medcnn.robustness import (
    BiasField,
    Brightness,
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    JPEGCompression,
    Pixelate,
    ResolutionChange,
    RingArtifact,
    StripeArtifact,
    default_corruptions,
    robustness_report,
)

CLASSES = [
    getattr(robustness, name)
    for name in robustness.__all__
    if name[0].isupper() and name != "RobustnessReport"
]
#: 2-D acquisition artefacts, applied to each axial slice of a volume
PER_SLICE = [JPEGCompression, RingArtifact, StripeArtifact]


def make(cls, severity=3, **params):
    if "random_state" in cls().get_params():
        params.setdefault("random_state", 0)
    return cls(severity, **params)


@pytest.fixture(scope="module")
def volumes():
    rng = np.random.default_rng(0)
    X = rng.integers(40, 200, size=(4, 10, 12, 12), dtype=np.uint8)
    X[:, 3:7, 4:9, 4:9] = 230  # structure for blur, resolution and JPEG to lose
    X.setflags(write=False)
    return X


@pytest.mark.parametrize("cls", CLASSES)
def test_volumes_keep_dtype_and_layout_and_change(cls, volumes):
    corruption = make(cls)
    for X in (volumes, volumes[..., None], np.repeat(volumes[..., None], 3, axis=4)):
        out = corruption.fit_transform(X)
        assert out.dtype == X.dtype
        assert out.shape == X.shape
        assert not np.array_equal(out, X)
    floats = volumes.astype(np.float32) / 255
    out = corruption.fit_transform(floats)
    assert out.dtype == np.float32
    assert floats.min() - 1e-6 <= out.min() <= out.max() <= floats.max() + 1e-6
    # "auto" reads (n, D, H, W) with W = 12 as volumes, as spatial_dims=3 does
    np.testing.assert_array_equal(
        make(cls, spatial_dims=3).fit_transform(volumes),
        corruption.fit_transform(volumes),
    )


@pytest.mark.parametrize("cls", CLASSES)
def test_volumes_higher_severity_corrupts_more(cls, volumes):
    clean = volumes.astype(np.float64)
    distance = [
        np.abs(make(cls, s).fit_transform(volumes).astype(np.float64) - clean).mean()
        for s in (1, 3, 5)
    ]
    assert distance[0] < distance[1] < distance[2], distance


@pytest.mark.parametrize("cls", CLASSES)
def test_each_volume_is_corrupted_alone(cls, volumes):
    # a volume gets the same corruption in any batch (random ones included)
    corruption = make(cls, 4, spatial_dims=3)
    batch = corruption.fit_transform(volumes)
    for index in (0, 3):
        np.testing.assert_array_equal(
            corruption.fit_transform(volumes[index : index + 1])[0], batch[index]
        )
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(clone(corruption))).fit_transform(volumes), batch
    )


@pytest.mark.parametrize("cls", CLASSES)
def test_spatial_dims_is_checked_and_refuses_the_other_kind(cls, volumes):
    with pytest.raises(ValueError, match="spatial_dims must be 'auto', 2"):
        make(cls, spatial_dims=4).fit_transform(volumes)
    with pytest.raises(ValueError, match="X must be volumes"):
        make(cls, spatial_dims=3).fit_transform(volumes[:, 0])
    with pytest.raises(ValueError, match=r"X must be \(n_samples, height, width\)"):
        make(cls, spatial_dims=2).fit_transform(volumes[..., None])


@pytest.mark.parametrize("cls", PER_SLICE)
def test_acquisition_artefacts_apply_to_each_axial_slice(cls, volumes):
    n, depth, height, width = volumes.shape
    slices = volumes.reshape(n * depth, height, width)
    expected = make(cls, spatial_dims=2).fit_transform(slices)
    out = make(cls, spatial_dims=3).fit_transform(volumes)
    np.testing.assert_array_equal(out, expected.reshape(volumes.shape))
    floats = volumes.astype(np.float32) * 3 - 100  # range from the data, as in 2-D
    np.testing.assert_array_equal(
        make(cls).fit_transform(floats),
        make(cls, spatial_dims=2)
        .fit_transform(floats.reshape(n * depth, height, width))
        .reshape(volumes.shape),
    )


def test_the_artefacts_follow_spatial_dims_on_an_ambiguous_shape(volumes):
    # (n, D, H, 3): RGB images by default, volumes of width 3 with spatial_dims=3
    X = np.ascontiguousarray(volumes[..., :3])
    as_images = StripeArtifact(5).fit_transform(X)
    as_volumes = StripeArtifact(5, spatial_dims=3).fit_transform(X)
    np.testing.assert_array_equal(
        as_images, StripeArtifact(5, spatial_dims=2).fit_transform(X)
    )
    assert not np.array_equal(as_volumes, as_images)
    np.testing.assert_array_equal(
        as_volumes,
        StripeArtifact(5, spatial_dims=2)
        .fit_transform(X.reshape(-1, X.shape[2], 3, 1))
        .reshape(X.shape),
    )


def test_contrast_is_around_each_volume_mean():
    # slices of different brightness: a per-slice mean would flatten the depth trend
    depth = np.linspace(0.2, 0.8, 8)[:, None, None]
    rng = np.random.default_rng(1)
    X = (depth + rng.uniform(-0.1, 0.1, (2, 8, 6, 6))).astype(np.float64)
    X[1] *= 0.5
    level = Contrast._levels[4]
    out = Contrast(5, spatial_dims=3).fit_transform(X)
    low, high = X.min(), X.max()
    unit = (X - low) / (high - low)
    mean = unit.mean(axis=(1, 2, 3), keepdims=True)
    expected = (mean + level * (unit - mean)) * (high - low) + low
    np.testing.assert_allclose(out, expected)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), X.mean(axis=(1, 2, 3)))
    # the slices keep their order of brightness, compressed by the level
    slice_means = out.mean(axis=(2, 3))
    np.testing.assert_allclose(
        np.diff(slice_means, axis=1), level * np.diff(X.mean(axis=(2, 3)), axis=1)
    )


def test_contrast_mean_spans_the_channels_of_a_volume():
    X = np.zeros((1, 4, 4, 4, 3))
    X[..., 0] = 1.0  # one bright channel: the volume's mean is 1/3
    out = Contrast(5).fit_transform(X)
    level = Contrast._levels[4]
    np.testing.assert_allclose(out[..., 0], 1 / 3 + level * (1 - 1 / 3))
    np.testing.assert_allclose(out[..., 1], 1 / 3 - level / 3)


@pytest.mark.parametrize("cls", [Brightness, Gamma])
def test_pointwise_intensity_corruptions_ignore_the_layout(cls, volumes):
    out = cls(4).fit_transform(volumes)
    rows = cls(4).fit_transform(volumes.reshape(len(volumes), 1, -1))  # images
    np.testing.assert_array_equal(out.reshape(rows.shape), rows)


def test_noise_is_drawn_for_every_voxel():
    X = np.full((2, 6, 8, 8), 0.5)
    X[:, 0, 0, 0] = 0.0  # a range to corrupt on
    X[:, 0, 0, 1] = 1.0
    X[1, 0, 0, 2] = 0.25  # another volume: another draw (seeded by its content)
    noise = GaussianNoise(5, random_state=0).fit_transform(X) - X
    assert not np.allclose(noise[:, 1], noise[:, 2])  # not one field per slice
    assert not np.allclose(noise[0], noise[1])
    assert noise[:, 1:].std() == pytest.approx(GaussianNoise._levels[4], rel=0.15)


def test_blur_spreads_along_depth_as_a_3d_gaussian():
    X = np.zeros((1, 9, 28, 28))
    X[0, 4, 14, 14] = 1.0
    out = GaussianBlur(5).fit_transform(X)
    sigma = GaussianBlur._levels[4]  # 28 voxels in-plane: sigma in voxels
    unit = gaussian(X[0], sigma=sigma)
    np.testing.assert_allclose(out[0], unit)
    assert out[0, 3, 14, 14] == pytest.approx(out[0, 4, 13, 14])  # isotropic


def test_blur_spacing_makes_the_kernel_anisotropic():
    X = np.zeros((1, 9, 28, 28))
    X[0, 4, 14, 14] = 1.0
    thick = GaussianBlur(5, spacing=(4.0, 1.0, 1.0)).fit_transform(X)[0]
    iso = GaussianBlur(5, spacing=2.0).fit_transform(X)[0]
    np.testing.assert_array_equal(iso, GaussianBlur(5).fit_transform(X)[0])
    sigma = GaussianBlur._levels[4]
    np.testing.assert_allclose(thick, gaussian(X[0], sigma=(sigma / 4, sigma, sigma)))
    # 4 mm slices: less spread to the next slice than in-plane
    assert thick[3, 14, 14] < thick[4, 13, 14]
    images = X[:, 4]
    wide = GaussianBlur(5, spacing=(2.0, 1.0)).fit_transform(images)[0]
    np.testing.assert_allclose(wide, gaussian(images[0], sigma=(sigma / 2, sigma)))
    with pytest.raises(ValueError, match=r"spacing=\(1.0, 1.0\) has 2 values"):
        GaussianBlur(spacing=(1.0, 1.0)).fit_transform(X)
    with pytest.raises(ValueError, match="spacing must hold finite numbers > 0"):
        GaussianBlur(spacing=(0.0, 1.0, 1.0)).fit_transform(X)


@pytest.mark.parametrize("cls", [Pixelate, ResolutionChange])
def test_resampling_is_along_depth_too(cls):
    # constant slices, changing along depth: in-plane resampling would keep them
    X = np.repeat(np.linspace(0, 255, 10)[None, :, None, None], 8, axis=2)
    X = np.repeat(X, 8, axis=3).astype(np.uint8)
    out = cls(5).fit_transform(X)
    assert not np.array_equal(out, X)
    assert not np.array_equal(out[0, :, 3, 3], X[0, :, 3, 3])  # along depth
    for depth in range(10):  # each slice stays constant
        assert len(np.unique(out[0, depth])) == 1


def test_bias_field_is_3d():
    X = np.full((3, 8, 10, 10), 120, dtype=np.uint8)
    out = BiasField(5, spatial_dims=3, random_state=0).fit_transform(X)
    ratio = out.astype(np.float64) / 120
    assert not np.allclose(ratio[:, 0], ratio[:, -1], atol=0.02)  # varies by slice
    assert ratio.max() / ratio.min() <= np.exp(2 * BiasField._levels[4]) + 0.05
    # smooth: neighbouring voxels differ far less than the field's span
    steps = [np.abs(np.diff(ratio, axis=axis)).max() for axis in (1, 2, 3)]
    assert max(steps) < (ratio.max() - ratio.min()) / 2
    # the volume's middle slice is not the field a 2-D image of it gets
    image = BiasField(5, random_state=0).fit_transform(X[:, 4])
    assert not np.array_equal(out[:, 4], image)


def test_default_corruptions_take_spatial_dims():
    assert {c.spatial_dims for c in default_corruptions().values()} == {"auto"}
    three = default_corruptions(1, spatial_dims=3)
    assert {c.spatial_dims for c in three.values()} == {3}
    assert three["noise"].random_state == 1
    with pytest.raises(ValueError, match="spatial_dims must be 'auto', 2"):
        default_corruptions(spatial_dims="3d")
    with pytest.raises(TypeError, match="random_state must be None"):
        default_corruptions("0")


# --- the report -------------------------------------------------------------------


class _Recorder(TransformerMixin, BaseEstimator):
    """A corruption that records the spatial_dims it is cloned with."""

    seen: list = []  # noqa: RUF012 - shared on purpose: clones record here

    def __init__(self, severity=3, spatial_dims="auto"):
        self.severity = severity
        self.spatial_dims = spatial_dims

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        _Recorder.seen.append(self.spatial_dims)
        return GaussianBlur(
            self.severity, spatial_dims=self.spatial_dims
        ).fit_transform(X)


class _VolumeModel(BaseEstimator):
    """A fitted stand-in for a 3-D classifier: the mean of the centre voxels."""

    def __init__(self, spatial_dims=3):
        self.spatial_dims = spatial_dims

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.spatial_dims_ = self.spatial_dims
        shape = np.shape(X)[1:]
        self.image_shape_ = shape if len(shape) > self.spatial_dims else (*shape, 1)
        return self

    def predict_proba(self, X):
        X = np.asarray(X, dtype=np.float64)
        centre = X.reshape(len(X), -1).mean(axis=1) / 255
        return np.column_stack([1 - centre, centre])


def test_report_gives_the_model_spatial_dims_to_the_corruptions():
    # (n, D, H, 3) volumes: "auto" would read them as RGB images
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 10)
    X = rng.integers(0, 100, (20, 6, 6, 3)).astype(np.uint8)
    X[y == 1] += 100
    model = _VolumeModel().fit(X, y)
    _Recorder.seen = []
    report = robustness_report(
        model, X, y, corruptions={"rec": _Recorder(), "jpeg": JPEGCompression()}
    )
    assert _Recorder.seen == [3, 3, 3]
    assert len(report.rows) == 6
    assert str(report).startswith("Robustness report: 20 volumes;")
    # the report's JPEG row is per slice of volumes, not RGB compression
    expected = JPEGCompression(5, spatial_dims=3).fit_transform(X)
    assert report.rows[-1]["auc"] == pytest.approx(
        robustness_report(
            model, X, y, corruptions=[FixedOutput(expected)], severities=[5]
        ).rows[0]["auc"]
    )
    _Recorder.seen = []
    robustness_report(make_pipeline(model), X, y, corruptions=[_Recorder()])
    assert _Recorder.seen == [3, 3, 3]


class FixedOutput(TransformerMixin, BaseEstimator):
    """Return given images, whatever the input (to score known corruptions)."""

    def __init__(self, output=None, severity=3):
        self.output = output
        self.severity = severity

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return self.output


def test_report_refuses_a_model_of_the_other_kind(phantoms):
    X, y = phantoms
    clf = _VolumeModel(spatial_dims=2).fit(X, y)  # image_shape_ (16, 16, 1)
    volumes = np.repeat(X[:, None], 6, axis=1)  # (n, 6, 16, 16)
    with pytest.raises(ValueError, match=r"model takes 2-D images of shape \(16, 16"):
        robustness_report(clf, volumes, y, corruptions=[Contrast()])
    with pytest.raises(ValueError, match=r"X of shape \(64, 6, 16, 16, 1\) holds"):
        robustness_report(clf, volumes[..., None], y, corruptions=[Contrast()])
    model = _VolumeModel().fit(volumes, y)
    with pytest.raises(
        ValueError, match=r"model takes volumes of shape \(6, 16, 16, 1\)"
    ):
        robustness_report(model, X, y, corruptions=[Contrast()])
    with pytest.raises(ValueError, match="corruption 'Contrast' has spatial_dims=2"):
        robustness_report(model, volumes, y, corruptions=[Contrast(spatial_dims=2)])


@pytest.mark.slow
def test_report_on_a_fitted_volume_model():
    from sk_medcnn.datasets import make_lesion_phantoms

    X, y = make_lesion_phantoms(
        40, image_size=12, lesion_radius=(1.5, 3.0), spatial_dims=3, random_state=0
    )
    clf = MedicalCNNClassifier(
        max_epochs=1, batch_size=8, device="cpu", random_state=0
    ).fit(X[:24], y[:24])
    assert clf.spatial_dims_ == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no inference warning, no OOD warning
        report = robustness_report(clf, X[24:], y[24:], severities=[5])
    assert len(report.rows) == len(default_corruptions())
    assert report.n_samples == 16
    proba = clf.predict_proba(X[24:])
    assert report.clean["accuracy"] == pytest.approx(
        np.mean(clf.classes_[proba.argmax(axis=1)] == y[24:])
    )
    blur = GaussianBlur(5, spatial_dims=3).fit_transform(X[24:])
    row = next(
        r for r in report.rows if r["corruption"] == "blur" and r["severity"] == 5
    )
    with warnings.catch_warnings():  # blurred on purpose
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        blurred = clf.predict_proba(blur)
    assert row["accuracy"] == pytest.approx(
        np.mean(clf.classes_[blurred.argmax(axis=1)] == y[24:])
    )
    for row in report.rows:
        assert 0 <= row["auc"] <= 1
    with pytest.raises(ValueError, match="model takes volumes"):
        robustness_report(clf, X[24:, 6], y[24:], corruptions=[Contrast()])


@pytest.mark.parametrize("cls", CLASSES)
def test_chunks_change_no_result(cls, volumes, monkeypatch):
    import sk_medcnn.robustness._corruptions as module

    floats = volumes.astype(np.float32) / 255
    whole = [make(cls).fit_transform(X) for X in (volumes, floats)]
    random = "random_state" in cls().get_params()
    if random:
        drawn = make(cls, random_state=np.random.RandomState(0)).fit_transform(volumes)
    original = module.iter_chunks
    monkeypatch.setattr(  # one volume per chunk
        module, "iter_chunks", lambda n, size: original(n, size, chunk_bytes=1)
    )
    for X, expected in zip((volumes, floats), whole, strict=True):
        np.testing.assert_array_equal(make(cls).fit_transform(X), expected)
    if random:  # one draw per call, not one per chunk
        corruption = make(cls, random_state=np.random.RandomState(0))
        np.testing.assert_array_equal(corruption.fit_transform(volumes), drawn)
