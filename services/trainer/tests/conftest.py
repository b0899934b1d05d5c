"""Shared fixtures. Trainings are slow-ish (a second or two each after the first imports), so the
ones several tests look at are made once per session; each test that writes makes its own root."""

from __future__ import annotations

import contextlib
import io
import json
import os
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

# Before anything imports mlflow (it decides at import time whether to send telemetry).
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

from trainer.cli import main
from trainer.settings import Settings, find_repo_root

REPO_ROOT = find_repo_root(Path(__file__))


def pytest_configure(config: pytest.Config) -> None:
    # mlflow.pyfunc warns about its own type hints when imported; nothing we can act on.
    config.addinivalue_line(
        "filterwarnings", "ignore:.*Any type hint is inferred as AnyType:UserWarning"
    )
    # MLflow's SQLAlchemy store uses a loader strategy SQLAlchemy 2.1 deprecates.
    config.addinivalue_line(
        "filterwarnings", "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
    )


SAMPLES = "300"


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.stdout)
        return parsed


def run_cli(argv: Sequence[str], settings: Settings) -> CliResult:
    """Run ``trainer ...`` in this process and capture what a user would see."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv), settings=settings)
    return CliResult(code=code, stdout=out.getvalue(), stderr=err.getvalue())


def make_settings(tmp: Path) -> Settings:
    """Settings for a private store and artifact root under ``tmp``."""
    defaults = Settings.from_env({}, cwd=REPO_ROOT)
    return replace(
        defaults,
        tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}",
        experiment_name="tests",
        registered_model_name="tests-regressor",
        artifact_root=tmp / "artifacts",
    )


@dataclass(frozen=True)
class TrainedRoot:
    settings: Settings
    root: Path
    results: list[CliResult]


@pytest.fixture(scope="session")
def two_trainings(tmp_path_factory: pytest.TempPathFactory) -> TrainedRoot:
    """Two default trainings (seed 7) into one artifact root and one SQLite store."""
    tmp = tmp_path_factory.mktemp("two")
    settings = make_settings(tmp)
    results = [run_cli(["train", "--samples", SAMPLES, "--seed", "7"], settings) for _ in range(2)]
    for result in results:
        assert result.code == 0, result.stderr
    return TrainedRoot(settings=settings, root=settings.artifact_root, results=results)


@pytest.fixture(scope="session")
def other_root(tmp_path_factory: pytest.TempPathFactory) -> TrainedRoot:
    """One training with the same seed into a different directory and a different store."""
    tmp = tmp_path_factory.mktemp("other")
    settings = make_settings(tmp)
    output = tmp / "B"
    result = run_cli(
        ["train", "--samples", SAMPLES, "--seed", "7", "--output-dir", str(output)], settings
    )
    assert result.code == 0, result.stderr
    return TrainedRoot(settings=settings, root=output, results=[result])


@dataclass(frozen=True)
class Fitted:
    estimator: Any
    split: Any  # trainer.training.evaluate.Split
    schema: Any  # trainer.training.schema.TableSchema


def fit_synthetic(samples: int, seed: int, config: Any = None) -> Fitted:
    """The synthetic set through the training steps up to the fitted pipeline."""
    from trainer.training import data, evaluate, model, schema

    dataset = data.synthetic(samples, seed)
    frame, table = schema.prepare(dataset.frame, source=dataset.source, target=data.TARGET)
    split = evaluate.split(frame, seed, 0.2, table)
    estimator = model.fit(config or model.ModelConfig(), table, split.train, seed)
    return Fitted(estimator=estimator, split=split, schema=table)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a loopback port (its URL), started from an empty backend: moto keeps one
    in-process backend for every server, so what another test left must not leak in."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=10).close()
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def moto_sagemaker() -> Iterator[str]:
    """The test module's own moto server (test_deploy.py overrides it with AWS's UpdateEndpoint)."""
    with moto_server() as url:
        yield url


@pytest.fixture
def aws_env(moto_sagemaker: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3's environment pointed at the test module's own ``moto_sagemaker`` server (a URL).

    boto3 reads these itself: the code under test runs unchanged against the loopback server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_sagemaker)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return moto_sagemaker
