"""The prediction-log record: written by the inference service, read by the trainer's drift check.

One JSON object per line (JSONL), one line per sampled row::

    {"ts": "...Z", "event": "prediction", "request_id": "...", "model_version": "v003",
     "features": {"age": 42, "income_k": 88.0, "city": "Lyon"}, "prediction": 41234.5}

Feature values are JSON scalars as the request carried them once validated (numbers, strings for
categories, booleans, null where the schema allows it); the prediction is a finite number
(regression) or a class label (a string, an integer or a boolean). The writer builds a line from
``line_head`` (once per request) and ``line_tail`` (once per row), so a hot path formats no
dictionary per row; ``format_record`` is the same line in one call. The reader, ``parse_line``,
skips lines that are not prediction records (with ``PREDICTION_LOG=stdout`` they share the
stream with the request logs) and raises ``MalformedRecord`` for a prediction record it cannot use.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from artifact_contract.errors import ContractError
from artifact_contract.interface import JSONScalar

EVENT = "prediction"
TS = "ts"
EVENT_FIELD = "event"
REQUEST_ID = "request_id"
MODEL_VERSION = "model_version"
FEATURES = "features"
PREDICTION = "prediction"
FIELDS = (TS, EVENT_FIELD, REQUEST_ID, MODEL_VERSION, FEATURES, PREDICTION)


class MalformedRecord(ContractError):
    """A line is a prediction record (its event says so) but a field is missing or invalid."""


@dataclass(frozen=True)
class PredictionRecord:
    ts: str | None
    request_id: str | None
    model_version: str
    features: dict[str, JSONScalar]
    prediction: JSONScalar


def line_head(ts: str, request_id: str, model_version: str) -> str:
    """The start of every line of one request: the object left open for ``line_tail``."""
    head = {TS: ts, EVENT_FIELD: EVENT, REQUEST_ID: request_id, MODEL_VERSION: model_version}
    return json.dumps(head)[:-1] + ", "


def line_tail(features_json: str, prediction_json: str) -> str:
    """The rest of one row's line from its features object and prediction, already JSON."""
    return f'"{FEATURES}": {features_json}, "{PREDICTION}": {prediction_json}}}\n'


def float_row_template(feature_names: Sequence[str]) -> str:
    """``line_tail`` as a %-template taking each (finite float) feature, then the prediction
    as JSON text: the names are quoted once, for a model whose features are all numbers."""
    fields = ", ".join(f"{json.dumps(name).replace('%', '%%')}: %r" for name in feature_names)
    return line_tail("{" + fields + "}", "%s")


def format_record(
    ts: str,
    request_id: str,
    model_version: str,
    features: Mapping[str, JSONScalar],
    prediction: JSONScalar,
) -> str:
    """One whole line (with its newline)."""
    tail = line_tail(json.dumps(dict(features), allow_nan=False), json.dumps(prediction))
    return line_head(ts, request_id, model_version) + tail


def parse_line(line: str, feature_names: Sequence[str]) -> PredictionRecord | None:
    """The record on ``line``, None when the line is not a prediction record at all."""
    try:
        record = json.loads(line)
    except ValueError:
        return None  # not JSON: another process's output on the same stream
    if not isinstance(record, dict) or record.get(EVENT_FIELD) != EVENT:
        return None
    problem = _problem(record, feature_names)
    if problem is not None:
        raise MalformedRecord(problem)
    features = record[FEATURES]
    return PredictionRecord(
        ts=record.get(TS) if isinstance(record.get(TS), str) else None,
        request_id=record.get(REQUEST_ID) if isinstance(record.get(REQUEST_ID), str) else None,
        model_version=record[MODEL_VERSION],
        features={name: features[name] for name in feature_names},
        prediction=record[PREDICTION],
    )


def _problem(record: dict[str, Any], names: Sequence[str]) -> str | None:
    if not isinstance(record.get(MODEL_VERSION), str):
        return f"no {MODEL_VERSION}"
    features = record.get(FEATURES)
    if not isinstance(features, dict):
        return f"no {FEATURES} object"
    for name in names:
        if name not in features:
            return f"feature {name!r} missing"
        value = features[name]
        if value is not None and not _scalar(value):
            return f"feature {name!r} is not a finite number, a string, a boolean or null"
    if not _scalar(record.get(PREDICTION)):
        return f"{PREDICTION} is not a finite number, a string or a boolean"
    return None


def _scalar(value: Any) -> bool:
    if isinstance(value, str | bool):
        return True
    return isinstance(value, int | float) and math.isfinite(value)
