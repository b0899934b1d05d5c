"""Issue 11, item 3: no valid JSON may produce a 5xx. Numbers far outside the training range are
a 422 naming the bounds; a non-finite prediction is a 422 too; values outside the training range
but within the bounds are served and counted per feature."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from inference.app import create_app
from inference.loader import load_model
from inference.schema import accepted_bounds
from inference.settings import Settings
from tests.conftest import RECORD, build_run
from tests.servers import Server, running_server

INFERENCE = Path(sys.executable).parent / "inference"
# The request of issue 11: on a model with the real data's scale (spend in the tens of
# thousands), its prediction overflows float64.
HUGE = {"age": 1e308, "income_k": 88.0, "tenure_years": 6}


@pytest.fixture(scope="module")
def large_scale_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("scaled"), "ridge", target_scale=1000.0)


def client_for(run_dir: Path, tmp_path: Path, **overrides: Any) -> FlaskClient:
    settings = Settings(model_dir=run_dir, model_cache_dir=tmp_path / "cache", **overrides)
    return create_app(settings, load_model(settings)).test_client()


def error_of(response: Any) -> tuple[int, str, str]:
    body = response.get_json()
    return response.status_code, body["error"]["code"], body["error"]["message"]


def test_bounds_are_the_training_range_widened_by_the_margin() -> None:
    assert accepted_bounds(18.0, 80.0, 10.0) == (-602.0, 700.0)
    assert accepted_bounds(18.0, 80.0, 0.0) == (18.0, 80.0)
    assert accepted_bounds(5.0, 5.0, 10.0) == (-45.0, 55.0)  # one value: its size is the span
    assert accepted_bounds(0.0, 0.0, 10.0) == (-10.0, 10.0)
    assert accepted_bounds(0.0, 1e300, 1e300) == (-sys.float_info.max, sys.float_info.max)


def test_a_huge_value_is_a_422_naming_the_bounds_alone_and_in_a_batch(
    large_scale_run: Path, tmp_path: Path
) -> None:
    client = client_for(large_scale_run, tmp_path)
    status, code, message = error_of(client.post("/predict", json=HUGE))
    assert (status, code) == (422, "out_of_range")
    assert "field 'age' must be between" in message and "INPUT_RANGE_MARGIN" in message
    for size in (2, 8):  # the record-by-record and the vectorised batch checks
        batch = {"instances": [RECORD] * (size - 1) + [HUGE]}
        status, code, message = error_of(client.post("/predict", json=batch))
        assert (status, code) == (422, "out_of_range")
        assert f"'instances[{size - 1}].age'" in message


def test_with_the_bounds_opened_a_non_finite_prediction_is_a_422(
    large_scale_run: Path, tmp_path: Path
) -> None:
    client = client_for(large_scale_run, tmp_path, input_range_margin=1e307)
    status, code, message = error_of(client.post("/predict", json=HUGE))
    assert (status, code) == (422, "non_finite_prediction")
    assert "this record" in message
    batch = {"instances": [RECORD, HUGE, RECORD, HUGE]}
    status, code, message = error_of(client.post("/predict", json=batch))
    assert (status, code) == (422, "non_finite_prediction")
    assert "instances[1] (and 1 more)" in message


def test_plausible_values_outside_the_training_range_are_served_and_counted(
    ridge_run: Path, tmp_path: Path
) -> None:
    client = client_for(ridge_run, tmp_path)
    # Trained on ages 18..79 and incomes 10..200: a 95-year-old, and a very high income.
    assert client.post("/predict", json={**RECORD, "age": 95}).status_code == 200
    batch = [{**RECORD, "income_k": 900.0}] * 5 + [{**RECORD, "age": 2}]  # vectorised
    assert client.post("/predict", json={"instances": batch}).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert 'inference_out_of_range_values_total{feature="age",kind="above_max"} 1.0' in text
    assert 'inference_out_of_range_values_total{feature="age",kind="below_min"} 1.0' in text
    assert 'inference_out_of_range_values_total{feature="income_k",kind="above_max"} 5.0' in text
    assert 'feature="tenure_years"' not in text


@pytest.fixture(scope="module")
def open_bounds_server(
    large_scale_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {
            "MODEL_DIR": str(large_scale_run),
            "MODEL_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
            "HOST": "127.0.0.1",
            "PORT": "0",
            "WORKERS": "1",
            "INPUT_RANGE_MARGIN": "1e307",
        }
    )
    with running_server([str(INFERENCE), "serve"], env, workers=1) as server:
        yield server


@pytest.mark.slow
def test_over_http_no_valid_json_gets_a_5xx(open_bounds_server: Server) -> None:
    """A real gunicorn worker, with the bounds opened so the model itself overflows."""
    for body in (HUGE, {"instances": [RECORD, HUGE]}):
        status, _, answer = open_bounds_server.request("POST", "/predict", body)
        assert status == 422, answer
        assert json.loads(answer)["error"]["code"] == "non_finite_prediction"
    assert open_bounds_server.request("POST", "/predict", RECORD)[0] == 200


def test_the_margin_setting_reaches_the_validator(ridge_run: Path, tmp_path: Path) -> None:
    narrow = client_for(ridge_run, tmp_path, input_range_margin=0.0)
    assert narrow.post("/predict", json={**RECORD, "age": 95}).status_code == 422
    settings = Settings(model_dir=ridge_run, model_cache_dir=tmp_path / "cache")
    wide = create_app(replace(settings, input_range_margin=100.0), load_model(settings))
    assert wide.test_client().post("/predict", json={**RECORD, "age": 5000}).status_code == 200
