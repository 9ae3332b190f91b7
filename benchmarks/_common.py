"""What every benchmark script shares: where the data is and how results are saved.

The scripts run as ``python benchmarks/bench_*.py`` from the project root, as
``python -m benchmarks`` cases, and are imported by the tests; each puts the
project root on ``sys.path`` before importing this module.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sk_medcnn.io import atomic_open

__all__ = [
    "DATA_DIR",
    "DATA_FILES",
    "DEFAULT_DATA",
    "IMAGE_DATA",
    "PROJECT_ROOT",
    "require_at_least",
    "save_results",
]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The shared real data sets (train and validation splits), beside the project.
DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"
#: Every shared MedMNIST file, by data set name.
DATA_FILES = {
    "pneumoniamnist": DATA_DIR / "pneumoniamnist_28_trainval.npz",
    "retinamnist": DATA_DIR / "retinamnist_28_trainval.npz",
    "vesselmnist3d": DATA_DIR / "vesselmnist3d_28_trainval.npz",
}
#: The 2-D ones: grayscale chest X-rays and colour fundus photographs.
IMAGE_DATA = {name: DATA_FILES[name] for name in ("pneumoniamnist", "retinamnist")}
#: The real PneumoniaMNIST train and validation splits, beside the project.
DEFAULT_DATA = DATA_FILES["pneumoniamnist"]


def save_results(results: Mapping[str, Any], path: Path | None) -> None:
    """Write ``results`` as indented JSON to ``path`` (nothing when it is None).

    The folder is created; the file is written atomically, so an interrupted run
    leaves the previous results intact.

    Parameters
    ----------
    results : mapping
        JSON-serialisable results of a benchmark.
    path : pathlib.Path or None
        The ``--json`` argument of the script.
    """
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as handle:
        handle.write(json.dumps(results, indent=2) + "\n")
    print(f"results saved to {path}")


def require_at_least(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    names: Iterable[str],
    minimum: int = 1,
) -> None:
    """Exit through ``parser.error`` when an integer option is below ``minimum``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The script's parser (its ``error`` names the option and exits with 2).
    args : argparse.Namespace
        The parsed options.
    names : iterable of str
        Attribute names of the options to check (``n_images`` is ``--n-images``).
    minimum : int, default=1
        The smallest accepted value.
    """
    for name in names:
        if getattr(args, name) < minimum:
            parser.error(f"--{name.replace('_', '-')} must be >= {minimum}")
