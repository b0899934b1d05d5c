"""`make bench-worker`: our request-reading worker against gunicorn's gthread, same app.

Two servers on the same run directory, with the same settings; the only difference is the worker
class. 1) Slow clients: 64 connections stall mid-headers, then 100 /health probes (8 at a time)
must answer within 1 s; how many did, and when the stalled connections were closed. 2) Cost:
alternating wrk rounds of single-row /predict, keep-alive and Connection: close, medians of
requests/s and of server CPU per request. A measurement: it prints, it never fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from load import Load, Server, free_port, median_load, start, stop, wrk

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parents[1]
PYTHON = PACKAGE / ".venv" / "bin" / "python"
RECORD = {"age": 42, "income_k": 88.0, "tenure_years": 6}
STALLED = 64
PROBES = 100


def serve_with_gthread() -> None:
    """What `inference serve` does, with gunicorn's own gthread worker class."""
    from dataclasses import replace

    from inference.settings import Settings, apply_process_environment

    settings = Settings.from_env()
    metrics_dir = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    apply_process_environment(settings, metrics_dir)
    settings = replace(settings, metrics_dir=metrics_dir)
    from inference.app import create_app
    from inference.loader import load_model
    from inference.serving import InferenceServer, gunicorn_options

    app = create_app(settings, load_model(settings))
    options = gunicorn_options(settings, metrics_dir, app)
    options["worker_class"] = "gthread"
    master = os.getpid()
    try:
        InferenceServer(app, options).run()
    finally:
        if os.getpid() == master:  # workers unwind through here too
            shutil.rmtree(metrics_dir, ignore_errors=True)


def slow_clients(server: Server, wait: float) -> str:
    port = int(server.url.rsplit(":", 1)[1])
    opened = time.monotonic()
    stalled = []
    for _ in range(STALLED):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-a: ")
        stalled.append(sock)
    latencies: list[float] = []

    def probe(_: int) -> bool:
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = sock.recv(64)
        except OSError:
            return False
        latencies.append(time.monotonic() - started)
        return answer.startswith(b"HTTP/1.1 200") and latencies[-1] < 1.0

    with ThreadPoolExecutor(max_workers=8) as pool:
        answered = sum(pool.map(probe, range(PROBES)))
    closed_at = []
    for sock in stalled:
        sock.settimeout(max(wait - (time.monotonic() - opened), 0.01))
        try:
            sock.recv(4096)
            closed_at.append(time.monotonic() - opened)
        except OSError:
            pass
        sock.close()
    latencies.sort()
    p50 = f"{latencies[len(latencies) // 2] * 1000:.1f} ms" if latencies else "-"
    slowest = f"{latencies[-1] * 1000:.1f} ms" if latencies else "-"
    closed = f"closed by {max(closed_at):.1f} s" if closed_at else "none closed"
    return (
        f"{answered}/{PROBES} probes answered 200 within 1 s (p50 {p50}, slowest {slowest}); "
        f"{len(closed_at)}/{STALLED} stalled connections answered and closed ({closed}, "
        f"waited {wait:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "artifacts" / "latest")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--serve-gthread", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gthread:
        serve_with_gthread()
        return
    scratch = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    body = scratch / "record.json"
    body.write_text(json.dumps(RECORD))
    commands = {
        "ours": [str(PACKAGE / ".venv" / "bin" / "inference"), "serve"],
        "gthread": [str(PYTHON), str(Path(__file__).resolve()), "--serve-gthread"],
    }
    servers: dict[str, Server] = {}
    try:
        for name, argv in commands.items():
            port = free_port()
            env = {
                **os.environ,
                "MODEL_DIR": str(args.run_dir.resolve()),
                "MODEL_CACHE_DIR": str(scratch / f"cache-{name}"),
                "PORT": str(port),
                "WORKERS": str(args.workers),
                "LOG_LEVEL": "warning",
            }
            servers[name] = start(name, argv, env, port, "/health", scratch / f"{name}.log")
        print(f"run {args.run_dir.resolve().name}, {args.workers} workers x 4 threads")
        load = os.getloadavg()
        print(f"load average (1/5/15 min) before: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
        for name, server in servers.items():  # ours closes at CLIENT_HEADER_TIMEOUT (10 s)
            print(f"slow clients, {name}: {slow_clients(server, wait=15.0)}")
        for close, connections in ((False, 16), (True, 8)):
            rounds: dict[str, list[Load]] = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name, server in servers.items():
                    server.close_connections = close
                    rounds[name].append(
                        wrk(server, "/predict", body, connections, args.seconds, scratch)
                    )
            ours, theirs = median_load(rounds["ours"]), median_load(rounds["gthread"])
            mode = "Connection: close" if close else "keep-alive"
            spread = [
                a.requests_per_s / b.requests_per_s
                for a, b in zip(rounds["ours"], rounds["gthread"], strict=True)
            ]
            ratio = ours.requests_per_s / theirs.requests_per_s
            print(
                f"{mode}, {connections} connections: ours {ours.requests_per_s:.0f} req/s, "
                f"gthread {theirs.requests_per_s:.0f} req/s -> {ratio:.2f}x (paired rounds "
                f"{min(spread):.2f}x..{max(spread):.2f}x, median {statistics.median(spread):.2f}x);"
                f" server CPU ms/request {ours.cpu_ms_per_request:.3f} vs "
                f"{theirs.cpu_ms_per_request:.3f}"
            )
        load = os.getloadavg()
        print(f"load average (1/5/15 min) after: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    finally:
        for server in servers.values():
            stop(server.process)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
