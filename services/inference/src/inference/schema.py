"""The serving side of the manifest's input schema: what each feature accepts.

Numbers are accepted within wide bounds around the training range: ``INPUT_RANGE_MARGIN``
(default 10) spans of ``max - min`` on either side, so ``age`` trained on 18..80 takes
-602..700 (a single-valued range uses ``max(|value|, 1)`` as its span). The bounds keep values
that only break the arithmetic (``1e308``) away from the model; values outside the training
range but inside the bounds are served and counted per feature (metrics.py). Categorical
features take the training categories (any string when the model was trained to ignore unknown
ones); booleans take JSON ``true``/``false``; ``null`` only where the training data had missing
values.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from artifact_contract import Feature

from inference.errors import InvalidInput

NAME_LIMIT = 64
SHOWN_CATEGORIES = 5
_FLOAT_MAX = sys.float_info.max
# Labels of inference_out_of_range_values_total's ``kind``.
BELOW, ABOVE, UNKNOWN = "below_min", "above_max", "unknown_category"


def field_path(prefix: str, key: object) -> str:
    """A field's path for a message: bounded, quoted, control characters escaped."""
    text = str(key)
    return repr(prefix + (text if len(text) <= NAME_LIMIT else text[:NAME_LIMIT] + "..."))


def kind_of(value: object) -> str:
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
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def accepted_bounds(low: float, high: float, margin: float) -> tuple[float, float]:
    span = high - low if high > low else max(abs(high), 1.0)
    # Never wider than float64: infinity stays refused, however large the margin.
    return max(low - margin * span, -_FLOAT_MAX), min(high + margin * span, _FLOAT_MAX)


@dataclass(frozen=True)
class FieldRule:
    """One feature as a request must give it."""

    name: str
    type: str  # "number", "integer", "boolean" or "categorical"
    nullable: bool = False
    min: float | None = None  # training range (numbers)
    max: float | None = None
    low: float | None = None  # accepted bounds (numbers)
    high: float | None = None
    categories: frozenset[str] = frozenset()
    shown: tuple[str, ...] = ()  # a few sorted categories, for messages
    accepts_unknown: bool = False
    types: frozenset[object] = field(default=frozenset(), compare=False)  # Python types accepted

    @classmethod
    def of(cls, feature: Feature, margin: float) -> FieldRule:
        low = high = None
        if feature.min is not None and feature.max is not None:
            low, high = accepted_bounds(feature.min, feature.max, margin)
        categories = tuple(feature.categories or ())
        types: set[object] = {bool} if feature.type == "boolean" else {str}
        if feature.type in ("number", "integer"):
            types = {int, float}
        return cls(
            name=feature.name,
            type=feature.type,
            nullable=feature.nullable,
            min=feature.min,
            max=feature.max,
            low=low,
            high=high,
            categories=frozenset(categories),
            shown=tuple(sorted(categories)[:SHOWN_CATEGORIES]),
            accepts_unknown=feature.accepts_unknown,
            types=frozenset(types | ({type(None)} if feature.nullable else set())),
        )

    @property
    def numeric(self) -> bool:
        return self.type in ("number", "integer")

    def expects(self) -> str:
        # An integer feature also says "a number" here: 6.0 is accepted, 6.5 gets its own message.
        return {
            "number": "a number",
            "integer": "a number",
            "boolean": "a boolean (true or false)",
            "categorical": "a string (one of the training categories)",
        }.get(self.type, self.type)

    def refuse_bounds(self, prefix: str) -> InvalidInput:
        return InvalidInput(
            f"field {field_path(prefix, self.name)} must be between {self.low:.6g} and "
            f"{self.high:.6g} (the training range {self.min:.6g} to {self.max:.6g}, widened "
            "by INPUT_RANGE_MARGIN spans either side)",
            code="out_of_range",
        )

    def refuse_category(self, prefix: str) -> InvalidInput:
        shown = ", ".join(repr(c[:NAME_LIMIT]) for c in self.shown)
        more = len(self.categories) - len(self.shown)
        return InvalidInput(
            f"field {field_path(prefix, self.name)} is not one of the training categories "
            f"({shown}{f' and {more} more' if more > 0 else ''}; GET /model lists them)",
            code="unknown_category",
        )

    def check(self, value: Any, prefix: str, outside: list[tuple[str, str]]) -> Any:
        """``value`` if this feature accepts it, else InvalidInput naming the field. Values
        served although outside the training data are appended to ``outside``."""
        kind = type(value)
        if value is None:
            if self.nullable:
                return None
            raise self._refuse_type(value, prefix)
        if self.type == "categorical":
            if kind is not str:
                raise self._refuse_type(value, prefix)
            if value not in self.categories:
                if not self.accepts_unknown:
                    raise self.refuse_category(prefix)
                outside.append((self.name, UNKNOWN))
            return value
        if self.type == "boolean":
            if kind is not bool:
                raise self._refuse_type(value, prefix)
            return value
        # number or integer; bool is a subclass of int: exact types so true/false are refused.
        if kind is not float and kind is not int:
            raise self._refuse_type(value, prefix)
        assert self.low is not None and self.high is not None
        assert self.min is not None and self.max is not None
        if not (self.low <= value <= self.high):
            if not (-_FLOAT_MAX <= value <= _FLOAT_MAX):  # 1e999 parsed as inf; a huge integer
                raise InvalidInput(
                    f"field {field_path(prefix, self.name)} must be a finite number, got one "
                    "out of range",
                    code="invalid_value",
                )
            raise self.refuse_bounds(prefix)
        if kind is float and self.type == "integer" and not value.is_integer():
            raise InvalidInput(
                f"field {field_path(prefix, self.name)} must be an integer, got a fractional "
                "number",
                code="invalid_value",
            )
        if value < self.min:
            outside.append((self.name, BELOW))
        elif value > self.max:
            outside.append((self.name, ABOVE))
        return value

    def check_column(
        self, values: tuple[Any, ...], outside: list[tuple[str, str, int]]
    ) -> list[Any] | None:
        """One feature's values across a batch, if ``check`` would accept every one of them
        (with the same counts in ``outside``); else None, and ``check`` finds the culprit."""
        if not set(map(type, values)) <= self.types:
            return None
        present = [v for v in values if v is not None] if self.nullable else values
        if self.type == "categorical":
            unknown = set(present) - self.categories
            if unknown and not self.accepts_unknown:
                return None
            if unknown:
                count = sum(1 for v in present if v not in self.categories)
                outside.append((self.name, UNKNOWN, count))
        elif self.numeric:
            assert self.low is not None and self.high is not None
            assert self.min is not None and self.max is not None
            try:
                array = np.fromiter(present, dtype=np.float64, count=len(present))
            except OverflowError:  # an integer beyond float64
                return None
            if not ((array >= self.low) & (array <= self.high)).all():
                return None
            if self.type == "integer" and not np.array_equal(array, np.trunc(array)):
                return None
            for kind, count in (
                (BELOW, (array < self.min).sum()),
                (ABOVE, (array > self.max).sum()),
            ):
                if count:
                    outside.append((self.name, kind, int(count)))
        return list(values)

    def _refuse_type(self, value: Any, prefix: str) -> InvalidInput:
        return InvalidInput(
            f"field {field_path(prefix, self.name)} must be {self.expects()}, got {kind_of(value)}",
            code="invalid_value",
        )


def field_rules(features: Iterable[Feature], margin: float) -> tuple[FieldRule, ...]:
    return tuple(FieldRule.of(feature, margin) for feature in features)
