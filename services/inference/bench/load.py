"""Running a server under load: start and stop it, drive it with wrk, read /proc for its
process tree's memory and CPU. Used by bench.py (`make bench`)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT = 180.0


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    startup_s: float
    close_connections: bool = False


@dataclass(frozen=True)
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_request: float  # the server's own CPU time (all its processes) per request


def median_load(loads: list[Load]) -> Load:
    def mid(values: list[float]) -> float:
        return statistics.median(values)

    return Load(
        mid([x.requests_per_s for x in loads]),
        mid([x.p50_ms for x in loads]),
        mid([x.p99_ms for x in loads]),
        sum(x.errors for x in loads),
        mid([x.cpu_ms_per_request for x in loads]),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except OSError:
        return 0


def post(url: str, body: bytes) -> Any:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def start(
    name: str, argv: list[str], env: dict[str, str], port: int, health: str, log: Path
) -> Server:
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    while get(url + health) != 200:
        if process.poll() is not None or time.monotonic() - started > START_TIMEOUT:
            stop(process)
            tail = log.read_text(errors="replace").splitlines()[-5:]
            raise SystemExit(f"{name} did not start:\n" + "\n".join(tail))
        time.sleep(0.05)
    return Server(name, url, process, time.monotonic() - started)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def process_tree(pid: int) -> set[int]:
    """A process and all its descendants (gunicorn or uvicorn workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return tree


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process tree, summed over its processes."""
    total_kib = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total_kib += int(match.group(1)) if match else 0
    return total_kib / 1024


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by a process tree."""
    ticks = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(
    server: Server, path: str, body: Path, connections: int, seconds: int, scratch: Path
) -> Load:
    script = scratch / f"post-{server.close_connections}.lua"
    close = 'wrk.headers["Connection"] = "close"\n' if server.close_connections else ""
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'{close}local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    argv = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        server.url + path,
    ]
    cpu_before = tree_cpu_s(server.process.pid)
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu_used = tree_cpu_s(server.process.pid) - cpu_before
    completed = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read \d+, write (\d+), timeout (\d+)", output
    ):
        errors += int(match.group(1)) + int(match.group(2)) + int(match.group(3))
    return Load(rate, p50, p99, errors, cpu_used * 1000 / max(completed, 1))
