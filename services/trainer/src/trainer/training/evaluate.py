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
    metric = "rmse" if task == "regression" else "log_loss"
    threshold = ratio * metrics[f"baseline_{metric}"]
    passed = metrics[metric] < threshold
    check = {
        "name": f"{metric}_below_baseline",
        "rule": f"{metric} < {ratio} * baseline_{metric}",
        "value": metrics[metric],
        "threshold": threshold,
        "passed": passed,
    }
    return QualityGate(passed=passed, checks=[check])
