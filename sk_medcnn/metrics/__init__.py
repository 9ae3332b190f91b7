"""Clinical metrics for binary classifiers, with bootstrap confidence intervals.

Sensitivity, specificity, PPV and NPV of predicted labels; the expected
calibration error of predicted probabilities; a clinical report giving each
figure with a bootstrap confidence interval; and scikit-learn scorers, so that
``GridSearchCV(scoring=...)`` can optimise them.
"""

# The metrics live in private submodules by concern, as in sklearn.metrics:
# _classification (sensitivity, specificity, PPV, NPV and operating points),
# _calibration (expected calibration error), _conformal (scores of prediction
# sets), _report (the clinical report), _scorer (scorer factories), and _checks
# (the input checks they share). Import them from here, sk_medcnn.metrics; the
# private helpers imported ``as`` themselves below are for sk_medcnn.inspection
# and the tests.

from __future__ import annotations

import numpy as np
from sklearn.metrics import make_scorer

from ._calibration import _calibration_bins as _calibration_bins
from ._calibration import _ece_of_bins as _ece_of_bins
from ._calibration import expected_calibration_error
from ._checks import _binary_scores as _binary_scores
from ._checks import _finite_number as _finite_number
from ._classification import (
    npv_score,
    ppv_score,
    sensitivity_at_specificity,
    sensitivity_score,
    specificity_at_sensitivity,
    specificity_score,
)
from ._conformal import mean_set_size, referral_rate, set_coverage
from ._report import ClinicalReport, MetricEstimate, clinical_report
from ._report import _report_metrics as _report_metrics
from ._scorer import (
    make_sensitivity_at_specificity_scorer,
    make_specificity_at_sensitivity_scorer,
)

__all__ = [
    "ClinicalReport",
    "ExplanationScorer",
    "MetricEstimate",
    "clinical_report",
    "expected_calibration_error",
    "explanation_score",
    "make_explanation_scorer",
    "make_sensitivity_at_specificity_scorer",
    "make_specificity_at_sensitivity_scorer",
    "mean_set_size",
    "npv_score",
    "npv_scorer",
    "ppv_score",
    "ppv_scorer",
    "referral_rate",
    "sensitivity_at_specificity",
    "sensitivity_score",
    "sensitivity_scorer",
    "set_coverage",
    "specificity_at_sensitivity",
    "specificity_score",
    "specificity_scorer",
]


# --- scorers ----------------------------------------------------------------------
# The ready-made scorers are defined here rather than in _scorer.py: Sphinx's
# autodata (docs/api.rst) reads a variable's ``#:`` comment from the source of
# the module it is documented under, sk_medcnn.metrics.
#: Scorer of :func:`sensitivity_score` on ``predict`` (positive label 1).
sensitivity_scorer = make_scorer(sensitivity_score)
#: Scorer of :func:`specificity_score` on ``predict`` (positive label 1).
specificity_scorer = make_scorer(specificity_score)
#: Scorer of :func:`ppv_score` on ``predict``; NaN where no sample is predicted
#: positive, so that such a split ranks last instead of stopping the search.
ppv_scorer = make_scorer(ppv_score, zero_division=np.nan)
#: Scorer of :func:`npv_score` on ``predict``; NaN where no sample is predicted
#: negative.
npv_scorer = make_scorer(npv_score, zero_division=np.nan)


# The explanation scores live with the maps they score; they are imported last
# because sk_medcnn.inspection itself imports this module's metrics.
from ..inspection._quality import (  # noqa: E402
    ExplanationScorer,
    explanation_score,
    make_explanation_scorer,
)
