"""Built-in CNN architectures; importing this package registers them."""

from ._acs import ACSConv, acs_convert
from ._layers import GlobalPool
from ._resnet import (
    ResNet,
    build_acs_resnet18,
    build_acs_resnet34,
    build_resnet18,
    build_resnet34,
)
from ._simple_cnn import SimpleCNN, build_simple_cnn

__all__ = [
    "ACSConv",
    "GlobalPool",
    "ResNet",
    "SimpleCNN",
    "acs_convert",
    "build_acs_resnet18",
    "build_acs_resnet34",
    "build_resnet18",
    "build_resnet34",
    "build_simple_cnn",
]
