"""A plain-numpy predict for the linear models we train, used only where it is proven exact.

scikit-learn checks its input on every call (array conversion, finiteness, fitted state, feature
counts, dataframe detection): for one row that costs several times the arithmetic. Our inputs are
already validated float64 arrays in the schema's column order, so for ``StandardScaler`` →
``Ridge``/``LinearRegression`` (or the bare linear model) we run the same numpy operations, in the
same order, that scikit-learn's ``transform`` and ``_decision_function`` run. The loader accepts
the result only if it is bit-identical to the estimator's own ``predict`` on the manifest's
examples and on rows spread across the training ranges; any other estimator, or any difference,
keeps the estimator's ``predict``.

Version 3 pipelines take validated columns: encoding.py replays their preprocessing and final
estimator, and ``proven_columns_predict`` holds that replay to the same standard against the
pipeline's own ``predict``/``predict_proba`` on a DataFrame, on rows with every category, both
booleans and nulls (``probe_columns``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from artifact_contract import Manifest
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from inference.encoding import Columns, ColumnsPredict, compile_columns
from inference.model import build_frame

Rows = npt.NDArray[np.float64]
Predict = Callable[[Rows], Rows]
_LINEAR = (Ridge, LinearRegression)  # exact types: a subclass may predict differently
_PROBE_ROWS = 256


def compile_predict(estimator: Any) -> Predict | None:
    """A numpy function equivalent to ``estimator.predict``, or None when we have none."""
    steps = (
        [step for _, step in estimator.steps if step is not None and step != "passthrough"]
        if type(estimator) is Pipeline
        else [estimator]
    )
    *scalers, final = steps
    if type(final) not in _LINEAR or any(type(s) is not StandardScaler for s in scalers):
        return None
    coef = np.asarray(final.coef_, dtype=np.float64)
    if coef.ndim != 1:
        return None
    intercept = final.intercept_
    shifts = [
        (
            np.asarray(s.mean_, dtype=np.float64) if s.with_mean else None,
            np.asarray(s.scale_, dtype=np.float64) if s.with_std else None,
        )
        for s in scalers
    ]

    def predict(rows: Rows) -> Rows:
        x = rows.copy() if shifts else rows  # StandardScaler works on a copy
        for mean, scale in shifts:
            if mean is not None:
                x -= mean
            if scale is not None:
                x /= scale
        result: Rows = x @ coef + intercept
        return result

    return predict


def probe_rows(manifest: Manifest, seed: int = 0) -> Rows:
    """The manifest's examples plus rows drawn across each feature's training range."""
    rng = np.random.default_rng(seed)
    low = np.array([f.min for f in manifest.input_schema], dtype=np.float64)
    high = np.array([f.max for f in manifest.input_schema], dtype=np.float64)
    drawn = rng.uniform(low, high, size=(_PROBE_ROWS, len(low)))
    names = manifest.feature_names
    examples = np.array(
        [[example.input[name] for name in names] for example in manifest.examples],
        dtype=np.float64,
    ).reshape(-1, len(names))
    return np.vstack([examples, drawn, low, high])


def proven_fast_predict(estimator: Any, manifest: Manifest) -> Predict | None:
    """``compile_predict``'s function if it matches ``estimator.predict`` bit for bit.
    Version 1/2 models only: version 3 pipelines take columns (``proven_columns_predict``)."""
    if manifest.schema_version >= 3:
        return None
    candidate = compile_predict(estimator)
    if candidate is None:
        return None
    rows = probe_rows(manifest)
    for batch in (rows, rows[:1]):  # a batch and a single row
        expected = np.asarray(estimator.predict(batch), dtype=np.float64).reshape(-1)
        if not np.array_equal(candidate(batch).reshape(-1), expected):
            return None
    return candidate


# --- version 3: pipelines fitted on a DataFrame (encoding.py) ------------------------------


def probe_columns(manifest: Manifest, seed: int = 0) -> Columns:
    """The manifest's examples, each feature's training minimum and maximum, and rows drawn
    around the training ranges: every category (and an unknown one where the model accepts
    it), both booleans, and nulls in every nullable feature."""
    rng = np.random.default_rng(seed)
    n = _PROBE_ROWS
    columns: Columns = {}
    for feature in manifest.input_schema:
        values: list[Any]
        if feature.type == "categorical":
            choices = list(feature.categories or ())
            if feature.accepts_unknown:
                choices.append("\x00 not a training category")
            values = [choices[i % len(choices)] for i in rng.permutation(n)]
        elif feature.type == "boolean":
            values = [bool(v) for v in rng.integers(0, 2, n)]
        else:
            low, high = float(feature.min or 0.0), float(feature.max or 0.0)
            span = high - low
            drawn = rng.uniform(low - span / 2, high + span / 2, n)
            drawn_values = (
                [round(v) for v in drawn] if feature.type == "integer" else drawn.tolist()
            )
            values = [low, high, *drawn_values[2:]]
        if feature.nullable:
            values = [
                None if hole else v for v, hole in zip(values, rng.random(n) < 0.2, strict=True)
            ]
        examples = [example.input[feature.name] for example in manifest.examples]
        columns[feature.name] = examples + values
    return columns


def proven_columns_predict(estimator: Any, manifest: Manifest) -> ColumnsPredict | None:
    """``compile_columns``'s function for a version-3 model, if it gives exactly what the
    pipeline gives on a DataFrame (``predict``, or ``predict_proba`` for classification) for
    the probe rows as one batch, a few rows at a time and one row at a time."""
    if manifest.schema_version < 3:
        return None
    candidate = compile_columns(estimator, manifest.input_schema, manifest.task)
    if candidate is None:
        return None
    probe = probe_columns(manifest)
    size = len(next(iter(probe.values())))
    batches = [range(size), range(3), *(range(i, i + 1) for i in range(0, size, size // 16))]
    for rows in batches:
        columns = {name: [values[i] for i in rows] for name, values in probe.items()}
        frame = build_frame(manifest.input_schema, columns)
        try:
            with np.errstate(all="ignore"):
                expected = np.asarray(
                    estimator.predict_proba(frame)
                    if manifest.task == "classification"
                    else estimator.predict(frame),
                    dtype=np.float64,
                )
                got = candidate(columns)
        except Exception:  # a pipeline our replay does not cover: it keeps its own path
            return None
        if got.shape != expected.shape or not np.array_equal(got, expected):
            return None
    return candidate
