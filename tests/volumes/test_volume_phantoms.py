"""``make_lesion_phantoms(spatial_dims=3)``: volumes with lesion balls."""

import numpy as np
import pytest

from sk_medcnn.datasets import make_lesion_phantoms


def test_volume_phantoms_shapes_and_masks():
    X, y, masks = make_lesion_phantoms(
        12, image_size=16, spatial_dims=3, return_masks=True, random_state=0
    )
    assert X.shape == (12, 16, 16, 16)
    assert X.dtype == np.uint8
    assert masks.shape == X.shape
    assert y.sum() == 6
    assert not masks[y == 0].any()
    assert masks[y == 1].reshape(6, -1).any(axis=1).all()
    # the lesion is brighter than the rest of its volume
    positive = X[y == 1].astype(float)
    assert positive[masks[y == 1]].mean() > positive[~masks[y == 1]].mean() + 50


def test_volume_phantoms_are_reproducible_and_take_channels():
    first, _ = make_lesion_phantoms(4, image_size=16, spatial_dims=3, random_state=1)
    again, _ = make_lesion_phantoms(4, image_size=16, spatial_dims=3, random_state=1)
    np.testing.assert_array_equal(first, again)
    X, _ = make_lesion_phantoms(
        4, image_size=16, spatial_dims=3, n_channels=2, dtype="float32", random_state=1
    )
    assert X.shape == (4, 16, 16, 16, 2)
    assert X.dtype == np.float32


def test_two_dimensional_phantoms_are_unchanged_by_the_option():
    a, _ = make_lesion_phantoms(5, image_size=16, random_state=3)
    b, _ = make_lesion_phantoms(5, image_size=16, spatial_dims=2, random_state=3)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [1, 4, True, "3"])
def test_spatial_dims_is_checked(bad):
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        make_lesion_phantoms(4, spatial_dims=bad)
