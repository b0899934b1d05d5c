"""Seeded train/holdout split, holdout metrics and the quality gate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from artifact_contract import QualityGate
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

from trainer.data import FEATURE_NAMES, TARGET

# The model must beat "always predict the training mean" by at least 5 % on holdout RMSE.
GATE_RATIO = 0.95


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame


def split(frame: pd.DataFrame, seed: int, holdout_fraction: float) -> Split:
    train, holdout = train_test_split(frame, test_size=holdout_fraction, random_state=seed)
    return Split(train=train.reset_index(drop=True), holdout=holdout.reset_index(drop=True))


def holdout_metrics(estimator: Any, data: Split) -> dict[str, float]:
    truth = data.holdout[TARGET].to_numpy()
    predicted = np.asarray(estimator.predict(data.holdout[list(FEATURE_NAMES)]), dtype="float64")
    baseline = np.full_like(truth, float(data.train[TARGET].mean()))
    return {
        "rmse": float(np.sqrt(mean_squared_error(truth, predicted))),
        "mae": float(mean_absolute_error(truth, predicted)),
        "r2": float(r2_score(truth, predicted)),
        "baseline_rmse": float(np.sqrt(mean_squared_error(truth, baseline))),
    }


def quality_gate(metrics: dict[str, float], ratio: float = GATE_RATIO) -> QualityGate:
    threshold = ratio * metrics["baseline_rmse"]
    passed = metrics["rmse"] < threshold
    check = {
        "name": "rmse_below_baseline",
        "rule": f"rmse < {ratio} * baseline_rmse",
        "value": metrics["rmse"],
        "threshold": threshold,
        "passed": passed,
    }
    return QualityGate(passed=passed, checks=[check])
