"""Read the inference service's sampled prediction log (JSONL).

One line per sampled row, as services/inference writes it with PREDICTION_SAMPLE_RATE > 0::

    {"ts": "...Z", "event": "prediction", "request_id": "...", "model_version": "v003",
     "features": {"age": 42, "income_k": 88.0, "tenure_years": 6}, "prediction": 41234.5}

Feature values are JSON scalars as the request carried them (numbers, strings for categories,
booleans, null where the schema allows it); the prediction is a number (regression) or a class
label (a string, an integer or a boolean). What each value means is the drift check's business:
it reads them against the manifest's profile.

With PREDICTION_LOG=stdout these lines are interleaved with the request logs, so lines that are
not prediction records are skipped; prediction records that are malformed are counted and the
first problem is kept for the report. The file is streamed: only the wanted version's rows stay.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError

PREDICTION_EVENT = "prediction"


class PredictionLogError(TrainerError):
    """The prediction log cannot be read or holds no usable rows."""


class OtherVersionsOnly(PredictionLogError):
    """Every valid row was served by other versions (``versions``: rows per version)."""

    def __init__(self, message: str, versions: dict[str, int]) -> None:
        super().__init__(message)
        self.versions = versions


@dataclass
class Observed:
    """The rows of one model version found in a prediction log, plus what else was there."""

    version: str
    features: dict[str, list[Any]]  # JSON scalars, None for a missing value
    predictions: list[Any] = field(default_factory=list)
    lines: int = 0
    records: int = 0  # prediction records of any version, valid or not
    invalid: int = 0
    first_problem: str | None = None
    versions: Counter[str] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return len(self.predictions)


def read(path: Path, version: str, feature_names: list[str]) -> Observed:
    observed = Observed(version=version, features={name: [] for name in feature_names})
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                observed.lines = number
                _take(observed, line, number, feature_names)
    except FileNotFoundError:
        raise PredictionLogError(f"{path}: no such prediction log") from None
    except IsADirectoryError:
        raise PredictionLogError(f"{path}: is a directory, expected a JSONL file") from None
    except OSError as exc:
        raise PredictionLogError(f"{path}: cannot read ({exc.strerror})") from None
    _check_usable(path, observed)
    return observed


def _take(observed: Observed, line: str, number: int, names: list[str]) -> None:
    try:
        record = json.loads(line)
    except ValueError:
        return  # not JSON: another process's output on the same stream
    if not isinstance(record, dict) or record.get("event") != PREDICTION_EVENT:
        return
    observed.records += 1
    problem = _problem(record, names)
    if problem is not None:
        observed.invalid += 1
        if observed.first_problem is None:
            observed.first_problem = f"line {number}: {problem}"
        return
    observed.versions[record["model_version"]] += 1
    if record["model_version"] != observed.version:
        return
    for name in names:
        observed.features[name].append(record["features"][name])
    observed.predictions.append(record["prediction"])


def _problem(record: dict[str, Any], names: list[str]) -> str | None:
    if not isinstance(record.get("model_version"), str):
        return "no model_version"
    features = record.get("features")
    if not isinstance(features, dict):
        return "no features object"
    for name in names:
        if name not in features:
            return f"feature {name!r} missing"
        value = features[name]
        if value is not None and not _scalar(value):
            return f"feature {name!r} is not a finite number, a string, a boolean or null"
    if not _scalar(record.get("prediction")):
        return "prediction is not a finite number, a string or a boolean"
    return None


def _scalar(value: Any) -> bool:
    if isinstance(value, str | bool):
        return True
    return isinstance(value, int | float) and math.isfinite(value)


def _check_usable(path: Path, observed: Observed) -> None:
    if observed.records == 0:
        raise PredictionLogError(
            f"{path}: no prediction records in {observed.lines} line(s) "
            "(was the server run with PREDICTION_SAMPLE_RATE > 0 and PREDICTION_LOG set?)"
        )
    if observed.rows == 0 and observed.versions:
        found = ", ".join(f"{v}: {n}" for v, n in sorted(observed.versions.items()))
        raise OtherVersionsOnly(
            f"{path}: no prediction records for {observed.version} (found {found}); "
            "pass VERSION=... for the version that served them",
            dict(observed.versions),
        )
    if observed.rows == 0:
        raise PredictionLogError(
            f"{path}: all {observed.invalid} prediction record(s) are malformed "
            f"({observed.first_problem})"
        )
