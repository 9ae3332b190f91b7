"""A torch.utils.data.Dataset as X: read lazily, the same model as from an array."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sk_medcnn import MedicalCNNClassifier, MedicalCNNRegressor
from sk_medcnn.utils._dataset_array import DatasetImages

FAST = {
    "max_epochs": 2,
    "batch_size": 16,
    "random_state": 0,
    "device": "cpu",
    "lr_schedule": None,
    "calibration": None,
    "tta": None,
}


class Phantoms(torch.utils.data.Dataset):
    """Items (image, label); images as torch tensors (C, H, W) or numpy (H, W, C)."""

    def __init__(self, X, y, *, as_tensor=True, with_targets=True, pairs=True):
        self.X, self.y = X, y
        self.as_tensor, self.pairs = as_tensor, pairs
        if with_targets:
            self.targets = list(y)
        self.reads = 0

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        self.reads += 1
        image = self.X[index]
        image = (
            torch.from_numpy(np.array(image[np.newaxis]))
            if self.as_tensor
            else image[..., np.newaxis]
        )
        return (image, int(self.y[index])) if self.pairs else image


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"as_tensor": False},
        {"with_targets": False},
    ],
    ids=["tensor-chw-targets", "numpy-hwc", "targets-from-items"],
)
def test_a_dataset_trains_the_same_model_as_its_array(phantoms, options):
    X, y = phantoms
    dataset = Phantoms(X, y, **options)
    from_dataset = MedicalCNNClassifier(**FAST).fit(dataset)
    from_array = MedicalCNNClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(
        from_dataset.predict_proba(dataset), from_array.predict_proba(X)
    )
    np.testing.assert_array_equal(
        from_dataset.predict_proba(X), from_array.predict_proba(X)
    )
    assert from_dataset.image_shape_ == (16, 16, 1)


def test_images_only_dataset_with_y_and_a_regressor(phantoms):
    X, y = phantoms
    dataset = Phantoms(X, y, pairs=False, with_targets=False)
    settings = {key: value for key, value in FAST.items() if key != "calibration"}
    reg = MedicalCNNRegressor(**settings).fit(dataset, y * 2.0)
    np.testing.assert_allclose(reg.predict(dataset), reg.predict(X))
    clf = MedicalCNNClassifier(**FAST)
    with pytest.raises(ValueError, match="pass y"):
        clf.fit(dataset)


def test_dataset_is_read_in_loader_processes(phantoms):
    X, y = phantoms
    dataset = Phantoms(X, y)
    clf = MedicalCNNClassifier(**{**FAST, "num_workers": 2}).fit(dataset)
    reference = MedicalCNNClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))


def test_dataset_images_reads_only_the_rows_asked_for(phantoms):
    X, y = phantoms
    dataset = Phantoms(X, y)
    images = DatasetImages(dataset)
    assert images.shape == (len(X), 16, 16, 1)
    assert dataset.reads == 1  # the first item, for the shape
    batch = images[np.array([3, 7, 1])]
    assert dataset.reads == 4
    np.testing.assert_array_equal(batch[..., 0], X[[3, 7, 1]])
    np.testing.assert_array_equal(images[2:5][..., 0], X[2:5])


class Ragged(torch.utils.data.Dataset):
    def __init__(self, shapes):
        self.shapes = shapes

    def __len__(self):
        return len(self.shapes)

    def __getitem__(self, index):
        shape = self.shapes[index]
        if shape is None:
            return ("not an image", 0)
        return torch.zeros(shape), index % 2


def test_dataset_errors_name_the_item():
    with pytest.raises(ValueError, match="item 3 is"):
        MedicalCNNClassifier(**FAST).fit(Ragged([(1, 8, 8)] * 3 + [(1, 9, 8)] * 3))
    with pytest.raises(ValueError, match="item 0 of the dataset is not an image"):
        MedicalCNNClassifier(**FAST).fit(Ragged([None, (1, 8, 8)]))
    with pytest.raises(ValueError, match="empty"):
        MedicalCNNClassifier(**FAST).fit(Ragged([]), [])


def test_predict_on_a_dataset_of_another_image_size_says_so(phantoms):
    X, y = phantoms
    clf = MedicalCNNClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"64 features, but .* expecting 256"):
        clf.predict(Ragged([(1, 8, 8)] * 4))
    with pytest.raises(ValueError, match="fitted on images of shape"):
        clf.predict(Ragged([(1, 8, 32)] * 4))


def test_dataset_with_nan_pixels_names_the_item():
    class WithNaN(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, index):
            image = torch.ones(1, 8, 8)
            if index == 4:
                image[0, 2, 3] = float("nan")
            return image, index % 2

    with pytest.raises(ValueError, match="item 4 of the dataset holds NaN"):
        MedicalCNNClassifier(**FAST).fit(WithNaN())
