"""Request validation against the model's own input schema (from its manifest).

A body is one record ``{"age": 42, ...}`` or ``{"instances": [record, ...]}``. Every feature
must be present, as its schema says (schema.py), and no other field may appear. Messages name the
field and the problem, never echo the payload.

Models of manifest versions 1 and 2 (numbers only) get a float64 array in schema order; version
3 models get columns of validated values, from which the model builds its DataFrame.
"""

from __future__ import annotations

import json
import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from inference.errors import BATCH_KEY, InvalidInput, InvalidJSON, PayloadTooLarge
from inference.schema import ABOVE, BELOW, FieldRule, field_path, kind_of

_NUMBER_TYPES = frozenset({int, float})
_SMALL = 4  # up to this many records, the exact checks are cheaper than numpy's set-up

Rows = npt.NDArray[np.float64]
# The general path's input: one list of validated values per feature (None for null).
Columns = dict[str, list[Any]]


@dataclass(frozen=True)
class ParsedRequest:
    rows: Rows | Columns
    batch: bool
    # (feature, kind, count) of values served although outside the training data.
    outside: list[tuple[str, str, int]] = field(default_factory=list)


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


class RequestValidator:
    def __init__(self, rules: Sequence[FieldRule], max_rows: int, frame: bool = False) -> None:
        self.rules = tuple(rules)
        self.feature_names = tuple(rule.name for rule in self.rules)
        self.frame = frame
        self._features = frozenset(self.feature_names)
        names = self.feature_names
        getter = operator.itemgetter(*names)
        self._values_of: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            getter if len(names) > 1 else lambda record: (record[names[0]],)
        )
        self._vectorised = not frame and all(rule.numeric for rule in self.rules)
        self._integer_columns = [
            index for index, rule in enumerate(self.rules) if rule.type == "integer"
        ]
        if self._vectorised:
            self._low = np.array([rule.low for rule in self.rules], dtype=np.float64)
            self._high = np.array([rule.high for rule in self.rules], dtype=np.float64)
            self._min = np.array([rule.min for rule in self.rules], dtype=np.float64)
            self._max = np.array([rule.max for rule in self.rules], dtype=np.float64)
        self.max_rows = max_rows

    def parse(self, body: bytes) -> ParsedRequest:
        return self.parse_payload(parse_json(body))

    def parse_records(self, records: list[Any], where: Callable[[int], str]) -> ParsedRequest:
        """A batch another format gave as records (formats.py), with the checks and bounds of
        ``{"instances": records}``; ``where(i)`` names record i in messages."""
        if not records:
            raise InvalidInput("the batch is empty; send at least one record", code="empty_batch")
        if len(records) > self.max_rows:
            raise PayloadTooLarge(
                f"the batch has {len(records)} records; at most {self.max_rows} (MAX_BATCH_ROWS)",
                code="batch_too_large",
            )
        return self._parse(records, batch=True, where=where)

    def parse_payload(self, payload: Any) -> ParsedRequest:
        if not isinstance(payload, dict):
            raise InvalidInput(
                f"body must be a JSON object (one record or {{{BATCH_KEY!r}: [...]}}), "
                f"got {kind_of(payload)}",
                code="not_an_object",
            )
        if BATCH_KEY in payload and BATCH_KEY not in self._features:
            if len(payload) != 1:
                extra = sorted(str(key) for key in payload if key != BATCH_KEY)[0]
                raise InvalidInput(
                    f"unknown field {field_path('', extra)} next to {BATCH_KEY!r}",
                    code="unknown_field",
                )
            records = payload[BATCH_KEY]
            if not isinstance(records, list):
                raise InvalidInput(
                    f"{BATCH_KEY!r} must be an array of records, got {kind_of(records)}"
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
            return self._parse(records, batch=True)
        return self._parse([payload], batch=False)

    def _parse(
        self, records: list[Any], batch: bool, where: Callable[[int], str] | None = None
    ) -> ParsedRequest:
        """Validated rows. For a batch, a pass over whole columns first (numpy for version 1/2
        models, FieldRule.check_column for version 3) for the common case of valid input; any
        failure in it re-runs the record-by-record checks, which find the problem and name it
        (they accept exactly what the column pass accepts)."""
        if len(records) > _SMALL:
            parsed = self._fast_columns(records) if self.frame else self._fast_rows(records)
            if parsed is not None:
                return parsed
        outside: list[tuple[str, str]] = []
        checked = [
            self._row(
                record,
                where(index) if where else f"{BATCH_KEY}[{index}]" if batch else "",
                outside,
            )
            for index, record in enumerate(records)
        ]
        counts = [(*key, count) for key, count in Counter(outside).items()] if outside else []
        if self.frame:
            columns = {
                name: list(column)
                for name, column in zip(self.feature_names, zip(*checked, strict=True), strict=True)
            }
            return ParsedRequest(columns, batch, counts)
        return ParsedRequest(np.array(checked, dtype=np.float64), batch, counts)

    def _same_keys(self, records: list[Any]) -> list[tuple[Any, ...]] | None:
        """Each record's values in schema order, if every record is an object holding exactly
        the schema's features (map() keeps these loops in C)."""
        if set(map(type, records)) != {dict}:
            return None
        # Exactly `width` keys, and every feature among them (else KeyError): the same keys.
        if set(map(len, records)) != {len(self.feature_names)}:
            return None
        try:
            return list(map(self._values_of, records))
        except KeyError:
            return None

    def _fast_columns(self, records: list[Any]) -> ParsedRequest | None:
        rows = self._same_keys(records)
        if rows is None:
            return None
        columns: Columns = {}
        outside: list[tuple[str, str, int]] = []
        for rule, values in zip(self.rules, zip(*rows, strict=True), strict=True):
            checked = rule.check_column(values, outside)
            if checked is None:
                return None
            columns[rule.name] = checked
        return ParsedRequest(columns, True, outside)

    def _fast_rows(self, records: list[Any]) -> ParsedRequest | None:
        if not self._vectorised:
            return None
        records_values = self._same_keys(records)
        if records_values is None:
            return None
        width = len(self.feature_names)
        values = list(chain.from_iterable(records_values))
        # bool is not in the set: true/false fall through to the exact checks.
        if not set(map(type, values)) <= _NUMBER_TYPES:
            return None
        try:
            flat = np.fromiter(values, dtype=np.float64, count=len(values))
        except OverflowError:  # an integer beyond float64
            return None
        rows = flat.reshape(len(records), width)
        # Within the accepted bounds (which also refuses NaN and infinities).
        if not ((rows >= self._low) & (rows <= self._high)).all():
            return None
        if self._integer_columns:
            integral = rows[:, self._integer_columns]
            if not np.array_equal(integral, np.trunc(integral)):
                return None
        outside: list[tuple[str, str, int]] = []
        for kind, counts in (
            (BELOW, (rows < self._min).sum(axis=0)),
            (ABOVE, (rows > self._max).sum(axis=0)),
        ):
            outside.extend(
                (self.feature_names[column], kind, int(counts[column]))
                for column in np.flatnonzero(counts)
            )
        return ParsedRequest(rows, True, outside)

    def _row(self, record: object, where: str, outside: list[tuple[str, str]]) -> list[Any]:
        prefix = f"{where}." if where else ""
        if not isinstance(record, dict):
            raise InvalidInput(
                f"{where!r} must be an object of features, got {kind_of(record)}",
                code="not_an_object",
            )
        if len(record) != len(self._features) or not self._features.issuperset(record):
            self._explain_fields(record, prefix)
        return [rule.check(record[rule.name], prefix, outside) for rule in self.rules]

    def _explain_fields(self, record: dict[Any, Any], prefix: str) -> None:
        missing = [name for name in self.feature_names if name not in record]
        if missing:
            raise InvalidInput(
                f"missing field {field_path(prefix, missing[0])}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                code="missing_field",
            )
        unknown = sorted(str(key) for key in record if key not in self._features)
        raise InvalidInput(
            f"unknown field {field_path(prefix, unknown[0])}; expected only "
            f"{', '.join(self.feature_names)}",
            code="unknown_field",
        )
