"""`make bench`: our server against `mlflow models serve` on the same run directory.

Both servers get the same run directory, the same worker count and OMP_NUM_THREADS=1, and are
driven alternately by wrk on loopback. Each server is measured in its better client mode
(keep-alive or ``Connection: close``, probed first). Prints one table with the ratios and the
targets. This is a measurement, not a test: it never fails on a missed target, it reports it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from load import Load, Server, free_port, median_load, post, start, stop, tree_rss_mib, wrk

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parents[1]
OUR_SERVER = PACKAGE / ".venv" / "bin" / "inference"
MLFLOW = ROOT / "services" / "trainer" / ".venv" / "bin" / "mlflow"
BATCH_ROWS = 1000


def scenarios(workers: int) -> list[tuple[str, int]]:
    """(scenario, connections): single rows at 1, 8 and 32 connections; batches, one
    connection per worker."""
    return [("single@1", 1), ("single@8", 8), ("single@32", 32), ("batch", workers)]


def payloads(manifest: dict[str, Any], scratch: Path) -> dict[str, Path]:
    """The same rows for both servers, each in its own request format: values drawn across
    each feature's training range or categories (null for 5 % of a nullable feature's)."""
    names = [feature["name"] for feature in manifest["input_schema"]]
    record = manifest["examples"][0]["input"] if manifest["examples"] else None
    rng = random.Random(0)

    def value(feature: dict[str, Any]) -> Any:
        if feature.get("nullable") and rng.random() < 0.05:
            return None
        if feature["type"] == "boolean":
            return rng.random() < 0.5
        if feature["type"] == "categorical":
            return rng.choice(feature["categories"])
        drawn = rng.uniform(feature["min"], feature["max"])
        return round(drawn) if feature["type"] == "integer" else round(drawn, 3)

    rows = [[value(f) for f in manifest["input_schema"]] for _ in range(BATCH_ROWS)]
    record = record or dict(zip(names, rows[0], strict=True))
    bodies = {
        "ours_single": record,
        "mlflow_single": {"dataframe_records": [record]},
        "ours_batch": {"instances": [dict(zip(names, row, strict=True)) for row in rows]},
        "mlflow_batch": {"dataframe_split": {"columns": names, "data": rows}},
    }
    paths = {}
    for name, body in bodies.items():
        paths[name] = scratch / f"{name}.json"
        paths[name].write_text(json.dumps(body))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "artifacts" / "latest")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=int, default=4, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per scenario (median)")
    args = parser.parse_args()
    run_dir = args.run_dir.resolve(strict=True)  # `latest` resolved once: both serve one run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/tmp"),
        "OMP_NUM_THREADS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    kinds = sorted({feature["type"] for feature in manifest["input_schema"]})
    print(
        f"run {manifest['model_version']} ({run_dir}), {args.workers} workers, "
        f"{args.rounds} rounds x {args.seconds} s per scenario, params {manifest['params']}, "
        f"{len(manifest['input_schema'])} features ({', '.join(kinds)})"
    )
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        scratch = Path(tmp)
        bodies = payloads(manifest, scratch)
        started: list[Server] = []
        try:
            port = free_port()
            ours = start(
                "ours",
                [str(OUR_SERVER), "serve"],
                {
                    **env,
                    "MODEL_DIR": str(run_dir),
                    "HOST": "127.0.0.1",
                    "PORT": str(port),
                    "WORKERS": str(args.workers),
                    "MODEL_CACHE_DIR": str(scratch / "cache"),
                    # Our server's own tuning knobs pass through (make bench THREADS=2).
                    **{k: v for k, v in os.environ.items() if k in ("THREADS", "KEEPALIVE")},
                },
                port,
                "/health",
                scratch / "ours.log",
            )
            started.append(ours)
            port = free_port()
            mlflow = start(
                "mlflow",
                [
                    str(MLFLOW), "models", "serve", "-m", str(run_dir), "--env-manager", "local",
                    "-h", "127.0.0.1", "-p", str(port), "-w", str(args.workers),
                ],
                # mlflow runs `uvicorn` from PATH: its own environment's.
                {**env, "PATH": f"{MLFLOW.parent}:{env['PATH']}"},
                port,
                "/ping",
                scratch / "mlflow.log",
            )  # fmt: skip
            started.append(mlflow)
            return measure(ours, mlflow, bodies, args, scratch)
        finally:
            for server in started:
                stop(server.process)


def measure(
    ours: Server, mlflow: Server, bodies: dict[str, Path], args: argparse.Namespace, scratch: Path
) -> int:
    servers = {"ours": (ours, "/predict"), "mlflow": (mlflow, "/invocations")}
    single = {name: json.loads(bodies[f"{name}_single"].read_text()) for name in servers}
    answers = {
        name: post(server.url + path, json.dumps(single[name]).encode())
        for name, (server, path) in servers.items()
    }
    ours_prediction = answers["ours"]["prediction"]
    mlflow_prediction = answers["mlflow"]["predictions"][0]
    print(f"same record: ours {ours_prediction!r}, mlflow {mlflow_prediction!r}")
    print(
        "load average (1/5/15 min) before the runs: "
        + " / ".join(f"{value:.1f}" for value in os.getloadavg())
    )

    # Each server's better client mode, from short alternating probes at 8 connections.
    for name, (server, path) in servers.items():
        probes: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(2):
            for close in (False, True):
                server.close_connections = close
                load = wrk(server, path, bodies[f"{name}_single"], 8, 3, scratch)
                probes[close].append(load.requests_per_s)
        keep_alive, close_each = statistics.median(probes[False]), statistics.median(probes[True])
        server.close_connections = close_each > keep_alive
        mode = "Connection: close" if server.close_connections else "keep-alive"
        print(
            f"{name}: keep-alive {keep_alive:.0f} req/s, Connection: close {close_each:.0f} "
            f"req/s -> measured with {mode}"
        )

    # Rounds of every scenario, each run alternating between the servers; medians reported.
    runs: dict[tuple[str, str], list[Load]] = {}
    for _ in range(args.rounds):
        for scenario, connections in scenarios(args.workers):
            kind = "batch" if scenario == "batch" else "single"
            for name, (server, path) in servers.items():
                load = wrk(
                    server, path, bodies[f"{name}_{kind}"], connections, args.seconds, scratch
                )
                runs.setdefault((name, scenario), []).append(load)
    results = {key: median_load(loads) for key, loads in runs.items()}
    print(
        "load average (1/5/15 min) after the runs: "
        + " / ".join(f"{value:.1f}" for value in os.getloadavg())
        + f" on {os.cpu_count()} CPUs (wrk and both servers share them)"
    )
    rss = {"ours": tree_rss_mib(ours.process.pid), "mlflow": tree_rss_mib(mlflow.process.pid)}
    print_table(results, rss, {"ours": ours.startup_s, "mlflow": mlflow.startup_s})
    return 0


def print_table(
    results: dict[tuple[str, str], Load], rss: dict[str, float], startup: dict[str, float]
) -> None:
    rows: list[tuple[str, str, str, str, str]] = []

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}x" if b else "n/a"

    for connections in (1, 8, 32):
        ours, theirs = (
            results[("ours", f"single@{connections}")],
            results[("mlflow", f"single@{connections}")],
        )
        target = "≥ 5x" if connections == 8 else ""
        rows.append(
            (
                f"single-row req/s @{connections} conn",
                f"{ours.requests_per_s:,.0f}",
                f"{theirs.requests_per_s:,.0f}",
                ratio(ours.requests_per_s, theirs.requests_per_s),
                target,
            )
        )
        rows.append(
            (
                f"  p50 / p99 ms @{connections}",
                f"{ours.p50_ms:.2f} / {ours.p99_ms:.2f}",
                f"{theirs.p50_ms:.2f} / {theirs.p99_ms:.2f}",
                "",
                "p99 ≤ 10 ms" if connections == 8 else "",
            )
        )
    ours, theirs = results[("ours", "batch")], results[("mlflow", "batch")]
    rows.append(
        (
            f"{BATCH_ROWS}-row batch rows/s",
            f"{ours.requests_per_s * BATCH_ROWS:,.0f}",
            f"{theirs.requests_per_s * BATCH_ROWS:,.0f}",
            ratio(ours.requests_per_s, theirs.requests_per_s),
            "≥ 4x",
        )
    )
    for label, key in (("single-row @8", "single@8"), ("batch", "batch")):
        ours_cpu = results[("ours", key)].cpu_ms_per_request
        theirs_cpu = results[("mlflow", key)].cpu_ms_per_request
        rows.append(
            (
                f"server CPU ms/request, {label}",
                f"{ours_cpu:.2f}",
                f"{theirs_cpu:.2f}",
                ratio(ours_cpu, theirs_cpu),
                "",
            )
        )
    rows.append(
        (
            "start-up s (to healthy)",
            f"{startup['ours']:.1f}",
            f"{startup['mlflow']:.1f}",
            ratio(startup["ours"], startup["mlflow"]),
            "",
        )
    )
    rows.append(
        (
            "RSS MiB (process tree)",
            f"{rss['ours']:.0f}",
            f"{rss['mlflow']:.0f}",
            f"{rss['ours'] / rss['mlflow']:.0%}",
            "≤ 60%",
        )
    )
    errors = {
        name: sum(load.errors for (n, _), load in results.items() if n == name)
        for name in ("ours", "mlflow")
    }

    header = ("metric", "ours", "mlflow", "ours/mlflow", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
    print(f"errors (non-2xx or socket): ours {errors['ours']}, mlflow {errors['mlflow']}")

    at8 = (results[("ours", "single@8")], results[("mlflow", "single@8")])
    verdicts = {
        "single-row req/s @8 ≥ 5x mlflow": at8[0].requests_per_s >= 5 * at8[1].requests_per_s,
        "p99 @8 ≤ 10 ms": at8[0].p99_ms <= 10.0,
        "batch rows/s ≥ 4x mlflow": ours.requests_per_s >= 4 * theirs.requests_per_s,
        "RSS ≤ 60% of mlflow": rss["ours"] <= 0.6 * rss["mlflow"],
    }
    for name, held in verdicts.items():
        print(f"  {'met   ' if held else 'MISSED'} {name}")


if __name__ == "__main__":
    sys.exit(main())
