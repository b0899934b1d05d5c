"""The estimators we fit: a scaled ridge regression by default, or histogram gradient boosting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from trainer.data import FEATURE_NAMES, TARGET
from trainer.errors import TrainerError

MODEL_KINDS = ("ridge", "hist_gb")


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "ridge"
    alpha: float = 1.0  # ridge
    max_iter: int = 200  # hist_gb
    learning_rate: float = 0.1  # hist_gb
    max_leaf_nodes: int = 31  # hist_gb
    l2_regularization: float = 0.0  # hist_gb

    def params(self) -> dict[str, str | float | int]:
        """The hyper-parameters that matter for this kind (recorded in MLflow and the manifest)."""
        if self.kind == "ridge":
            return {"model": self.kind, "alpha": self.alpha}
        return {
            "model": self.kind,
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "l2_regularization": self.l2_regularization,
        }


def build(config: ModelConfig, seed: int) -> Any:
    if config.kind == "ridge":
        return Pipeline([("scaler", StandardScaler()), ("regressor", Ridge(alpha=config.alpha))])
    if config.kind == "hist_gb":
        # No early stopping: its internal validation split would make the fit depend on more
        # than (data, seed, params) in a way that is hard to see from the manifest.
        return HistGradientBoostingRegressor(
            max_iter=config.max_iter,
            learning_rate=config.learning_rate,
            max_leaf_nodes=config.max_leaf_nodes,
            l2_regularization=config.l2_regularization,
            early_stopping=False,
            random_state=seed,
        )
    raise ValueError(f"unknown model kind {config.kind!r}")


def fit(config: ModelConfig, train: pd.DataFrame, seed: int) -> Any:
    """Fit on a frame whose columns are in input-schema order, so ``feature_names_in_`` is set."""
    estimator = build(config, seed)
    try:
        estimator.fit(train[list(FEATURE_NAMES)], train[TARGET])
    except (ValueError, TypeError) as exc:
        # scikit-learn validates hyper-parameters when fitting (InvalidParameterError).
        first_line = str(exc).strip().splitlines()[0]
        raise TrainerError(f"invalid hyper-parameters for {config.kind}: {first_line}") from None
    return estimator
