"""A real gunicorn server (two workers) started from MODEL_REFERENCE follows the reference:
new models swapped in under load without a failed request; a bad one refused and reported."""

from __future__ import annotations

import http.client
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from artifact_contract import Reference, serialize_reference, sha256_file

from tests.conftest import RECORD, copy_run
from tests.servers import Server, running_server, wait_for

INFERENCE = Path(sys.executable).parent / "inference"
WORKERS = 2


def point(reference: Path, run_dir: Path) -> str:
    """Write the reference to ``run_dir`` as `trainer promote` does (whole file, atomically)."""
    digest = sha256_file(run_dir / "manifest.json")
    version = (run_dir / "model_version.txt").read_text().strip()
    document = Reference(version, run_dir.as_uri(), digest, "2026-11-30T07:00:00Z", None)
    temporary = reference.with_suffix(".tmp")
    temporary.write_bytes(serialize_reference(document))
    os.replace(temporary, reference)
    return digest


@contextmanager
def serving(reference: Path, cache: Path, poll: int) -> Iterator[Server]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        MODEL_REFERENCE=str(reference),
        REFERENCE_POLL_SECONDS=str(poll),
        MODEL_CACHE_DIR=str(cache),
        HOST="127.0.0.1",
        PORT="0",
        WORKERS=str(WORKERS),
    )
    env.pop("MODEL_DIR", None)
    with running_server([str(INFERENCE), "serve"], env, workers=WORKERS) as server:
        yield server


class Load:
    """Four clients posting /predict back to back; every answer that is not a 200 counts."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.stop = threading.Event()
        self.sent = 0
        self.failed: list[str] = []
        self.versions: set[str] = set()
        self.threads = [threading.Thread(target=self.client) for _ in range(4)]

    def client(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        body = json.dumps(RECORD).encode()
        while not self.stop.is_set():
            try:
                connection.request(
                    "POST", "/predict", body=body, headers={"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                answer = response.read()
                self.sent += 1
                if response.status != 200:
                    self.failed.append(f"{response.status} {answer[:200]!r}")
                else:
                    self.versions.add(json.loads(answer)["model_version"])
            except (OSError, http.client.HTTPException) as exc:
                self.failed.append(repr(exc))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        connection.close()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def health(server: Server) -> dict[str, Any]:
    status, _, body = server.request("GET", "/health")
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


def swaps(server: Server, digest: str) -> int:
    """How many workers logged a swap to ``digest`` (a worker that idles may answer no probe,
    so the log, not /health, says whether every worker switched)."""
    return len(
        {
            r["pid"]
            for r in server.records()
            if r.get("event") == "model_swapped" and r["manifest_sha256"] == digest
        }
    )


def every_worker_serves(server: Server, digest: str, already: int = 0) -> bool:
    return (
        swaps(server, digest) >= WORKERS + already and health(server)["manifest_sha256"] == digest
    )


def test_workers_follow_a_promotion_and_refuse_a_bad_artifact(
    ridge_run: Path, hgb_run: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "production.json"
    first = point(reference, ridge_run)
    with serving(reference, tmp_path / "cache", poll=1) as server:
        assert health(server)["reference"] == {
            "location": str(reference),
            "manifest_sha256": first,
            "in_sync": True,
            "error": None,
        }
        with Load(server) as load:
            second = point(reference, hgb_run)
            wait_for(lambda: every_worker_serves(server, second), 10, "both workers to swap")
            point(reference, ridge_run)  # a rollback
            wait_for(lambda: every_worker_serves(server, first), 10, "both workers to swap back")
        assert swaps(server, second) == WORKERS
        assert load.failed == []
        assert load.sent > 0
        assert load.versions == {"v001", "v002"}

        broken = copy_run(hgb_run, tmp_path / "broken" / "v001")
        point(reference, broken)
        (broken / "model.skops").write_bytes(b"tampered after promotion")
        wait_for(
            lambda: (
                sum(r.get("event") == "model_swap_refused" for r in server.records()) == WORKERS
            ),
            10,
            "both workers to refuse",
        )
        answer = health(server)
        assert answer["manifest_sha256"] == first  # the old model keeps serving
        assert answer["reference"]["in_sync"] is False
        assert "model.skops" in answer["reference"]["error"]
        status, _, metrics = server.request("GET", "/metrics")
        assert 'inference_model_swaps_total{outcome="refused"}' in metrics.decode()
        assert status == 200
    refused = [r for r in server.records() if r.get("event") == "model_swap_refused"]
    assert {r["serving_version"] for r in refused} == {"v002"}


def test_sighup_makes_every_worker_follow_at_once(
    ridge_run: Path, hgb_run: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "production.json"
    point(reference, ridge_run)
    with serving(reference, tmp_path / "cache", poll=3600) as server:
        with Load(server) as load:
            second = point(reference, hgb_run)
            server.process.send_signal(signal.SIGHUP)
            wait_for(lambda: every_worker_serves(server, second), 20, "fresh workers on v001")
        # Fresh workers checked the reference before serving; the old ones had polled nothing.
        assert swaps(server, second) == WORKERS
        assert load.failed == []
