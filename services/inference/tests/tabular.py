"""Tiny real version-3 runs: scikit-learn pipelines fitted on mixed-type tabular data read from
a CSV (as the trainer reads a user's data: strings, booleans, blanks), dumped with skops,
described by a schema-3 manifest and published with ArtifactRoot.

Four models: ``regression`` (ridge behind imputers, a scaler and a one-hot encoder),
``binary`` (logistic regression, string labels, unknown categories ignored), ``flag`` (the same,
boolean labels) and ``multiclass`` (gradient boosting with native categorical support, integer
labels).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from artifact_contract import (
    CategoryShares,
    DataRef,
    Example,
    Feature,
    Histogram,
    Profile,
    label_key,
    sha256_bytes,
)
from artifact_contract.testing import publish_run
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from tests.conftest import serving_libraries

NUMBERS = ["sqft", "rooms"]
CATEGORIES = ["city", "garden"]
FLAGS = ["new_build"]
TYPED_FEATURES = ["sqft", "rooms", "city", "garden", "new_build"]
CITIES = ["north", "south", "west"]
KINDS = ("regression", "binary", "flag", "multiclass")
TARGET = "outcome"
TYPED_RECORD = {"sqft": 1200.0, "rooms": 3, "city": "north", "garden": True, "new_build": False}


def write_csv(path: Path, rows: int = 300, seed: int = 3) -> Path:
    """Mixed-type data with blanks, as a user's CSV would have it."""
    rng = np.random.default_rng(seed)
    sqft = rng.uniform(400.0, 4000.0, rows).round(1)
    rooms = rng.integers(1, 8, rows).astype(object)
    city = rng.choice(CITIES, rows).astype(object)
    garden = rng.choice(np.array([True, False], dtype=object), rows)
    new_build = rng.choice([True, False], rows)
    for column in (rooms, city, garden):
        column[rng.random(rows) < 0.1] = None
    score = sqft / 100 + (city == "north") * 8.0 + new_build * 5.0 + rng.normal(0, 2, rows)
    frame = pd.DataFrame(
        {
            "sqft": sqft,
            "rooms": rooms,
            "city": city,
            "garden": garden,
            "new_build": new_build,
            "price": score * 1000,
            "sold": np.where(score > np.median(score), "yes", "no"),
            "band": np.digitize(score, np.quantile(score, [1 / 3, 2 / 3])),
            "listed": score > np.quantile(score, 0.3),
        }
    )
    frame.to_csv(path, index=False)
    return path


def read_frame(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def make_pipeline(kind: str) -> Any:
    if kind == "multiclass":
        encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
        columns = ColumnTransformer(
            [("cat", encode, CATEGORIES), ("rest", "passthrough", NUMBERS + FLAGS)]
        )
        model = HistGradientBoostingClassifier(
            max_iter=20, categorical_features=[0, 1], random_state=0
        )
        return Pipeline([("columns", columns), ("model", model)])
    categories = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore" if kind == "binary" else "error")),
        ]
    )
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    columns = ColumnTransformer(
        [("num", numbers, NUMBERS), ("cat", categories, CATEGORIES), ("flag", "passthrough", FLAGS)]
    )
    final = Ridge(alpha=1.0) if kind == "regression" else LogisticRegression(max_iter=500)
    return Pipeline([("columns", columns), ("model", final)])


def target_of(kind: str) -> str:
    return {"regression": "price", "binary": "sold", "flag": "listed", "multiclass": "band"}[kind]


def json_value(value: Any) -> Any:
    """A DataFrame cell as a request would carry it (NaN as null, numpy scalars as Python's)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {name: json_value(row[name]) for name in TYPED_FEATURES}
        for row in frame[TYPED_FEATURES].to_dict("records")
    ]


def _feature(frame: pd.DataFrame, name: str, accepts_unknown: bool) -> Feature:
    column = frame[name]
    nullable = bool(column.isna().any())
    if name in NUMBERS:
        kind = "integer" if name == "rooms" else "number"
        return Feature(name, kind, float(column.min()), float(column.max()), nullable=nullable)
    if name == "city":
        seen = tuple(sorted(str(value) for value in column.dropna().unique()))
        return Feature(
            name,
            "categorical",
            nullable=nullable,
            categories=seen,
            accepts_unknown=accepts_unknown,
        )
    return Feature(name, "boolean", nullable=nullable)


def _shares(values: list[str], categories: list[str]) -> CategoryShares:
    counts = [values.count(category) for category in categories]
    return CategoryShares(
        categories=categories,
        proportions=[count / len(values) for count in counts],
        unseen=0.0,
        rows=len(values),
    )


def _profile(frame: pd.DataFrame, features: list[Feature], outputs: list[Any], kind: str) -> Any:
    shares: dict[str, Any] = {}
    for feature in features:
        present = frame[feature.name].dropna().tolist()
        if feature.type == "categorical":
            shares[feature.name] = _shares(present, list(feature.categories or ()))
        elif feature.type == "boolean":
            shares[feature.name] = _shares([label_key(bool(v)) for v in present], ["false", "true"])
        else:
            edges = [float(min(present)), float(max(present))]
            shares[feature.name] = Histogram(edges, [1.0], len(present))
    if kind == "regression":
        prediction: Any = Histogram([min(outputs), max(outputs)], [1.0], len(outputs))
    else:
        labels = sorted({label_key(label) for label in outputs})
        prediction = _shares([label_key(label) for label in outputs], labels)
    return Profile(bins=10, features=shares, prediction=prediction)


def _metrics(kind: str) -> dict[str, float]:
    if kind == "regression":
        return {"rmse": 1.0, "mae": 1.0, "r2": 0.9, "baseline_rmse": 3.0}
    metrics = {
        "accuracy": 0.9,
        "balanced_accuracy": 0.9,
        "f1_macro": 0.9,
        "log_loss": 0.3,
        "baseline_accuracy": 0.5,
        "baseline_log_loss": 0.7,
    }
    return metrics | ({"roc_auc": 0.95} if kind in ("binary", "flag") else {})


def training_csv(root: Path) -> Path:
    """Where build_typed_run writes the data it fits on: next to the artifact root."""
    return root.parent / f"{root.name}.csv"


def build_typed_run(root: Path, kind: str) -> Path:
    """Fit the ``kind`` model on a CSV written at training_csv(root), publish it under
    ``root``; return the run directory."""
    frame = read_frame(write_csv(training_csv(root)))
    target = frame[target_of(kind)]
    model = make_pipeline(kind).fit(frame[TYPED_FEATURES], target)
    features = [_feature(frame, name, accepts_unknown=kind == "binary") for name in TYPED_FEATURES]
    sample = frame[TYPED_FEATURES].head(4)
    classes = [json_value(label) for label in getattr(model, "classes_", [])]
    outputs = [json_value(value) for value in model.predict(frame[TYPED_FEATURES])]
    if kind == "regression":
        examples = [
            Example(record, float(prediction))
            for record, prediction in zip(records_of(sample), model.predict(sample), strict=True)
        ]
    else:
        probabilities = model.predict_proba(sample)
        examples = [
            Example(
                record,
                json_value(prediction),
                {label_key(c): float(p) for c, p in zip(classes, row, strict=True)},
            )
            for record, prediction, row in zip(
                records_of(sample), model.predict(sample), probabilities, strict=True
            )
        ]
    output: dict[str, Any] = {"name": target_of(kind), "task": "regression"}
    if kind != "regression":
        output = {"name": target_of(kind), "task": "classification", "classes": classes}
    return publish_run(
        root,
        lambda staging: sio.dump(model, staging / "model.skops"),
        created_at="2026-11-30T06:00:00Z",
        input_schema=features,
        output=output,
        data=DataRef("test.csv", sha256_bytes(b"data"), len(frame)),
        params={"seed": 3, "model": kind},
        metrics=_metrics(kind),
        libraries=serving_libraries(),
        git=None,
        examples=examples,
        profile=_profile(frame, features, outputs, kind),
    )
