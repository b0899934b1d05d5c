"""Version-3 models (issue 9): typed features, nullable ones, classification, through Flask's
test client. Predictions must equal the pipeline's own on the very DataFrame it was fitted on."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from artifact_contract import TRUSTED_TYPES, label_key
from flask.testing import FlaskClient

from inference.app import create_app
from inference.errors import ArtifactIntegrityError
from inference.loader import load_model
from inference.model import LoadedModel
from inference.settings import Settings
from tests.tabular import TYPED_FEATURES, TYPED_RECORD, read_frame, records_of, training_csv


def pipeline_of(run_dir: Path) -> Any:
    return sio.load(run_dir / "model.skops", trusted=list(TRUSTED_TYPES))


def frame_of(run_dir: Path) -> pd.DataFrame:
    """The frame the run was fitted on, read from its CSV as the trainer reads it."""
    return read_frame(training_csv(run_dir.parents[1]))[TYPED_FEATURES]


def client_for(run_dir: Path, tmp_path: Path) -> FlaskClient:
    settings = Settings(model_dir=run_dir, model_cache_dir=tmp_path / "cache")
    return create_app(settings, load_model(settings)).test_client()


def post(client: FlaskClient, body: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post("/predict", data=data, content_type="application/json")


# Rows with every kind of value: blanks in rooms, city and garden, both booleans.
ROWS = list(range(40))


def test_the_training_rows_hold_nulls_of_every_nullable_feature(
    typed_runs: dict[str, Path],
) -> None:
    frame = frame_of(typed_runs["regression"]).iloc[ROWS]
    assert frame[["rooms", "city", "garden"]].isna().any().all()
    assert not frame[["sqft", "new_build"]].isna().any().any()


def test_regression_predictions_equal_the_pipeline_on_the_same_dataframe(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    run = typed_runs["regression"]
    client, frame, pipeline = client_for(run, tmp_path), frame_of(run), pipeline_of(run)
    rows = frame.iloc[ROWS]
    answer = post(client, {"instances": records_of(rows)}).get_json()
    assert answer["predictions"] == pipeline.predict(rows).tolist()
    assert "probabilities" not in answer
    for index in (0, 1, 2):  # a single record, as its own one-row frame
        single = post(client, records_of(rows.iloc[[index]])[0]).get_json()
        assert set(single) == {"prediction", "model_version", "request_id"}
        assert single["prediction"] == pipeline.predict(rows.iloc[[index]]).tolist()[0]


@pytest.mark.parametrize("kind", ["binary", "flag", "multiclass"])
def test_classification_answers_the_label_and_the_probabilities_of_the_pipeline(
    typed_runs: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    run = typed_runs[kind]
    client, frame, pipeline = client_for(run, tmp_path), frame_of(run), pipeline_of(run)
    rows = frame.iloc[ROWS]
    answer = post(client, {"instances": records_of(rows)}).get_json()
    labels = pipeline.predict(rows).tolist()
    assert answer["predictions"] == labels
    assert len(set(labels)) > 1
    keys = [label_key(label) for label in pipeline.classes_.tolist()]  # "yes", "true", "2"
    expected = [dict(zip(keys, row, strict=True)) for row in pipeline.predict_proba(rows).tolist()]
    assert answer["probabilities"] == expected
    single = post(client, records_of(rows.iloc[[0]])[0]).get_json()
    assert set(single) == {"prediction", "probabilities", "model_version", "request_id"}
    assert single["prediction"] == labels[0]
    # "yes" stays a string, 2 an integer, true a boolean
    assert type(single["prediction"]) is type(labels[0])
    assert single["probabilities"] == pytest.approx(expected[0], rel=1e-12)


BAD_TYPED: list[tuple[str, dict[str, Any] | bytes, int, str, list[str]]] = [
    (
        "unknown category",
        {**TYPED_RECORD, "city": "east"},
        422,
        "unknown_category",
        ["'city'", "'north', 'south', 'west'"],
    ),
    (
        "category in another case",
        {**TYPED_RECORD, "city": "North"},
        422,
        "unknown_category",
        ["'city'"],
    ),
    ("the string NaN", {**TYPED_RECORD, "city": "NaN"}, 422, "unknown_category", ["'city'"]),
    (
        "NaN literal for a categorical",
        json.dumps({**TYPED_RECORD, "city": float("nan")}).encode(),
        400,
        "invalid_json",
        ["NaN is not a JSON number"],
    ),
    ("number for a categorical", {**TYPED_RECORD, "city": 3}, 422, "invalid_value", ["string"]),
    (
        "string for a boolean",
        {**TYPED_RECORD, "new_build": "true"},
        422,
        "invalid_value",
        ["'new_build' must be a boolean (true or false), got a string"],
    ),
    (
        "number for a boolean",
        {**TYPED_RECORD, "garden": 1},
        422,
        "invalid_value",
        ["'garden' must be a boolean"],
    ),
    (
        "boolean for a number",
        {**TYPED_RECORD, "sqft": True},
        422,
        "invalid_value",
        ["'sqft' must be a number, got a boolean"],
    ),
    (
        "null where training had none",
        {**TYPED_RECORD, "sqft": None},
        422,
        "invalid_value",
        ["'sqft' must be a number, got null"],
    ),
    (
        "null boolean where training had none",
        {**TYPED_RECORD, "new_build": None},
        422,
        "invalid_value",
        ["'new_build'", "got null"],
    ),
    ("fractional integer", {**TYPED_RECORD, "rooms": 2.5}, 422, "invalid_value", ["integer"]),
    ("far out of range", {**TYPED_RECORD, "sqft": 1e308}, 422, "out_of_range", ["'sqft'"]),
    (
        "bad record in a batch",
        {"instances": [TYPED_RECORD] * 6 + [{**TYPED_RECORD, "city": "east"}]},
        422,
        "unknown_category",
        ["'instances[6].city'"],
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "fragments"),
    [case[1:] for case in BAD_TYPED],
    ids=[case[0] for case in BAD_TYPED],
)
def test_typed_values_are_checked_and_bad_ones_get_a_4xx_json_error(
    typed_runs: dict[str, Path],
    tmp_path: Path,
    body: dict[str, Any] | bytes,
    status: int,
    code: str,
    fragments: list[str],
) -> None:
    response = post(client_for(typed_runs["regression"], tmp_path), body)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code
    for fragment in fragments:
        assert fragment in error["message"]
    assert "east" not in error["message"] and "North" not in error["message"]  # no echo


SINGLE_BAD = [
    case for case in BAD_TYPED if isinstance(case[1], dict) and "instances" not in case[1]
]


@pytest.mark.parametrize(
    ("record", "code", "fragments"),
    [(case[1], case[3], case[4]) for case in SINGLE_BAD],
    ids=[case[0] for case in SINGLE_BAD],
)
def test_a_bad_value_in_a_large_batch_is_found_and_named(
    typed_runs: dict[str, Path],
    tmp_path: Path,
    record: dict[str, Any],
    code: str,
    fragments: list[str],
) -> None:
    """Batches above a few records are checked column by column first; what that pass refuses,
    the record-by-record checks find and name."""
    batch = {"instances": [TYPED_RECORD] * 6 + [record] + [TYPED_RECORD] * 3}
    response = post(client_for(typed_runs["regression"], tmp_path), batch)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == code
    field = next(name for name, value in record.items() if value is not TYPED_RECORD[name])
    assert f"'instances[6].{field}'" in error["message"]
    for fragment in fragments:  # what the single record's message says, past its field path
        if not fragment.startswith(f"'{field}"):
            assert fragment in error["message"]


def test_a_large_batch_counts_what_lies_outside_the_training_data(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    client = client_for(typed_runs["binary"], tmp_path)  # accepts unknown categories
    batch = [{**TYPED_RECORD, "city": "east", "sqft": 9000.0}] * 3 + [TYPED_RECORD] * 5
    batch += [{**TYPED_RECORD, "rooms": None, "city": None}] * 2
    assert post(client, {"instances": batch}).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert 'inference_out_of_range_values_total{feature="city",kind="unknown_category"} 3.0' in text
    assert 'inference_out_of_range_values_total{feature="sqft",kind="above_max"} 3.0' in text
    assert 'feature="rooms"' not in text


def test_null_is_accepted_where_training_had_missing_values(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    run = typed_runs["regression"]
    client, frame, pipeline = client_for(run, tmp_path), frame_of(run), pipeline_of(run)
    for name in ("rooms", "city", "garden"):  # a training row with a blank there, alone
        row = frame[frame[name].isna()].iloc[[0]]
        record = records_of(row)[0]
        assert record[name] is None
        answer = post(client, record).get_json()
        assert answer["prediction"] == pipeline.predict(row).tolist()[0]
    every = post(client, {**TYPED_RECORD, "rooms": None, "city": None, "garden": None})
    assert every.status_code == 200


def test_unknown_categories_are_served_and_counted_where_the_model_ignores_them(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    run = typed_runs["binary"]  # OneHotEncoder(handle_unknown="ignore"): accepts_unknown
    client = client_for(run, tmp_path)
    answer = post(client, {"instances": [{**TYPED_RECORD, "city": "east"}, TYPED_RECORD]})
    assert answer.status_code == 200
    frame = pd.DataFrame([{**TYPED_RECORD, "city": "east"}, TYPED_RECORD])
    assert answer.get_json()["predictions"] == pipeline_of(run).predict(frame).tolist()
    text = client.get("/metrics").get_data(as_text=True)
    assert 'inference_out_of_range_values_total{feature="city",kind="unknown_category"} 1.0' in text


def test_model_endpoint_shows_the_typed_schema_and_the_classes(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    body = client_for(typed_runs["multiclass"], tmp_path).get("/model").get_json()
    schema = {feature["name"]: feature for feature in body["input_schema"]}
    assert schema["city"] == {
        "name": "city",
        "type": "categorical",
        "nullable": True,
        "categories": ["north", "south", "west"],
        "accepts_unknown": False,
    }
    assert schema["new_build"] == {"name": "new_build", "type": "boolean", "nullable": False}
    assert schema["rooms"]["type"] == "integer" and schema["rooms"]["nullable"] is True
    assert body["output"] == {"name": "band", "task": "classification", "classes": [0, 1, 2]}
    assert set(body["examples"][0]) == {"input", "prediction", "probabilities"}


def test_the_manifest_examples_round_trip(typed_runs: dict[str, Path], tmp_path: Path) -> None:
    for run in typed_runs.values():
        client = client_for(run, tmp_path)
        for example in client.get("/model").get_json()["examples"]:
            answer = post(client, example["input"]).get_json()
            if isinstance(example["prediction"], float):
                assert answer["prediction"] == pytest.approx(example["prediction"], rel=1e-9)
            else:
                assert answer["prediction"] == example["prediction"]
                assert answer["probabilities"] == pytest.approx(example["probabilities"])


def test_the_loader_keeps_feature_names_and_proves_the_numpy_path_where_it_can(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    for kind, run in typed_runs.items():
        model = load_model(Settings(model_dir=run, model_cache_dir=tmp_path))
        # Boosting behind an encoder of its own is not replayed (encoding.py): a DataFrame.
        assert model.predict_path == ("dataframe" if kind == "multiclass" else "numpy")
        frame = model.frame({name: [TYPED_RECORD[name]] for name in TYPED_FEATURES})
        assert list(frame.columns) == TYPED_FEATURES
        assert frame["new_build"].dtype == np.dtype(bool)
        assert frame["city"].dtype == frame["garden"].dtype == np.dtype(object)
        nulls = model.frame({name: [None if name != "sqft" else 1.0] for name in TYPED_FEATURES})
        assert nulls[["rooms", "city", "garden"]].isna().all().all()


class Relabelled:
    """A classifier whose labels differ from its manifest's (or that gives no probabilities)."""

    def __init__(self, classes: list[Any], proba: bool = True) -> None:
        self.classes_ = np.array(classes)
        if proba:
            self.predict_proba = lambda rows: np.full((len(rows), len(classes)), 0.5)


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (Relabelled(["yes", "no"]), "the model's classes are ['yes', 'no'] but the manifest"),
        (Relabelled([0, 1]), "the model's classes are [0, 1] but the manifest"),
        (Relabelled(["no", "yes"], proba=False), "has no predict_proba"),
    ],
    ids=["order", "type", "no-probabilities"],
)
def test_a_classifier_must_match_its_manifest_classes(
    typed_runs: dict[str, Path], tmp_path: Path, estimator: Any, message: str
) -> None:
    model = load_model(Settings(model_dir=typed_runs["binary"], model_cache_dir=tmp_path))
    with pytest.raises(ArtifactIntegrityError, match=re.escape(message)):
        LoadedModel(estimator, model.manifest, model.manifest_sha256, "test")


def acceptable(feature: dict[str, Any], value: Any) -> bool:
    """docs/03's table of what each feature type accepts, written out independently."""
    if value is None:
        return bool(feature["nullable"])
    if feature["type"] == "boolean":
        return type(value) is bool
    if feature["type"] == "categorical":
        return type(value) is str and (feature["accepts_unknown"] or value in feature["categories"])
    if type(value) not in (int, float):
        return False
    span = feature["max"] - feature["min"]
    if not feature["min"] - 10 * span <= value <= feature["max"] + 10 * span:
        return False
    return feature["type"] == "number" or float(value).is_integer()


def test_no_mix_of_values_gets_a_5xx(typed_runs: dict[str, Path], tmp_path: Path) -> None:
    """Seeded random records of every JSON kind, alone and in batches, on every typed model:
    each answer is a 200 or a 422 JSON error, a 200 exactly when every value is acceptable."""
    rng = random.Random(11)
    pool: list[Any] = [
        None, True, False, 0, 1, -1, 3, 2.5, 1e308, -1e308, 1e-300, 10**30, 1200.0, 40000.0,
        "north", "south", "east", "", "NaN", "true", "3", [], {}, [1], {"a": 1},
    ]  # fmt: skip
    for run in typed_runs.values():
        client = client_for(run, tmp_path)
        schema = client.get("/model").get_json()["input_schema"]
        answered = 0
        for size in (1, 2, 7):
            for _ in range(25):
                records = [
                    {
                        f["name"]: TYPED_RECORD[f["name"]]
                        if rng.random() < 0.85
                        else rng.choice(pool)
                        for f in schema
                    }
                    for _ in range(size)
                ]
                body = records[0] if size == 1 else {"instances": records}
                response = post(client, body)
                valid = all(acceptable(f, r[f["name"]]) for r in records for f in schema)
                assert response.status_code == (200 if valid else 422), response.get_json()
                assert response.is_json
                answered += valid
        assert answered >= 10  # the mix holds valid requests too, not only refusals
