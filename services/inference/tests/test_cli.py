"""`inference check|serve`: any refusal is exit status 2 and one JSON line saying why."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from artifact_contract.startup import parse_refusal

from inference.cli import main
from inference.settings import SHM, Settings
from tests.conftest import copy_run

INFERENCE = Path(sys.executable).parent / "inference"
REPO_ROOT = Path(__file__).resolve().parents[3]


def test_check_verifies_and_loads_the_model(
    ridge_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MODEL_DIR", str(ridge_run))
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    assert main(["check"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["event"] == "model_verified" and line["model_version"] == "v002"
    # The summary the help promises: what GET /model serves.
    manifest = json.loads((ridge_run / "manifest.json").read_text())
    assert [field["name"] for field in line["input_schema"]] == [
        field["name"] for field in manifest["input_schema"]
    ]
    assert line["metrics"] == manifest["metrics"]
    assert len(line["examples"]) == len(manifest["examples"]) > 0
    assert {"flavor", "created_at", "libraries", "quality_gate"} <= set(line)


class RecordingEnvironment(dict[str, str]):
    """An empty environment that remembers which variables were looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def help_variables(command: str) -> set[str]:
    result = subprocess.run(
        [str(INFERENCE), command, "--help"], capture_output=True, text=True, check=True
    )
    section = result.stdout.split("environment (", 1)[1]
    return set(re.findall(r"^  ([A-Z][A-Z0-9_]*\*?) ", section, flags=re.MULTILINE))


@pytest.mark.parametrize("command", ["serve", "check"])
def test_help_lists_every_variable_the_settings_read(command: str, tmp_path: Path) -> None:
    environment = RecordingEnvironment()
    Settings.from_env(environment, sagemaker_model_dir=tmp_path / "absent")
    listed = help_variables(command)
    assert environment.read, "the recording environment saw no lookups"
    # TMPDIR is the platform's, not ours: MODEL_CACHE_DIR's entry names it as its default.
    assert environment.read - {"TMPDIR"} <= listed, sorted(environment.read - listed)
    assert "AWS_*" in listed


def test_help_and_the_configuration_table_in_the_docs_agree() -> None:
    docs = (REPO_ROOT / "docs" / "03_inference.md").read_text(encoding="utf-8")
    table = docs.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)`", table, flags=re.MULTILINE))
    aws = {name for name in documented if name.startswith("AWS_")}
    assert aws and documented - aws == help_variables("serve") - {"AWS_*"}


@pytest.mark.parametrize(
    ("env", "code"),
    [({"PORT": "x"}, "configuration_error"), ({"MODEL_SHA256": "0" * 64}, "integrity_error")],
)
def test_a_refusal_is_one_json_line_and_exit_status_2(
    env: dict[str, str],
    code: str,
    ridge_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MODEL_DIR", str(ridge_run))
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["check"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.out.splitlines()
    refusal = parse_refusal(line)  # the contract's reader, as the trainer's smoke gate reads it
    assert refusal is not None and refusal.code == code
    assert captured.err == ""


@pytest.mark.slow
def test_serve_refuses_a_tampered_model_before_listening(ridge_run: Path, tmp_path: Path) -> None:
    run_dir = copy_run(ridge_run, tmp_path / "run")
    (run_dir / "metrics.json").write_text('{"rmse": 0.0}\n')
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"MODEL_DIR": str(run_dir), "MODEL_CACHE_DIR": str(tmp_path / "cache"), "PORT": "0"})
    result = subprocess.run(
        [str(INFERENCE), "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    (line,) = result.stdout.splitlines()
    refusal = json.loads(line)
    assert refusal["level"] == "error" and refusal["code"] == "integrity_error"
    assert "metrics.json has sha256" in refusal["message"]
    assert refusal["model_source"] == str(run_dir)
    assert result.stderr == ""


@pytest.mark.slow
def test_sigterm_while_loading_removes_the_metrics_directory(
    ridge_run: Path, tmp_path: Path
) -> None:
    """The trainer's smoke gate sends SIGTERM when it dies (PR_SET_PDEATHSIG), possibly before
    gunicorn has installed its handlers: the process must still clean up after itself."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # The metrics directory goes in /dev/shm when there is one, else in TMPDIR.
    where = SHM if SHM.is_dir() else scratch
    before = set(where.glob("inference-metrics-*"))
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {"MODEL_DIR": str(ridge_run), "MODEL_CACHE_DIR": str(tmp_path / "cache"), "PORT": "0"}
    )
    env["TMPDIR"] = str(scratch)
    process = subprocess.Popen(
        [str(INFERENCE), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while not (created := set(where.glob("inference-metrics-*")) - before):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(process.communicate()[0].decode()[-2000:])
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode in (0, 128 + signal.SIGTERM), output
    assert not any(path.exists() for path in created)
    assert list(scratch.iterdir()) == []


@pytest.mark.slow
def test_serve_on_a_port_in_use_says_to_set_port(ridge_run: Path, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env.update(
            {"MODEL_DIR": str(ridge_run), "MODEL_CACHE_DIR": str(tmp_path), "PORT": str(port)}
        )
        result = subprocess.run(
            [str(INFERENCE), "serve"], env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2, result.stdout + result.stderr
    refusals = [r for line in result.stdout.splitlines() if (r := parse_refusal(line))]
    assert len(refusals) == 1, result.stdout
    assert refusals[0].code == "configuration_error"
    assert f"127.0.0.1:{port} is in use" in refusals[0].message
    assert "set PORT" in refusals[0].message
