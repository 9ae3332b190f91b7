"""sk_medcnn: scikit-learn compatible CNNs for medical image classification."""

from ._version import __version__
from .classifier import MedicalCNNClassifier, MedicalCNNRegressor
from .conformal import ConformalClassifier
from .persistence import load_model, save_model
from .registry import get_architecture, list_architectures, register_architecture

__all__ = [
    "ConformalClassifier",
    "MedicalCNNClassifier",
    "MedicalCNNRegressor",
    "__version__",
    "get_architecture",
    "list_architectures",
    "load_model",
    "register_architecture",
    "save_model",
]
