"""MLflow's scoring forms on /invocations (formats.py), as ``mlflow.pyfunc.scoring_server``
reads them: ``{"dataframe_split": {"columns", "data", "index"}}``, ``{"dataframe_records":
[record, ...]}``, ``{"instances": ...}`` and ``{"inputs": ...}`` (records, rows in schema order,
or ``{feature: [values]}`` columns), with an optional empty ``"params"``. Each becomes records
for RequestValidator, named by their place in the form; /predict's own record and batch pass
through unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from inference.errors import BATCH_KEY, InvalidInput, InvalidJSON, PayloadTooLarge
from inference.schema import field_path, kind_of
from inference.validation import ParsedRequest, RequestValidator, parse_json

MLFLOW_FORMS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS = "params"


def json_with_nan(body: bytes) -> Any:
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


def parse_mlflow(validator: RequestValidator, payload: Any) -> ParsedRequest:
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
        row_record(item, names, f"{form}[{index}]") if isinstance(item, list) else item
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


def row_record(row: list[Any], columns: Sequence[str], where: str) -> dict[str, Any]:
    if len(row) != len(columns):
        raise InvalidInput(
            f"{where!r} has {len(row)} values; expected {len(columns)} ({', '.join(columns)})"[
                :300
            ],
            code="wrong_row_length",
        )
    return dict(zip(columns, row, strict=True))


def check_columns(columns: Sequence[Any], names: Sequence[str], where: str) -> None:
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
    check_columns(columns, names, "'dataframe_split.columns'")
    if not isinstance(data, list):
        raise InvalidInput(f"'dataframe_split.data' must be an array of rows, got {kind_of(data)}")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise InvalidInput("'dataframe_split.index' must be an array as long as 'data'")
    where = "dataframe_split.data"
    return [
        row_record(row, columns, f"{where}[{i}]") if isinstance(row, list) else row
        for i, row in enumerate(_bounded(data, max_rows))
    ]


def _column_records(value: dict[str, Any], names: Sequence[str], form: str) -> list[Any]:
    """``{feature: [values]}``: one array per feature, all as long."""
    check_columns(list(value), names, repr(form))
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
