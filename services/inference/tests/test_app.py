"""The application around the routes: request ids, the one error handler, request logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from flask.testing import FlaskClient

from inference.app import create_app, request_id_from
from inference.model import LoadedModel
from inference.settings import Settings
from tests.conftest import RECORD

LOG_FIELDS = {
    "ts", "level", "event", "request_id", "method", "path", "status", "latency_ms",
    "predict_ms", "model_version", "rows",
}  # fmt: skip


def request_logs(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [line for line in lines if line["event"] == "request"]


def test_request_id_is_taken_sanitised_and_bounded_or_generated() -> None:
    assert request_id_from("abc-123") == "abc-123"
    assert request_id_from("a b\n<c>") == "abc"
    assert len(request_id_from("x" * 1000)) == 128
    generated = request_id_from(None)
    assert len(generated) == 32 and generated != request_id_from(None)
    assert len(request_id_from("\n\n")) == 32


def test_request_id_is_echoed_in_header_and_body(client: FlaskClient) -> None:
    response = client.post("/predict", json=RECORD, headers={"X-Request-ID": "req-42 <x>"})
    assert response.headers["X-Request-ID"] == "req-42x"
    assert response.get_json()["request_id"] == "req-42x"
    error = client.post("/predict", json={"age": 1}, headers={"X-Request-ID": "req-43"})
    assert error.get_json()["request_id"] == "req-43"


def test_one_json_log_line_per_request_with_the_fields(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    client.post("/predict", json={"instances": [RECORD, RECORD]}, headers={"X-Request-ID": "r1"})
    client.post("/predict", json={"age": "x"}, headers={"X-Request-ID": "r2"})
    ok, bad = request_logs(capsys.readouterr().out)
    assert LOG_FIELDS <= set(ok) and LOG_FIELDS <= set(bad)
    assert ok["ts"].endswith("Z") and len(ok["ts"]) == len("2026-11-26T11:00:00.000Z")
    assert (ok["request_id"], ok["status"], ok["rows"], ok["level"]) == ("r1", 200, 2, "info")
    assert ok["predict_ms"] > 0 and ok["latency_ms"] >= ok["predict_ms"]
    assert "error_code" not in ok
    assert (bad["request_id"], bad["status"], bad["error_code"]) == ("r2", 422, "missing_field")
    assert bad["predict_ms"] is None and bad["level"] == "warning"


class ExplodingEstimator:
    """Stands in for a model that fails on valid input: a failure we cannot provoke with a
    real scikit-learn model, to show what a client sees when the server has a bug."""

    def predict(self, _rows: npt.NDArray[np.float64]) -> Any:
        raise RuntimeError("internal detail that must not leak")


def test_an_unexpected_failure_is_a_json_500_without_details(
    loaded_model: LoadedModel, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = LoadedModel(
        ExplodingEstimator(), loaded_model.manifest, loaded_model.manifest_sha256, "test"
    )
    client = create_app(settings, broken).test_client()
    response = client.post("/predict", json=RECORD)
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"]["code"] == "internal_error"
    assert "internal detail" not in response.get_data(as_text=True)
    out = capsys.readouterr().out
    assert "internal detail" in out  # the operator sees it, under the request id
    assert client.get("/health").status_code == 200


def test_without_a_model_health_is_503_and_predict_refuses(tmp_path: Path) -> None:
    client = create_app(Settings(model_cache_dir=tmp_path), None).test_client()
    for path in ("/health", "/ping", "/model"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "model_not_ready"
    assert client.post("/predict", json=RECORD).status_code == 503
    assert client.get("/metrics").status_code == 200


class NaNEstimator:
    """A model that answers NaN: never sent as JSON null, and never a 5xx (issue 11: with
    the bounds of schema.py, only inputs far from the training data get here)."""

    def predict(self, rows: npt.NDArray[np.float64]) -> Any:
        return np.full(len(rows), np.nan)


def test_a_non_finite_prediction_is_a_422_not_a_500_nor_a_null(
    loaded_model: LoadedModel, settings: Settings
) -> None:
    broken = LoadedModel(
        NaNEstimator(), loaded_model.manifest, loaded_model.manifest_sha256, "test"
    )
    response = create_app(settings, broken).test_client().post("/predict", json=RECORD)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "non_finite_prediction"
    assert "this record" in response.get_json()["error"]["message"]
