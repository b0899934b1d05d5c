"""The root Makefile's targets as a new user meets them (issue 10's first-hour frictions): which
port `make traffic` and `make mlflow-ui` use, stdout that stays JSON for `| jq` even when the venv
re-syncs first, and one line saying what a gate refusal (3) or a drift finding (4) means, since
make itself reports every failure as its own status 2."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from artifact_contract.prediction_log import format_record
from trainer.training import data

REPO_ROOT = Path(__file__).resolve().parents[1]

STAMP = REPO_ROOT / "services" / "trainer" / ".venv" / ".synced"
# What an enclosing `make test` or the caller's shell would add, and the variables these targets
# read: each test sets its own.
DROPPED = (
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
    "MAKEOVERRIDES",
    "PORT",
    "HOST",
    "MLFLOW_UI_PORT",
    "VERSION",
    "TARGET",
    "LOG",
    "TRAIN_ARGS",
    "TRAFFIC_ARGS",
    "DRIFT_ARGS",
)


def make(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`make ARGS` at the repository root, the way the README runs it."""
    environment = {k: v for k, v in os.environ.items() if k not in DROPPED}
    environment.update(env or {})
    process = subprocess.Popen(
        ["make", *args],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # make and whatever it starts: one group, stopped as a whole
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def private_state(tmp_path: Path) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MLPIPELINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "MLPIPELINE_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
    }


def test_make_traffic_with_nothing_on_the_port_says_which_variable_moves_it() -> None:
    """`make traffic` sends to PORT (what it sends: services/trainer/tests/test_traffic.py)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: nobody answers
        result = make("traffic", f"PORT={port}", "TRAFFIC_ARGS=--rows 1")
    assert result.returncode != 0
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert f"http://127.0.0.1:{port}/predict: cannot connect" in line
    assert "PORT" in line


def test_make_mlflow_ui_on_a_busy_port_says_to_set_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for variables in ([f"PORT={port}"], [f"MLFLOW_UI_PORT={port}", "PORT=1"]):
            result = make("mlflow-ui", *variables, timeout=60)
            assert result.returncode != 0
            assert (
                f"make mlflow-ui: 127.0.0.1:{port} is in use; set PORT (or MLFLOW_UI_PORT)"
                in result.stderr
            ), result.stderr


@pytest.mark.slow
def test_make_train_stdout_stays_json_when_the_venv_resyncs(tmp_path: Path) -> None:
    """After a pull that changes the lockfile the first target re-syncs the venv: that output
    goes to stderr, so `make train | jq` still reads one JSON document."""
    os.utime(STAMP, (0, 0))  # older than pyproject.toml: the next target re-syncs
    output = tmp_path / "artifacts"
    result = make(
        "train",
        f"TRAIN_ARGS=--samples 300 --seed 7 --output-dir {output}",
        env=private_state(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "syncing .venv" in result.stderr  # the re-sync happened, on stderr
    summary = json.loads(result.stdout)
    assert summary["model_version"] == "v001"


@pytest.mark.slow
def test_make_promote_refused_by_a_gate_says_so_and_keeps_stdout_json(tmp_path: Path) -> None:
    result = make("promote", "VERSION=v009", "TARGET=staging", env=private_state(tmp_path))
    assert result.returncode == 2  # make's own status for any failed recipe
    record = json.loads(result.stdout)
    assert record["outcome"] == "refused" and record["refused_at"] == "integrity"
    explained = [line for line in result.stderr.splitlines() if line.startswith("make promote:")]
    assert explained == [
        "make promote: refused by a promotion gate (trainer exit 3; the error line above says "
        "which gate and why; make exits 2)"
    ]


@pytest.mark.slow
def test_make_drift_finding_says_it_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    trained = make(
        "train",
        f"TRAIN_ARGS=--samples 300 --seed 7 --output-dir {artifacts}",
        env=private_state(tmp_path),
    )
    assert trained.returncode == 0, trained.stderr
    version = json.loads(trained.stdout)["model_version"]
    rows = data.synthetic(300, 5).frame[list(data.FEATURE_NAMES)]
    rows["income_k"] = rows["income_k"] + 40
    log = tmp_path / "p.jsonl"
    with log.open("w", encoding="utf-8") as out:
        for index, record in enumerate(rows.to_dict("records")):
            features = {str(name): float(value) for name, value in record.items()}
            out.write(format_record("2026-11-30T06:00:00Z", f"r{index}", version, features, 1.0))
    result = make(
        "drift",
        f"LOG={log}",
        f"DRIFT_ARGS=--artifact-root {artifacts} --out {tmp_path / 'report'}",
    )
    assert result.returncode == 2, result.stderr
    assert "DRIFT: income_k" in result.stdout
    explained = [line for line in result.stderr.splitlines() if line.startswith("make drift:")]
    assert explained == [
        "make drift: drift found (trainer exit 4; the table above names the features): "
        "a finding, not a crash; make exits 2"
    ]
