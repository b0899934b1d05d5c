"""MLflow tracking: concurrent trainings on one SQLite store, and a real `mlflow server`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from artifact_contract import ArtifactRoot, verify_run_dir
from mlflow.tracking import MlflowClient

from tests.conftest import REPO_ROOT, make_settings, run_cli
from trainer.processes import free_port, stop
from trainer.training.tracking import sqlite_path

BIN = Path(sys.executable).parent


def test_sqlite_path_follows_sqlalchemy_urls() -> None:
    assert sqlite_path("sqlite:////abs/mlflow.db") == Path("/abs/mlflow.db")
    assert sqlite_path("sqlite:///rel/mlflow.db") == Path("rel/mlflow.db")
    assert sqlite_path("http://127.0.0.1:5000") is None


@pytest.mark.slow
def test_four_concurrent_trainings_into_one_dir_give_four_versions(tmp_path: Path) -> None:
    """Four console-script processes at once, one artifact root, one fresh SQLite store."""
    output = tmp_path / "shared"
    env = {
        # Let the children cache bytecode even where the shell disables it: four cold
        # compilations of MLflow at once would dominate the test's time.
        **{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MLFLOW_EXPERIMENT_NAME": "concurrent",
        "MLFLOW_REGISTERED_MODEL_NAME": "concurrent-regressor",
    }
    command = [str(BIN / "trainer"), "train", "--samples", "200", "--output-dir", str(output)]
    processes = [
        subprocess.Popen(
            [*command, "--seed", str(seed)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "database is locked" not in stderr

    root = ArtifactRoot(output)
    assert root.versions() == ["v001", "v002", "v003", "v004"]
    assert root.latest_version() == "v004"
    summaries = [json.loads(stdout) for stdout, _ in outputs]
    assert sorted(s["model_version"] for s in summaries) == root.versions()
    seeds = set()
    for summary in summaries:
        manifest = verify_run_dir(Path(summary["run_dir"]), summary["manifest_sha256"])
        seeds.add(manifest.params["seed"])
    assert seeds == {0, 1, 2, 3}
    assert sorted(p.name for p in root.runs_dir.iterdir() if p.name.startswith(".staging")) == []

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("concurrent")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.data.tags["model_version"] for run in runs) == root.versions()
    registered = client.search_model_versions("name='concurrent-regressor'")
    assert sorted(int(v.version) for v in registered) == [1, 2, 3, 4]


def test_unreachable_tracking_server_fails_before_anything_is_published(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = replace(make_settings(tmp_path), tracking_uri=url)
    result = run_cli(["train", "--samples", "100"], settings)
    assert result.code == 1
    assert result.stderr.startswith(f"error: MLflow at {url} is not reachable (")
    assert len(result.stderr.splitlines()) == 1
    assert not settings.artifact_root.exists()


@pytest.fixture()
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("w") as log_handle:
        server = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{tmp_path / 'server.db'}",
                "--artifacts-destination",
                str(tmp_path / "server-artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=tmp_path,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=subprocess.DEVNULL,
            stderr=log_handle,
            start_new_session=True,  # its own process group: the server forks workers
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not become healthy within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        stop(server, timeout=15)


@pytest.mark.slow
def test_trains_against_a_real_mlflow_server(mlflow_server: str, tmp_path: Path) -> None:
    settings = replace(make_settings(tmp_path), tracking_uri=mlflow_server)

    result = run_cli(["train", "--samples", "200"], settings)

    assert result.code == 0, result.stderr
    summary = result.summary
    assert summary["mlflow"]["tracking_uri"] == mlflow_server
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    version = client.get_model_version(settings.registered_model_name, "1")
    run_id = summary["mlflow"]["run_id"]
    assert version.run_id == run_id
    assert version.tags["manifest_sha256"] == summary["manifest_sha256"]
    model_id = summary["mlflow"]["logged_model_id"]
    logged = {item.path for item in client.list_logged_model_artifacts(model_id)}
    assert {"manifest.json", "model.skops", "MLmodel"} <= logged
    inputs = client.get_run(run_id).inputs
    assert inputs is not None and len(inputs.dataset_inputs) == 1
    # The server stored the artifacts (proxied upload), nothing went to the client's disk store.
    assert any((tmp_path / "server-artifacts").rglob("manifest.json"))
    assert not (tmp_path / "mlflow.db").exists()
