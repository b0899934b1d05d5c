"""The trainer's configuration, read from the environment here and nowhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from artifact_contract.uris import S3Location, UnsupportedURI, parse_location

from trainer.errors import TrainerError

DEFAULT_EXPERIMENT = "mlpipeline"
DEFAULT_REGISTERED_MODEL = "mlpipeline-regressor"
# The directory that marks the repository root (defaults live under <root>/runs/).
_ROOT_MARKER = Path("services") / "trainer" / "pyproject.toml"


@dataclass(frozen=True)
class Settings:
    repo_root: Path
    tracking_uri: str
    experiment_name: str
    registered_model_name: str
    artifact_root: Path
    # SageMaker training-container layout root (the `train` entrypoint, sagemaker/container.py).
    sagemaker_base_dir: Path = Path("/opt/ml")
    # Promotion: where deployment references live, and the inference service the smoke gate
    # starts as a process (the trainer never imports inference code).
    deployments_dir: Path = Path("runs/deployments")
    inference_bin: Path = Path("services/inference/.venv/bin/inference")
    # Shared store mode (docs/07_team_scale.md): runs and references in S3. ``artifact_root``
    # and ``deployments_dir`` are then local working directories (staging, downloads, locks).
    artifact_store: str | None = None
    deployments_store: str | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> Settings:
        env = os.environ if environ is None else environ
        root = find_repo_root(cwd or Path.cwd())
        runs = root / "runs"
        artifact_root = _location(env, "MLPIPELINE_ARTIFACT_ROOT")
        deployments = _location(env, "MLPIPELINE_DEPLOYMENTS_DIR")
        return cls(
            repo_root=root,
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{runs / 'mlflow.db'}",
            experiment_name=env.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT,
            registered_model_name=env.get("MLFLOW_REGISTERED_MODEL_NAME")
            or DEFAULT_REGISTERED_MODEL,
            artifact_root=_work_dir(runs, artifact_root)
            if _is_s3(artifact_root)
            else Path(artifact_root or runs / "artifacts"),
            sagemaker_base_dir=Path(env.get("SAGEMAKER_BASE_DIR") or "/opt/ml"),
            deployments_dir=_work_dir(runs, deployments)
            if _is_s3(deployments)
            else Path(deployments or runs / "deployments"),
            inference_bin=Path(
                env.get("MLPIPELINE_INFERENCE_BIN")
                or root / "services" / "inference" / ".venv" / "bin" / "inference"
            ),
            artifact_store=artifact_root if _is_s3(artifact_root) else None,
            deployments_store=deployments if _is_s3(deployments) else None,
        )


class SettingsError(TrainerError):
    """An environment variable holds a value the trainer cannot use."""


def _is_s3(value: str | None) -> TypeGuard[str]:
    return value is not None and value.startswith("s3://")


def _work_dir(runs: Path, uri: str) -> Path:
    """This machine's working directory for an S3 location (staging, downloads, copies)."""
    return runs / "s3-work" / uri[len("s3://") :].strip("/")


def _location(env: Mapping[str, str], name: str) -> str | None:
    """A local path, ``file://`` path or ``s3://bucket/prefix``; any other URI is refused (it
    would otherwise become a local folder named after its scheme)."""
    value = env.get(name) or None
    if value is None:
        return None
    try:
        where = parse_location(value)
    except UnsupportedURI:
        raise SettingsError(
            f"{name}={value}: unsupported location; use a local path, file:// or s3://bucket/prefix"
        ) from None
    if isinstance(where, S3Location):
        if not where.bucket:
            raise SettingsError(f"{name}={value}: expected s3://bucket/prefix")
        return value
    return str(where)


def find_repo_root(start: Path) -> Path:
    """The checkout that contains ``start``, or ``start`` itself outside a checkout (an image)."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / _ROOT_MARKER).is_file():
            return candidate
    return start


def disable_mlflow_telemetry() -> None:
    """MLflow sends usage telemetry unless told not to, and decides when it is first imported:
    call this before anything imports mlflow. An explicit user setting wins."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
