"""The HTTP API through Flask's test client, on a real (tiny) verified model."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from inference.model import LoadedModel
from tests.conftest import RECORD


def post(client: FlaskClient, body: Any, path: str = "/predict") -> Any:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json")


def test_health_and_ping_report_the_verified_model(
    client: FlaskClient, loaded_model: LoadedModel
) -> None:
    for path in ("/health", "/ping"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.get_json() == {
            "status": "ok",
            "model_version": loaded_model.model_version,
            "manifest_sha256": loaded_model.manifest_sha256,
        }


def test_model_endpoint_summarises_the_manifest(
    client: FlaskClient, loaded_model: LoadedModel
) -> None:
    body = client.get("/model").get_json()
    assert body["model_version"] == loaded_model.model_version
    assert body["manifest_sha256"] == loaded_model.manifest_sha256
    assert [f["name"] for f in body["input_schema"]] == ["age", "income_k", "tenure_years"]
    assert body["metrics"] == {"rmse": 1.0}
    assert body["created_at"] == "2026-11-26T11:00:00Z"


@pytest.mark.parametrize("path", ["/predict", "/invocations"])
def test_single_record_prediction_matches_the_model(
    client: FlaskClient, loaded_model: LoadedModel, path: str
) -> None:
    response = post(client, RECORD, path)
    assert response.status_code == 200
    body = response.get_json()
    expected = loaded_model.predict(np.array([[42.0, 88.0, 6.0]]))[0]
    assert body["prediction"] == pytest.approx(expected, rel=1e-12)
    assert body["model_version"] == loaded_model.model_version
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_batch_prediction_returns_one_prediction_per_record_in_order(
    client: FlaskClient, loaded_model: LoadedModel
) -> None:
    records = [{"age": 20.0 + i, "income_k": 50.5 + i, "tenure_years": i} for i in range(5)]
    response = post(client, {"instances": records})
    assert response.status_code == 200
    rows = np.array([[r["age"], r["income_k"], r["tenure_years"]] for r in records], float)
    assert response.get_json()["predictions"] == pytest.approx(loaded_model.predict(rows))


def test_the_manifest_examples_round_trip(client: FlaskClient, loaded_model: LoadedModel) -> None:
    for example in loaded_model.manifest.examples:
        body = post(client, example.input).get_json()
        assert body["prediction"] == pytest.approx(example.prediction, rel=1e-9)


BAD = {**RECORD}
MALFORMED: list[tuple[str, bytes | str | Any, int, str, str]] = [
    ("not json", b"{age: 42", 400, "invalid_json", "not valid JSON"),
    ("empty body", b"", 400, "invalid_json", "empty"),
    ("NaN literal", b'{"age": NaN, "income_k": 1, "tenure_years": 1}', 400, "invalid_json", "NaN"),
    (
        "Infinity",
        b'{"age": Infinity, "income_k": 1, "tenure_years": 1}',
        400,
        "invalid_json",
        "Infinity",
    ),
    (
        "-Infinity",
        b'{"age": -Infinity, "income_k": 1, "tenure_years": 1}',
        400,
        "invalid_json",
        "Infinity",
    ),
    (
        "overflow to inf",
        b'{"age": 1e999, "income_k": 1, "tenure_years": 1}',
        422,
        "invalid_value",
        "'age'",
    ),
    (
        "huge integer",
        b'{"age": 1' + b"0" * 400 + b', "income_k": 1, "tenure_years": 1}',
        422,
        "invalid_value",
        "'age'",
    ),
    ("not utf-8", b'{"age": "\xff"}', 400, "invalid_json", "not valid JSON"),
    ("deep nesting", b"[" * 100_000, 400, "invalid_json", "nested"),
    ("array body", [RECORD], 422, "not_an_object", "JSON object"),
    ("string body", '"hello"', 422, "not_an_object", "JSON object"),
    (
        "bool value",
        {**BAD, "age": True},
        422,
        "invalid_value",
        "'age' must be a number, got a boolean",
    ),
    (
        "string number",
        {**BAD, "income_k": "88.0"},
        422,
        "invalid_value",
        "'income_k' must be a number, got a string",
    ),
    (
        "null value",
        {**BAD, "tenure_years": None},
        422,
        "invalid_value",
        "'tenure_years' must be a number, got null",
    ),
    (
        "list value",
        {**BAD, "age": [1]},
        422,
        "invalid_value",
        "'age' must be a number, got an array",
    ),
    (
        "missing field",
        {"age": 1, "income_k": 2},
        422,
        "missing_field",
        "missing field 'tenure_years'",
    ),
    ("unknown field", {**BAD, "colour": 1}, 422, "unknown_field", "unknown field 'colour'"),
    ("empty batch", {"instances": []}, 422, "empty_batch", "empty"),
    ("batch not a list", {"instances": RECORD}, 422, "invalid_input", "array"),
    ("batch with extra key", {"instances": [RECORD], "x": 1}, 422, "unknown_field", "'x'"),
    (
        "bad record in batch",
        {"instances": [RECORD, {**BAD, "age": "x"}]},
        422,
        "invalid_value",
        "'instances[1].age'",
    ),
    # Batches above a few records are validated by a vectorised pass first; a failure there
    # must still be found and named by the exact checks.
    (
        "bool in big batch",
        {"instances": [RECORD] * 6 + [{**BAD, "age": False}]},
        422,
        "invalid_value",
        "'instances[6].age' must be a number, got a boolean",
    ),
    (
        "fraction in big batch",
        {"instances": [RECORD] * 6 + [{**BAD, "age": 6.5}]},
        422,
        "invalid_value",
        "'instances[6].age' must be an integer",
    ),
    (
        "inf in big batch",
        b'{"instances": ['
        + b'{"age": 1, "income_k": 1, "tenure_years": 1},' * 6
        + b'{"age": 1, "income_k": 1e400, "tenure_years": 1}]}',
        422,
        "invalid_value",
        "'instances[6].income_k' must be a finite number",
    ),
    (
        "huge int in big batch",
        b'{"instances": ['
        + b'{"age": 1, "income_k": 1, "tenure_years": 1},' * 6
        + b'{"age": 1, "income_k": 1'
        + b"0" * 400
        + b', "tenure_years": 1}]}',
        422,
        "invalid_value",
        "'instances[6].income_k' must be a finite number",
    ),
    (
        "missing in big batch",
        {"instances": [RECORD] * 6 + [{"age": 1, "income_k": 1}]},
        422,
        "missing_field",
        "'instances[6].tenure_years'",
    ),
    (
        "extra in big batch",
        {"instances": [RECORD] * 6 + [{**RECORD, "zip": 1}]},
        422,
        "unknown_field",
        "'instances[6].zip'",
    ),
    ("non-object in batch", {"instances": [RECORD, 5]}, 422, "not_an_object", "instances[1]"),
    ("batch too large", {"instances": [RECORD] * 51}, 413, "batch_too_large", "MAX_BATCH_ROWS"),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_requests_get_a_4xx_json_error_naming_the_problem(
    client: FlaskClient, body: Any, status: int, code: str, fragment: str
) -> None:
    response = post(client, body)
    assert response.status_code == status
    payload = response.get_json()
    assert payload["error"]["code"] == code
    assert fragment in payload["error"]["message"]
    assert payload["request_id"] == response.headers["X-Request-ID"]
    assert client.get("/health").status_code == 200


def test_an_error_message_does_not_echo_the_payload(client: FlaskClient) -> None:
    secret = "s3cr3t-" + "x" * 5000
    response = post(client, {**RECORD, "income_k": secret})
    assert response.status_code == 422
    assert "s3cr3t" not in response.get_data(as_text=True)
    long_key = "k" * 5000
    response = post(client, {**RECORD, long_key: 1})
    assert len(response.get_data()) < 400


def test_body_over_the_limit_is_413(client: FlaskClient) -> None:
    big = b'{"instances": [' + b" " * (6 * 1024 * 1024) + b"]}"
    response = post(client, big)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"
    assert "MAX_BODY_BYTES" in response.get_json()["error"]["message"]


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = client.post("/predict", data=json.dumps(RECORD), content_type="text/plain")
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_unknown_route_is_404_and_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    response = client.get("/predict")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_metrics_count_requests_rows_and_show_the_model(
    client: FlaskClient, loaded_model: LoadedModel
) -> None:
    post(client, RECORD)
    post(client, {"instances": [RECORD, RECORD]})
    post(client, {"age": True})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'inference_requests_total{method="POST",route="/predict",status="200"} 2.0' in text
    assert 'inference_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    assert "inference_rows_predicted_total 3.0" in text
    assert "inference_predict_seconds_count 2.0" in text
    assert 'inference_request_latency_seconds_count{route="/predict"} 3.0' in text
    assert (
        f'inference_model_info{{manifest_sha256="{loaded_model.manifest_sha256}",'
        f'model_version="{loaded_model.model_version}"}} 1.0'
    ) in text
