"""Read volumes: a DICOM series folder, and NIfTI files lazily, batch by batch.

Three cases, each with its time and memory:

1. ``read_volume`` on a folder of ``--n-slices`` copies of pydicom's
   ``CT_small.dcm`` (128x128, shuffled positions and file names): slices/s, and the
   peak of Python's traced memory against the size of the volume.
2. ``ImageFiles`` over ``--n-volumes`` NIfTI files of ``--size`` voxels a side
   (uint8, gzip): volumes/s for batches of 16, as read and resized to half the size.
3. ``MedicalCNNClassifier`` fitted for one epoch on those paths with a tiny 3-D
   network: the peak RSS against the size of all the volumes in memory, to show
   that memory grows with the batch, not the data set.

    python benchmarks/bench_volume_io.py
    python benchmarks/bench_volume_io.py --quick
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from torch import nn


def tiny_3d(
    in_channels: int, n_outputs: int, image_shape: tuple[int, ...]
) -> nn.Module:
    """A one-convolution 3-D network: the benchmark measures reading, not the net."""
    return nn.Sequential(
        nn.Conv3d(in_channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(4, n_outputs),
    )


tiny_3d.spatial_dims = (3,)  # type: ignore[attr-defined]


def write_series(folder: Path, n_slices: int) -> None:
    """Write ``n_slices`` copies of CT_small.dcm as one series, in shuffled order."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    series = generate_uid()
    order = np.random.default_rng(0).permutation(n_slices)
    for k in range(n_slices):
        dataset = source.copy()
        dataset.ImagePositionPatient = [0.0, 0.0, float(order[k]) * 1.25]
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.SeriesInstanceUID = series
        dataset.save_as(folder / f"{k:05d}")


def main(argv: list[str] | None = None) -> None:
    """Run the three cases and print their figures."""
    import nibabel

    from sk_medcnn import MedicalCNNClassifier
    from sk_medcnn.io import read_volume
    from sk_medcnn.io._files_array import ImageFiles

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-slices", type=int, default=300)
    parser.add_argument("--n-volumes", type=int, default=400)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="30 slices, 32 volumes")
    args = parser.parse_args(argv)
    n_slices = 30 if args.quick else args.n_slices
    n_volumes = 32 if args.quick else args.n_volumes
    size = 16 if args.quick else args.size
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        series = root / "series"
        series.mkdir()
        write_series(series, n_slices)
        read_volume(series)  # warm the file cache
        start = time.perf_counter()
        volume = read_volume(series)
        seconds = time.perf_counter() - start
        tracemalloc.start()  # a second read: tracing slows pydicom tenfold
        read_volume(series)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"DICOM series of {n_slices} slices 128x128: {seconds:.2f} s, "
            f"{n_slices / seconds:,.0f} slices/s; volume {volume.shape} "
            f"{volume.dtype} {volume.nbytes / 2**20:.1f} MiB, peak traced memory "
            f"{peak / 2**20:.1f} MiB"
        )
        rng = np.random.default_rng(0)
        paths = []
        for index in range(n_volumes):
            data = rng.integers(0, 256, (size,) * 3, dtype=np.uint8)
            path = root / f"{index:05d}.nii.gz"
            nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), path)
            paths.append(str(path))
        labels = np.arange(n_volumes) % 2
        for shape in (None, (size // 2,) * 3):
            files = ImageFiles(paths, image_shape=shape)
            start = time.perf_counter()
            for begin in range(0, n_volumes, 16):
                batch = files[begin : begin + 16]
            seconds = time.perf_counter() - start
            print(
                f"ImageFiles, {n_volumes} NIfTI files of {size}^3 uint8, batches of "
                f"16 {batch.shape[1:]}: {n_volumes / seconds:,.0f} volumes/s"
            )
        all_volumes = n_volumes * size**3 / 2**20
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        MedicalCNNClassifier(
            tiny_3d, max_epochs=1, batch_size=16, random_state=0, device="cpu"
        ).fit(paths, labels)
        seconds = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"fit 1 epoch on the {n_volumes} paths (batch_size=16): {seconds:.1f} s; "
            f"peak RSS {rss:,.0f} MiB (before fit {rss_before:,.0f} MiB) for "
            f"{all_volumes:,.0f} MiB of volumes"
        )


if __name__ == "__main__":
    main()
