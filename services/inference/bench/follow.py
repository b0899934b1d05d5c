"""A promotion and a rollback under steady load (`make bench-follow`): wrk at 8 connections on a
server started from MODEL_REFERENCE; the reference is rewritten to run B, then back to run A
(as `trainer promote` / `rollback` write it); prints failed requests and how long each switch
took to reach every worker (measured from the reference write)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from artifact_contract import Reference, serialize_reference, sha256_file
from load import Load, free_port, start, stop, wrk

RECORD = {"age": 42, "income_k": 88.0, "tenure_years": 6}


def point(reference: Path, run_dir: Path) -> str:
    digest = sha256_file(run_dir / "manifest.json")
    version = (run_dir / "model_version.txt").read_text().strip()
    document = Reference(version, run_dir.as_uri(), digest, "bench", None)
    temporary = reference.with_suffix(".tmp")
    temporary.write_bytes(serialize_reference(document))
    os.replace(temporary, reference)
    return digest


def switched(url: str, digest: str, started: float) -> float:
    """Seconds from ``started`` until 12 /health answers in a row name ``digest``."""
    while True:
        answers = []
        for _ in range(12):
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                answers.append(json.loads(response.read())["manifest_sha256"])
        if all(answer == digest for answer in answers):
            return time.monotonic() - started
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-a", type=Path, required=True)
    parser.add_argument("--run-b", type=Path, required=True)
    parser.add_argument("--poll", type=int, default=5, help="REFERENCE_POLL_SECONDS")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-follow-"))
    reference = scratch / "production.json"
    first = point(reference, args.run_a.resolve())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")}
    env.update(
        MODEL_REFERENCE=str(reference),
        REFERENCE_POLL_SECONDS=str(args.poll),
        MODEL_CACHE_DIR=str(scratch / "cache"),
        HOST="127.0.0.1",
        PORT=str(port),
        WORKERS=str(args.workers),
        LOG_LEVEL="warning",
    )
    inference = str(Path(sys.executable).parent / "inference")
    server = start("inference", [inference, "serve"], env, port, "/health", scratch / "log")
    body = scratch / "record.json"
    body.write_text(json.dumps(RECORD))
    result: dict[str, Load] = {}
    try:
        load = threading.Thread(
            target=lambda: result.update(
                load=wrk(server, "/predict", body, 8, args.seconds, scratch)
            )
        )
        load.start()
        time.sleep(args.seconds * 0.15)
        promoted_at = time.monotonic()
        second = point(reference, args.run_b.resolve())
        promote_s = switched(server.url, second, promoted_at)
        time.sleep(1)
        rolled_at = time.monotonic()
        point(reference, args.run_a.resolve())
        rollback_s = switched(server.url, first, rolled_at)
        load.join()
    finally:
        stop(server.process)
    measured = result["load"]
    print(
        json.dumps(
            {
                "connections": 8,
                "seconds": args.seconds,
                "workers": args.workers,
                "poll_seconds": args.poll,
                "requests_per_s": measured.requests_per_s,
                "p99_ms": measured.p99_ms,
                "failed_requests": measured.errors,
                "promotion_visible_after_s": round(promote_s, 2),
                "rollback_visible_after_s": round(rollback_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
