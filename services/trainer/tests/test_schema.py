"""Column types, the task, and which rows and columns are used, inferred from a parsed file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from artifact_contract import read_manifest

from tests.conftest import make_settings, run_cli
from trainer.errors import DataError
from trainer.training import evaluate, model
from trainer.training.schema import prepare

CSV = "\n".join(
    [
        "sqft,rooms,city,garden,id,price,sold",
        *[
            f"{1000 + 37 * i % 900},{1 + i % 5},{('Lyon', 'Paris', 'Nice')[i % 3]},"
            f"{('True', 'False')[i % 2]},h{i},{100000 + 997 * i},{('yes', 'no')[i % 2]}"
            for i in range(60)
        ],
    ]
)


def _frame(edit: str = "") -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(CSV))
    if edit == "blanks":
        frame = frame.astype({"sqft": "float64", "city": object, "garden": object})
        frame.loc[::7, "sqft"] = np.nan
        frame.loc[::9, "city"] = np.nan
        frame.loc[::11, "garden"] = np.nan
        frame.loc[[3, 4], "price"] = np.nan
    return frame


def test_types_task_and_columns_are_inferred() -> None:
    frame, schema = prepare(_frame(), source="h.csv", target="price", drop=("id", "sold"))
    assert schema.task == "regression" and schema.classes == ()
    assert [(c.name, c.type, c.nullable) for c in schema.features] == [
        ("sqft", "integer", False),
        ("rooms", "integer", False),
        ("city", "categorical", False),
        ("garden", "boolean", False),
    ]
    assert list(frame.columns) == ["sqft", "rooms", "city", "garden", "price"]
    assert frame["price"].dtype == "float64"
    assert set(frame["city"]) == {"Lyon", "Paris", "Nice"}


def test_missing_values_make_features_nullable_and_drop_rows_without_a_target() -> None:
    frame, schema = prepare(_frame("blanks"), source="h.csv", target="price", drop=("id", "sold"))
    assert schema.dropped_rows == 2 and len(frame) == 58
    types = {c.name: (c.type, c.nullable) for c in schema.features}
    # An integer column with blanks is read as floats: it is a (nullable) number.
    assert types == {
        "sqft": ("number", True),
        "rooms": ("integer", False),
        "city": ("categorical", True),
        "garden": ("boolean", True),
    }
    assert frame["city"].isna().sum() > 0 and frame["garden"].isna().sum() > 0


def test_string_and_boolean_targets_are_classification_with_sorted_classes() -> None:
    _, schema = prepare(_frame(), source="h.csv", target="sold", features=("sqft", "city"))
    assert schema.task == "classification" and schema.classes == ("no", "yes")
    _, schema = prepare(_frame(), source="h.csv", target="garden", features=("sqft", "rooms"))
    assert schema.task == "classification" and schema.classes == (False, True)


def test_task_flag_overrides_the_inference_for_integer_labels() -> None:
    _, schema = prepare(
        _frame(), source="h.csv", target="rooms", features=("sqft",), task="classification"
    )
    assert schema.classes == (1, 2, 3, 4, 5)
    assert all(type(label) is int for label in schema.classes)


def test_integer_labels_train_a_classifier(tmp_path: Path) -> None:
    frame = _frame().assign(sold=lambda f: (f["sold"] == "yes").astype(int))
    frame.to_csv(tmp_path / "h.csv", index=False)
    flags = ["--target", "sold", "--task", "classification", "--drop", "id,price"]
    result = run_cli(
        ["train", "--data-uri", str(tmp_path / "h.csv"), *flags], make_settings(tmp_path)
    )
    assert result.code == 0, result.stderr
    manifest = read_manifest(Path(result.summary["run_dir"]))
    assert manifest.output["classes"] == [0, 1]
    assert all(type(example.prediction) is int for example in manifest.examples)


def test_pandas_nullable_and_categorical_dtypes_are_read_like_csv_columns() -> None:
    # What a Parquet file written from pandas gives back: category, Int64, boolean, string.
    frame = pd.DataFrame(
        {
            "c": pd.Categorical(["a", "b", "c"] * 20),
            "i": pd.array([1, 2, None] * 20, dtype="Int64"),
            "b": pd.array([True, False, None] * 20, dtype="boolean"),
            "s": pd.array(["x", "y", None] * 20, dtype="string"),
            "y": np.arange(60, dtype="float64"),
        }
    )
    prepared, table = prepare(frame, source="p.parquet", target="y")
    assert [(c.type, c.nullable) for c in table.features] == [
        ("categorical", False),
        ("number", True),
        ("boolean", True),
        ("categorical", True),
    ]
    # Missing values are NaN (pandas' NA would break scikit-learn's imputers).
    assert prepared.loc[2, ["i", "b", "s"]].map(lambda v: v is np.nan or np.isnan(v)).all()
    split = evaluate.split(prepared, 1, 0.2, table)
    for kind in ("ridge", "hist_gb"):
        estimator = model.fit(model.ModelConfig(kind=kind, max_iter=5), table, split.train, 1)
        assert np.isfinite(estimator.predict(split.holdout[table.feature_names])).all()


def test_the_target_cannot_also_be_a_feature() -> None:
    with pytest.raises(DataError, match="the target 'price' cannot also be a feature"):
        prepare(_frame(), source="h.csv", target="price", features=("price", "sqft"))
