"""Child processes the trainer starts (the inference service for the smoke gate; in tests also
`mlflow server` and `make serve`): a free loopback port for them, and one way to stop them.

A child started with ``start_new_session=True`` leads its own process group (gunicorn's master
and its workers, or make and the shell it runs): ``stop`` sends the group SIGTERM, the graceful
stop, waits, and only then SIGKILLs what is left of the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from typing import Any

STOP_TIMEOUT = 20.0


def free_port() -> int:
    """A port nobody listens on right now. Another process could take it before the server
    binds; the server then exits with "address in use", which its caller reports."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the child's process group, wait up to ``timeout`` s, then SIGKILL the group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    # The leader is gone (or would not go): whatever it started must not outlive it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
