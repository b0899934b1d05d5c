"""`make bench`: our server against a bare Flask + gunicorn app (reference_app.py) and
`mlflow models serve`, on the same run directory.

The three servers get the same run directory, the same worker count and OMP_NUM_THREADS=1, and
are driven in turn by wrk on loopback, round after round, so that each ratio is measured side by
side on the same (shared) machine. Each server is measured in its better client mode (keep-alive
or ``Connection: close``, probed first). Prints one table per run directory with the ratios and
the targets, and appends it to --results (a dated Markdown file). This is a measurement, not a
test: it never fails on a missed target, it reports it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from load import Load, Server, free_port, median_load, post, start, stop, tree_rss_mib, wrk

PACKAGE = Path(__file__).resolve().parents[1]
ROOT = PACKAGE.parents[1]
OUR_SERVER = PACKAGE / ".venv" / "bin" / "inference"
GUNICORN = PACKAGE / ".venv" / "bin" / "gunicorn"
MLFLOW = ROOT / "services" / "trainer" / ".venv" / "bin" / "mlflow"
RESULTS = ROOT / "docs" / "bench" / "results.md"
RESULTS_HEADER = """# Benchmark results

Appended by `make bench` and `make bench-models` (services/inference/bench/bench.py), one
section per run directory, newest last. How to read them: docs/03_inference.md#benchmark.

"""
BATCH_ROWS = 1000
SERVERS = ("ours", "reference", "mlflow")
PATHS = {"ours": "/predict", "reference": "/predict", "mlflow": "/invocations"}


def scenarios(workers: int, connections: list[int]) -> list[tuple[str, int]]:
    """(scenario, connections): single rows at each connection count; batches, one
    connection per worker."""
    return [(f"single@{n}", n) for n in connections] + [("batch", workers)]


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
        "reference_single": record,
        "reference_batch": {"instances": [dict(zip(names, row, strict=True)) for row in rows]},
        "mlflow_batch": {"dataframe_split": {"columns": names, "data": rows}},
    }
    paths = {}
    for name, body in bodies.items():
        paths[name] = scratch / f"{name}.json"
        paths[name].write_text(json.dumps(body))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--run-dir",
        type=Path,
        action="append",
        help="run directory to serve (repeat for several; default runs/artifacts/latest)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=int, default=4, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument(
        "--connections", default="1,8,32", help="single-row connection counts (default 1,8,32)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="Markdown file to append to")
    args = parser.parse_args()
    run_dirs = args.run_dir or [ROOT / "runs" / "artifacts" / "latest"]
    connections = sorted({8, *(int(n) for n in args.connections.split(","))})
    reports = [bench_run(run_dir, args, connections) for run_dir in run_dirs]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    if not args.results.exists():
        args.results.write_text(RESULTS_HEADER)
    with args.results.open("a") as results:
        for report in reports:
            results.write(report + "\n")
    print(f"appended to {args.results}")
    return 0


def bench_run(run_dir: Path, args: argparse.Namespace, connections: list[int]) -> str:
    run_dir = run_dir.resolve(strict=True)  # `latest` resolved once: all serve one run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/tmp"),
        "OMP_NUM_THREADS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    kinds = sorted({feature["type"] for feature in manifest["input_schema"]})
    title = (
        f"run {manifest['model_version']} ({run_dir}), params {manifest['params']}, "
        f"{len(manifest['input_schema'])} features ({', '.join(kinds)}); {args.workers} workers, "
        f"{args.rounds} rounds x {args.seconds} s per scenario"
    )
    print(title)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        scratch = Path(tmp)
        bodies = payloads(manifest, scratch)
        started: dict[str, Server] = {}
        try:
            port = free_port()
            started["ours"] = start(
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
            port = free_port()
            started["reference"] = start(
                "reference",
                [
                    str(GUNICORN), "--no-control-socket", "-w", str(args.workers),
                    "-b", f"127.0.0.1:{port}", "--chdir", str(Path(__file__).parent),
                    "reference_app:create_app()",
                ],
                {**env, "REFERENCE_RUN_DIR": str(run_dir)},
                port,
                "/ping",
                scratch / "reference.log",
            )  # fmt: skip
            port = free_port()
            started["mlflow"] = start(
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
            table = measure(started, bodies, args, connections, scratch)
        finally:
            for server in started.values():
                stop(server.process)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    model = manifest["params"].get("model", "?")
    heading = f"{when}: {model}, {len(manifest['input_schema'])} features ({', '.join(kinds)})"
    return f"## {heading}\n\n{title}\n\n```\n{table}```\n"


def measure(
    servers: dict[str, Server],
    bodies: dict[str, Path],
    args: argparse.Namespace,
    connections: list[int],
    scratch: Path,
) -> str:
    lines: list[str] = []

    def say(line: str) -> None:
        print(line)
        lines.append(line)

    single = {name: json.loads(bodies[f"{name}_single"].read_text()) for name in SERVERS}
    answers = {
        name: post(servers[name].url + PATHS[name], json.dumps(single[name]).encode())
        for name in SERVERS
    }
    say(
        f"same record: ours {answers['ours']['prediction']!r}, "
        f"reference {answers['reference']['predictions'][0]!r}, "
        f"mlflow {answers['mlflow']['predictions'][0]!r}"
    )
    say(
        "load average (1/5/15 min) before the runs: "
        + " / ".join(f"{value:.1f}" for value in os.getloadavg())
    )

    # Each server's better client mode, from short alternating probes at 8 connections.
    for name in SERVERS:
        server = servers[name]
        probes: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(2):
            for close in (False, True):
                server.close_connections = close
                load = wrk(server, PATHS[name], bodies[f"{name}_single"], 8, 3, scratch)
                probes[close].append(load.requests_per_s)
        keep_alive, close_each = statistics.median(probes[False]), statistics.median(probes[True])
        server.close_connections = close_each > keep_alive
        mode = "Connection: close" if server.close_connections else "keep-alive"
        say(
            f"{name}: keep-alive {keep_alive:.0f} req/s, Connection: close {close_each:.0f} "
            f"req/s -> measured with {mode}"
        )

    # Rounds of every scenario, each run going round the servers; medians reported.
    runs: dict[tuple[str, str], list[Load]] = {}
    for _ in range(args.rounds):
        for scenario, count in scenarios(args.workers, connections):
            kind = "batch" if scenario == "batch" else "single"
            for name in SERVERS:
                load = wrk(
                    servers[name], PATHS[name], bodies[f"{name}_{kind}"], count, args.seconds,
                    scratch,
                )  # fmt: skip
                runs.setdefault((name, scenario), []).append(load)
    results = {key: median_load(loads) for key, loads in runs.items()}
    say(
        "load average (1/5/15 min) after the runs: "
        + " / ".join(f"{value:.1f}" for value in os.getloadavg())
        + f" on {os.cpu_count()} CPUs (wrk and the three servers share them)"
    )
    rss = {name: tree_rss_mib(servers[name].process.pid) for name in SERVERS}
    startup = {name: servers[name].startup_s for name in SERVERS}
    for line in table(results, rss, startup, connections):
        say(line)
    return "\n".join(lines) + "\n"


def table(
    results: dict[tuple[str, str], Load],
    rss: dict[str, float],
    startup: dict[str, float],
    connections: list[int],
) -> list[str]:
    rows: list[tuple[str, ...]] = []

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}x" if b else "n/a"

    def row(label: str, values: dict[str, float], fmt: str, target: str = "") -> None:
        cells = [fmt.format(values[name]) for name in SERVERS]
        ours = values["ours"]
        rows.append(
            (label, *cells, ratio(ours, values["reference"]), ratio(ours, values["mlflow"]), target)
        )

    for count in connections:
        scenario = f"single@{count}"
        loads = {name: results[(name, scenario)] for name in SERVERS}
        target = "≥ 2x ref, ≥ 8x mlflow" if count == 8 else ""
        row(
            f"single-row req/s @{count} conn",
            {n: x.requests_per_s for n, x in loads.items()},
            "{:,.0f}",
            target,
        )
        rows.append(
            (
                f"  p50 / p99 ms @{count}",
                *(f"{x.p50_ms:.2f} / {x.p99_ms:.2f}" for x in loads.values()),
                "",
                "",
                "p99 ≤ 10 ms" if count == 8 else "",
            )
        )
    batch = {name: results[(name, "batch")] for name in SERVERS}
    row(
        f"{BATCH_ROWS}-row batch rows/s",
        {n: x.requests_per_s * BATCH_ROWS for n, x in batch.items()},
        "{:,.0f}",
        "≥ 4x mlflow",
    )
    for label, key in (("single-row @8", "single@8"), ("batch", "batch")):
        row(
            f"server CPU ms/request, {label}",
            {n: results[(n, key)].cpu_ms_per_request for n in SERVERS},
            "{:.2f}",
        )
    row("start-up s (to healthy)", startup, "{:.1f}")
    row("RSS MiB (process tree)", rss, "{:.0f}")
    errors = {n: sum(x.errors for (m, _), x in results.items() if m == n) for n in SERVERS}
    rows.append(("errors (non-2xx or socket)", *(str(errors[n]) for n in SERVERS), "", "", "0"))

    header = ("metric", *SERVERS, "ours/ref", "ours/mlflow", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) + " |"
        for r in [header, tuple("-" * w for w in widths), *rows]
    ]
    at8 = {name: results[(name, "single@8")] for name in SERVERS}
    verdicts = {
        "single-row req/s @8 ≥ 2x reference": at8["ours"].requests_per_s
        >= 2 * at8["reference"].requests_per_s,
        "single-row req/s @8 ≥ 8x mlflow": at8["ours"].requests_per_s
        >= 8 * at8["mlflow"].requests_per_s,
        "p99 @8 ≤ 10 ms": at8["ours"].p99_ms <= 10.0,
        "no errors (ours)": errors["ours"] == 0,
        "batch rows/s ≥ 4x mlflow": batch["ours"].requests_per_s
        >= 4 * batch["mlflow"].requests_per_s,
    }
    lines += [f"  {'met   ' if held else 'MISSED'} {name}" for name, held in verdicts.items()]
    return lines


if __name__ == "__main__":
    sys.exit(main())
