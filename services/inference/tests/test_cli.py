"""`inference check|serve`: any refusal is exit status 2 and one JSON line saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inference.cli import main
from tests.conftest import copy_run

INFERENCE = Path(sys.executable).parent / "inference"


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
    assert json.loads(line)["code"] == code
    assert json.loads(line)["event"] == "startup_refused"
    assert captured.err == ""


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
