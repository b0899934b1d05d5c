"""A version-3 classifier served by a real gunicorn process, as a user would run it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Server, running_server
from tests.tabular import TYPED_RECORD, records_of
from tests.test_typed import frame_of, pipeline_of

INFERENCE = Path(sys.executable).parent / "inference"

pytestmark = pytest.mark.slow  # a real gunicorn server per module


@pytest.fixture(scope="module")
def server(
    typed_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {
            "MODEL_DIR": str(typed_runs["multiclass"]),
            "MODEL_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
            "HOST": "127.0.0.1",
            "PORT": "0",
            "WORKERS": "1",
        }
    )
    with running_server([str(INFERENCE), "serve"], env, workers=1) as server:
        yield server
    assert server.process.returncode == 0


def test_start_up_names_the_dataframe_path(server: Server) -> None:
    loaded = [r for r in server.records() if r["event"] == "model_loaded"]
    assert loaded[0]["predict_path"] == "dataframe"


def test_labels_and_probabilities_over_http_equal_the_pipeline(
    server: Server, typed_runs: dict[str, Path]
) -> None:
    run = typed_runs["multiclass"]
    rows = frame_of(run).iloc[:25]
    pipeline = pipeline_of(run)
    status, _, body = server.request("POST", "/predict", {"instances": records_of(rows)})
    assert status == 200
    answer = json.loads(body)
    assert answer["predictions"] == pipeline.predict(rows).tolist()
    keys = [str(label) for label in pipeline.classes_.tolist()]
    assert answer["probabilities"] == [
        dict(zip(keys, row, strict=True)) for row in pipeline.predict_proba(rows).tolist()
    ]
    status, _, body = server.request("POST", "/invocations", records_of(rows.iloc[[3]])[0])
    assert status == 200
    assert json.loads(body)["prediction"] == answer["predictions"][3]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**TYPED_RECORD, "city": "east"}, 422, "unknown_category"),
        ({**TYPED_RECORD, "garden": "yes"}, 422, "invalid_value"),
        ({**TYPED_RECORD, "sqft": None}, 422, "invalid_value"),
        ({**TYPED_RECORD, "sqft": 1e308}, 422, "out_of_range"),
        ({"instances": [TYPED_RECORD, {**TYPED_RECORD, "city": 7}]}, 422, "invalid_value"),
    ],
    ids=["unknown-category", "wrong-type", "null-not-allowed", "huge", "bad-row-in-batch"],
)
def test_bad_typed_input_is_a_4xx_json_error_over_http(
    server: Server, body: object, status: int, code: str
) -> None:
    got, headers, answer = server.request("POST", "/predict", body)
    assert (got, json.loads(answer)["error"]["code"]) == (status, code)
    assert headers["Content-Type"] == "application/json"


def test_nan_for_a_categorical_is_a_400_json_error(server: Server) -> None:
    """Python's json.dumps writes float("nan") as a bare NaN, which is not JSON: refused for
    every feature alike, before the schema is consulted."""
    status, _, answer = server.request("POST", "/predict", {**TYPED_RECORD, "city": float("nan")})
    assert status == 400
    error = json.loads(answer)["error"]
    assert (error["code"], error["message"]) == (
        "invalid_json",
        "body is not valid JSON: NaN is not a JSON number",
    )
