"""Request validation against the model's own input schema (from its manifest).

A body is one record ``{"age": 42, ...}`` or ``{"instances": [record, ...]}``. Every feature
must be present with a finite JSON number (not a bool, string, null, NaN or Infinity) and no
other field may appear. Messages name the field and the problem, never echo the payload.
"""

from __future__ import annotations

import json
import operator
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from inference.errors import InvalidInput, InvalidJSON, PayloadTooLarge

BATCH_KEY = "instances"
_NAME_LIMIT = 64
_FLOAT_MAX = sys.float_info.max
_NUMBER_TYPES = frozenset({int, float})
_SMALL = 4  # up to this many records, the exact checks are cheaper than numpy's set-up


@dataclass(frozen=True)
class ParsedRequest:
    rows: npt.NDArray[np.float64]
    batch: bool


def _refuse_constant(name: str) -> Any:
    # json.loads (and so Flask) accepts NaN, Infinity and -Infinity; JSON does not.
    raise InvalidJSON(f"body is not valid JSON: {name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """Parse strict JSON: orjson (several times faster than the standard library, and it
    refuses NaN, Infinity and out-of-range numbers itself). When it refuses, the standard
    library parses again only to explain: a number too large for float64 then reaches the
    schema checks, which name its field."""
    if not body:
        raise InvalidJSON("body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except InvalidJSON:
        raise
    except RecursionError:
        raise InvalidJSON("body is not valid JSON: nested too deeply") from None
    except UnicodeDecodeError:
        raise InvalidJSON("body is not valid JSON: not UTF-8 text") from None
    except ValueError as exc:
        problem = exc.msg if isinstance(exc, json.JSONDecodeError) else "cannot be parsed"
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise InvalidJSON(f"body is not valid JSON: {problem}{where}") from None


def _field(prefix: str, key: object) -> str:
    """A field's path for a message: bounded, quoted, control characters escaped."""
    text = str(key)
    return repr(prefix + (text if len(text) <= _NAME_LIMIT else text[:_NAME_LIMIT] + "..."))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class RequestValidator:
    def __init__(
        self,
        feature_names: Sequence[str],
        max_rows: int,
        integer_features: Collection[str] = (),
    ) -> None:
        self.feature_names = tuple(feature_names)
        self._features = frozenset(self.feature_names)
        self._integers = frozenset(integer_features)
        names = self.feature_names
        getter = operator.itemgetter(*names)
        self._values_of: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            getter if len(names) > 1 else lambda record: (record[names[0]],)
        )
        self._integer_columns = [
            index for index, name in enumerate(self.feature_names) if name in self._integers
        ]
        self.max_rows = max_rows

    def parse(self, body: bytes) -> ParsedRequest:
        payload = parse_json(body)
        if not isinstance(payload, dict):
            raise InvalidInput(
                f"body must be a JSON object (one record or {{{BATCH_KEY!r}: [...]}}), "
                f"got {_kind(payload)}",
                code="not_an_object",
            )
        if BATCH_KEY in payload and BATCH_KEY not in self._features:
            if len(payload) != 1:
                extra = sorted(str(key) for key in payload if key != BATCH_KEY)[0]
                raise InvalidInput(
                    f"unknown field {_field('', extra)} next to {BATCH_KEY!r}",
                    code="unknown_field",
                )
            records = payload[BATCH_KEY]
            if not isinstance(records, list):
                raise InvalidInput(
                    f"{BATCH_KEY!r} must be an array of records, got {_kind(records)}"
                )
            if not records:
                raise InvalidInput(
                    f"{BATCH_KEY!r} is empty; send at least one record", code="empty_batch"
                )
            if len(records) > self.max_rows:
                raise PayloadTooLarge(
                    f"{BATCH_KEY!r} has {len(records)} records; at most {self.max_rows} "
                    "(MAX_BATCH_ROWS)",
                    code="batch_too_large",
                )
            return ParsedRequest(self._rows(records, batch=True), batch=True)
        return ParsedRequest(self._rows([payload], batch=False), batch=False)

    def _rows(self, records: list[Any], batch: bool) -> npt.NDArray[np.float64]:
        """Validated rows as a float64 array. For a batch, a vectorised pass for the common case
        of valid input; any failure in it re-runs the record-by-record checks, which find the
        problem and name it (they accept exactly what the fast pass accepts)."""
        if len(records) > _SMALL:
            rows = self._fast_rows(records)
            if rows is not None:
                return rows
        checked = [
            self._row(record, f"{BATCH_KEY}[{index}]" if batch else "")
            for index, record in enumerate(records)
        ]
        return np.array(checked, dtype=np.float64)

    def _fast_rows(self, records: list[Any]) -> npt.NDArray[np.float64] | None:
        # map() keeps these loops in C: this is most of a valid batch's validation time.
        if set(map(type, records)) != {dict}:
            return None
        width = len(self.feature_names)
        # Exactly `width` keys, and every feature among them (else KeyError): the same keys.
        if set(map(len, records)) != {width}:
            return None
        try:
            values = list(chain.from_iterable(map(self._values_of, records)))
        except KeyError:
            return None
        # bool is not in the set: true/false fall through to the exact checks.
        if not set(map(type, values)) <= _NUMBER_TYPES:
            return None
        try:
            flat = np.fromiter(values, dtype=np.float64, count=len(values))
        except OverflowError:  # an integer beyond float64
            return None
        rows = flat.reshape(len(records), width)
        if not np.isfinite(rows).all():
            return None
        if self._integer_columns:
            integral = rows[:, self._integer_columns]
            if not np.array_equal(integral, np.trunc(integral)):
                return None
        return rows

    def _row(self, record: object, where: str) -> list[float]:
        prefix = f"{where}." if where else ""
        if not isinstance(record, dict):
            raise InvalidInput(
                f"{where!r} must be an object of features, got {_kind(record)}",
                code="not_an_object",
            )
        if len(record) != len(self._features) or not self._features.issuperset(record):
            self._explain_fields(record, prefix)
        row: list[float] = []
        for name in self.feature_names:
            value = record[name]
            kind = type(value)
            # bool is a subclass of int: compare exact types so true/false are refused.
            if kind is not float and kind is not int:
                raise InvalidInput(
                    f"field {_field(prefix, name)} must be a number, got {_kind(value)}",
                    code="invalid_value",
                )
            # json.loads turns 1e999 into inf; a huge integer would overflow float64.
            if not (-_FLOAT_MAX <= value <= _FLOAT_MAX):
                raise InvalidInput(
                    f"field {_field(prefix, name)} must be a finite number, got one out of range",
                    code="invalid_value",
                )
            # The schema's "integer" features take 6 or 6.0, not 6.5.
            if kind is float and name in self._integers and not value.is_integer():
                raise InvalidInput(
                    f"field {_field(prefix, name)} must be an integer, got a fractional number",
                    code="invalid_value",
                )
            row.append(value)
        return row

    def _explain_fields(self, record: dict[Any, Any], prefix: str) -> None:
        missing = [name for name in self.feature_names if name not in record]
        if missing:
            raise InvalidInput(
                f"missing field {_field(prefix, missing[0])}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                code="missing_field",
            )
        unknown = sorted(str(key) for key in record if key not in self._features)
        raise InvalidInput(
            f"unknown field {_field(prefix, unknown[0])}; expected only "
            f"{', '.join(self.feature_names)}",
            code="unknown_field",
        )
