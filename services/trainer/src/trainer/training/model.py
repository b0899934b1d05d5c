"""The estimator: one scikit-learn Pipeline, fitted on a DataFrame with the features by name.

Linear models (``ridge`` for regression, ``logistic`` for classification) get a ColumnTransformer:
numbers imputed with the median and scaled, categoricals and booleans imputed with the most
frequent value and one-hot encoded (unknown categories encode as all zeros). When every feature
is a number without missing values there is nothing to impute or encode, and the pipeline is just
``StandardScaler -> model``, which the inference service can run as plain numpy (its fast path).
``hist_gb`` uses HistGradientBoosting's native support for missing values and for categorical
features (strings, encoded inside the estimator), so it needs no preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from artifact_contract.errors import first_line
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from trainer.errors import TrainerError
from trainer.training.schema import TableSchema

MODEL_KINDS = ("ridge", "logistic", "hist_gb")
_TASK_KINDS = {"regression": ("ridge", "hist_gb"), "classification": ("logistic", "hist_gb")}
_DEFAULT_KIND = {"regression": "ridge", "classification": "logistic"}


@dataclass(frozen=True)
class ModelConfig:
    kind: str | None = None  # None: ridge for regression, logistic for classification
    alpha: float = 1.0  # ridge: L2 strength
    c: float = 1.0  # logistic: inverse L2 strength
    max_iter: int = 200  # hist_gb
    learning_rate: float = 0.1  # hist_gb
    max_leaf_nodes: int = 31  # hist_gb
    l2_regularization: float = 0.0  # hist_gb

    def resolved_kind(self, task: str) -> str:
        kind = self.kind or _DEFAULT_KIND[task]
        if kind not in _TASK_KINDS[task]:
            choices = " or ".join(_TASK_KINDS[task])
            raise TrainerError(f"--model {kind} does not fit a {task} task; use {choices}")
        return kind

    def params(self, task: str) -> dict[str, str | float | int]:
        """The hyper-parameters that matter for this kind (recorded in MLflow and the manifest)."""
        kind = self.resolved_kind(task)
        if kind == "ridge":
            return {"model": kind, "alpha": self.alpha}
        if kind == "logistic":
            return {"model": kind, "C": self.c}
        return {
            "model": kind,
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "l2_regularization": self.l2_regularization,
        }


def build(config: ModelConfig, schema: TableSchema, seed: int) -> Pipeline:
    kind = config.resolved_kind(schema.task)
    if kind == "hist_gb":
        return Pipeline([("model", _hist_gb(config, schema, seed))])
    step = "regressor" if schema.task == "regression" else "classifier"
    estimator = (
        Ridge(alpha=config.alpha)
        if kind == "ridge"
        else LogisticRegression(C=config.c, max_iter=1000)
    )
    plain = all(
        column.type in ("number", "integer") and not column.nullable for column in schema.features
    )
    if plain:
        return Pipeline([("scaler", StandardScaler()), (step, estimator)])
    return Pipeline([("preprocess", _linear_preprocessing(schema)), (step, estimator)])


def _linear_preprocessing(schema: TableSchema) -> ColumnTransformer:
    numbers = schema.of_type("number", "integer")
    encoded = schema.of_type("categorical", "boolean")
    transformers: list[tuple[str, Any, list[str]]] = []
    if numbers:
        numeric = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        transformers.append(("numbers", numeric, numbers))
    if encoded:
        onehot = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categories", onehot, encoded))
    return ColumnTransformer(transformers)


def _hist_gb(config: ModelConfig, schema: TableSchema, seed: int) -> Any:
    estimator = (
        HistGradientBoostingRegressor
        if schema.task == "regression"
        else HistGradientBoostingClassifier
    )
    # No early stopping: its internal validation split would make the fit depend on more
    # than (data, seed, params) in a way that is hard to see from the manifest.
    return estimator(
        max_iter=config.max_iter,
        learning_rate=config.learning_rate,
        max_leaf_nodes=config.max_leaf_nodes,
        l2_regularization=config.l2_regularization,
        categorical_features=schema.of_type("categorical") or None,
        early_stopping=False,
        random_state=seed,
    )


def fit(config: ModelConfig, schema: TableSchema, train: pd.DataFrame, seed: int) -> Pipeline:
    """Fit on a frame whose columns are in input-schema order, so ``feature_names_in_`` is set."""
    estimator = build(config, schema, seed)
    try:
        estimator.fit(train[schema.feature_names], train[schema.target])
    except (ValueError, TypeError) as exc:
        # scikit-learn validates hyper-parameters when fitting (InvalidParameterError).
        kind = config.resolved_kind(schema.task)
        raise TrainerError(f"invalid hyper-parameters for {kind}: {first_line(exc)}") from None
    return estimator
