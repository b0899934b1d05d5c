"""Bring your own data: a CSV with categorical, boolean and missing values, regression and
classification, trained through the CLI into a real SQLite MLflow store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from artifact_contract import CategoryShares, label_key, sha256_file, verify_run_dir
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from tests.conftest import CliResult, make_settings, run_cli
from trainer.settings import Settings

pytestmark = pytest.mark.slow  # trains every task on real data sets, end to end


def write_houses(path: Path, rows: int = 400, seed: int = 3) -> Path:
    """Prices from size, rooms, city and a garden; blanks in three features and the target."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Lyon", "Nice", "Paris"], rows).astype(object)
    garden = rng.choice([True, False], rows).astype(object)
    frame = pd.DataFrame(
        {
            "listing": [f"L{i:05d}" for i in range(rows)],
            "sqft": rng.normal(1500, 300, rows).round(1),
            "rooms": rng.integers(1, 6, rows),
            "city": city,
            "garden": garden,
        }
    )
    price = (
        frame["sqft"] * 100
        + frame["rooms"] * 5000
        + frame["city"].map({"Lyon": 0, "Nice": 20000, "Paris": 50000})
        + frame["garden"].astype(bool) * 10000
        + rng.normal(0, 5000, rows)
    )
    frame["price"] = price.round(2)
    frame["sold"] = np.where(price > price.median(), "yes", "no")
    frame.loc[::9, "sqft"] = np.nan
    frame.loc[::13, "city"] = None
    frame.loc[::17, "garden"] = None
    frame.loc[::50, "price"] = np.nan
    frame.to_csv(path, index=False)
    return path


DROP = ["--drop", "listing,price"]


@dataclass(frozen=True)
class Trained:
    settings: Settings
    csv: Path
    regression: CliResult
    classification: CliResult


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    tmp = tmp_path_factory.mktemp("byod")
    settings = make_settings(tmp)
    csv = write_houses(tmp / "houses.csv")
    regression = run_cli(
        ["train", "--data-uri", str(csv), "--target", "price", "--drop", "listing,sold"], settings
    )
    classification = run_cli(
        [
            "train",
            "--data-uri",
            str(csv),
            "--target",
            "sold",
            "--drop",
            "listing,price",
            "--model",
            "hist_gb",
        ],
        settings,
    )
    return Trained(settings, csv, regression, classification)


def test_regression_on_a_csv_with_categories_booleans_and_blanks(trained: Trained) -> None:
    result = trained.regression
    assert result.code == 0, result.stderr
    summary = result.summary
    assert summary["task"] == "regression" and summary["target"] == "price"
    assert summary["features"] == {
        "sqft": "number",
        "rooms": "integer",
        "city": "categorical",
        "garden": "boolean",
    }
    assert summary["rows"]["dropped_without_target"] == 8
    assert "task: regression of 'price' (inferred), model ridge" in result.stderr
    manifest = verify_run_dir(Path(summary["run_dir"]))
    assert manifest.schema_version == 3 and manifest.task == "regression"
    features = {feature.name: feature for feature in manifest.input_schema}
    assert features["city"].categories == ("Lyon", "Nice", "Paris")
    assert features["city"].nullable and features["garden"].nullable and features["sqft"].nullable
    assert not features["rooms"].nullable and features["rooms"].min == 1.0
    assert set(manifest.metrics) == {"rmse", "mae", "r2", "baseline_rmse"}
    assert manifest.quality_gate.passed
    profile = manifest.profile
    assert profile is not None and isinstance(profile.features["garden"], CategoryShares)
    assert profile.features["garden"].categories == ["false", "true"]


def test_classification_with_hist_gb_records_classes_and_probabilities(trained: Trained) -> None:
    result = trained.classification
    assert result.code == 0, result.stderr
    manifest = verify_run_dir(Path(result.summary["run_dir"]))
    assert manifest.output == {"name": "sold", "task": "classification", "classes": ["no", "yes"]}
    assert {"accuracy", "roc_auc", "baseline_log_loss"} <= set(manifest.metrics)
    assert manifest.metrics["log_loss"] < 0.95 * manifest.metrics["baseline_log_loss"]
    example = manifest.examples[0]
    assert example.prediction in ("no", "yes") and example.probabilities is not None
    assert example.probabilities[label_key(example.prediction)] >= 0.5
    assert manifest.profile is not None
    assert isinstance(manifest.profile.prediction, CategoryShares)


@pytest.mark.parametrize("which", ["regression", "classification"])
def test_examples_with_nulls_equal_mlflow_pyfunc_on_the_run_dir(
    trained: Trained, which: str
) -> None:
    result = getattr(trained, which)
    run_dir = Path(result.summary["run_dir"])
    manifest = verify_run_dir(run_dir)
    rows = [example.input for example in manifest.examples]
    predicted = mlflow.pyfunc.load_model(str(run_dir)).predict(
        pd.DataFrame(rows, columns=manifest.feature_names)
    )
    assert list(predicted) == [example.prediction for example in manifest.examples]
    # A row of nulls only (every nullable feature missing) also predicts.
    nulls = {f.name: (None if f.nullable else int(f.min or 0)) for f in manifest.input_schema}
    assert [f.name for f in manifest.input_schema if not f.nullable] == ["rooms"]
    loaded = mlflow.pyfunc.load_model(str(run_dir))
    assert len(loaded.predict(pd.DataFrame([nulls], columns=manifest.feature_names))) == 1


def test_mlflow_run_has_a_logged_model_with_signature_and_the_dataset(trained: Trained) -> None:
    settings = trained.settings
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    mlflow_info = trained.regression.summary["mlflow"]
    run = client.get_run(mlflow_info["run_id"])
    assert run.data.params["task"] == "regression" and run.data.params["target"] == "price"
    assert run.data.tags["feature_types"] == (
        "sqft:number,rooms:integer,city:categorical,garden:boolean"
    )
    assert run.data.tags["nullable_features"] == "sqft,city,garden"
    # The dataset input: the training data, its digest the start of the file's sha256.
    assert run.inputs is not None and run.outputs is not None
    (dataset_input,) = run.inputs.dataset_inputs
    digest = sha256_file(trained.csv)
    assert dataset_input.dataset.name == "houses.csv"
    assert '"name": "city"' in (dataset_input.dataset.schema or "")  # MLflow's schema
    assert digest.startswith(dataset_input.dataset.digest)
    tags = {tag.key: tag.value for tag in dataset_input.tags}
    assert tags == {"mlflow.data.context": "training", "sha256": digest}
    # The logged model (run page "Logged models"), with a signature from our schema.
    (output,) = run.outputs.model_outputs
    assert output.model_id == mlflow_info["logged_model_id"]
    logged = client.get_logged_model(output.model_id)
    assert str(logged.status) == "READY"
    assert logged.source_run_id == run.info.run_id
    stored = Path(unquote(urlparse(logged.artifact_location).path))
    assert {"MLmodel", "model.skops", "manifest.json"} <= {p.name for p in stored.iterdir()}
    signature = Model.load(str(stored / "MLmodel")).signature
    inputs = json.loads(json.dumps(signature.inputs.to_dict()))
    assert inputs == [
        {"type": "double", "name": "sqft", "required": False},
        {"type": "long", "name": "rooms", "required": True},
        {"type": "string", "name": "city", "required": False},
        {"type": "boolean", "name": "garden", "required": False},
    ]
    assert {m.key for m in logged.metrics or []} >= {"rmse", "baseline_rmse"}
    version = client.get_model_version(
        mlflow_info["registered_model"], mlflow_info["registered_version"]
    )
    assert version.run_id == run.info.run_id and version.source == logged.artifact_location
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [
        {"name": version.name, "version": str(version.version)}
    ]


def test_same_seed_and_data_give_identical_model_bytes(trained: Trained, tmp_path: Path) -> None:
    again = run_cli(
        [
            "train",
            "--data-uri",
            str(trained.csv),
            "--target",
            "sold",
            "--drop",
            "listing,price",
            "--model",
            "hist_gb",
            "--output-dir",
            str(tmp_path / "again"),
        ],
        make_settings(tmp_path),
    )
    assert again.code == 0, again.stderr
    first = Path(trained.classification.summary["run_dir"])
    second = Path(again.summary["run_dir"])
    assert sha256_file(first / "model.skops") == sha256_file(second / "model.skops")
    assert (first / "metrics.json").read_bytes() == (second / "metrics.json").read_bytes()


def test_a_model_that_does_not_fit_the_task_is_one_line(trained: Trained) -> None:
    result = run_cli(
        ["train", "--data-uri", str(trained.csv), "--target", "sold", "--model", "ridge", *DROP],
        trained.settings,
    )
    assert result.code == 1 and result.stdout == ""
    assert result.stderr == (
        "error: --model ridge does not fit a classification task; use logistic or hist_gb\n"
    )
