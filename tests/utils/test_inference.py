"""The inference loop: scores of every view, written batch by batch into one array."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sk_medcnn.utils._inference import (
    apply_view,
    predict_raw,
    predict_raw_with_features,
    tta_views,
)


def _module():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(6 * 6 * 2, 4), torch.nn.Linear(4, 3)
    )


def test_scores_and_features_are_those_of_each_batch_and_view():
    module = _module()
    images = np.random.default_rng(0).integers(0, 256, (7, 6, 6, 2), dtype=np.uint8)
    views = tta_views("hflip+vflip+shifts", images.shape[1:])
    outputs, features = predict_raw_with_features(
        module,
        images,
        device=torch.device("cpu"),
        batch_size=3,  # a last batch of 1
        views=views,
        capture=(module[2], "input"),
    )
    # the loop written out: batches of 3, every view, concatenated; the features
    # of the same batches (a matrix product over another number of rows may sum
    # in another order: float32 results then differ in the last bits)
    expected = [[] for _ in views]
    hidden = []
    with torch.inference_mode():
        for start in range(0, 7, 3):
            batch = torch.from_numpy(images[start : start + 3].astype(np.float32))
            for scores, view in zip(expected, views, strict=True):
                scores.append(module(apply_view(batch, view)))
            hidden.append(module[1](module[0](batch)))
    assert outputs.dtype == np.float32
    assert outputs.shape == (len(views), 7, 3)
    np.testing.assert_array_equal(
        outputs, torch.stack([torch.cat(s) for s in expected]).numpy()
    )
    np.testing.assert_array_equal(features, torch.cat(hidden).numpy())
    np.testing.assert_array_equal(
        predict_raw(module, images, device=torch.device("cpu"), batch_size=3),
        outputs[:1],
    )


def test_no_images_is_refused():
    with pytest.raises(ValueError, match="no images"):
        predict_raw(
            _module(),
            np.zeros((0, 6, 6, 2), dtype=np.uint8),
            device=torch.device("cpu"),
            batch_size=3,
        )
