"""A real `inference serve` process on a loopback port, for the tests that need one."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A loopback port nobody listens on right now (for a server that cannot take PORT=0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM (gunicorn's graceful stop) and wait; a server that does not stop in ``timeout``
    seconds has its process group killed and fails the test (TimeoutExpired)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


@dataclass
class Server:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    port: int = 0

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines)]

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = None if body is None else json.dumps(body).encode()
            sent = {"Content-Type": "application/json", **(headers or {})}
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def running_server(
    command: list[str], env: Mapping[str, str], *, workers: int, cwd: Path | None = None
) -> Iterator[Server]:
    """Start ``command`` (PORT=0: gunicorn picks a free port and logs it), wait until it listens
    with every worker booted, and stop it with SIGTERM afterwards; the exit status is left in
    ``server.process.returncode`` for the caller to judge."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    stdout = process.stdout
    server = Server(process)
    reader = threading.Thread(target=lambda: server.lines.extend(stdout), daemon=True)
    reader.start()

    def listening() -> bool:
        assert process.poll() is None, "".join(server.lines)
        for line in list(server.lines):
            if match := _LISTENING.search(line):
                server.port = int(match.group(1))
        booted = sum("Booting worker" in line for line in list(server.lines))
        return server.port != 0 and booted >= workers

    try:
        wait_for(listening, 60, "gunicorn to listen with every worker")
        yield server
    finally:
        try:
            stop(process)
        finally:
            reader.join(timeout=5)
            stdout.close()
