"""A fitted transformer still checks its parameters in ``transform``."""

import numpy as np
import pytest

from sk_medcnn.preprocessing import IntensityNormalizer, Resize


@pytest.mark.parametrize(
    ("transformer", "name", "bad"),
    [
        (IntensityNormalizer(per_image=False), "per_image", "yes"),
        (Resize((8, 8)), "shape", (0, 8)),
    ],
)
def test_set_params_after_fit_is_caught_in_transform(transformer, name, bad):
    X = np.random.default_rng(0).random((4, 12, 12)).astype(np.float32)
    transformer.fit(X)
    transformer.set_params(**{name: bad})
    with pytest.raises((TypeError, ValueError), match=name):
        transformer.transform(X)
