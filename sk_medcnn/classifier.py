"""The estimators' former module, kept for the paths it made public.

:class:`MedicalCNNClassifier` and :class:`MedicalCNNRegressor` live in
:mod:`sk_medcnn.estimators` (import them from :mod:`sk_medcnn`); models pickled
before the move name this module, and still load through it.
"""

from .estimators import MedicalCNNClassifier, MedicalCNNRegressor

__all__ = ["MedicalCNNClassifier", "MedicalCNNRegressor"]
