"""Post-promotion verification (``trainer promote --verify-url``): the promoted artifact is what
the server answers with, and it meets the SLOs of the policy's ``[verification]`` table under a
bounded probe load; when not, ``promote`` rolls the target back (recorded as automatic).

The server is a black box reached over HTTP: its ``/health`` names the manifest digest each
worker serves, and ``/predict`` is probed with the manifest's own examples.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from trainer.errors import TrainerError
from trainer.policy import read_table

IN_A_ROW = 12  # /health answers naming the digest, each on a new connection (reaches workers)
CLIENTS = 4


@dataclass(frozen=True)
class VerificationPolicy:
    wait_seconds: float
    probe_requests: int
    max_error_rate: float
    p99_ms: float

    @classmethod
    def load(cls, path: Path) -> VerificationPolicy:
        table = read_table(
            path,
            "verification",
            {
                "wait_seconds": float,
                "probe_requests": int,
                "max_error_rate": float,
                "p99_ms": float,
            },
        )
        return cls(**table)


@dataclass(frozen=True)
class Verification:
    passed: bool
    detail: str
    figures: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "detail": self.detail, **self.figures}


class Endpoint:
    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise TrainerError(f"--verify-url {url}: expected http://host:port")
        self.url = url.rstrip("/")
        self.host = parsed.hostname
        self.port = parsed.port or 80

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def served_digest(self) -> str | None:
        connection = self.connect()
        try:
            connection.request("GET", "/health")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                return None
            digest = json.loads(body).get("manifest_sha256")
            return digest if isinstance(digest, str) else None
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            connection.close()


def verify(
    url: str, manifest_sha256: str, examples: list[dict[str, Any]], policy: VerificationPolicy
) -> Verification:
    endpoint = Endpoint(url)
    waited = wait_until_served(endpoint, manifest_sha256, policy.wait_seconds)
    if waited is None:
        return Verification(
            False,
            f"{endpoint.url} did not serve {manifest_sha256[:12]} within {policy.wait_seconds:g} s",
            {"url": endpoint.url, "waited_s": policy.wait_seconds},
        )
    latencies, errors = probe(endpoint, examples, policy.probe_requests)
    error_rate = errors / policy.probe_requests
    p99 = percentile(latencies, 0.99) if latencies else math.inf
    figures = {
        "url": endpoint.url,
        "waited_s": round(waited, 2),
        "probe_requests": policy.probe_requests,
        "error_rate": error_rate,
        "p99_ms": round(p99, 2),
        "slo": {"max_error_rate": policy.max_error_rate, "p99_ms": policy.p99_ms},
    }
    failed = []
    if error_rate > policy.max_error_rate:
        failed.append(f"error rate {error_rate:.3f} > {policy.max_error_rate:g}")
    if p99 > policy.p99_ms:
        failed.append(f"p99 {p99:.1f} ms > {policy.p99_ms:g} ms")
    if failed:
        return Verification(False, "; ".join(failed), figures)
    return Verification(
        True,
        f"served after {waited:.1f} s; {policy.probe_requests} probes: error rate "
        f"{error_rate:.3f}, p99 {p99:.1f} ms",
        figures,
    )


def wait_until_served(endpoint: Endpoint, digest: str, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all(endpoint.served_digest() == digest for _ in range(IN_A_ROW)):
            return time.monotonic() - started
        time.sleep(0.25)
    return None


def probe(
    endpoint: Endpoint, examples: list[dict[str, Any]], requests: int
) -> tuple[list[float], int]:
    """``requests`` POST /predict over CLIENTS keep-alive connections: (latencies ms, errors)."""
    bodies = [json.dumps(example).encode() for example in examples] or [b"{}"]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(share: int, offset: int) -> None:
        connection = endpoint.connect()
        try:
            for n in range(share):
                started = time.perf_counter()
                try:
                    connection.request(
                        "POST",
                        "/predict",
                        body=bodies[(offset + n) % len(bodies)],
                        headers={"Content-Type": "application/json"},
                    )
                    response = connection.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    connection.close()
                    connection = endpoint.connect()
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors[0] += 0 if ok else 1
        finally:
            connection.close()

    shares = [requests // CLIENTS + (1 if i < requests % CLIENTS else 0) for i in range(CLIENTS)]
    threads = [threading.Thread(target=client, args=(s, i)) for i, s in enumerate(shares)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
