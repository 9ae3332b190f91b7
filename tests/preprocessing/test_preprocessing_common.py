"""scikit-learn conformance and the API shared by every preprocessing transformer."""

from __future__ import annotations

import pickle
import warnings

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.estimator_checks import (
    check_set_output_transform,
    parametrize_with_checks,
)

import sk_medcnn.preprocessing as preprocessing
from sk_medcnn.preprocessing import (
    CLAHE,
    CenterCrop,
    IntensityNormalizer,
    IntensityWindow,
    Pad,
    Resample,
    Resize,
    ToGrayscale,
    ToRGB,
)

# scikit-learn's checks feed flat rows of 1 to 10 values, which these
# transformers take as one-row images (1, n) or squares: instances are chosen
# to accept any of them (a 1x1 crop, a pad larger than every check image).
CHECKED = [
    Resize((5, 3)),
    CenterCrop((1, 1)),
    Pad((4, 6)),
    IntensityWindow(level=0, width=2),
    IntensityNormalizer(),
    IntensityNormalizer(method="percentile", per_image=False),
    IntensityNormalizer(method="minmax", per_image=False),
    IntensityNormalizer(method="zscore", per_image=False),
    CLAHE(),
    ToGrayscale(),
    ToRGB(),
    Resample(0.5, input_spacing=1.0),
]


def expected_failed_checks(estimator):
    # Every scikit-learn check applies and passes; an entry here needs a reason.
    return {}


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        # the checks' rows of 2, 3, 5 ... values are not square images; the
        # transformers say so (tested below) and carry on
        warnings.filterwarnings(
            "ignore", message="X has .* values per row, not a square number"
        )
        check(estimator)


def _instances():
    """One instance of every public transformer, with the checks' instances."""
    return [
        Resize(8),
        CenterCrop(4),
        Pad(12),
        IntensityWindow(preset="brain"),
        IntensityNormalizer(),
        IntensityNormalizer(method="percentile", per_image=False),
        CLAHE(),
        ToGrayscale(),
        ToRGB(),
        Resample(0.5, input_spacing=1.0),
    ]


IDS = [type(estimator).__name__ for estimator in _instances()]


def test_every_public_class_is_checked():
    checked = {type(estimator).__name__ for estimator in CHECKED}
    assert checked == set(preprocessing.__all__)
    assert preprocessing.__all__ == sorted(preprocessing.__all__)


@pytest.mark.parametrize("name", preprocessing.__all__)
def test_parameter_constraints_cover_every_parameter(name):
    estimator = next(e for e in CHECKED if type(e).__name__ == name)
    assert set(type(estimator)._parameter_constraints) == set(
        estimator.get_params(deep=False)
    )


@pytest.mark.parametrize("estimator", _instances(), ids=IDS)
def test_layouts_are_kept(phantoms, estimator):
    X, _ = phantoms  # (64, 16, 16) uint8
    X3 = X[:6]
    out3 = clone(estimator).fit_transform(X3)
    out4 = clone(estimator).fit_transform(X3[..., np.newaxis])
    out2 = clone(estimator).fit_transform(X3.reshape(6, -1))
    assert out3.shape[0] == out4.shape[0] == out2.shape[0] == 6
    if isinstance(estimator, ToRGB):  # the one that adds channels
        assert out3.ndim == 4
        assert out3.shape[-1] == 3
    else:
        assert out3.ndim == 3
        np.testing.assert_array_equal(out4[..., 0], out3)
    assert out4.ndim == 4
    assert out2.ndim == 2
    np.testing.assert_array_equal(out2, out4.reshape(6, -1))


@pytest.mark.parametrize("estimator", _instances(), ids=IDS)
def test_dtype_contract(phantoms, estimator):
    X, _ = phantoms
    for dtype in (np.uint8, np.uint16, np.float32, np.float64):
        images = X[:4].astype(dtype)
        if isinstance(estimator, CLAHE) and dtype in (np.float32, np.float64):
            images = images / np.asarray(255, dtype)
        out = clone(estimator).fit_transform(images)
        if estimator._keeps_dtype:
            assert out.dtype == dtype, (estimator, dtype)
        else:
            assert out.dtype == np.float32, (estimator, dtype)


@pytest.mark.parametrize("estimator", _instances(), ids=IDS)
def test_input_is_never_modified_nor_returned(phantoms, estimator):
    X, _ = phantoms  # read-only
    images = np.array(X[:4, :, :, np.newaxis])
    before = images.copy()
    out = clone(estimator).fit(images).transform(images)
    np.testing.assert_array_equal(images, before)
    assert not np.shares_memory(out, images)


@pytest.mark.parametrize("estimator", _instances(), ids=IDS)
def test_nan_is_an_error_naming_x(estimator):
    X = np.ones((3, 16, 16))
    X[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clone(estimator).fit(X)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clone(estimator).fit(np.ones((3, 16, 16))).transform(X)


@pytest.mark.parametrize("estimator", _instances(), ids=IDS)
# 5-D arrays are volumes (test_preprocessing_volumes.py); 6-D ones are an error
@pytest.mark.parametrize(
    "X",
    [np.zeros(16), np.zeros((2, 3, 16, 16, 1, 1)), np.zeros((2, 0, 4))],
    ids=["1d", "6d", "empty-images"],
)
def test_wrong_ndim_is_a_clear_error(estimator, X):
    with pytest.raises(ValueError, match="X "):
        clone(estimator).fit(X)


@pytest.mark.parametrize("estimator", _instances(), ids=IDS)
def test_set_output_returns_arrays(phantoms, estimator):
    pytest.importorskip("pandas")
    X, _ = phantoms
    X = X[:4]
    configured = clone(estimator).set_output(transform="pandas")
    assert isinstance(configured, type(estimator))
    expected = clone(estimator).fit_transform(X)
    out = configured.fit_transform(X)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, expected)
    with sklearn.config_context(transform_output="pandas"):
        out = clone(estimator).fit(X).transform(X)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("estimator", CHECKED, ids=repr)
def test_set_output_default_changes_nothing(estimator):
    # scikit-learn's own check, which parametrize_with_checks does not run
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="X has .* values per row, not a square number"
        )
        check_set_output_transform(type(estimator).__name__, clone(estimator))


def test_set_output_checks_its_argument():
    with pytest.raises(ValueError, match="transform must be one of"):
        Resize(8).set_output(transform="pandsa")


def test_pipeline_set_output_reaches_other_steps(phantoms):
    pd = pytest.importorskip("pandas")
    X, _ = phantoms
    flatten = FunctionTransformer(
        lambda images: images.reshape(len(images), -1),
        feature_names_out=lambda transformer, names: [f"pixel{i}" for i in range(16)],
    )
    pipe = make_pipeline(Resize(4), IntensityNormalizer(), flatten, StandardScaler())
    pipe.set_output(transform="pandas")
    out = pipe.fit_transform(X[:8])
    assert isinstance(out, pd.DataFrame)
    assert out.shape == (8, 16)


def test_flat_rows_of_another_size_are_refused_after_fit():
    resize = Resize(2).fit(np.zeros((3, 16)))
    with pytest.raises(
        ValueError, match="X has 9 features, but Resize is expecting 16"
    ):
        resize.transform(np.zeros((3, 9)))
    # images are not flat rows: any size is resized
    assert resize.transform(np.zeros((3, 5, 5))).shape == (3, 2, 2)


def test_flat_rows_take_the_fitted_image_shape():
    X = np.arange(2 * 4 * 4 * 3, dtype=np.float64).reshape(2, 4, 4, 3)
    crop = CenterCrop(2).fit(X)
    assert crop.image_shape_ == (4, 4, 3)
    assert crop.n_features_in_ == 48
    flat = crop.transform(X.reshape(2, -1))
    np.testing.assert_array_equal(flat, crop.transform(X).reshape(2, -1))


def test_non_square_rows_warn():
    with pytest.warns(UserWarning, match="taken as a one-row image of shape"):
        Resize(2).fit_transform(np.zeros((2, 6)))


def test_dataframe_feature_names(phantoms):
    pd = pytest.importorskip("pandas")
    X, _ = phantoms
    frame = pd.DataFrame(X[:4].reshape(4, -1)).add_prefix("pixel")
    normalizer = IntensityNormalizer(per_image=False).fit(frame)
    assert list(normalizer.feature_names_in_[:2]) == ["pixel0", "pixel1"]
    np.testing.assert_allclose(
        normalizer.transform(frame),
        normalizer.transform(X[:4]).reshape(4, -1),
    )


def test_stateful_transformer_needs_fit():
    with pytest.raises(NotFittedError):
        IntensityNormalizer(per_image=False).transform(np.zeros((2, 4, 4)))
    # stateless ones transform without fit
    assert Resize(2).transform(np.zeros((2, 4, 4))).shape == (2, 2, 2)


@pytest.mark.parametrize("estimator", _instances(), ids=IDS)
def test_pickle_and_clone_round_trips(phantoms, tmp_path, estimator):
    X, _ = phantoms
    fitted = clone(estimator).fit(X[:8])
    expected = fitted.transform(X[8:12])
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X[8:12]), expected)
    path = tmp_path / "transformer.joblib"
    joblib.dump(fitted, path)
    np.testing.assert_array_equal(joblib.load(path).transform(X[8:12]), expected)
    assert clone(fitted).get_params() == fitted.get_params()


def test_grid_search_reaches_preprocessing_parameters(phantoms):
    X, y = phantoms
    flatten = FunctionTransformer(lambda images: images.reshape(len(images), -1))
    pipe = make_pipeline(
        Resize(8),
        IntensityNormalizer(),
        flatten,
        LogisticRegression(max_iter=200),
    )
    search = GridSearchCV(
        pipe,
        {
            "resize__shape": [(4, 4), (8, 8)],
            "intensitynormalizer__method": ["zscore", "percentile"],
        },
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.predict(X[:3]).shape == (3,)
