"""The types a model file may hold beyond what skops trusts by default.

Found with ``skops.io.get_untrusted_types`` on every pipeline the trainer builds (ridge and
logistic regression behind a ColumnTransformer of SimpleImputer, StandardScaler and
OneHotEncoder; HistGradientBoostingRegressor/Classifier with and without categorical features).
The trainer refuses to save a model that needs anything else, and the inference loader refuses to
load one; the list lives in code, never in an artifact.
"""

from __future__ import annotations

TRUSTED_TYPES: tuple[str, ...] = (
    # HistGradientBoosting* with categorical_features: its internal preprocessor is a
    # FunctionTransformer(functools.partial(check_array, ...)) next to an OrdinalEncoder.
    "functools.partial",
    # OneHotEncoder's dtype parameter (numpy.float64).
    "numpy.dtype",
    # HistGradientBoosting*'s fitted trees.
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
)
