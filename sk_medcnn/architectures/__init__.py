"""Built-in CNN architectures; importing this package registers them."""

from ._resnet import ResNet, build_resnet18, build_resnet34
from ._simple_cnn import SimpleCNN, build_simple_cnn

__all__ = [
    "ResNet",
    "SimpleCNN",
    "build_resnet18",
    "build_resnet34",
    "build_simple_cnn",
]
