from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from artifact_contract import (
    CategoryShares,
    Example,
    Feature,
    Histogram,
    JSONScalar,
    Manifest,
    Profile,
)
from artifact_contract.testing import fill_run_dir, make_manifest

__all__ = ["fill_run_dir", "make_manifest"]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    fill_run_dir(path)
    return path


V3_FEATURES = [
    Feature(name="sqft", type="number", min=350.0, max=4200.5, nullable=True),
    Feature(name="bedrooms", type="integer", min=1, max=6),
    Feature(name="has_garden", type="boolean", nullable=True),
    Feature(name="city", type="categorical", categories=("Lyon", "Paris"), nullable=True),
]


def v3_profile(prediction: Histogram | CategoryShares) -> Profile:
    return Profile(
        bins=4,
        features={
            "sqft": Histogram(edges=[350.0, 900.0, 4200.5], proportions=[0.5, 0.5], rows=90),
            "bedrooms": Histogram(edges=[1.0, 3.0, 6.0], proportions=[0.75, 0.25], rows=100),
            "has_garden": CategoryShares(
                categories=["false", "true"], proportions=[0.25, 0.75], unseen=0.0, rows=95
            ),
            "city": CategoryShares(
                categories=["Lyon", "Paris"], proportions=[0.4, 0.6], unseen=0.0, rows=98
            ),
        },
        prediction=prediction,
    )


def make_v3_manifest(run_dir: Path, task: str = "regression", **overrides: Any) -> Manifest:
    """A valid schema_version-3 manifest: a regression, or a binary classification."""
    record: dict[str, JSONScalar] = {
        "sqft": None,
        "bedrooms": 3,
        "has_garden": True,
        "city": "Paris",
    }
    fields: dict[str, Any]
    if task == "regression":
        fields = {
            "output": {"name": "price", "task": "regression"},
            "metrics": {"rmse": 1.0, "mae": 0.8, "r2": 0.9, "baseline_rmse": 3.0},
            "examples": [Example(input=record, prediction=250000.5)],
            "profile": v3_profile(
                Histogram(edges=[1.0e5, 2.0e5, 9.0e5], proportions=[0.5, 0.5], rows=25)
            ),
        }
    else:
        fields = {
            "output": {"name": "sold", "task": "classification", "classes": [False, True]},
            "metrics": {
                "accuracy": 0.9,
                "balanced_accuracy": 0.85,
                "f1_macro": 0.86,
                "log_loss": 0.3,
                "roc_auc": 0.93,
                "baseline_accuracy": 0.6,
                "baseline_log_loss": 0.67,
            },
            "examples": [
                Example(input=record, prediction=True, probabilities={"false": 0.25, "true": 0.75})
            ],
            "profile": v3_profile(
                CategoryShares(
                    categories=["false", "true"], proportions=[0.5, 0.5], unseen=0.0, rows=25
                )
            ),
        }
    fields.update(input_schema=V3_FEATURES, schema_version=3)
    fields.update(overrides)
    return make_manifest(run_dir, **fields)
