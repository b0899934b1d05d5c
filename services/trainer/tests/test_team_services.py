"""Team scale on real services: PostgreSQL (a throwaway cluster on a loopback port, run as an
unprivileged user), `mlflow server` on it with its artifacts in S3 (moto's server), and two
clones of this repository standing for two machines. Both train at once into the shared store;
the first promotes, the second serves production and follows a rollback under load."""

from __future__ import annotations

import http.client
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import REPO_ROOT, SAMPLES, moto_server
from trainer.processes import free_port, stop

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
BUCKET = "team"
RECORD = {"age": 42, "income_k": 88.0, "tenure_years": 6}


def wait_http(url: str, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"{what} exited"
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not start in {timeout:.0f} s"
            time.sleep(0.2)


def as_unprivileged(argv: list[str]) -> list[str]:
    """PostgreSQL refuses root: run it as the postgres account when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", *argv]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 (Debian package postgresql) is not installed")
    # Not under pytest's temporary directory: that one is private to us, and postgres runs as
    # another user.
    scratch = Path(tempfile.mkdtemp(prefix="mlpipeline-pg-"))
    scratch.chmod(0o755)
    data = scratch / "data"
    data.mkdir()
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(data, account.pw_uid, account.pw_gid)
    subprocess.run(
        as_unprivileged(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "mlflow", "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        as_unprivileged(
            [str(PG_BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
             "-k", str(data), "-c", "fsync=off"]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        ).returncode:
            assert server.poll() is None and time.monotonic() < deadline, "postgres did not start"
            time.sleep(0.2)
        yield f"postgresql+psycopg://mlflow@127.0.0.1:{port}/postgres"
    finally:
        stop(server)
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    with moto_server() as endpoint:
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing",
                     ).create_bucket(Bucket=BUCKET)  # fmt: skip
        yield env


@pytest.fixture(scope="module")
def mlflow(
    postgres: str, s3: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, **s3, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = tmp_path_factory.mktemp("mlflow") / "server.log"
    with log.open("w") as handle:
        server = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", postgres,
             "--artifacts-destination", f"s3://{BUCKET}/mlartifacts", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=handle,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", server, "mlflow server", 120)
        yield url
    finally:
        stop(server)


def clone(tmp: Path, name: str) -> Path:
    """A clone of this checkout (one 'machine'), using this checkout's environments."""
    target = tmp / name
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(target)], check=True)
    for service in ("trainer", "inference"):
        (target / "services" / service / ".venv").symlink_to(
            REPO_ROOT / "services" / service / ".venv"
        )
    return target


class Load(threading.Thread):
    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.halt = threading.Event()
        self.sent = 0
        self.failed: list[str] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.halt.is_set():
            try:
                connection.request("POST", "/predict", json.dumps(RECORD),
                                   {"Content-Type": "application/json"})  # fmt: skip
                response = connection.getresponse()
                response.read()
                self.sent += 1
                if response.status != 200:
                    self.failed.append(str(response.status))
            except (OSError, http.client.HTTPException) as exc:
                self.failed.append(repr(exc))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.close()


def served(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return str(json.loads(response.read())["model_version"])


def test_two_machines_share_registry_store_and_references(
    mlflow: str, s3: dict[str, str], tmp_path: Path
) -> None:
    first, second = clone(tmp_path, "laptop-a"), clone(tmp_path, "laptop-b")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "MLFLOW_", "AWS_"))}
    env.update(
        s3,
        MLFLOW_TRACKING_URI=mlflow,
        MLFLOW_DISABLE_TELEMETRY="true",
        MLPIPELINE_ARTIFACT_ROOT=f"s3://{BUCKET}/artifacts",
        MLPIPELINE_DEPLOYMENTS_DIR=f"s3://{BUCKET}/deployments",
    )
    trainer = str(BIN / "trainer")

    def run(where: Path, *argv: str) -> dict[str, object]:
        done = subprocess.run([trainer, *argv], cwd=where, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        result: dict[str, object] = json.loads(done.stdout)
        return result

    trainings = [
        subprocess.Popen([trainer, "train", "--samples", SAMPLES, "--seed", seed], cwd=where,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # One seed: equally good models (production's no-regression gate passes either way),
        # still two versions with two digests.
        for where, seed in ((first, "3"), (second, "3"))
    ]  # fmt: skip
    outputs = [process.communicate(timeout=180) for process in trainings]
    for process, (_, err) in zip(trainings, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    versions = sorted(json.loads(out)["model_version"] for out, _ in outputs)
    assert versions == ["v001", "v002"]
    by_seed = {json.loads(out)["model_version"]: where
               for (out, _), where in zip(outputs, (first, second), strict=True)}  # fmt: skip
    older, newer = "v001", "v002"
    assert set(by_seed) == {older, newer}

    for version in (older, newer):
        run(first, "promote", "--version", version, "--target", "staging")
        run(first, "promote", "--version", version, "--target", "production",
            "--approved-by", "ana")  # fmt: skip

    port = free_port()
    serve_env = {k: v for k, v in env.items() if not k.startswith("MLPIPELINE_")}
    serve_env.update(
        MODEL_REFERENCE=f"s3://{BUCKET}/deployments/production.json",  # = make serve TARGET=...
        REFERENCE_POLL_SECONDS="1",
        MODEL_CACHE_DIR=str(tmp_path / "cache-b"),
        HOST="127.0.0.1",
        PORT=str(port),
        WORKERS="2",
    )
    server = subprocess.Popen([str(REPO_ROOT / "services/inference/.venv/bin/inference"), "serve"],
                              cwd=second, env=serve_env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/health", server, "the second machine's server", 60)
        production = json.loads(
            boto3.client("s3", endpoint_url=s3["AWS_ENDPOINT_URL"], region_name="us-east-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing")
            .get_object(Bucket=BUCKET, Key="deployments/production.json")["Body"].read()
        )  # fmt: skip
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert json.loads(response.read())["manifest_sha256"] == production["manifest_sha256"]
        assert served(port) == newer

        loads = [Load(port) for _ in range(4)]
        for load in loads:
            load.start()
        try:
            run(first, "rollback", "--target", "production", "--approved-by", "ana")
            deadline = time.monotonic() + 15
            while not all(served(port) == older for _ in range(12)):
                assert time.monotonic() < deadline, "the second machine did not follow"
                time.sleep(0.2)
        finally:
            for load in loads:
                load.halt.set()
            for load in loads:
                load.join()
        assert [failure for load in loads for failure in load.failed] == []
        assert sum(load.sent for load in loads) > 0
    finally:
        stop(server)
    shutil.rmtree(tmp_path / "laptop-a", ignore_errors=True)
