"""Test helpers for every package (as ``flask.testing`` ships with Flask): a valid manifest with
sensible defaults, and a published run directory built from it, so a test states only the fields
it is about.

    run_dir = publish_run(tmp_path, write_model=lambda d: (d / "model.skops").write_bytes(b"x"),
                          input_schema=[Feature("age", "integer", 18, 69)])

Nothing here imports more than the standard library: a service's tests pass a ``write_model``
that dumps a real estimator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from artifact_contract.digests import file_digests
from artifact_contract.interface import Feature
from artifact_contract.layout import ArtifactRoot
from artifact_contract.manifest import (
    DataRef,
    Example,
    GitInfo,
    Manifest,
    ModelRef,
    QualityGate,
    write_manifest,
)

CREATED_AT = "2026-11-26T10:00:00.000Z"
SKOPS_MLMODEL = (
    "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
    "  sklearn:\n    pickled_model: model.skops\n    serialization_format: skops\n"
)
LIBRARIES = {
    "python": "3.11.7",
    "scikit-learn": "1.9.1",
    "numpy": "2.4.6",
    "skops": "0.16.0",
    "mlflow": "3.17.2",
}


def manifest_fields(version: str = "v001", **overrides: Any) -> dict[str, Any]:
    """Every field of a valid schema-version-1 regression manifest but ``files``."""
    fields: dict[str, Any] = {
        "model_version": version,
        "created_at": CREATED_AT,
        "model": ModelRef(flavor="sklearn", path="model.skops", format="skops"),
        "input_schema": [
            Feature(name="age", type="integer", min=18, max=69),
            Feature(name="income_k", type="number", min=30.0, max=120.0),
        ],
        "output": {"name": "prediction"},
        "data": DataRef(source="synthetic", sha256="a" * 64, rows=100),
        "params": {"seed": 42},
        "metrics": {"rmse": 1.0},
        "quality_gate": QualityGate(passed=True, checks=[]),
        "libraries": dict(LIBRARIES),
        "git": GitInfo(commit="0" * 40, dirty=False),
        "examples": [Example(input={"age": 40, "income_k": 70.5}, prediction=123.25)],
    }
    fields.update(overrides)
    return fields


def make_manifest(run_dir: Path, version: str = "v001", **overrides: Any) -> Manifest:
    """A valid manifest for whatever files ``run_dir`` holds now."""
    return Manifest(**manifest_fields(version, files=file_digests(run_dir), **overrides))


def fill_run_dir(run_dir: Path, payload: bytes = b"model-bytes") -> None:
    """A placeholder model file and MLmodel: enough for digests and layout checks."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "model.skops").write_bytes(payload)
    (run_dir / "MLmodel").write_text("flavors: {}\n")


def publish_run(
    root: Path,
    write_model: Callable[[Path], None] | None = None,
    *,
    move_latest: bool = True,
    **overrides: Any,
) -> Path:
    """Publish one run under the artifact root ``root`` (the next vNNN) and return its directory.

    ``write_model(staging)`` writes the model file (default: placeholder bytes); the run also
    gets an MLmodel for skops, requirements.txt, metrics.json, model_version.txt and a manifest
    from ``manifest_fields(**overrides)`` whose digests cover all of them.
    """
    artifacts = ArtifactRoot(root)
    with artifacts.staging() as staging:
        if write_model is None:
            (staging / "model.skops").write_bytes(b"placeholder")
        else:
            write_model(staging)
        (staging / "MLmodel").write_text(SKOPS_MLMODEL)
        (staging / "requirements.txt").write_text("scikit-learn\nskops\n")
        (staging / "metrics.json").write_text("{}\n")

        def finalize(directory: Path, version: str) -> None:
            (directory / "model_version.txt").write_text(version + "\n")
            write_manifest(directory, make_manifest(directory, version, **overrides))

        version = artifacts.publish(staging, finalize, move_latest=move_latest)
    return artifacts.run_dir(version)
