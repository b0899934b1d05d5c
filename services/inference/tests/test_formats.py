"""/invocations as MLflow's scoring clients and SageMaker Batch Transform call it: the same rows
in every form answer the same predictions as /predict; bad rows get 4xx JSON errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from inference.app import create_app
from inference.loader import load_model
from inference.settings import Settings
from tests.conftest import FEATURES
from tests.tabular import TYPED_FEATURES, records_of
from tests.test_typed import frame_of


def numeric_records() -> list[dict[str, Any]]:
    return [{"age": 20 + 7 * i, "income_k": 30.5 + 11 * i, "tenure_years": i} for i in range(8)]


def csv_text(records: list[dict[str, Any]], columns: list[str], header: bool) -> str:
    """As pandas' to_csv writes it: blank for null, True/False for booleans."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for record in records:
        writer.writerow(["" if record[c] is None else record[c] for c in columns])
    return out.getvalue()


def forms(records: list[dict[str, Any]], names: list[str]) -> dict[str, tuple[str, Any]]:
    """(content type, body) of every form /invocations reads, for the same rows."""
    rows = [[record[name] for name in names] for record in records]
    shuffled = names[::-1]
    columns = {name: [record[name] for record in records] for name in names}
    return {
        "dataframe_split": (
            "application/json",
            {
                "dataframe_split": {
                    "index": list(range(len(records))),
                    "columns": shuffled,
                    "data": [[record[n] for n in shuffled] for record in records],
                }
            },
        ),
        "dataframe_split without columns": (
            "application/json",
            {"dataframe_split": {"data": rows}},
        ),
        "dataframe_records": ("application/json", {"dataframe_records": records}),
        "instances as rows": ("application/json", {"instances": rows}),
        "instances as columns": ("application/json", {"instances": columns, "params": {}}),
        "inputs as records": ("application/json", {"inputs": records}),
        "inputs as columns": ("application/json", {"inputs": columns}),
        "inputs as rows": ("application/json", {"inputs": rows, "params": None}),
        "csv with header": ("text/csv", csv_text(records, names, header=True)),
        "csv with a reordered header": ("text/csv", csv_text(records, shuffled, header=True)),
        "csv without header": ("text/csv", csv_text(records, names, header=False)),
        "json lines": (
            "application/jsonlines",
            "".join(json.dumps(record) + "\n" for record in records),
        ),
        "json lines of rows": (
            "application/jsonlines",
            "".join(json.dumps(row) + "\n" for row in rows),
        ),
    }


def send(client: FlaskClient, content_type: str, body: Any, accept: str | None = None) -> Any:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    headers = {} if accept is None else {"Accept": accept}
    return client.post("/invocations", data=data, content_type=content_type, headers=headers)


def expected(client: FlaskClient, records: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/predict", json={"instances": records})
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


@pytest.fixture(scope="module")
def typed_apps(
    typed_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Flask]:
    apps = {}
    for kind in ("regression", "multiclass"):
        settings = Settings(
            model_dir=typed_runs[kind], model_cache_dir=tmp_path_factory.mktemp("cache")
        )
        apps[kind] = create_app(settings, load_model(settings))
    return apps


def typed_records(typed_runs: dict[str, Path]) -> list[dict[str, Any]]:
    """Training rows with nulls in three features, booleans and categories."""
    records = records_of(frame_of(typed_runs["regression"]).head(12))
    assert any(value is None for record in records for value in record.values())
    return records


def test_every_form_answers_what_predict_answers_numeric(client: FlaskClient) -> None:
    records = numeric_records()
    want = expected(client, records)
    for name, (content_type, body) in forms(records, FEATURES).items():
        response = send(client, content_type, body)
        assert response.status_code == 200, (name, response.get_json())
        assert response.get_json()["predictions"] == want["predictions"], name


@pytest.mark.parametrize("kind", ["regression", "multiclass"])
def test_every_form_answers_what_predict_answers_typed(
    kind: str, typed_apps: dict[str, Flask], typed_runs: dict[str, Path]
) -> None:
    client = typed_apps[kind].test_client()
    records = typed_records(typed_runs)
    want = expected(client, records)
    for name, (content_type, body) in forms(records, TYPED_FEATURES).items():
        response = send(client, content_type, body)
        assert response.status_code == 200, (name, response.get_json())
        got = response.get_json()
        assert got["predictions"] == want["predictions"], name
        assert got.get("probabilities") == want.get("probabilities"), name


def test_line_answers_follow_the_accept_header(
    typed_apps: dict[str, Flask], typed_runs: dict[str, Path]
) -> None:
    client = typed_apps["multiclass"].test_client()
    records = typed_records(typed_runs)
    want = expected(client, records)
    body = csv_text(records, TYPED_FEATURES, header=False)
    as_csv = send(client, "text/csv", body, accept="text/csv")
    assert as_csv.mimetype == "text/csv"
    assert as_csv.get_data(as_text=True).splitlines() == [str(p) for p in want["predictions"]]
    as_lines = send(client, "text/csv", body, accept="application/jsonlines")
    assert as_lines.mimetype == "application/jsonlines"
    assert [json.loads(line) for line in as_lines.get_data(as_text=True).splitlines()] == [
        {"prediction": p, "probabilities": q}
        for p, q in zip(want["predictions"], want["probabilities"], strict=True)
    ]
    assert as_lines.headers["X-Request-ID"]


def test_csv_answers_of_a_regression_are_the_floats(client: FlaskClient) -> None:
    records = numeric_records()
    want = expected(client, records)["predictions"]
    response = send(client, "text/csv", csv_text(records, FEATURES, True), accept="text/csv")
    assert [float(line) for line in response.get_data(as_text=True).splitlines()] == want


def test_nan_from_mlflows_client_is_a_missing_value(
    typed_apps: dict[str, Flask], typed_runs: dict[str, Path]
) -> None:
    """mlflow's ScoringServerClient sends json.dumps({"dataframe_split": df.to_dict("split")}),
    NaN included; /predict's strict JSON stays strict."""
    client = typed_apps["regression"].test_client()
    frame = frame_of(typed_runs["regression"]).head(12)
    assert frame["rooms"].isna().any()
    body = json.dumps({"dataframe_split": frame.to_dict(orient="split")})
    assert "NaN" in body
    response = send(client, "application/json", body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["predictions"] == expected(client, records_of(frame))["predictions"]
    strict = client.post("/predict", data=body, content_type="application/json")
    assert strict.status_code == 400
    records = records_of(frame)
    records[0]["sqft"] = float("nan")  # sqft is not nullable
    refused = send(client, "application/json", json.dumps({"dataframe_records": records}))
    assert refused.status_code == 422
    assert (
        "'dataframe_records[0].sqft' must be a number, got null"
        in refused.get_json()["error"]["message"]
    )
    infinite = send(client, "application/json", body.replace("NaN", "Infinity", 1))
    assert infinite.status_code == 400


def test_only_newlines_end_a_line(typed_apps: dict[str, Flask]) -> None:
    """A JSON string may hold U+2028 (a line separator to str.splitlines): one record still."""
    client = typed_apps["regression"].test_client()
    record = {"sqft": 1200.0, "rooms": 3, "city": "north\u2028", "garden": True, "new_build": False}
    line = json.dumps(record, ensure_ascii=False) + "\r\n"
    response = send(client, "application/jsonlines", line)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "unknown_category"
    assert "'line 1.city'" in response.get_json()["error"]["message"]


def test_our_own_forms_keep_their_answers_on_invocations(client: FlaskClient) -> None:
    record = numeric_records()[0]
    single = send(client, "application/json", record).get_json()
    assert set(single) == {"prediction", "model_version", "request_id"}
    batch = send(client, "application/json", {"instances": [record]}).get_json()
    assert set(batch) == {"predictions", "model_version", "request_id"}


BAD: list[tuple[str, str, Any, int, str, str]] = [
    # (case, content type, body, status, code, message part)
    (
        "two forms",
        "application/json",
        {"inputs": [], "instances": []},
        422,
        "unknown_field",
        "exactly one",
    ),
    ("unknown key", "application/json", {"inputs": [], "extra": 1}, 422, "unknown_field", "extra"),
    (
        "params",
        "application/json",
        {"inputs": [], "params": {"k": 1}},
        422,
        "unknown_field",
        "params",
    ),
    (
        "split not object",
        "application/json",
        {"dataframe_split": []},
        422,
        "invalid_input",
        "must be an object",
    ),
    (
        "split no data",
        "application/json",
        {"dataframe_split": {"columns": FEATURES}},
        422,
        "missing_field",
        "'data'",
    ),
    (
        "split missing column",
        "application/json",
        {"dataframe_split": {"columns": ["age", "income_k"], "data": [[1, 2]]}},
        422,
        "missing_field",
        "lacks the feature 'tenure_years'",
    ),
    (
        "split short row",
        "application/json",
        {"dataframe_split": {"data": [[40, 50.0, 1], [40, 50.0]]}},
        422,
        "wrong_row_length",
        "'dataframe_split.data[1]' has 2 values",
    ),
    (
        "split bad value",
        "application/json",
        {"dataframe_split": {"data": [[40, 50.0, 1], [40, "x", 1]]}},
        422,
        "invalid_value",
        "'dataframe_split.data[1].income_k' must be a number",
    ),
    (
        "records missing",
        "application/json",
        {"dataframe_records": [{"age": 1, "income_k": 2.0}]},
        422,
        "missing_field",
        "'dataframe_records[0].tenure_years'",
    ),
    (
        "records not list",
        "application/json",
        {"dataframe_records": {"age": [1]}},
        422,
        "invalid_input",
        "array of records",
    ),
    (
        "columns unequal",
        "application/json",
        {"inputs": {"age": [1, 2], "income_k": [2.0], "tenure_years": [1, 2]}},
        422,
        "wrong_row_length",
        "differ in length",
    ),
    ("empty inputs", "application/json", {"inputs": []}, 422, "empty_batch", "empty"),
    (
        "csv text in number",
        "text/csv",
        "age,income_k,tenure_years\n40,abc,1\n",
        422,
        "invalid_value",
        "'line 2.income_k' must be a number",
    ),
    ("csv nan", "text/csv", "40,nan,1\n", 422, "invalid_value", "finite"),
    (
        "csv short row",
        "text/csv",
        "40,50.0,1\n40,50.0\n",
        422,
        "wrong_row_length",
        "line 2 has 2 values",
    ),
    (
        "csv bad header",
        "text/csv",
        "age,income_k,tenure\n40,50.0,1\n",
        422,
        "missing_field",
        "header",
    ),
    (
        "csv out of range",
        "text/csv",
        "40,50.0,1\n40,1e9,1\n",
        422,
        "out_of_range",
        "'line 2.income_k'",
    ),
    (
        "csv header, blank line, out of range",
        "text/csv",
        "age,income_k,tenure_years\n40,50.0,1\n\n40,1e9,1\n",
        422,
        "out_of_range",
        "'line 4.income_k'",
    ),
    ("csv empty", "text/csv", "\n\n", 422, "empty_batch", "empty"),
    (
        "csv not utf-8",
        "text/csv",
        "40,50.0,1\n".encode("utf-16"),
        400,
        "malformed_body",
        "UTF-8",
    ),
    (
        "jsonl not json",
        "application/jsonlines",
        '{"age": 40}\n{age\n',
        400,
        "malformed_body",
        "line 2 is not valid JSON",
    ),
    (
        "jsonl missing",
        "application/jsonlines",
        '{"age": 40, "income_k": 1.0}\n',
        422,
        "missing_field",
        "'line 1.tenure_years'",
    ),
    (
        "jsonl scalar",
        "application/jsonlines",
        "7\n",
        422,
        "not_an_object",
        "'line 1' must be an object",
    ),
    ("other type", "text/plain", "40,50.0,1\n", 415, "unsupported_media_type", "text/csv"),
]


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code", "part"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_bad_rows_get_a_4xx_json_error_naming_them(
    client: FlaskClient, content_type: str, body: Any, status: int, code: str, part: str
) -> None:
    response = send(client, content_type, body)
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code
    assert part in error["message"]


def test_every_form_keeps_the_batch_bound(client: FlaskClient) -> None:
    """The client fixture's MAX_BATCH_ROWS is 50."""
    records = [numeric_records()[0]] * 51
    for name, (content_type, body) in forms(records, FEATURES).items():
        response = send(client, content_type, body)
        assert response.status_code == 413, name
        assert response.get_json()["error"]["code"] == "batch_too_large", name
    at_bound = csv_text(records[:50], FEATURES, header=True)
    assert send(client, "text/csv", at_bound).status_code == 200
