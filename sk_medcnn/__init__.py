"""sk_medcnn: scikit-learn compatible CNNs for medical image classification."""

from ._card import model_card
from ._version import __version__
from .conformal import ConformalClassifier
from .embedding import ImageEmbedder
from .estimators import MedicalCNNClassifier, MedicalCNNRegressor
from .export import export_onnx
from .persistence import load_model, save_model
from .pretrained import fetch_weights
from .registry import (
    architecture_spatial_dims,
    check_architecture_dims,
    get_architecture,
    get_weight_loader,
    list_architectures,
    register_architecture,
    register_weight_loader,
)

__all__ = [
    "ConformalClassifier",
    "ImageEmbedder",
    "MedicalCNNClassifier",
    "MedicalCNNRegressor",
    "__version__",
    "architecture_spatial_dims",
    "check_architecture_dims",
    "export_onnx",
    "fetch_weights",
    "get_architecture",
    "get_weight_loader",
    "list_architectures",
    "load_model",
    "model_card",
    "register_architecture",
    "register_weight_loader",
    "save_model",
]
