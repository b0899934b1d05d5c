"""Tiny real artifacts, built here: a small scikit-learn model fitted on a DataFrame (as the
trainer does), dumped with skops, described by a real manifest and published with ArtifactRoot.
No training run, network or cloud account is needed."""

from __future__ import annotations

import platform
import shutil
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from artifact_contract import (
    DataRef,
    Example,
    Feature,
    sha256_bytes,
)
from artifact_contract.testing import publish_run
from flask import Flask
from flask.testing import FlaskClient
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from inference.app import create_app
from inference.loader import load_model
from inference.model import LoadedModel
from inference.settings import Settings

FEATURES = ["age", "income_k", "tenure_years"]
RECORD = {"age": 42, "income_k": 88.0, "tenure_years": 6}


def training_frame(rows: int = 200, seed: int = 7) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows).astype(float),
            "income_k": rng.uniform(10.0, 200.0, rows),
            "tenure_years": rng.integers(0, 30, rows).astype(float),
        }
    )
    target = 0.5 * frame["age"] + 0.1 * frame["income_k"] + frame["tenure_years"]
    return frame, target + rng.normal(0.0, 1.0, rows)


def make_estimator(kind: str) -> Any:
    if kind == "ridge":
        return Pipeline([("scale", StandardScaler()), ("model", Ridge(alpha=1.0))])
    if kind == "hgb":
        return HistGradientBoostingRegressor(max_iter=15, random_state=0)
    raise ValueError(kind)


def serving_libraries() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": metadata.version("scikit-learn"),
        "numpy": metadata.version("numpy"),
        "skops": metadata.version("skops"),
        "mlflow": "3.17.2",
    }


def build_run(
    root: Path,
    estimator: Any = "ridge",
    *,
    libraries: dict[str, str] | None = None,
    example_offset: float = 0.0,
    schema_order: list[str] | None = None,
    target_scale: float = 1.0,
) -> Path:
    """Fit, dump and publish one run under ``root``; return its run directory."""
    frame, target = training_frame()
    model = make_estimator(estimator) if isinstance(estimator, str) else estimator
    model.fit(frame, target * target_scale)
    sample = frame.head(3)
    predictions = [float(p) for p in model.predict(sample)]
    names = schema_order or FEATURES
    return publish_run(
        root,
        lambda staging: sio.dump(model, staging / "model.skops"),
        created_at="2026-11-26T11:00:00Z",
        input_schema=[
            Feature(
                name,
                "number" if name == "income_k" else "integer",
                float(frame[name].min()),
                float(frame[name].max()),
            )
            for name in names
        ],
        output={"name": "spend"},
        data=DataRef("synthetic:seed=7", sha256_bytes(b"data"), len(frame)),
        params={"seed": 7},
        libraries=libraries or serving_libraries(),
        git=None,
        examples=[
            Example({str(k): float(v) for k, v in row.items()}, prediction + example_offset)
            for row, prediction in zip(sample.to_dict("records"), predictions, strict=True)
        ],
    )


def copy_run(run_dir: Path, destination: Path) -> Path:
    shutil.copytree(run_dir, destination)
    return destination


@pytest.fixture(scope="session", autouse=True)
def one_openmp_thread() -> Iterator[None]:
    """As the server does (OMP_NUM_THREADS=1): threaded tree predictions on tiny inputs are
    dominated by thread wake-ups."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="session")
def artifact_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("artifacts")
    build_run(root, "hgb")  # v001
    build_run(root, "ridge")  # v002, latest
    return root


@pytest.fixture(scope="session")
def ridge_run(artifact_root: Path) -> Path:
    return artifact_root / "runs" / "v002"


@pytest.fixture(scope="session")
def hgb_run(artifact_root: Path) -> Path:
    return artifact_root / "runs" / "v001"


@pytest.fixture(scope="session")
def typed_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One version-3 run per kind of tests/tabular.py: regression, binary, multiclass."""
    from tests.tabular import KINDS, build_typed_run

    return {kind: build_typed_run(tmp_path_factory.mktemp(kind), kind) for kind in KINDS}


@pytest.fixture
def settings(ridge_run: Path, tmp_path: Path) -> Settings:
    return Settings(model_dir=ridge_run, model_cache_dir=tmp_path / "cache", max_batch_rows=50)


@pytest.fixture(scope="session")
def loaded_model(ridge_run: Path, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    cache = tmp_path_factory.mktemp("cache")
    return load_model(Settings(model_dir=ridge_run, model_cache_dir=cache))


@pytest.fixture
def app(settings: Settings, loaded_model: LoadedModel) -> Flask:
    return create_app(settings, loaded_model)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Credentials for moto only; no shared AWS config of the machine is read."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield
