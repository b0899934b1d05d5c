"""Assemble a run directory in staging, record it in MLflow, and publish it as the next version.

Everything is written under a hidden staging name; ``ArtifactRoot.publish`` allocates the version
under its lock, and our finalize callback writes the two files that carry the version
(model_version.txt, then manifest.json listing every file's digest) and hands the finished
directory to ``record`` (MLflow tracking and registration). Only when that succeeded does the
directory appear as ``runs/vNNN``, in one rename, and ``latest`` move (for a run that passed its
quality gate): a run that could not be registered is never published, so every published version
can be promoted. A full disk is reported as such, and leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from artifact_contract import (
    VERSION_FILE,
    ArtifactRoot,
    DataRef,
    Example,
    Feature,
    GitInfo,
    JSONScalar,
    Manifest,
    ModelRef,
    QualityGate,
    file_digests,
    label_key,
    write_manifest,
)

from trainer.errors import TrainerError
from trainer.s3store import S3ArtifactRoot
from trainer.training import serialization
from trainer.training.data import Dataset
from trainer.training.evaluate import Split
from trainer.training.profile import reference_profile, train_categories
from trainer.training.schema import TableSchema
from trainer.training.signature import model_signature

METRICS_FILE = "metrics.json"
N_EXAMPLES = 5
Recorded = TypeVar("Recorded")


@dataclass(frozen=True)
class TrainingOutcome:
    estimator: Any
    schema: TableSchema
    dataset: Dataset
    split: Split
    params: dict[str, str | int | float | bool | None]
    metrics: dict[str, float]
    gate: QualityGate
    libraries: dict[str, str]
    git: GitInfo | None
    created_at: str


@dataclass(frozen=True)
class Published:
    version: str
    run_dir: Path
    manifest: Manifest
    manifest_sha256: str
    is_latest: bool  # latest pointed here right after publishing
    # Where the run is published: file:// of run_dir, or s3://.../runs/vNNN/ in shared store
    # mode (run_dir is then this machine's copy of what was uploaded).
    artifact_uri: str


def publish_run(
    root: ArtifactRoot,
    outcome: TrainingOutcome,
    record: Callable[[Path, Manifest, str], Recorded],
    shared: S3ArtifactRoot | None = None,
) -> tuple[Published, Recorded]:
    """Write, ``record(run_dir, manifest, manifest_sha256)``, then publish; returns both.

    With ``shared``, the run is staged under ``root`` and published to S3 (``root`` keeps a copy
    of what was uploaded)."""
    try:
        return _publish_run(root, outcome, record, shared)
    except OSError as exc:
        # The staging directory is removed on the way out: nothing half-written stays behind.
        where = exc.filename or root.root
        if serialization.disk_full(exc) is not None:
            raise TrainerError(
                f"{where}: disk full: no space left to write the run ({exc.strerror}); "
                "nothing was published"
            ) from None
        raise TrainerError(f"{where}: cannot write the run ({exc.strerror or exc})") from None


def _publish_run(
    root: ArtifactRoot,
    outcome: TrainingOutcome,
    record: Callable[[Path, Manifest, str], Recorded],
    shared: S3ArtifactRoot | None,
) -> tuple[Published, Recorded]:
    schema = outcome.schema
    with root.staging() as staging:
        example_frame = example_rows(outcome.split, schema)
        serialization.save(
            outcome.estimator,
            staging,
            signature=model_signature(schema),
            input_example=example_frame,
        )
        metrics_doc = {"metrics": outcome.metrics, "quality_gate": _gate_dict(outcome.gate)}
        (staging / METRICS_FILE).write_text(json.dumps(metrics_doc, indent=2) + "\n")
        examples = saved_model_examples(staging, example_frame, schema)
        written: dict[str, Any] = {}

        def finalize(run_dir: Path, version: str) -> None:
            (run_dir / VERSION_FILE).write_text(version + "\n")
            manifest = build_manifest(outcome, version, file_digests(run_dir), examples)
            digest = write_manifest(run_dir, manifest)
            written.update(manifest=manifest, sha256=digest)
            written["recorded"] = record(run_dir, manifest, digest)

        if shared is None:
            version = root.publish(staging, finalize, move_latest=outcome.gate.passed)
        else:
            version = shared.publish(staging, finalize, move_latest=outcome.gate.passed)
            _keep_copy(staging, root.run_dir(version))
    published = Published(
        version=version,
        run_dir=root.run_dir(version),
        manifest=written["manifest"],
        manifest_sha256=written["sha256"],
        is_latest=(shared or root).latest_version() == version,
        artifact_uri=root.run_dir(version).resolve().as_uri()
        if shared is None
        else shared.run_uri(version),
    )
    return published, written["recorded"]


def _keep_copy(staging: Path, run_dir: Path) -> None:
    # Versions are unique per S3 root, so a local directory of that name is a leftover of an
    # emptied bucket: the uploaded files replace it.
    if run_dir.exists():
        shutil.rmtree(run_dir)
    os.rename(staging, run_dir)


def example_rows(data: Split, schema: TableSchema) -> pd.DataFrame:
    """The first holdout rows whose categories the model was trained on (a server refuses
    others)."""
    rows = data.holdout[schema.feature_names]
    known = pd.Series(True, index=rows.index)
    for name in schema.of_type("categorical"):
        categories = set(train_categories(data.train[name]))
        known &= rows[name].isna() | rows[name].isin(categories)
    return rows[known].head(N_EXAMPLES)


def saved_model_examples(
    model_dir: Path, frame: pd.DataFrame, schema: TableSchema
) -> list[Example]:
    """A few holdout rows with the predictions of the model as saved (loaded back through MLflow,
    signature enforced), so the examples double as a check that the written artifact works."""
    import mlflow.pyfunc

    inputs = [_record(row, schema) for row in frame.to_dict("records")]
    loaded = mlflow.pyfunc.load_model(str(model_dir))
    predictions = loaded.predict(pd.DataFrame(inputs, columns=schema.feature_names))
    if schema.task == "regression":
        return [
            Example(input=record, prediction=float(value))
            for record, value in zip(inputs, predictions, strict=True)
        ]
    model = loaded.get_raw_model()
    keys = [label_key(label) for label in model.classes_.tolist()]
    probabilities = model.predict_proba(pd.DataFrame(inputs, columns=schema.feature_names))
    return [
        Example(
            input=record,
            prediction=label,
            probabilities={key: float(p) for key, p in zip(keys, row, strict=True)},
        )
        for record, label, row in zip(
            inputs, list(predictions.tolist()), probabilities, strict=True
        )
    ]


def build_manifest(
    outcome: TrainingOutcome, version: str, files: dict[str, str], examples: list[Example]
) -> Manifest:
    schema = outcome.schema
    output: dict[str, Any] = {"name": schema.target, "task": schema.task}
    if schema.task == "classification":
        output["classes"] = list(outcome.estimator.classes_.tolist())
    return Manifest(
        schema_version=3,
        model_version=version,
        created_at=outcome.created_at,
        model=ModelRef(flavor="sklearn", path=serialization.MODEL_FILE, format="skops"),
        files=files,
        input_schema=input_schema(schema, outcome.split.train),
        output=output,
        data=DataRef(
            source=outcome.dataset.source, sha256=outcome.dataset.sha256, rows=outcome.dataset.rows
        ),
        params=outcome.params,
        metrics=outcome.metrics,
        quality_gate=outcome.gate,
        libraries=outcome.libraries,
        git=outcome.git,
        examples=examples,
        profile=reference_profile(outcome.estimator, outcome.split, schema),
    )


def input_schema(schema: TableSchema, train: pd.DataFrame) -> list[Feature]:
    """Per feature: type, nullable, and the training range (numbers) or categories."""
    features = []
    for column in schema.features:
        values = train[column.name]
        feature = Feature(name=column.name, type=column.type, nullable=column.nullable)
        if column.type in ("number", "integer"):
            feature = Feature(
                name=column.name,
                type=column.type,
                nullable=column.nullable,
                min=float(values.min()),
                max=float(values.max()),
            )
        elif column.type == "categorical":
            feature = Feature(
                name=column.name,
                type=column.type,
                nullable=column.nullable,
                categories=tuple(train_categories(values)),
            )
        features.append(feature)
    return features


def _record(row: dict[Any, Any], schema: TableSchema) -> dict[str, JSONScalar]:
    # Values as a client would send them: integers as integers, missing values as null.
    record: dict[str, JSONScalar] = {}
    for column in schema.features:
        value = row[column.name]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            record[column.name] = None
        elif column.type == "integer":
            record[column.name] = int(value)
        elif column.type == "number":
            record[column.name] = float(value)
        elif column.type == "boolean":
            record[column.name] = bool(value)
        else:
            record[column.name] = str(value)
    return record


def _gate_dict(gate: QualityGate) -> dict[str, Any]:
    return {"passed": gate.passed, "checks": gate.checks}
