from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from inference.app import create_app
from inference.errors import ConfigurationError
from inference.loader import load_model
from inference.model import LoadedModel
from inference.sampling import PredictionSampler
from inference.settings import Settings
from inference.state import EXTENSION, ServiceState

from .conftest import FEATURES, RECORD
from .tabular import TYPED_RECORD


def sampler(rate: float, destination: str | None = "unused", seed: int = 1) -> PredictionSampler:
    return PredictionSampler(
        destination, rate, FEATURES, logging.getLogger("test"), random.Random(seed)
    )


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def sampled_client(
    settings: Settings, loaded_model: LoadedModel, tmp_path: Path
) -> Iterator[tuple[FlaskClient, Path]]:
    log = tmp_path / "predictions.jsonl"
    sampled = replace(settings, prediction_log=str(log), prediction_sample_rate=1.0)
    app = create_app(sampled, loaded_model)
    yield app.test_client(), log
    state: ServiceState = app.extensions[EXTENSION]
    assert state.sampler is not None
    state.sampler.close()  # a worker keeps its handle for life; a test closes it


def test_every_row_is_sampled_at_rate_1_with_its_features_and_prediction(
    sampled_client: tuple[FlaskClient, Path],
) -> None:
    client, log = sampled_client
    one = client.post("/predict", json=RECORD, headers={"X-Request-ID": "req-1"})
    batch = client.post("/predict", json={"instances": [RECORD, {**RECORD, "age": 30}]})
    assert one.status_code == batch.status_code == 200
    lines = read_lines(log)
    assert len(lines) == 3
    first = lines[0]
    assert set(first) == {"ts", "event", "request_id", "model_version", "features", "prediction"}
    assert first["event"] == "prediction"
    assert first["request_id"] == "req-1"
    assert first["model_version"] == one.json["model_version"]  # type: ignore[index]
    assert first["features"] == {name: float(value) for name, value in RECORD.items()}
    assert first["prediction"] == one.json["prediction"]  # type: ignore[index]
    assert first["ts"].endswith("Z")
    assert [line["request_id"] for line in lines[1:]] == [batch.json["request_id"]] * 2  # type: ignore[index]
    assert [line["prediction"] for line in lines[1:]] == batch.json["predictions"]  # type: ignore[index]
    assert lines[2]["features"]["age"] == 30.0


def test_refused_requests_are_not_sampled(sampled_client: tuple[FlaskClient, Path]) -> None:
    client, log = sampled_client
    bad = client.post("/predict", json={**RECORD, "age": "old"})
    assert bad.status_code in (400, 422)
    assert not log.exists() or log.read_text() == ""


def test_sampling_is_off_by_default(client: FlaskClient, capfd: pytest.CaptureFixture[str]) -> None:
    assert Settings().prediction_sample_rate == 0.0
    assert client.post("/predict", json=RECORD).status_code == 200
    assert '"event": "prediction"' not in capfd.readouterr().out


def test_stdout_destination_writes_lines_to_fd_1(
    capfd: pytest.CaptureFixture[str],
) -> None:
    s = sampler(1.0, destination="stdout")
    rows = np.array([[42.0, 88.0, 6.0], [30.0, 50.0, 1.0]])
    assert s.record("r1", "v002", rows, [1.5, 2.5]) == 2
    s.close()
    out = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [line["prediction"] for line in out] == [1.5, 2.5]
    assert out[1]["features"] == {"age": 30.0, "income_k": 50.0, "tenure_years": 1.0}


def test_rows_are_sampled_independently_at_the_rate() -> None:
    s = sampler(0.05, seed=3)
    picked = s.sampled_indices(200_000)
    assert picked == sorted(set(picked))
    assert 0 <= picked[0] and picked[-1] < 200_000
    # Binomial(200000, 0.05): mean 10000, sd ~97; 5 sd either side.
    assert 9_500 < len(picked) < 10_500
    # Spread over the whole batch, not bunched at its start.
    assert 4_500 < sum(1 for index in picked if index >= 100_000) < 5_500
    assert sampler(1.0).sampled_indices(5) == [0, 1, 2, 3, 4]
    singles = sum(len(sampler(0.2, seed=seed).sampled_indices(1)) for seed in range(2000))
    assert 300 < singles < 500  # 2000 single-row requests at 20 %: ~400


def test_a_rate_without_a_destination_is_off() -> None:
    s = sampler(0.5, destination=None)
    assert not s.enabled
    assert s.record("r", "v001", np.zeros((1, 3)), [1.0]) == 0


def test_an_unwritable_log_stops_start_up_with_a_clear_error(
    settings: Settings, loaded_model: LoadedModel, tmp_path: Path
) -> None:
    missing = tmp_path / "missing-dir" / "p.jsonl"
    bad = replace(settings, prediction_log=str(missing), prediction_sample_rate=0.5)
    with pytest.raises(ConfigurationError, match=r"PREDICTION_LOG .* cannot be opened"):
        create_app(bad, loaded_model)


def test_a_write_failure_never_fails_the_request(
    sampled_client: tuple[FlaskClient, Path],
) -> None:
    client, log = sampled_client
    log.unlink()
    log.mkdir()  # the file became a directory: every open for appending fails
    response = client.post("/predict", json=RECORD)
    assert response.status_code == 200
    second = client.post("/predict", json=RECORD)
    assert second.status_code == 200


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PREDICTION_SAMPLE_RATE": "1.5"}, "PREDICTION_SAMPLE_RATE must be between 0 and 1"),
        ({"PREDICTION_SAMPLE_RATE": "-0.1"}, "PREDICTION_SAMPLE_RATE must be between 0 and 1"),
        ({"PREDICTION_SAMPLE_RATE": "often"}, "PREDICTION_SAMPLE_RATE must be a number"),
        ({"PREDICTION_SAMPLE_RATE": "nan"}, "PREDICTION_SAMPLE_RATE must be between 0 and 1"),
        ({"PREDICTION_SAMPLE_RATE": "0.1"}, "PREDICTION_SAMPLE_RATE > 0 needs PREDICTION_LOG"),
    ],
)
def test_sampling_settings_are_validated(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)


def test_sampling_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"PREDICTION_LOG": "stdout", "PREDICTION_SAMPLE_RATE": "0.25"})
    assert (settings.prediction_log, settings.prediction_sample_rate) == ("stdout", 0.25)
    assert Settings.from_env({"PREDICTION_LOG": "/tmp/p.jsonl"}).prediction_sample_rate == 0.0


def test_a_large_batch_is_written_whole_in_several_chunks(tmp_path: Path) -> None:
    log = tmp_path / "p.jsonl"
    s = sampler(1.0, destination=str(log))
    rows = np.column_stack([np.arange(300.0), np.full(300, 55.5), np.full(300, 3.0)])
    predictions = [float(i) * 1.5 for i in range(300)]
    predictions[7] = float("nan")  # a model output that is not JSON-able is written as null
    assert s.record("big", "v002", rows, predictions) == 300
    s.close()
    assert log.stat().st_size > 4 * 4096  # more than one write chunk
    lines = read_lines(log)
    assert [line["features"]["age"] for line in lines] == [float(i) for i in range(300)]
    assert lines[7]["prediction"] is None and lines[8]["prediction"] == 12.0


@pytest.mark.parametrize("kind", ["regression", "binary"])
def test_typed_values_and_class_labels_are_logged_as_served(
    typed_runs: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    """Version-3 models: strings, booleans and nulls as the request gave them (the drift check
    reads them back), and a classifier's label as its prediction."""
    log = tmp_path / "typed.jsonl"
    settings = Settings(
        model_dir=typed_runs[kind],
        model_cache_dir=tmp_path / "cache",
        prediction_log=str(log),
        prediction_sample_rate=1.0,
    )
    app = create_app(settings, load_model(settings))
    records = [
        TYPED_RECORD,
        {**TYPED_RECORD, "rooms": None, "city": None, "garden": None, "new_build": True},
        {**TYPED_RECORD, "city": "wést \u2603", "sqft": 4000} if kind == "binary" else TYPED_RECORD,
    ]
    answer = app.test_client().post("/predict", json={"instances": records}).get_json()
    state: ServiceState = app.extensions[EXTENSION]
    assert state.sampler is not None
    state.sampler.close()
    lines = read_lines(log)
    assert [line["features"] for line in lines] == records
    assert [line["prediction"] for line in lines] == answer["predictions"]
    assert type(lines[1]["features"]["new_build"]) is bool
