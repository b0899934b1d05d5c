"""Issue 11, item 10: `trainer promote` stopped by SIGTERM, SIGKILL or Ctrl-C during the smoke
gate must not leave the inference service it started (gunicorn master and worker) listening,
nor a temporary directory behind. Real processes: the trainer's console script, the real inference
service, real signals.

The trainer is paused (SIGSTOP) as soon as it has started the server, so the signal lands while
the gate is in progress whatever the machine's speed; the server runs on regardless.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, TrainedRoot

TRAINER = REPO_ROOT / "services" / "trainer" / ".venv" / "bin" / "trainer"
INFERENCE_BIN = REPO_ROOT / "services" / "inference" / ".venv" / "bin" / "inference"
# A SIGTERM'd smoke server stops gracefully within its GRACEFUL_TIMEOUT (5 s); the margin is for
# a shared, busy two-core box.
GONE_WITHIN = 60.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not INFERENCE_BIN.is_file(),
        reason="the inference service's venv is not set up (make setup)",
    ),
]


def servers(parent: int) -> list[int]:
    """Children of ``parent`` running the inference service (not, say, the trainer's `git`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == parent and b"serve" in command:
            found.append(int(entry.name))
    return found


def identity(pid: int) -> tuple[int, str]:
    """A pid and its start time: on a busy machine pids are reused."""
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return pid, fields[19]


def alive(process: tuple[int, str]) -> bool:
    """Running, as opposed to gone or a zombie waiting for whoever adopted it to reap it."""
    pid, started = process
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == started and fields[0] not in ("Z", "X")


def describe(process: tuple[int, str]) -> str:
    pid = process[0]
    try:
        status = (Path("/proc") / str(pid) / "status").read_text().splitlines()
    except OSError:
        return f"{pid}: gone"
    return f"{pid}: " + "; ".join(line for line in status if line.startswith(("State", "PPid")))


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(
    condition: Callable[[], object], timeout: float, what: str | Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.05)


@pytest.fixture
def promotion(two_trainings: TrainedRoot, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    settings = two_trainings.settings
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    }
    env.update(
        TMPDIR=str(scratch),
        MLFLOW_TRACKING_URI=settings.tracking_uri,
        MLFLOW_REGISTERED_MODEL_NAME=settings.registered_model_name,
        MLPIPELINE_ARTIFACT_ROOT=str(settings.artifact_root),
        MLPIPELINE_DEPLOYMENTS_DIR=str(tmp_path / "deployments"),
        MLPIPELINE_INFERENCE_BIN=str(INFERENCE_BIN),
    )
    command = [str(TRAINER), "promote", "--version", "v001", "--target", "staging"]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT], ids=["SIGTERM", "SIGKILL", "SIGINT"]
)
def test_an_interrupted_promotion_leaves_no_server_and_no_temporary_directory(
    promotion: subprocess.Popen[bytes], signum: signal.Signals, tmp_path: Path
) -> None:
    trainer = promotion.pid
    wait_until(lambda: servers(trainer) or promotion.poll() is not None, 120, "the smoke gate")
    os.kill(trainer, signal.SIGSTOP)
    assert promotion.poll() is None, promotion.communicate()[1].decode()
    (pid,) = servers(trainer)
    environ = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    port = int(next(item for item in environ if item.startswith(b"PORT=")).split(b"=", 1)[1])
    wait_until(lambda: listening(port) and servers(pid), 60, "the smoke server to listen")
    master = identity(pid)
    (worker,) = (identity(child) for child in servers(pid))

    os.kill(trainer, signum)
    os.kill(trainer, signal.SIGCONT)
    code = promotion.wait(timeout=GONE_WITHIN)
    stderr = promotion.communicate()[1].decode()
    try:
        wait_until(
            lambda: not (alive(master) or alive(worker)),
            GONE_WITHIN,
            lambda: f"the server to stop (master {describe(master)}, worker {describe(worker)})",
        )
    finally:  # a failing run must not leak the server either
        if alive(master) or alive(worker):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(master[0], signal.SIGKILL)
    assert not listening(port)
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "deployments" / "staging.json").exists()
    if signum == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM
        assert stderr.splitlines()[-1] == "error: interrupted by SIGTERM", stderr
    elif signum == signal.SIGINT:  # Ctrl-C: the same cleanup, one line, no traceback
        assert code == 128 + signal.SIGINT
        assert stderr.splitlines()[-1] == "error: interrupted", stderr
        assert "Traceback" not in stderr
    else:
        assert code == -signal.SIGKILL
