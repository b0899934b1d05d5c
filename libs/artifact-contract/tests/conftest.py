from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from artifact_contract import (
    DataRef,
    Example,
    Feature,
    GitInfo,
    Manifest,
    ModelRef,
    QualityGate,
    file_digests,
)


def make_manifest(run_dir: Path, version: str = "v001", **overrides: Any) -> Manifest:
    """A valid manifest for whatever files ``run_dir`` holds now."""
    fields: dict[str, Any] = {
        "model_version": version,
        "created_at": "2026-11-26T10:00:00.000Z",
        "model": ModelRef(flavor="sklearn", path="model.skops", format="skops"),
        "files": file_digests(run_dir),
        "input_schema": [
            Feature(name="age", type="integer", min=18, max=69),
            Feature(name="income_k", type="number", min=30.0, max=120.0),
        ],
        "output": {"name": "prediction"},
        "data": DataRef(source="synthetic", sha256="a" * 64, rows=100),
        "params": {"seed": 42},
        "metrics": {"rmse": 1.0},
        "quality_gate": QualityGate(passed=True, checks=[]),
        "libraries": {
            "python": "3.11.7",
            "scikit-learn": "1.9.1",
            "numpy": "2.4.6",
            "skops": "0.16.0",
            "mlflow": "3.17.2",
        },
        "git": GitInfo(commit="0" * 40, dirty=False),
        "examples": [Example(input={"age": 40, "income_k": 70.5}, prediction=123.25)],
    }
    fields.update(overrides)
    return Manifest(**fields)


def fill_run_dir(run_dir: Path, payload: bytes = b"model-bytes") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "model.skops").write_bytes(payload)
    (run_dir / "MLmodel").write_text("flavors: {}\n")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    fill_run_dir(path)
    return path
