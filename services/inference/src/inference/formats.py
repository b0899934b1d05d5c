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
import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
from artifact_contract import label_key
from werkzeug.datastructures import MIMEAccept

from inference.errors import (
    BATCH_KEY,
    InvalidInput,
    InvalidJSON,
    MalformedBody,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from inference.schema import FieldRule, field_path, kind_of
from inference.validation import ParsedRequest, RequestValidator, parse_json

JSON = "application/json"
CSV = "text/csv"
JSONLINES = "application/jsonlines"
MEDIA_TYPES = (JSON, CSV, JSONLINES)
MLFLOW_FORMS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS = "params"
_TRUE, _FALSE = frozenset({"true"}), frozenset({"false"})


def parse_invocation(validator: RequestValidator, mimetype: str, body: bytes) -> ParsedRequest:
    if mimetype == JSON:
        return _parse_json(validator, _json_with_nan(body))
    if mimetype == CSV:
        return validator.parse_records(list(_csv_records(validator, body)), _line_of)
    if mimetype == JSONLINES:
        return validator.parse_records(list(_jsonl_records(validator, body)), _line_of)
    raise UnsupportedMediaType(
        f"send {JSON} (a record, a batch or an MLflow scoring form), {CSV} or {JSONLINES}"
    )


def _json_with_nan(body: bytes) -> Any:
    """Strict JSON, except that MLflow's forms may hold NaN for a missing value: MLflow's own
    client writes a DataFrame's missing values so (``json.dumps`` of ``to_dict("split")``).
    NaN is then null, which only a nullable feature accepts; Infinity stays refused."""
    try:
        return parse_json(body)
    except InvalidJSON as strict:
        if b"NaN" not in body:
            raise
        try:
            payload = json.loads(body, parse_constant=_nan_is_null)
        except (ValueError, RecursionError):
            raise strict from None
        if not (isinstance(payload, dict) and any(key in payload for key in MLFLOW_FORMS)):
            raise strict from None
        return payload


def _nan_is_null(name: str) -> None:
    if name != "NaN":
        raise ValueError(name)


def _line_of(index: int) -> str:
    return f"line {index + 1}"


# --- MLflow's JSON forms --------------------------------------------------------------------


def _parse_json(validator: RequestValidator, payload: Any) -> ParsedRequest:
    names = validator.feature_names
    forms = [key for key in MLFLOW_FORMS if isinstance(payload, dict) and key in payload]
    forms = [key for key in forms if key not in names]
    own_batch = forms == [BATCH_KEY] and _records_or_not_a_list(payload[BATCH_KEY])
    if not forms or (own_batch and PARAMS not in payload):
        return validator.parse_payload(payload)  # /predict's own record and batch
    extra = sorted(str(key) for key in payload if key not in (*forms, PARAMS))
    if len(forms) > 1 or extra:
        raise InvalidInput(
            f"an MLflow scoring request has exactly one of {', '.join(MLFLOW_FORMS)} "
            f"(and optionally {PARAMS!r}); got {', '.join(forms + extra)[:200]}",
            code="unknown_field",
        )
    if payload.get(PARAMS) not in (None, {}):
        raise InvalidInput(f"this model takes no {PARAMS!r}", code="unknown_field")
    form = forms[0]
    value = payload[form]
    if form == "dataframe_split":
        records = _split_records(value, names, validator.max_rows)
        return validator.parse_records(records, _at("dataframe_split.data"))
    if form == "dataframe_records" and not isinstance(value, list):
        raise InvalidInput(f"'dataframe_records' must be an array of records, got {kind_of(value)}")
    if isinstance(value, dict):
        return validator.parse_records(_column_records(value, names, form), _at(form))
    if not isinstance(value, list):
        raise InvalidInput(
            f"{form!r} must be an array or an object of columns, got {kind_of(value)}"
        )
    records = [
        _row_record(item, names, f"{form}[{index}]") if isinstance(item, list) else item
        for index, item in enumerate(_bounded(value, validator.max_rows))
    ]
    return validator.parse_records(records, _at(form))


def _records_or_not_a_list(value: Any) -> bool:
    return not isinstance(value, list) or not any(isinstance(item, list) for item in value)


def _at(form: str) -> Callable[[int], str]:
    return lambda index: f"{form}[{index}]"


def _bounded(items: list[Any], max_rows: int) -> list[Any]:
    if len(items) > max_rows:
        raise PayloadTooLarge(
            f"the batch has {len(items)} rows; at most {max_rows} (MAX_BATCH_ROWS)",
            code="batch_too_large",
        )
    return items


def _row_record(row: list[Any], columns: Sequence[str], where: str) -> dict[str, Any]:
    if len(row) != len(columns):
        raise InvalidInput(
            f"{where!r} has {len(row)} values; expected {len(columns)} ({', '.join(columns)})"[
                :300
            ],
            code="wrong_row_length",
        )
    return dict(zip(columns, row, strict=True))


def _check_columns(columns: Sequence[Any], names: Sequence[str], where: str) -> None:
    missing = [name for name in names if name not in columns]
    if missing:
        raise InvalidInput(
            f"{where} lacks the feature {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            code="missing_field",
        )
    unknown = [str(column) for column in columns if column not in names]
    if unknown:
        raise InvalidInput(
            f"{where} names unknown field {field_path('', unknown[0])}; expected only "
            f"{', '.join(names)}",
            code="unknown_field",
        )
    if len(set(columns)) != len(columns):
        raise InvalidInput(f"{where} names a feature twice", code="duplicate_field")


def _split_records(value: Any, names: Sequence[str], max_rows: int) -> list[Any]:
    """pandas' "split" orient, as MLflow reads it: data, optional columns and index."""
    if not isinstance(value, dict):
        raise InvalidInput(f"'dataframe_split' must be an object, got {kind_of(value)}")
    extra = sorted(str(key) for key in value if key not in ("columns", "data", "index"))
    if extra or "data" not in value:
        raise InvalidInput(
            "'dataframe_split' has 'data' and optionally 'columns' and 'index'"
            + (f"; got {field_path('', extra[0])}" if extra else ""),
            code="unknown_field" if extra else "missing_field",
        )
    columns, data, index = value.get("columns", list(names)), value["data"], value.get("index")
    if not isinstance(columns, list):
        raise InvalidInput(f"'dataframe_split.columns' must be an array, got {kind_of(columns)}")
    _check_columns(columns, names, "'dataframe_split.columns'")
    if not isinstance(data, list):
        raise InvalidInput(f"'dataframe_split.data' must be an array of rows, got {kind_of(data)}")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise InvalidInput("'dataframe_split.index' must be an array as long as 'data'")
    where = "dataframe_split.data"
    return [
        _row_record(row, columns, f"{where}[{i}]") if isinstance(row, list) else row
        for i, row in enumerate(_bounded(data, max_rows))
    ]


def _column_records(value: dict[str, Any], names: Sequence[str], form: str) -> list[Any]:
    """``{feature: [values]}``: one array per feature, all as long."""
    _check_columns(list(value), names, repr(form))
    lengths = set()
    for name, column in value.items():
        if not isinstance(column, list):
            raise InvalidInput(
                f"{field_path(form + '.', name)} must be an array of values, got {kind_of(column)}"
            )
        lengths.add(len(column))
    if len(lengths) != 1:
        raise InvalidInput(f"the columns of {form!r} differ in length", code="wrong_row_length")
    ordered = [value[name] for name in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*ordered, strict=True)]


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
            _check_columns(cells, self.names, f"the header (line {number})")
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


def _csv_records(validator: RequestValidator, body: bytes) -> Iterator[dict[str, Any]]:
    reader = CsvRecords(validator)
    for number, line in _lines(body, validator.max_rows):
        record = reader.record(csv_cells(line, number), number)
        if record is not None:
            yield record


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
    return _row_record(value, names, f"line {number}") if isinstance(value, list) else value


def _jsonl_records(validator: RequestValidator, body: bytes) -> Iterator[Any]:
    names = validator.feature_names
    for number, line in _lines(body, validator.max_rows - 1):
        yield jsonl_record(line, names, number)


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
