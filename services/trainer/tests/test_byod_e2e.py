"""Bring your own data, end to end (issue 9, "done when" 1): a CSV goes in through `trainer
train`, the run is promoted to staging through every gate (the smoke gate starts the real
inference service), then served by a real gunicorn process; `/predict` answers every row with
what `mlflow.pyfunc` predicts on the same run directory.

Three data sets: scikit-learn's bundled diabetes data (regression), its breast-cancer data
(two classes, integer labels) and a table with strings, a boolean and blanks (three classes,
string labels; hist_gb and the logistic pipeline)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from artifact_contract import read_manifest
from sklearn.datasets import load_breast_cancer, load_diabetes

from tests.conftest import make_settings, run_cli
from tests.servers import healthy_server
from trainer.processes import free_port
from trainer.settings import Settings, find_repo_root

REPO_ROOT = find_repo_root(Path(__file__))
INFERENCE_BIN = REPO_ROOT / "services" / "inference" / ".venv" / "bin" / "inference"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not INFERENCE_BIN.is_file(), reason="the inference service's venv is not set up"
    ),
]


def diabetes_csv(path: Path) -> Path:
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(path, index=False)
    return path


def breast_cancer_csv(path: Path) -> Path:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [name.replace(" ", "_") for name in frame.columns]
    frame.to_csv(path, index=False)
    return path


def mixed_csv(path: Path, rows: int = 600, seed: int = 5) -> Path:
    """Strings, a boolean, an integer and blanks in features; a string target with 3 classes."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "plus", "pro"], rows).astype(object),
            "region": rng.choice(["north", "south", "east", "west"], rows).astype(object),
            "autopay": rng.choice([True, False], rows).astype(object),
            "tenure": rng.integers(0, 120, rows),
            "spend": rng.gamma(2.0, 40.0, rows).round(2),
        }
    )
    score = (
        frame["plan"].map({"basic": 0.0, "plus": 1.0, "pro": 2.0})
        + frame["tenure"] / 60
        + np.where(frame["autopay"].astype(bool), 0.5, 0.0)
        + rng.normal(0, 0.4, rows)
    )
    frame["segment"] = np.select([score < 1.2, score < 2.4], ["bronze", "silver"], "gold")
    frame.loc[::11, "region"] = None
    frame.loc[::13, "autopay"] = None
    frame.loc[::7, "spend"] = np.nan
    frame.to_csv(path, index=False)
    return path


CASES = {
    "diabetes": (diabetes_csv, ["--target", "target"], "regression"),
    "breast_cancer": (
        breast_cancer_csv,
        ["--target", "target", "--task", "classification"],
        "classification",
    ),
    "mixed": (mixed_csv, ["--target", "segment", "--model", "hist_gb"], "classification"),
    # The linear pipeline imputes and one-hot encodes the blanks itself.
    "mixed_logistic": (mixed_csv, ["--target", "segment", "--model", "logistic"], "classification"),
}


def settings_for(tmp: Path) -> Settings:
    return replace(
        make_settings(tmp),
        deployments_dir=tmp / "deployments",
        inference_bin=INFERENCE_BIN,
    )


@contextlib.contextmanager
def serving(run_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "MAKE"))},
        "MODEL_DIR": str(run_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
    }
    url = f"http://127.0.0.1:{port}"
    with healthy_server([str(INFERENCE_BIN), "serve"], env, url):
        yield url


def post_or_get(url: str, body: Any = None) -> tuple[int, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def as_json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: blanks as null, numpy scalars as JSON values."""
    records: list[dict[str, Any]] = []
    for row in frame.to_dict("records"):
        record: dict[str, Any] = {}
        for name, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                record[str(name)] = None
            elif isinstance(value, np.generic):
                record[str(name)] = value.item()
            else:
                record[str(name)] = value
        records.append(record)
    return records


@pytest.mark.parametrize("case", list(CASES))
def test_own_data_trains_promotes_to_staging_and_serves_what_pyfunc_predicts(
    case: str, tmp_path: Path
) -> None:
    write, flags, task = CASES[case]
    csv = write(tmp_path / f"{case}.csv")
    settings = settings_for(tmp_path)

    trained = run_cli(["train", "--data-uri", str(csv), *flags], settings)
    assert trained.code == 0, trained.stderr
    version = trained.summary["model_version"]
    run_dir = settings.artifact_root / "runs" / version
    manifest = read_manifest(run_dir)
    assert manifest.schema_version == 3
    assert manifest.output["task"] == task

    promoted = run_cli(["promote", "--version", version, "--target", "staging"], settings)
    assert promoted.code == 0, promoted.stderr + promoted.stdout
    reference = json.loads((settings.deployments_dir / "staging.json").read_text())
    assert reference["model_version"] == version

    # The rows a user would score: the CSV's own rows (blanks and all), in schema order.
    names = manifest.feature_names
    frame = pd.read_csv(csv)[names].head(60)
    expected = mlflow.pyfunc.load_model(str(run_dir)).predict(frame)
    expected_list = [value.item() if isinstance(value, np.generic) else value for value in expected]

    with serving(run_dir) as url:
        records = as_json_records(frame)
        status, batch = post_or_get(url + "/predict", {"instances": records})
        assert status == 200, batch
        single = [post_or_get(url + "/predict", record)[1]["prediction"] for record in records[:5]]

    served = batch["predictions"]
    if task == "regression":
        assert served == pytest.approx(expected_list, rel=1e-9, abs=1e-9)
        assert single == pytest.approx(expected_list[:5], rel=1e-9, abs=1e-9)
    else:
        assert served == expected_list
        assert single == expected_list[:5]
        assert len(batch["probabilities"]) == len(records)
