"""The command line on volumes: train on a 3-D .npz, predict and explain NIfTI files."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from sk_medcnn.cli import main
from sk_medcnn.datasets import make_lesion_phantoms

nibabel = pytest.importorskip("nibabel")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("volumes")
    X, y = make_lesion_phantoms(24, image_size=16, spatial_dims=3, random_state=0)
    np.savez(
        folder / "phantoms3d.npz",
        train_images=X[:16],
        train_labels=y[:16, None],
        val_images=X[16:],
        val_labels=y[16:, None],
    )
    code = main(
        [
            "train", str(folder / "phantoms3d.npz"), "--output",
            str(folder / "model.skmed"), "--epochs", "1", "--batch-size", "8",
        ]
    )  # fmt: skip
    assert code == 0
    (folder / "scans").mkdir()
    for index in range(3):
        # NIfTI stores (x, y, z); read_volume returns (z, y, x), depth first
        image = nibabel.Nifti1Image(X[16 + index].T.astype(np.int16), np.eye(4))
        nibabel.save(image, folder / "scans" / f"scan{index}.nii.gz")
    return folder


def test_train_on_a_volume_npz_makes_a_volume_model(trained):
    from sk_medcnn.persistence import load_model

    model = load_model(trained / "model.skmed")
    assert model.spatial_dims_ == 3
    assert model.image_shape_ == (16, 16, 16, 1)


def test_predict_reads_a_folder_of_nifti_volumes(trained):
    output = trained / "predictions.csv"
    code = main(
        ["predict", str(trained / "model.skmed"), str(trained / "scans"),
         "--output", str(output)]
    )  # fmt: skip
    assert code == 0
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["path"].rsplit("/", 1)[-1] for row in rows] == [
        f"scan{index}.nii.gz" for index in range(3)
    ]
    for row in rows:
        assert abs(float(row["proba_0"]) + float(row["proba_1"]) - 1) < 1e-5


def test_explain_draws_orthogonal_slices(trained):
    pytest.importorskip("matplotlib")
    maps = trained / "maps"
    code = main(
        ["explain", str(trained / "model.skmed"),
         str(trained / "scans" / "scan0.nii.gz"), "--output", str(maps)]
    )  # fmt: skip
    assert code == 0
    # named after the file without its whole extension, '.nii.gz'
    assert [path.name for path in maps.iterdir()] == ["0000_scan0_hires_cam.png"]


def test_train_on_a_folder_of_nifti_volumes(tmp_path, capsys):
    from sk_medcnn.persistence import load_model

    X, y = make_lesion_phantoms(
        12, image_size=12, spatial_dims=3, lesion_radius=(2, 3), random_state=1
    )
    for index, (volume, label) in enumerate(zip(X, y, strict=True)):
        folder = tmp_path / "data" / ("lesion" if label else "normal")
        folder.mkdir(parents=True, exist_ok=True)
        image = nibabel.Nifti1Image(volume.T.astype(np.int16), np.eye(4))
        nibabel.save(image, folder / f"case{index}.nii.gz")
    code = main(
        [
            "train", str(tmp_path / "data"), "--output", str(tmp_path / "m.skmed"),
            "--epochs", "1", "--batch-size", "4",
        ]
    )  # fmt: skip
    assert code == 0
    assert "on 12 volumes of shape (12, 12, 12)" in capsys.readouterr().out
    model = load_model(tmp_path / "m.skmed")
    assert model.spatial_dims_ == 3
    assert list(model.classes_) == ["lesion", "normal"]
