"""The scikit-learn estimators: a CNN classifier and regressor on images.

The estimators are a thin scikit-learn shell (:mod:`._base`) over the training
engine (:mod:`sk_medcnn._engine`); each concern of ``fit`` and ``predict``
lives in its own private module here.
"""

from ._classifier import MedicalCNNClassifier
from ._regressor import MedicalCNNRegressor

__all__ = ["MedicalCNNClassifier", "MedicalCNNRegressor"]
