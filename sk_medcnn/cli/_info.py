"""``sk-medcnn info``: a model's card, or versions, device and architectures."""

from __future__ import annotations

import argparse
import platform

import numpy as np

from ._common import EXIT_OK, CommandError
from ._models import load_any_model


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def command_info(args: argparse.Namespace) -> int:
    """Print a model's card, or versions, the device and the architectures."""
    import sklearn
    import skorch
    import torch

    from .. import __version__, architecture_spatial_dims, list_architectures
    from ..utils._runtime import resolve_device

    if args.model is not None:
        from .._card import model_card

        model = load_any_model(args.model)
        try:
            print(model_card(model), end="")
        except ValueError as error:
            raise CommandError(f"{args.model}: {error}") from error
        return EXIT_OK

    print(f"sk_medcnn {__version__}")
    print(f"python {platform.python_version()} on {platform.platform()}")
    print(
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, "
        f"skorch {skorch.__version__}, numpy {np.__version__}"
    )
    print(
        f"device: {resolve_device('auto')} (auto); torch threads: "
        f"{torch.get_num_threads()}"
    )
    extras = {
        "pydicom": "DICOM",
        "nibabel": "NIfTI",
        "matplotlib": "figures",
        "safetensors": ".skmed models",
        "onnxruntime": "ONNX export",
    }
    for module, use in extras.items():
        state = "installed" if _installed(module) else "missing"
        print(f"  {module:<12} {state:<10} ({use})")
    print("architectures (the spatial dimensions they build networks for):")
    for name in list_architectures():
        dims = ", ".join(f"{dim}-D" for dim in architecture_spatial_dims(name))
        print(f"  {name:<16} {dims}")
    return EXIT_OK
