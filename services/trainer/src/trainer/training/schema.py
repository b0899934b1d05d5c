"""Which columns are features, what type each is, and whether the data can be trained on at all.

Types are inferred from the parsed frame: booleans (``True``/``False``, blanks allowed),
integers (an integer column without missing values), numbers (any other numeric column) and
categoricals (strings; the categories are recorded). The task follows the target: numeric ->
regression, string or boolean -> classification, unless ``--task`` says otherwise. Rows without
a target are dropped and counted; missing feature values stay (the model pipeline imputes them).
Anything that cannot be trained on is one DataError line that names the column and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from artifact_contract import Label

from trainer.errors import DataError
from trainer.training.data import MIN_ROWS

TASKS = ("regression", "classification")
# A string column with more distinct values than this, or with distinct values in more than
# IDENTIFIER_SHARE of its rows, is an identifier (a name, an id), not a category.
MAX_CATEGORIES = 255  # also HistGradientBoosting's limit for a categorical feature
IDENTIFIER_SHARE = 0.5
IDENTIFIER_MIN_DISTINCT = 20


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # number | integer | boolean | categorical
    nullable: bool  # the data had missing values here (the pipeline imputes them)


@dataclass(frozen=True)
class TableSchema:
    features: tuple[Column, ...]
    target: str
    task: str
    classes: tuple[Label, ...]  # classification labels, sorted (the model's classes_ order)
    dropped_rows: int  # rows without a target

    @property
    def feature_names(self) -> list[str]:
        return [column.name for column in self.features]

    def of_type(self, *types: str) -> list[str]:
        return [column.name for column in self.features if column.type in types]


def prepare(
    frame: pd.DataFrame,
    *,
    source: str,
    target: str,
    features: tuple[str, ...] | None = None,
    drop: tuple[str, ...] = (),
    task: str | None = None,
    holdout_fraction: float = 0.2,
) -> tuple[pd.DataFrame, TableSchema]:
    """The trainable frame (features in schema order, then the target) and its schema."""
    names = [str(name) for name in frame.columns]
    frame = frame.set_axis(names, axis=1)
    _require_columns(source, names, [target], "--target")
    _require_columns(source, names, list(features or ()), "--features")
    _require_columns(source, names, list(drop), "--drop")
    if features is not None:
        chosen = [name for name in features if name not in drop]
    else:
        chosen = [name for name in names if name != target and name not in drop]
    if target in chosen:
        raise DataError(f"{source}: the target {target!r} cannot also be a feature")
    if not chosen:
        raise DataError(f"{source}: no feature columns left besides the target {target!r}")

    has_target = frame[target].notna()
    dropped = int((~has_target).sum())
    frame = frame.loc[has_target, [*chosen, target]].reset_index(drop=True)
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"{source}: too few rows: {len(frame)} with a target {target!r} "
            f"(need at least {MIN_ROWS})"
        )
    task = task or _infer_task(frame[target])
    labels, classes = _target(frame[target], task, source, holdout_fraction)
    columns = []
    values: dict[str, pd.Series[Any]] = {}
    for name in chosen:
        column, series = _feature(frame[name], name, source)
        columns.append(column)
        values[name] = series
    values[target] = labels
    schema = TableSchema(
        features=tuple(columns), target=target, task=task, classes=classes, dropped_rows=dropped
    )
    # Column labels as plain Python strings (pandas 3 would make an arrow-string index, whose
    # comparison with a range MLflow's input-example writer trips over).
    prepared = pd.DataFrame(values)
    return prepared.set_axis(pd.Index(list(values), dtype=object), axis=1), schema


def _require_columns(source: str, names: list[str], wanted: list[str], flag: str) -> None:
    unknown = [name for name in wanted if name not in names]
    if unknown:
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise DataError(
            f"{source}: no column {unknown[0]!r} (for {flag}); the columns are: {shown}"
        )


def _infer_task(series: pd.Series[Any]) -> str:
    if pd.api.types.is_bool_dtype(series) or _all_bool(series):
        return "classification"
    if pd.api.types.is_numeric_dtype(series) or _mostly_numbers(series):
        # Mostly numbers with a stray string: regression, whose check names the string.
        return "regression"
    return "classification"


def _mostly_numbers(series: pd.Series[Any]) -> bool:
    present = series.dropna()
    return len(present) > 0 and bool(pd.to_numeric(present, errors="coerce").notna().mean() >= 0.9)


def _target(
    series: pd.Series[Any], task: str, source: str, holdout_fraction: float
) -> tuple[pd.Series[Any], tuple[Label, ...]]:
    name = str(series.name)
    if task == "regression":
        numeric = pd.to_numeric(series, errors="coerce")
        bad = numeric.isna()
        if bool(bad.any()) or pd.api.types.is_bool_dtype(series) or _all_bool(series):
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1 if bad.any() else 1
            raise DataError(
                f"{source}: target {name!r} is not numeric (value {series.iloc[row - 1]!r}, "
                f"row {row} of the rows with a target); use --task classification for labels"
            )
        values = numeric.astype("float64")
        if not np.isfinite(values.to_numpy()).all():
            raise DataError(f"{source}: target {name!r} has infinite values")
        if values.nunique() < 2:
            raise DataError(f"{source}: target {name!r} is constant ({values.iloc[0]:g})")
        return values, ()
    labels = _labels(series, source)
    counts = labels.value_counts()
    if len(counts) < 2:
        raise DataError(
            f"{source}: target {name!r} has a single class {labels.iloc[0]!r}; "
            "classification needs at least 2"
        )
    # A stratified split puts round(count * fraction) rows of a class in the holdout: each class
    # needs at least one there (to be scored) and one in the training part.
    needed = max(2, math.ceil(1 / holdout_fraction))
    rare = counts[counts < needed]
    if len(rare):
        label, count = rare.index[0], int(rare.iloc[0])
        raise DataError(
            f"{source}: class {label!r} of target {name!r} has {count} row(s); with a holdout "
            f"of {holdout_fraction:g} each class needs at least {needed} "
            f"({len(rare)} class(es) too rare)"
        )
    classes = tuple(sorted(counts.index.tolist()))
    return labels, classes


def _labels(series: pd.Series[Any], source: str) -> pd.Series[Any]:
    """Class labels: booleans, integers or strings (JSON scalars), in a dtype scikit-learn reads
    as discrete classes (an object column of integers would be "unknown" to it)."""
    name = str(series.name)
    if pd.api.types.is_bool_dtype(series) or _all_bool(series):
        return series.map(bool).astype(bool)
    if pd.api.types.is_numeric_dtype(series):
        numbers = series.astype("float64")
        if not all(float(value).is_integer() for value in numbers):
            raise DataError(
                f"{source}: target {name!r} holds non-integer numbers; classification needs "
                "labels (strings, integers or booleans): use --task regression"
            )
        return numbers.astype("int64")
    return series.map(str).astype(object)


def _all_bool(series: pd.Series[Any]) -> bool:
    present = series.dropna()
    return len(present) > 0 and all(isinstance(value, bool | np.bool_) for value in present)


def _feature(series: pd.Series[Any], name: str, source: str) -> tuple[Column, pd.Series[Any]]:
    drop_hint = f"drop it with --drop {name}"
    present = series.dropna()
    if present.empty:
        raise DataError(f"{source}: column {name!r} has no values; {drop_hint}")
    nullable = len(present) < len(series)
    if pd.api.types.is_bool_dtype(series) or _all_bool(series):
        column = Column(name, "boolean", nullable)
        # Missing as NaN (not pandas' NA, which scikit-learn's imputers do not recognise).
        objects = series.astype(object)
        values = objects.map(lambda value: np.nan if pd.isna(value) else bool(value))
        values = values.astype(object if nullable else bool)
    elif pd.api.types.is_numeric_dtype(series):
        values = series.astype("float64")
        if not np.isfinite(values.dropna().to_numpy()).all():
            raise DataError(f"{source}: column {name!r} has infinite values")
        integer = pd.api.types.is_integer_dtype(series) and not nullable
        column = Column(name, "integer" if integer else "number", nullable)
        if integer:
            values = series.astype("int64")
    elif pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series):
        column, values = _categorical(series, name, source, nullable)
    else:
        raise DataError(
            f"{source}: column {name!r} has type {series.dtype}, which the trainer cannot use; "
            f"{drop_hint}"
        )
    if present.nunique() < 2:
        raise DataError(
            f"{source}: column {name!r} is constant ({present.iloc[0]!r} in every row that has "
            f"a value); {drop_hint}"
        )
    return column, values


def _categorical(
    series: pd.Series[Any], name: str, source: str, nullable: bool
) -> tuple[Column, pd.Series[Any]]:
    present = series.dropna()
    numeric = pd.to_numeric(present, errors="coerce")
    if _mostly_numbers(series):
        # A few stray strings ("n/a", "?") in a numeric column.
        stray = present[numeric.isna()]
        row = int(np.flatnonzero(series.index == stray.index[0])[0]) + 1
        raise DataError(
            f"{source}: column {name!r} mixes numbers and strings ({stray.iloc[0]!r}, row {row} "
            f"of the rows with a target); clean it, or drop it with --drop {name}"
        )
    strings = present.map(str)
    distinct = strings.nunique()
    identifier = distinct > MAX_CATEGORIES or (
        distinct >= IDENTIFIER_MIN_DISTINCT and distinct > IDENTIFIER_SHARE * len(strings)
    )
    if identifier:
        raise DataError(
            f"{source}: column {name!r} looks like an identifier ({distinct} distinct strings "
            f"in {len(strings)} rows; at most {MAX_CATEGORIES} categories are used); "
            f"drop it with --drop {name}"
        )
    values = series.astype(object).map(lambda value: np.nan if pd.isna(value) else str(value))
    return Column(name, "categorical", nullable), values
