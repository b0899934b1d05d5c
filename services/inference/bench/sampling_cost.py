"""What prediction sampling costs a served request (docs/04_monitoring.md has the numbers).

Three servers on the same run directory, same worker count: sampling off, PREDICTION_SAMPLE_RATE
0.01 and 1.0 (both to a JSONL file). wrk drives them alternately, round after round, with one
row per request (8 connections) and 1000 rows per request (2 connections); the table gives the
median of the rounds and each rate's ratio to "off". Then the sampler alone, in process: the
cost of one request, and of each sampled row. A measurement, not a test: it never fails.

    services/inference/.venv/bin/python services/inference/bench/sampling_cost.py [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from inference.sampling import PredictionSampler

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parents[1]
SERVER = PACKAGE / ".venv" / "bin" / "inference"
RATES = (0.0, 0.01, 1.0)
RECORD = {"age": 42, "income_k": 88.0, "tenure_years": 6}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(
    run_dir: Path, rate: float, log: Path, workers: int
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "MODEL_DIR": str(run_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": str(workers),
        "LOG_LEVEL": "warning",  # request logs are the same for all three; keep them out
        "PREDICTION_SAMPLE_RATE": str(rate),
        "PREDICTION_LOG": str(log) if rate else "",
    }
    process = subprocess.Popen(
        [str(SERVER), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server with rate {rate} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=60)


def wrk(url: str, body: Path, connections: int, seconds: int) -> tuple[float, float]:
    """(requests/s, p99 ms)."""
    script = body.with_suffix(".lua")
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    threads = min(2, connections)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url + "/predict",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", out, re.M).groups()  # type: ignore[union-attr]
    return rps, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def in_process() -> list[tuple[str, float]]:
    rng = np.random.default_rng(0)
    rows = np.column_stack(
        [rng.integers(18, 70, 1000), rng.normal(70, 15, 1000), rng.integers(0, 10, 1000)]
    ).astype("float64")
    predictions = [float(x) for x in rows @ np.array([120.0, 500.0, 800.0])]
    out: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for rate, size, reps in (
            (0.0, 1, 200_000),
            (0.01, 1, 200_000),
            (1.0, 1, 20_000),
            (0.01, 1000, 5_000),
            (1.0, 1000, 200),
        ):
            sampler = PredictionSampler(
                f"{scratch}/p.jsonl",
                rate,
                ["age", "income_k", "tenure_years"],
                logging.getLogger("bench"),
                random.Random(1),
            )
            batch, preds = rows[:size], predictions[:size]
            sampler.record("warm-up", "v001", batch, preds)
            started = time.perf_counter()
            for _ in range(reps):
                sampler.record("request-id", "v001", batch, preds)
            elapsed = (time.perf_counter() - started) / reps
            sampler.close()
            out.append((f"rate {rate:<4} {size:>4} row(s)/request", elapsed * 1e6))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "artifacts" / "latest")
    parser.add_argument("--seconds", type=int, default=5, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-sampling-"))
    manifest = json.loads((args.run_dir / "manifest.json").read_text())
    single = scratch / "single.json"
    single.write_text(json.dumps(RECORD))
    batch = scratch / "batch.json"
    batch.write_text(json.dumps({"instances": [RECORD] * 1000}))
    servers = {
        rate: start(args.run_dir, rate, scratch / f"p{rate}.jsonl", args.workers) for rate in RATES
    }
    results: dict[tuple[float, str], list[float]] = {}
    try:
        for _ in range(args.rounds):
            for rate, (_, url) in servers.items():
                rps, p99 = wrk(url, single, 8, args.seconds)
                results.setdefault((rate, "rps"), []).append(rps)
                results.setdefault((rate, "p99"), []).append(p99)
                batch_rps, _ = wrk(url, batch, 2, args.seconds)
                results.setdefault((rate, "rows"), []).append(batch_rps * 1000)
    finally:
        for process, _ in servers.values():
            stop(process)

    def median(rate: float, key: str) -> float:
        return statistics.median(results[(rate, key)])

    print(
        f"model {manifest['model_version']}, {args.workers} workers, {args.rounds} rounds x "
        f"{args.seconds} s per wrk run, medians (ratio to sampling off)"
    )
    print(f"{'sample rate':<12}{'1-row req/s':>18}{'p99 ms':>10}{'1000-row rows/s':>24}")
    off_rps, off_rows = median(0.0, "rps"), median(0.0, "rows")
    for rate in RATES:
        rps, rows = median(rate, "rps"), median(rate, "rows")
        print(
            f"{rate:<12}{rps:>10.0f} ({rps / off_rps:4.2f}){median(rate, 'p99'):>10.2f}"
            f"{rows:>15.0f} ({rows / off_rows:4.2f})"
        )
    for rate in RATES[1:]:
        log = scratch / f"p{rate}.jsonl"
        print(
            f"rate {rate}: {sum(1 for _ in log.open())} lines, {log.stat().st_size} bytes written"
        )
    print("\nsampler alone, in process (microseconds per request):")
    for label, micros in in_process():
        print(f"  {label}: {micros:9.2f}")
    for path in scratch.iterdir():
        path.unlink()
    scratch.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
