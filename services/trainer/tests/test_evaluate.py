"""Holdout metrics and the quality gate, including what a user sees when a run fails it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from artifact_contract import ArtifactRoot, read_manifest, verify_run_dir
from mlflow.tracking import MlflowClient

from tests.conftest import TrainedRoot, run_cli
from trainer.training import evaluate
from trainer.training.schema import Column, TableSchema


def test_gate_passes_only_below_95_percent_of_baseline() -> None:
    assert evaluate.quality_gate({"rmse": 94.0, "baseline_rmse": 100.0}, "regression").passed
    failed = evaluate.quality_gate({"rmse": 95.0, "baseline_rmse": 100.0}, "regression")
    assert not failed.passed
    assert failed.checks[0]["threshold"] == 95.0 and failed.checks[0]["passed"] is False


def test_classification_gate_needs_fewer_errors_than_the_majority_class() -> None:
    # Majority class 90 %: the model must make fewer than 0.95 * 10 % = 9.5 % errors.
    metrics = {"accuracy": 0.91, "baseline_accuracy": 0.90, "log_loss": 2.0}
    gate = evaluate.quality_gate(metrics, "classification")
    assert gate.passed and gate.checks[0]["name"] == "accuracy_above_baseline"
    assert gate.checks[0]["threshold"] == pytest.approx(0.905)
    # An overconfident model (log loss worse than the priors) is not refused for it; a model
    # no better than the majority class is.
    assert not evaluate.quality_gate({**metrics, "accuracy": 0.90}, "classification").passed


def test_split_is_seeded() -> None:
    frame = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0)})
    table = TableSchema(
        features=(Column("x", "number", False),),
        target="y",
        task="regression",
        classes=(),
        dropped_rows=0,
    )
    first, again = evaluate.split(frame, 3, 0.2, table), evaluate.split(frame, 3, 0.2, table)
    pd.testing.assert_frame_equal(first.holdout, again.holdout)
    assert len(first.holdout) == 20 and len(first.train) == 80


def test_failed_gate_publishes_and_tracks_the_run_but_keeps_latest(
    tmp_path: Path, other_root: TrainedRoot
) -> None:
    # Features that carry no signal: no model beats the mean by 5 %.
    rng = np.random.default_rng(0)
    noise = pd.DataFrame(
        {
            "age": rng.integers(18, 70, 200),
            "income_k": rng.normal(70, 15, 200),
            "tenure_years": rng.integers(0, 10, 200),
            "target": rng.normal(50_000, 5_000, 200),
        }
    )
    noise.to_csv(tmp_path / "noise.csv", index=False)
    root = ArtifactRoot(other_root.root)
    assert root.latest_version() == "v001"

    result = run_cli(
        ["train", "--data-uri", str(tmp_path / "noise.csv"), "--output-dir", str(root.root)],
        other_root.settings,
    )

    assert result.code == 3
    assert result.summary["quality_gate"]["passed"] is False
    assert result.summary["latest"] is False
    assert result.stderr.splitlines()[-1].startswith("error: quality gate failed: v002 kept")
    assert root.versions() == ["v001", "v002"]
    assert root.latest_version() == "v001"
    manifest = verify_run_dir(root.run_dir("v002"))
    assert manifest.quality_gate.passed is False
    assert manifest.metrics["rmse"] >= 0.95 * manifest.metrics["baseline_rmse"]
    assert read_manifest(root.latest).model_version == "v001"
    settings = other_root.settings
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    run = client.get_run(result.summary["mlflow"]["run_id"])
    assert run.data.tags["quality_gate_passed"] == "false"
    assert run.data.tags["model_version"] == "v002"
