"""The served process as monitoring sees it: a real gunicorn with two workers, sampling every row
into one prediction log, and the /metrics names the alert rules and dashboard are written against
(infra/monitoring). One server for the module: starting gunicorn is the slow part."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import RECORD
from .servers import free_port, stop

pytestmark = pytest.mark.slow  # a real gunicorn server per module

MONITORING = Path(__file__).resolve().parents[3] / "infra" / "monitoring"
SINGLES = 60
BATCHES = 30
BATCH_ROWS = 4


@dataclass(frozen=True)
class Served:
    url: str
    log: Path
    metrics: str
    request_ids: set[str]
    predictions: list[float]


def _post(url: str, body: object) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not become healthy in 60 s")


@pytest.fixture(scope="module")
def served(ridge_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("served")
    log = work / "predictions.jsonl"
    port = free_port()
    env = {
        **os.environ,
        "MODEL_DIR": str(ridge_run),
        "MODEL_CACHE_DIR": str(work / "cache"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "2",
        "PREDICTION_LOG": str(log),
        "PREDICTION_SAMPLE_RATE": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    inference = Path(sys.executable).with_name("inference")
    process = subprocess.Popen(
        [str(inference), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        ids: set[str] = set()
        predictions: list[float] = []
        for index in range(SINGLES):
            answer = _post(url + "/predict", {**RECORD, "age": 20 + index % 40})
            ids.add(str(answer["request_id"]))
            predictions.append(float(answer["prediction"]))  # type: ignore[arg-type]
        for _ in range(BATCHES):
            answer = _post(url + "/predict", {"instances": [RECORD] * BATCH_ROWS})
            ids.add(str(answer["request_id"]))
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            metrics = response.read().decode()
        yield Served(url, log, metrics, ids, predictions)
    finally:
        stop(process)
        if process.stderr is not None:
            process.stderr.close()


def test_two_workers_append_whole_lines_to_one_prediction_log(served: Served) -> None:
    lines = served.log.read_text().splitlines()
    assert len(lines) == SINGLES + BATCHES * BATCH_ROWS
    records = [json.loads(line) for line in lines]  # every line parses: no torn writes
    assert {record["request_id"] for record in records} == served.request_ids
    assert all(record["event"] == "prediction" for record in records)
    assert all(record["model_version"] == "v002" for record in records)
    singles = [r["prediction"] for r in records if r["features"]["age"] != RECORD["age"]]
    expected = [p for i, p in enumerate(served.predictions) if 20 + i % 40 != RECORD["age"]]
    assert sorted(singles) == sorted(expected)


def _referenced_metrics() -> set[str]:
    """Raw series names used by the rules and the dashboard (not recording-rule outputs, which
    have colons, and not the drift job's textfile metrics)."""
    files = [*MONITORING.glob("rules/*.yml"), MONITORING / "grafana" / "inference-dashboard.json"]
    text = "".join(path.read_text() for path in files)
    return set(re.findall(r"(?<![:\w])(inference_[a-z0-9_]+)(?![:\w])", text))


def test_every_metric_the_alerts_and_dashboard_use_is_served(served: Served) -> None:
    referenced = _referenced_metrics()
    assert {"inference_requests_total", "inference_model_info"} <= referenced
    served_names = {
        match.group(1)
        for match in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", served.metrics, re.MULTILINE)
    }
    assert referenced - served_names == set()
    # ... with the labels and values the alerts select on.
    assert re.search(r'^inference_requests_total\{[^}]*route="/predict"', served.metrics, re.M)
    assert re.search(r'^inference_requests_total\{[^}]*status="200"', served.metrics, re.M)
    assert re.search(
        r'^inference_request_latency_seconds_bucket\{[^}]*route="/predict"', served.metrics, re.M
    )
    info = r'^inference_model_info\{[^}]*model_version="v002"[^}]*\} 1\.0$'
    assert re.search(info, served.metrics, re.M)
    # Both workers' requests are counted (multiprocess mode): every request above.
    total = sum(
        float(value)
        for value in re.findall(
            r'^inference_requests_total\{[^}]*route="/predict"[^}]*status="200"[^}]*\} (\S+)$',
            served.metrics,
            re.M,
        )
    )
    assert total == SINGLES + BATCHES
