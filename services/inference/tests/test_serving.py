"""One real gunicorn server with two workers on a loopback port, started as a user would."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RECORD
from tests.servers import Server, running_server, wait_for

pytestmark = pytest.mark.slow  # a real gunicorn server per module

INFERENCE = Path(sys.executable).parent / "inference"
WORKERS = 2


def serving(ridge_run: Path, cache: Path) -> contextlib.AbstractContextManager[Server]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {
            "MODEL_DIR": str(ridge_run),
            "MODEL_CACHE_DIR": str(cache),
            "HOST": "127.0.0.1",
            "PORT": "0",
            "WORKERS": str(WORKERS),
        }
    )
    return running_server([str(INFERENCE), "serve"], env, workers=WORKERS)


@pytest.fixture(scope="module")
def server(ridge_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that only send requests (none of them stops it)."""
    with serving(ridge_run, tmp_path_factory.mktemp("cache")) as server:
        yield server
    assert server.process.returncode == 0, "gunicorn did not stop cleanly on SIGTERM"


def test_start_up_logs_the_model_source_and_digest(server: Server, ridge_run: Path) -> None:
    loaded = [r for r in server.records() if r["event"] == "model_loaded"]
    assert len(loaded) == 1  # loaded once, in the master, before the fork
    manifest_digest = json.loads(server.request("GET", "/health")[2])["manifest_sha256"]
    assert loaded[0]["manifest_sha256"] == manifest_digest
    assert loaded[0]["model_source"] == str(ridge_run)
    assert loaded[0]["workers"] == WORKERS


def test_predict_over_http(server: Server) -> None:
    status, headers, body = server.request("POST", "/predict", RECORD, {"X-Request-ID": "abc"})
    assert status == 200
    answer = json.loads(body)
    assert isinstance(answer["prediction"], float)
    assert answer["request_id"] == headers["X-Request-ID"] == "abc"


def test_bad_input_is_4xx_and_never_kills_a_worker(server: Server) -> None:
    booted = sum("Booting worker" in line for line in server.lines)
    bodies: list[object] = [{"age": True}, [1, 2], {"instances": []}, "NaN"]
    for body in bodies:
        assert 400 <= server.request("POST", "/predict", body)[0] < 500
    assert server.request("POST", "/predict", None, {"Content-Type": "text/csv"})[0] == 415
    assert server.request("GET", "/health")[0] == 200
    assert sum("Booting worker" in line for line in server.lines) == booted


def test_issue_11_huge_value_is_a_422_alone_and_in_a_batch(server: Server) -> None:
    huge = {"age": 1e308, "income_k": 88.0, "tenure_years": 6}
    for body, field in ((huge, "'age'"), ({"instances": [RECORD, huge]}, "'instances[1].age'")):
        status, _, answer = server.request("POST", "/predict", body)
        error = json.loads(answer)["error"]
        assert (status, error["code"]) == (422, "out_of_range")
        assert field in error["message"]


def metric(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_the_requests_of_every_worker(server: Server) -> None:
    def served() -> list[dict[str, Any]]:
        return [
            r for r in server.records()
            if r["event"] == "request" and r["path"] == "/predict" and r["status"] == 200
        ]  # fmt: skip

    before = len(served())  # what other tests on this server sent, in whatever order they ran
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(lambda _: server.request("POST", "/predict", RECORD)[0], range(80))
        )
    assert statuses == [200] * 80

    wait_for(lambda: len(served()) >= before + 80, 10, "the request logs")
    pids = {r["pid"] for r in served()}
    assert len(pids) == WORKERS, "every worker should have served some of the requests"
    ok = 'inference_requests_total{method="POST",route="/predict",status="200"}'
    for _ in range(6):  # whichever worker answers the scrape reports everyone's requests
        text = server.request("GET", "/metrics")[2].decode()
        assert metric(text, ok) == len(served())
        assert metric(text, "inference_rows_predicted_total") == len(served())
        assert metric(text, "inference_model_info{") == 1.0


def test_every_log_line_is_json_with_the_request_fields(server: Server) -> None:
    # One success and one refusal of our own: the test must not rely on what others sent first.
    assert server.request("POST", "/predict", RECORD)[0] == 200
    assert server.request("POST", "/predict", {"age": "x"})[0] == 422
    wait_for(
        lambda: any(r.get("status") == 422 for r in server.records()), 10, "the refusal's log line"
    )
    records = server.records()  # each line parsed as JSON, or this fails
    requests = [r for r in records if r["event"] == "request"]
    assert requests
    for record in requests:
        assert {"ts", "level", "event", "request_id", "method", "path", "status", "latency_ms",
                "predict_ms", "model_version", "rows"} <= set(record)  # fmt: skip
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])
    errors = [r for r in requests if r["status"] >= 400]
    assert errors and all("error_code" in r for r in errors)


def test_sigterm_lets_an_in_flight_request_finish(ridge_run: Path, tmp_path: Path) -> None:
    """On its own server, since it stops it: a request whose body is still arriving when
    SIGTERM lands is answered in full; then the server exits with status 0."""
    with serving(ridge_run, tmp_path / "cache") as server:
        _answer_across_sigterm(server)


def _answer_across_sigterm(server: Server) -> None:
    body = json.dumps({"instances": [RECORD] * 200}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    connection.putrequest("POST", "/predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    connection.send(body[: len(body) // 2])
    time.sleep(0.5)  # a worker has taken the request and waits for the rest of the body
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    connection.send(body[len(body) // 2 :])
    response = connection.getresponse()
    assert response.status == 200
    assert len(json.loads(response.read())["predictions"]) == 200
    connection.close()
    assert server.process.wait(timeout=30) == 0
