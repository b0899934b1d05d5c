"""The numpy replay of version-3 pipelines (encoding.py): bit-identical to scikit-learn on the
pipelines the trainer builds, or not used at all."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from artifact_contract import Manifest, read_manifest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

import inference.encoding
from inference.encoding import compile_columns
from inference.fastpath import probe_columns, proven_columns_predict
from inference.loader import load_model
from inference.model import build_frame
from inference.settings import Settings
from tests.tabular import (
    CATEGORIES,
    FLAGS,
    NUMBERS,
    TYPED_FEATURES,
    json_value,
    read_frame,
    training_csv,
)


def trainer_linear(final: Any, numbers: Any = None) -> Pipeline:
    """The trainer's linear pipeline (services/trainer/.../training/model.py)."""
    numeric = numbers or Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
    )
    onehot = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    columns = ColumnTransformer(
        [("numbers", numeric, NUMBERS), ("categories", onehot, CATEGORIES + FLAGS)]
    )
    return Pipeline([("preprocess", columns), ("model", final)])


def trainer_boosting(estimator: type[Any]) -> Pipeline:
    """The trainer's hist_gb: native categorical support on the DataFrame, no preprocessing."""
    model = estimator(
        max_iter=60, categorical_features=["city"], early_stopping=False, random_state=0
    )
    return Pipeline([("model", model)])


# (pipeline, target column, task)
PIPELINES: dict[str, tuple[Callable[[], Pipeline], str, str]] = {
    "ridge": (lambda: trainer_linear(Ridge(alpha=1.0)), "price", "regression"),
    "logistic-binary": (lambda: trainer_linear(LogisticRegression()), "sold", "classification"),
    "logistic-3-classes": (lambda: trainer_linear(LogisticRegression()), "band", "classification"),
    "hist_gb-regression": (
        lambda: trainer_boosting(HistGradientBoostingRegressor),
        "price",
        "regression",
    ),
    "hist_gb-3-classes": (
        lambda: trainer_boosting(HistGradientBoostingClassifier),
        "band",
        "classification",
    ),
}


@pytest.fixture(scope="module")
def fitted(typed_runs: dict[str, Path]) -> dict[str, tuple[Any, Manifest]]:
    """Each pipeline fitted on the typed runs' CSV, with a manifest saying what it predicts
    (the binary run's schema: blanks in three features, unknown cities accepted)."""
    run = typed_runs["binary"]
    frame = read_frame(training_csv(run.parents[1]))
    base = read_manifest(run)
    models = {}
    for name, (make, target, task) in PIPELINES.items():
        pipeline = make().fit(frame[TYPED_FEATURES], frame[target])
        output: dict[str, Any] = {"name": target, "task": task}
        if task == "classification":
            output["classes"] = [json_value(c) for c in pipeline.classes_]
        models[name] = (pipeline, dataclasses.replace(base, output=output))
    return models


def expected(pipeline: Any, manifest: Manifest, columns: dict[str, list[Any]]) -> Any:
    frame = build_frame(manifest.input_schema, columns)
    if manifest.task == "classification":
        return pipeline.predict_proba(frame)
    return pipeline.predict(frame)


@pytest.mark.parametrize("name", list(PIPELINES))
def test_trainer_pipelines_replay_bit_for_bit_on_generated_rows(
    name: str, fitted: dict[str, tuple[Any, Manifest]]
) -> None:
    pipeline, manifest = fitted[name]
    fast = proven_columns_predict(pipeline, manifest)
    assert fast is not None
    # Other rows than the load-time proof's: a larger batch, every size up to past the point
    # where hist_gb switches from walking all trees at once to scikit-learn's predictor.
    columns = probe_columns(manifest, seed=11)
    nulls = {f.name: columns[f.name].count(None) for f in manifest.input_schema if f.nullable}
    assert set(nulls) == {"rooms", "city", "garden"} and min(nulls.values()) > 20
    cities = set(columns["city"])
    assert {"north", "south", "west", None} < cities and len(cities) == 5  # and an unknown one
    assert np.array_equal(fast(columns), expected(pipeline, manifest, columns))
    for size in (1, 2, 7, inference.encoding.FOREST_ROWS, inference.encoding.FOREST_ROWS + 1):
        for start in range(0, 60, 20):
            part = {k: v[start : start + size] for k, v in columns.items()}
            assert np.array_equal(fast(part), expected(pipeline, manifest, part)), (size, start)


def test_plain_scaled_ridge_on_numbers_replays_in_the_dataframes_memory_layout(
    typed_runs: dict[str, Path],
) -> None:
    """The trainer's pipeline for numbers without blanks: StandardScaler -> Ridge on the
    DataFrame (a Fortran-ordered matrix, which BLAS rounds differently from a C-ordered one)."""
    run = typed_runs["binary"]
    frame = read_frame(training_csv(run.parents[1]))
    manifest = read_manifest(run)
    schema = [f for f in manifest.input_schema if f.name == "sqft"] + [
        dataclasses.replace(f, name="noise") for f in manifest.input_schema if f.name == "sqft"
    ]
    frame["noise"] = np.random.default_rng(0).uniform(400, 4000, len(frame))
    pipeline = Pipeline([("scaler", StandardScaler()), ("regressor", Ridge())])
    pipeline.fit(frame[["sqft", "noise"]], frame["price"])
    numbers = dataclasses.replace(manifest, input_schema=schema, examples=[])
    numbers = dataclasses.replace(numbers, output={"name": "price", "task": "regression"})
    fast = proven_columns_predict(pipeline, numbers)
    assert fast is not None
    columns = probe_columns(numbers, seed=5)
    assert np.array_equal(fast(columns), expected(pipeline, numbers, columns))


def test_a_step_it_does_not_know_keeps_the_dataframe_path(
    fitted: dict[str, tuple[Any, Manifest]], typed_runs: dict[str, Path]
) -> None:
    _, manifest = fitted["ridge"]
    run = typed_runs["binary"]
    frame = read_frame(training_csv(run.parents[1]))
    numbers = Pipeline([("impute", SimpleImputer()), ("scale", MinMaxScaler())])
    minmax = trainer_linear(Ridge(), numbers=numbers)
    minmax.fit(frame[TYPED_FEATURES], frame["price"])
    assert compile_columns(minmax, manifest.input_schema, "regression") is None
    assert proven_columns_predict(minmax, manifest) is None


def test_a_replay_that_differs_in_one_bit_is_refused(
    fitted: dict[str, tuple[Any, Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, manifest = fitted["ridge"]
    real = compile_columns(pipeline, manifest.input_schema, manifest.task)
    assert real is not None

    def off_by_one_ulp(*_: Any) -> Any:
        return lambda columns: np.nextafter(real(columns), np.inf)

    monkeypatch.setattr("inference.fastpath.compile_columns", off_by_one_ulp)
    assert proven_columns_predict(pipeline, manifest) is None


def test_a_replay_that_raises_is_refused(
    fitted: dict[str, tuple[Any, Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, manifest = fitted["hist_gb-regression"]

    def broken(*_: Any) -> Any:
        def predict(_columns: dict[str, list[Any]]) -> Any:
            raise IndexError("not what scikit-learn does")

        return predict

    monkeypatch.setattr("inference.fastpath.compile_columns", broken)
    assert proven_columns_predict(pipeline, manifest) is None


def test_served_answers_are_the_same_on_either_path(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    """What a client sees: the loaded model answers the same through the numpy replay as
    through the DataFrame, for a batch with blanks, every city and an unknown one."""
    model = load_model(Settings(model_dir=typed_runs["binary"], model_cache_dir=tmp_path))
    assert model.predict_path == "numpy"
    columns = probe_columns(model.manifest, seed=3)
    fast = model.infer(columns)
    model._fast_predict = None
    assert model.predict_path == "dataframe"
    slow = model.infer(columns)
    assert fast == slow


def test_hist_gb_walks_all_trees_at_once_for_a_few_rows_and_calls_the_predictor_for_a_batch(
    fitted: dict[str, tuple[Any, Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Numbers far above 255 next to category codes: only the codes decide which walk runs."""
    pipeline, manifest = fitted["hist_gb-regression"]
    fast = compile_columns(pipeline, manifest.input_schema, manifest.task)
    assert fast is not None
    columns = probe_columns(manifest, seed=2)
    assert max(v for v in columns["sqft"] if v is not None) > 255
    calls: list[int] = []
    real = TreePredictor.predict

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TreePredictor, "predict", counted)
    few = {k: v[: inference.encoding.FOREST_ROWS] for k, v in columns.items()}
    fast(few)
    assert calls == []
    fast(columns)
    assert len(calls) == 60  # one call per tree
