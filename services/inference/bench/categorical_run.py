"""`make bench-categorical-run`: a version-3 run directory with categorical features, for
`make bench RUN_DIR=...`.

Writes a synthetic table shaped like issue 9's benchmark data (10 feature columns: 3
categorical, 1 boolean, 6 numeric, blanks in 3 of them), reads it back as a user's CSV,
fits a scikit-learn pipeline on the DataFrame (``hist_gb``: OrdinalEncoder + gradient boosting
with native categorical support; ``ridge``: imputers, scaler and one-hot encoder + ridge),
saves it as an MLflow model in skops format (so `mlflow models serve` can serve the same
directory), and publishes it with a schema-3 manifest under ``--root``. Runs in the trainer's
environment (it needs MLflow). Prints the run directory. With ``--table-only FILE`` it only
writes the table, for the trainer to fit its own pipeline on (`make bench-models`).
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import sys
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow.sklearn
import numpy as np
import pandas as pd
from artifact_contract import (
    TRUSTED_TYPES,
    ArtifactRoot,
    CategoryShares,
    DataRef,
    Example,
    Feature,
    Histogram,
    Manifest,
    ModelRef,
    Profile,
    QualityGate,
    file_digests,
    sha256_file,
    write_manifest,
)
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

CATEGORICAL = ["region", "product", "channel"]
BOOLEAN = ["member"]
NUMERIC = ["age", "income_k", "tenure_years", "visits", "basket_eur", "discount"]
INTEGER = {"age", "tenure_years", "visits"}
FEATURES = NUMERIC[:3] + CATEGORICAL[:2] + BOOLEAN + NUMERIC[3:] + CATEGORICAL[2:]
TARGET = "spend"
HOLDOUT = 0.2


def write_table(path: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    regions = np.array([f"region_{i:02d}" for i in range(8)], dtype=object)
    products = np.array([f"sku_{i:03d}" for i in range(40)], dtype=object)
    channels = np.array(["app", "email", "store", "web"], dtype=object)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows).astype(object),
            "income_k": rng.lognormal(4.0, 0.5, rows).round(2),
            "tenure_years": rng.integers(0, 30, rows),
            "region": rng.choice(regions, rows),
            "product": rng.choice(products, rows),
            "member": rng.random(rows) < 0.3,
            "visits": rng.poisson(6, rows),
            "basket_eur": rng.gamma(2.0, 30.0, rows).round(2),
            "discount": rng.uniform(0.0, 0.3, rows).round(3),
            "channel": rng.choice(channels, rows),
        }
    )
    for name in ("age", "income_k", "channel"):  # blanks, as users' data has
        values = frame[name].astype(object)
        values[rng.random(rows) < 0.05] = None
        frame[name] = values
    region_effect = frame["region"].map({r: i * 40.0 for i, r in enumerate(regions)})
    product_effect = frame["product"].map({p: (i % 7) * 25.0 for i, p in enumerate(products)})
    income = pd.to_numeric(frame["income_k"]).fillna(60.0)
    frame[TARGET] = (
        region_effect
        + product_effect
        + 8.0 * income
        + 150.0 * frame["member"]
        + 20.0 * frame["visits"]
        + rng.normal(0.0, 50.0, rows)
    ).round(2)
    frame.to_csv(path, index=False)


def make_pipeline(model: str) -> Pipeline:
    others = [name for name in FEATURES if name not in CATEGORICAL]
    if model == "hist_gb":
        encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
        columns = ColumnTransformer([("cat", encode, CATEGORICAL), ("rest", "passthrough", others)])
        boost = HistGradientBoostingRegressor(categorical_features=[0, 1, 2], random_state=0)
        return Pipeline([("columns", columns), ("model", boost)])
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categories = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    columns = ColumnTransformer(
        [
            ("num", numbers, NUMERIC),
            ("cat", categories, CATEGORICAL),
            ("flag", "passthrough", BOOLEAN),
        ]
    )
    return Pipeline([("columns", columns), ("model", Ridge(alpha=1.0))])


def json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def feature(frame: pd.DataFrame, name: str, model: str) -> Feature:
    column, nullable = frame[name], bool(frame[name].isna().any())
    if name in CATEGORICAL:
        seen = tuple(sorted(str(v) for v in column.dropna().unique()))
        return Feature(name, "categorical", nullable=nullable, categories=seen,
                       accepts_unknown=model == "ridge")  # fmt: skip
    if name in BOOLEAN:
        return Feature(name, "boolean", nullable=nullable)
    kind = "integer" if name in INTEGER else "number"
    return Feature(name, kind, float(column.min()), float(column.max()), nullable=nullable)


def shares(frame: pd.DataFrame, item: Feature) -> Any:
    present = frame[item.name].dropna()
    if item.type in ("categorical", "boolean"):
        keys = list(item.categories or ("false", "true"))
        spelled = present.map(lambda v: str(v).lower() if isinstance(v, bool) else str(v))
        counts = spelled.value_counts()
        proportions = [float(counts.get(key, 0)) / len(present) for key in keys]
        return CategoryShares(
            categories=keys, proportions=proportions, unseen=0.0, rows=len(present)
        )
    return histogram(present.to_numpy(dtype=float))


def histogram(values: np.ndarray[Any, Any], bins: int = 10) -> Histogram:
    edges = np.quantile(values, np.linspace(0.0, 1.0, bins + 1)).tolist()
    inner = np.searchsorted(edges[1:-1], values, side="left")
    counts = np.bincount(inner, minlength=bins)
    return Histogram(edges, (counts / len(values)).tolist(), len(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, help="artifact root to publish into")
    parser.add_argument(
        "--table-only", type=Path, help="only write the table (CSV) here, for `trainer train`"
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--model", choices=("hist_gb", "ridge"), default="hist_gb")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.table_only is not None:
        write_table(args.table_only, args.rows, args.seed)
        return 0
    if args.root is None:
        parser.error("--root is required (or --table-only)")
    # MLflow's advice on integer columns and pip does not apply to a bench model: keep stderr
    # for real errors.
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-data-") as scratch:
        csv = Path(scratch) / "table.csv"
        write_table(csv, args.rows, args.seed)
        data_sha256 = sha256_file(csv)
        frame = pd.read_csv(csv)
    train, holdout = (
        frame.iloc[: int(len(frame) * (1 - HOLDOUT))],
        frame.iloc[int(len(frame) * (1 - HOLDOUT)) :],
    )
    pipeline = make_pipeline(args.model).fit(train[FEATURES], train[TARGET])
    predicted = pipeline.predict(holdout[FEATURES])
    truth = holdout[TARGET].to_numpy()
    rmse = float(np.sqrt(np.mean((predicted - truth) ** 2)))
    metrics = {
        "rmse": rmse,
        "mae": float(np.mean(np.abs(predicted - truth))),
        "r2": float(1 - np.sum((predicted - truth) ** 2) / np.sum((truth - truth.mean()) ** 2)),
        "baseline_rmse": float(np.sqrt(np.mean((truth - train[TARGET].mean()) ** 2))),
    }
    features = [feature(train, name, args.model) for name in FEATURES]
    sample = holdout[FEATURES].head(3)
    examples = [
        Example({str(k): json_value(v) for k, v in record.items()}, float(prediction))
        for record, prediction in zip(
            sample.to_dict("records"), pipeline.predict(sample), strict=True
        )
    ]
    profile = Profile(
        bins=10,
        features={item.name: shares(train, item) for item in features},
        prediction=histogram(predicted),
    )
    artifacts = ArtifactRoot(args.root)
    with artifacts.staging() as staging:
        mlflow.sklearn.save_model(
            pipeline,
            str(staging),
            serialization_format="skops",
            skops_trusted_types=list(TRUSTED_TYPES),
            signature=infer_signature(train[FEATURES], predicted[:1]),
            pip_requirements=[
                f"{n}=={version(n)}" for n in ("mlflow", "scikit-learn", "pandas", "skops")
            ],
        )

        def finalize(directory: Path, run_version: str) -> None:
            (directory / "model_version.txt").write_text(run_version + "\n")
            manifest = Manifest(
                model_version=run_version,
                created_at=pd.Timestamp.now("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                model=ModelRef(flavor="sklearn", path="model.skops", format="skops"),
                files=file_digests(directory),
                input_schema=features,
                output={"name": TARGET, "task": "regression"},
                data=DataRef(f"bench:rows={args.rows},seed={args.seed}", data_sha256, len(frame)),
                params={"seed": args.seed, "model": args.model, "rows": args.rows},
                metrics=metrics,
                quality_gate=QualityGate(passed=True),
                libraries={
                    "python": platform.python_version(),
                    **{
                        n: version(n)
                        for n in ("scikit-learn", "numpy", "skops", "mlflow", "pandas")
                    },
                },
                git=None,
                examples=examples,
                profile=profile,
            )
            write_manifest(directory, manifest)

        run_version = artifacts.publish(staging, finalize, move_latest=True)
    print(artifacts.run_dir(run_version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
