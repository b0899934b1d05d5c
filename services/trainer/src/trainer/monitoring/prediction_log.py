"""Read the inference service's sampled prediction log (JSONL) for the drift check.

The record format, and the parser of one line, are ``artifact_contract.prediction_log``'s (the
inference service writes with the same module). What each value means is the drift check's
business: it reads them against the manifest's profile.

With PREDICTION_LOG=stdout these lines are interleaved with the request logs, so lines that are
not prediction records are skipped; prediction records that are malformed are counted and the
first problem is kept for the report. The file is streamed: only the wanted version's rows stay.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifact_contract.prediction_log import MalformedRecord, parse_line

from trainer.errors import TrainerError


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
        record = parse_line(line, names)
    except MalformedRecord as exc:
        observed.records += 1
        observed.invalid += 1
        if observed.first_problem is None:
            observed.first_problem = f"line {number}: {exc}"
        return
    if record is None:
        return
    observed.records += 1
    observed.versions[record.model_version] += 1
    if record.model_version != observed.version:
        return
    for name in names:
        observed.features[name].append(record.features[name])
    observed.predictions.append(record.prediction)


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
