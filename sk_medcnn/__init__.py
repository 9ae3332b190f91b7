"""sk_medcnn: scikit-learn compatible CNNs for medical image classification."""

from ._version import __version__
from .classifier import MedicalCNNClassifier, MedicalCNNRegressor
from .registry import get_architecture, list_architectures, register_architecture

__all__ = [
    "MedicalCNNClassifier",
    "MedicalCNNRegressor",
    "__version__",
    "get_architecture",
    "list_architectures",
    "register_architecture",
]
