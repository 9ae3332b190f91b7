"""The image-source protocol: what predict and the inference loops read."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import torch

from sk_medcnn.io._files_array import ImageFiles
from sk_medcnn.utils._dataset_array import DatasetImages
from sk_medcnn.utils._image_source import ImageSource
from sk_medcnn.utils._inference import predict_raw


class _Items(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], 0


def _sources(images, tmp_path):
    paths = []
    for index, image in enumerate(images):
        paths.append(str(tmp_path / f"{index}.png"))
        iio.imwrite(paths[-1], image[..., 0])
    return {
        "array": images,
        "files": ImageFiles(paths),
        "dataset": DatasetImages(_Items(images)),
    }


def test_arrays_files_and_datasets_are_image_sources(phantoms, tmp_path):
    images = phantoms[0][:5, :, :, np.newaxis]
    for name, source in _sources(images, tmp_path).items():
        assert isinstance(source, ImageSource), name
        assert source.shape == images.shape, name
        assert source.ndim == 4, name
        assert source.dtype == images.dtype, name
        assert len(source) == 5, name
        np.testing.assert_array_equal(source[1:3], images[1:3], err_msg=name)
        np.testing.assert_array_equal(source[np.array([4, 0])], images[[4, 0]])
        np.testing.assert_array_equal(np.asarray(source), images, err_msg=name)


def test_a_list_is_not_an_image_source():
    assert not isinstance([np.zeros((4, 4, 1))], ImageSource)


def test_predict_raw_reads_every_source_alike(phantoms, tmp_path):
    images = phantoms[0][:5, :, :, np.newaxis]
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 16, 2))
    outputs = {
        name: predict_raw(module, source, device=torch.device("cpu"), batch_size=2)
        for name, source in _sources(images, tmp_path).items()
    }
    assert outputs["array"].shape == (1, 5, 2)
    np.testing.assert_array_equal(outputs["files"], outputs["array"])
    np.testing.assert_array_equal(outputs["dataset"], outputs["array"])
