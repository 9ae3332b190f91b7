import numpy as np
import pytest

from sk_medcnn.utils._validation import (
    check_images,
    image_shape_like,
    one_of,
    positive_int,
    random_state_like,
)


def test_check_images_layouts_keep_dtype_and_memory():
    X = np.zeros((5, 6, 7), dtype=np.uint16)
    images = check_images(X)
    assert images.shape == (5, 6, 7, 1)
    assert images.dtype == np.uint16
    assert np.shares_memory(images, X)
    rgb = np.zeros((5, 6, 7, 3), dtype=np.uint8)
    assert check_images(rgb).shape == (5, 6, 7, 3)
    assert check_images(np.zeros((5, 16))).shape == (5, 4, 4, 1)
    assert check_images(np.zeros((5, 6))).shape == (5, 1, 6, 1)
    assert check_images(np.zeros((5, 12)), image_shape=(2, 2, 3)).shape == (5, 2, 2, 3)


def test_check_images_bool_becomes_uint8():
    images = check_images(np.ones((2, 3, 3), dtype=bool))
    assert images.dtype == np.uint8
    assert images.max() == 1


def test_check_images_errors():
    with pytest.raises(ValueError, match="image_shape"):
        check_images(np.zeros((5, 12)), image_shape=(3, 3))
    with pytest.raises(ValueError, match="expecting 9 features"):
        check_images(np.zeros((5, 12)), expected_n_features=9, estimator_name="Est")
    with pytest.raises(ValueError, match="got an array of shape"):
        check_images(np.zeros((1, 2, 3, 4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        check_images(np.full((2, 3, 3), np.nan))
    with pytest.raises(ValueError, match="numeric"):
        check_images(np.array([["a", "b"]]))


def test_checkers():
    positive_int(3, "n")
    with pytest.raises(TypeError, match="n must be an int"):
        positive_int(True, "n")
    with pytest.raises(ValueError, match="Did you mean 'adam'"):
        one_of(("adam", "sgd"))("adm", "optimizer")
    with pytest.raises(ValueError, match=r"must be in \[0, 2\*\*32 - 1\]"):
        random_state_like(-1, "random_state")
    with pytest.raises(ValueError, match="image_shape must be"):
        image_shape_like((1, 2, 3, 4, 5), "image_shape")  # 4 entries: a volume
