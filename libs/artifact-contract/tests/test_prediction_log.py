from __future__ import annotations

import json

import pytest

from artifact_contract.prediction_log import (
    MalformedRecord,
    PredictionRecord,
    float_row_template,
    format_record,
    line_head,
    line_tail,
    parse_line,
)

NAMES = ["age", "city"]


def test_a_written_line_reads_back_as_the_same_record() -> None:
    line = format_record("2026-11-30T06:00:00.000Z", "r1", "v003", {"age": 42, "city": "Lyon"}, 7.5)
    assert line.endswith("}\n") and line.count("\n") == 1
    assert parse_line(line, NAMES) == PredictionRecord(
        ts="2026-11-30T06:00:00.000Z",
        request_id="r1",
        model_version="v003",
        features={"age": 42, "city": "Lyon"},
        prediction=7.5,
    )


def test_the_float_template_writes_the_same_line_as_format_record() -> None:
    names = ["age", '100% weird "name"']
    head = line_head("t", "r", "v001")
    fast = head + float_row_template(names) % (1.5, 2.0, "3.25")
    assert json.loads(fast) == json.loads(
        format_record("t", "r", "v001", dict(zip(names, [1.5, 2.0], strict=True)), 3.25)
    )
    assert (
        head
        + line_tail('{"age": 1}', "null")
        == '{"ts": "t", "event": "prediction", "request_id": "r", "model_version": "v001", '
        '"features": {"age": 1}, "prediction": null}\n'
    )


@pytest.mark.parametrize(
    "line",
    ["not json", '{"event": "request"}', "[1, 2]", '{"ts": "x", "level": "info"}'],
)
def test_lines_that_are_not_prediction_records_are_skipped(line: str) -> None:
    assert parse_line(line, NAMES) is None


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"features": {"age": 1, "city": "a"}, "prediction": 1}, "no model_version"),
        ({"model_version": "v1", "prediction": 1}, "no features object"),
        (
            {"model_version": "v1", "features": {"age": 1}, "prediction": 1},
            "feature 'city' missing",
        ),
        (
            {"model_version": "v1", "features": {"age": [1], "city": "a"}, "prediction": 1},
            "feature 'age' is not a finite number",
        ),
        (
            {"model_version": "v1", "features": {"age": 1, "city": None}, "prediction": None},
            "prediction is not a finite number",
        ),
    ],
)
def test_a_malformed_prediction_record_says_what_is_wrong(
    record: dict[str, object], problem: str
) -> None:
    with pytest.raises(MalformedRecord, match=problem):
        parse_line(json.dumps({"event": "prediction", **record}), NAMES)
