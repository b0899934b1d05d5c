"""Configuration from the environment, and where the defaults put things."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO_ROOT
from trainer.settings import Settings
from trainer.training.provenance import git_info


def test_defaults_live_under_the_checkout_containing_the_current_directory() -> None:
    settings = Settings.from_env({}, cwd=REPO_ROOT / "services" / "trainer" / "src")
    assert settings.repo_root == REPO_ROOT
    assert settings.tracking_uri == f"sqlite:///{REPO_ROOT / 'runs' / 'mlflow.db'}"
    assert settings.artifact_root == REPO_ROOT / "runs" / "artifacts"
    assert settings.experiment_name == "mlpipeline"
    assert settings.registered_model_name == "mlpipeline-regressor"


def test_outside_a_checkout_the_current_directory_is_the_root(tmp_path: Path) -> None:
    settings = Settings.from_env({}, cwd=tmp_path)
    assert settings.repo_root == tmp_path.resolve()
    assert settings.artifact_root == tmp_path.resolve() / "runs" / "artifacts"
    assert git_info(tmp_path) is None


def test_environment_overrides_every_default(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
            "MLFLOW_EXPERIMENT_NAME": "exp",
            "MLFLOW_REGISTERED_MODEL_NAME": "reg",
            "MLPIPELINE_ARTIFACT_ROOT": str(tmp_path / "art"),
        },
        cwd=tmp_path,
    )
    assert settings.tracking_uri == "http://127.0.0.1:5000"
    assert (settings.experiment_name, settings.registered_model_name) == ("exp", "reg")
    assert settings.artifact_root == tmp_path / "art"


def test_git_info_names_the_checkout_commit() -> None:
    info = git_info(REPO_ROOT)
    assert info is not None
    assert len(info.commit) == 40 and isinstance(info.dirty, bool)
