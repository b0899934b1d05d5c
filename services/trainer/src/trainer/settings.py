"""The trainer's configuration, read from the environment here and nowhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> Settings:
        env = os.environ if environ is None else environ
        root = find_repo_root(cwd or Path.cwd())
        runs = root / "runs"
        return cls(
            repo_root=root,
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{runs / 'mlflow.db'}",
            experiment_name=env.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT,
            registered_model_name=env.get("MLFLOW_REGISTERED_MODEL_NAME")
            or DEFAULT_REGISTERED_MODEL,
            artifact_root=Path(env.get("MLPIPELINE_ARTIFACT_ROOT") or runs / "artifacts"),
            sagemaker_base_dir=Path(env.get("SAGEMAKER_BASE_DIR") or "/opt/ml"),
            deployments_dir=Path(env.get("MLPIPELINE_DEPLOYMENTS_DIR") or runs / "deployments"),
            inference_bin=Path(
                env.get("MLPIPELINE_INFERENCE_BIN")
                or root / "services" / "inference" / ".venv" / "bin" / "inference"
            ),
        )


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
