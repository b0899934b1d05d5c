"""Seeded train/holdout split, holdout metrics per task, and the training quality gate.

Regression: rmse, mae, r2 and the rmse of always predicting the training mean. Classification:
accuracy, balanced accuracy, macro F1, log loss (and ROC AUC for two classes), with the majority
class (accuracy) and the training class priors (log loss) as baselines. The gate asks the model to
beat its baseline by 5 %: rmse below 0.95 x baseline rmse, or log loss below 0.95 x baseline log
loss (log loss, unlike accuracy, is not fooled by a dominant class).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from artifact_contract import QualityGate
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

from trainer.training.schema import TableSchema

GATE_RATIO = 0.95


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame


def split(frame: pd.DataFrame, seed: int, holdout_fraction: float, schema: TableSchema) -> Split:
    # Classification is stratified so every class is in both parts (schema.py checked it can be).
    stratify = frame[schema.target] if schema.task == "classification" else None
    train, holdout = train_test_split(
        frame, test_size=holdout_fraction, random_state=seed, stratify=stratify
    )
    return Split(train=train.reset_index(drop=True), holdout=holdout.reset_index(drop=True))


def holdout_metrics(estimator: Any, data: Split, schema: TableSchema) -> dict[str, float]:
    features = data.holdout[schema.feature_names]
    truth = data.holdout[schema.target].to_numpy()
    if schema.task == "regression":
        predicted = np.asarray(estimator.predict(features), dtype="float64")
        baseline = np.full(len(truth), float(data.train[schema.target].mean()))
        return {
            "rmse": float(np.sqrt(mean_squared_error(truth, predicted))),
            "mae": float(mean_absolute_error(truth, predicted)),
            "r2": float(r2_score(truth, predicted)),
            "baseline_rmse": float(np.sqrt(mean_squared_error(truth, baseline))),
        }
    classes = list(estimator.classes_)
    probabilities = estimator.predict_proba(features)
    predicted = estimator.predict(features)
    priors = data.train[schema.target].value_counts(normalize=True)
    prior_row = np.array([float(priors.get(label, 0.0)) for label in classes])
    majority = priors.index[0]
    metrics = {
        "accuracy": float(accuracy_score(truth, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
        "f1_macro": float(f1_score(truth, predicted, average="macro")),
        "log_loss": float(log_loss(truth, probabilities, labels=classes)),
        "baseline_accuracy": float(np.mean(truth == majority)),
        "baseline_log_loss": float(
            log_loss(truth, np.tile(prior_row, (len(truth), 1)), labels=classes)
        ),
    }
    if len(classes) == 2:
        metrics["roc_auc"] = float(roc_auc_score(truth == classes[1], probabilities[:, 1]))
    return metrics


def quality_gate(metrics: dict[str, float], task: str, ratio: float = GATE_RATIO) -> QualityGate:
    """Skill over the run's own baseline: a regressor's rmse below ``ratio`` of always predicting
    the mean; a classifier's errors below ``ratio`` of always predicting the majority class
    (accuracy skill >= 1 - ratio, the promotion policy's ``min_skill``). Log loss is reported,
    not gated: an accurate but overconfident model (gradient boosting on a small table) can
    score worse than the class priors on it."""
    if task == "regression":
        threshold = ratio * metrics["baseline_rmse"]
        passed = metrics["rmse"] < threshold
        check = {
            "name": "rmse_below_baseline",
            "rule": f"rmse < {ratio} * baseline_rmse",
            "value": metrics["rmse"],
            "threshold": threshold,
        }
    else:
        baseline = metrics["baseline_accuracy"]
        threshold = baseline + (1 - ratio) * (1 - baseline)
        passed = metrics["accuracy"] > threshold
        check = {
            "name": "accuracy_above_baseline",
            "rule": f"1 - accuracy < {ratio} * (1 - baseline_accuracy)",
            "value": metrics["accuracy"],
            "threshold": threshold,
        }
    return QualityGate(passed=passed, checks=[{**check, "passed": passed}])
