"""What ``/invocations`` reads besides ``/predict``'s JSON, and how it answers.

- MLflow's scoring forms (``mlflow models serve``): ``{"dataframe_split": {"columns", "data"}}``,
  ``{"dataframe_records": [record, ...]}``, ``{"instances": ...}`` and ``{"inputs": ...}`` (records,
  rows in schema order, or ``{feature: [values]}`` columns), with an optional empty ``"params"``;
  ``NaN`` in them is a missing value (null), as MLflow's client sends it.
- SageMaker Batch Transform's line formats: ``text/csv`` (a header line naming every feature is
  optional when the columns are in schema order; an empty cell is null) and
  ``application/jsonlines`` (one record, or one row in schema order, per line).

Every form becomes records that RequestValidator checks as it checks ``{"instances": [...]}``
(same bounds, same messages, naming the form's own location). A batch is answered as JSON
``{"predictions": [...], ...}`` unless the request's Accept header asks for ``text/csv`` (one
prediction per line) or ``application/jsonlines`` (one answer object per line).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
from artifact_contract import label_key
from werkzeug.datastructures import MIMEAccept

from inference.errors import (
    InvalidInput,
    MalformedBody,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from inference.mlflow_forms import check_columns, json_with_nan, parse_mlflow, row_record
from inference.schema import FieldRule, field_path
from inference.validation import ParsedRequest, RequestValidator

JSON = "application/json"
CSV = "text/csv"
JSONLINES = "application/jsonlines"
MEDIA_TYPES = (JSON, CSV, JSONLINES)
_TRUE, _FALSE = frozenset({"true"}), frozenset({"false"})


def parse_invocation(validator: RequestValidator, mimetype: str, body: bytes) -> ParsedRequest:
    if mimetype == JSON:
        return parse_mlflow(validator, json_with_nan(body))
    if mimetype not in (CSV, JSONLINES):
        raise UnsupportedMediaType(
            f"send {JSON} (a record, a batch or an MLflow scoring form), {CSV} or {JSONLINES}"
        )
    numbered = list(
        _csv_records(validator, body) if mimetype == CSV else _jsonl_records(validator, body)
    )
    numbers = [number for number, _ in numbered]
    return validator.parse_records([record for _, record in numbered], line_namer(numbers))


def line_namer(numbers: list[int]) -> Callable[[int], str]:
    """Names record i by the line it came from, in validation messages."""
    return lambda index: f"line {numbers[index]}"


# --- CSV and JSON Lines ---------------------------------------------------------------------


def _lines(body: bytes, max_rows: int) -> Iterator[tuple[int, str]]:
    """The non-blank lines of a UTF-8 body with their numbers, at most ``max_rows`` + 1."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedBody("the body is not UTF-8 text") from None
    count = 0
    # Only \n (and \r\n) end a line: str.splitlines would also split inside a value at
    # U+2028 and the like, which JSON strings and CSV cells may hold.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if line.strip():
            count += 1
            if count > max_rows + 1:  # the header and max_rows rows
                raise PayloadTooLarge(
                    f"the body has more than {max_rows} rows (MAX_BATCH_ROWS)",
                    code="batch_too_large",
                )
            yield number, line


class CsvRecords:
    """CSV rows to records: a first row naming features is the header (any order), else the
    values are in schema order."""

    def __init__(self, validator: RequestValidator) -> None:
        self.rules = {rule.name: rule for rule in validator.rules}
        self.names = list(validator.feature_names)
        self.columns = self.names
        self.header: list[str] | None = None
        self._first = True

    def record(self, cells: list[str], number: int) -> dict[str, Any] | None:
        """Line ``number``'s record, or None for the header line."""
        first, self._first = self._first, False
        if first and any(cell in self.rules for cell in cells):
            check_columns(cells, self.names, f"the header (line {number})")
            self.columns = self.header = cells
            return None
        if len(cells) != len(self.columns):
            raise InvalidInput(
                f"line {number} has {len(cells)} values; expected {len(self.columns)} "
                f"({', '.join(self.columns)})"[:300],
                code="wrong_row_length",
            )
        rules = self.rules
        return {
            name: _cell(rules[name], cell, number)
            for name, cell in zip(self.columns, cells, strict=True)
        }


def csv_cells(line: str, number: int) -> list[str]:
    try:
        return next(csv.reader([line]))
    except csv.Error as exc:
        raise MalformedBody(f"line {number} is not CSV: {exc}"[:200]) from None


def _csv_records(validator: RequestValidator, body: bytes) -> Iterator[tuple[int, Any]]:
    reader = CsvRecords(validator)
    for number, line in _lines(body, validator.max_rows):
        record = reader.record(csv_cells(line, number), number)
        if record is not None:
            yield number, record


def _cell(rule: FieldRule, text: str, number: int) -> Any:
    """A CSV cell as the JSON value it stands for; an empty cell is null (as pandas reads a
    blank as missing)."""
    if text == "":
        return None
    if rule.numeric:
        try:
            value = float(text)
        except ValueError:
            raise InvalidInput(
                f"field {field_path(f'line {number}.', rule.name)} must be a number, got text "
                "that is not one",
                code="invalid_value",
            ) from None
        if not math.isfinite(value):
            raise InvalidInput(
                f"field {field_path(f'line {number}.', rule.name)} must be a finite number",
                code="invalid_value",
            )
        return value
    if rule.type == "boolean":
        lowered = text.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise InvalidInput(
            f"field {field_path(f'line {number}.', rule.name)} must be true or false",
            code="invalid_value",
        )
    return text


def jsonl_record(line: str | bytes, names: Sequence[str], number: int) -> Any:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise MalformedBody(f"line {number} is not valid JSON") from None
    return row_record(value, names, f"line {number}") if isinstance(value, list) else value


def _jsonl_records(validator: RequestValidator, body: bytes) -> Iterator[tuple[int, Any]]:
    names = validator.feature_names
    for number, line in _lines(body, validator.max_rows - 1):
        yield number, jsonl_record(line, names, number)


# --- answers --------------------------------------------------------------------------------


def answer_media_type(accept: MIMEAccept) -> str:
    """JSON unless the client prefers one of the line formats (SageMaker's Accept)."""
    return accept.best_match(MEDIA_TYPES, default=JSON) if accept else JSON


def render_lines(body: dict[str, Any], media_type: str) -> bytes:
    """A batch answer as CSV (one prediction per line) or JSON Lines (one answer per line)."""
    predictions = body["predictions"]
    if media_type == CSV:
        cells = [repr(p) if isinstance(p, float) else label_key(p) for p in predictions]
        return "".join(f"{cell}\n" for cell in cells).encode()
    probabilities = body.get("probabilities")
    rows = (
        [{"prediction": p} for p in predictions]
        if probabilities is None
        else [
            {"prediction": p, "probabilities": q}
            for p, q in zip(predictions, probabilities, strict=True)
        ]
    )
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)
