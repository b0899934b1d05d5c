"""Assemble a run directory in staging and publish it as the next version.

Everything is written under a hidden staging name; ``ArtifactRoot.publish`` allocates the version
under its lock, our finalize callback writes the two files that carry the version
(model_version.txt, then manifest.json listing every file's digest), and the directory appears as
``runs/vNNN`` in one rename. ``latest`` moves only for a run that passed its quality gate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from artifact_contract import (
    VERSION_FILE,
    ArtifactRoot,
    DataRef,
    Example,
    Feature,
    GitInfo,
    Manifest,
    ModelRef,
    QualityGate,
    file_digests,
    write_manifest,
)

from trainer import serialization
from trainer.data import FEATURE_NAMES, FEATURES, TARGET, Dataset
from trainer.errors import TrainerError
from trainer.evaluate import Split
from trainer.profile import reference_profile

METRICS_FILE = "metrics.json"
N_EXAMPLES = 5


@dataclass(frozen=True)
class TrainingOutcome:
    estimator: Any
    kind: str
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


def publish_run(root: ArtifactRoot, outcome: TrainingOutcome) -> Published:
    try:
        return _publish_run(root, outcome)
    except OSError as exc:
        # The staging directory is removed on the way out: nothing half-written stays behind.
        where = exc.filename or root.root
        raise TrainerError(f"{where}: cannot write the run ({exc.strerror or exc})") from None


def _publish_run(root: ArtifactRoot, outcome: TrainingOutcome) -> Published:
    with root.staging() as staging:
        serialization.save(outcome.estimator, outcome.kind, staging)
        metrics_doc = {"metrics": outcome.metrics, "quality_gate": _gate_dict(outcome.gate)}
        (staging / METRICS_FILE).write_text(json.dumps(metrics_doc, indent=2) + "\n")
        examples = saved_model_examples(staging, outcome.split.holdout)
        written: dict[str, Any] = {}

        def finalize(run_dir: Path, version: str) -> None:
            (run_dir / VERSION_FILE).write_text(version + "\n")
            manifest = build_manifest(outcome, version, file_digests(run_dir), examples)
            written["manifest"] = manifest
            written["sha256"] = write_manifest(run_dir, manifest)

        version = root.publish(staging, finalize, move_latest=outcome.gate.passed)
    return Published(
        version=version,
        run_dir=root.run_dir(version),
        manifest=written["manifest"],
        manifest_sha256=written["sha256"],
        is_latest=root.latest_version() == version,
    )


def saved_model_examples(model_dir: Path, holdout: pd.DataFrame) -> list[Example]:
    """A few holdout rows with the predictions of the model as saved (loaded back through MLflow),
    so the examples double as a check that the written artifact works."""
    import mlflow.pyfunc

    rows = holdout[list(FEATURE_NAMES)].head(N_EXAMPLES).to_dict("records")
    inputs = [_record({str(name): value for name, value in row.items()}) for row in rows]
    loaded = mlflow.pyfunc.load_model(str(model_dir))
    predictions = loaded.predict(pd.DataFrame(inputs, columns=list(FEATURE_NAMES)))
    return [
        Example(input=dict(record), prediction=float(value))
        for record, value in zip(inputs, predictions, strict=True)
    ]


def build_manifest(
    outcome: TrainingOutcome, version: str, files: dict[str, str], examples: list[Example]
) -> Manifest:
    train = outcome.split.train
    return Manifest(
        model_version=version,
        created_at=outcome.created_at,
        model=ModelRef(flavor="sklearn", path=serialization.MODEL_FILE, format="skops"),
        files=files,
        input_schema=[
            Feature(
                name=name, type=kind, min=float(train[name].min()), max=float(train[name].max())
            )
            for name, kind in FEATURES
        ],
        output={"name": TARGET},
        data=DataRef(
            source=outcome.dataset.source, sha256=outcome.dataset.sha256, rows=outcome.dataset.rows
        ),
        params=outcome.params,
        metrics=outcome.metrics,
        quality_gate=outcome.gate,
        libraries=outcome.libraries,
        git=outcome.git,
        examples=examples,
        profile=reference_profile(outcome.estimator, outcome.split),
    )


def _record(row: dict[str, Any]) -> dict[str, float]:
    # Integer features are shown as integers, which is what a client would send.
    types = dict(FEATURES)
    return {
        name: int(value) if types[name] == "integer" and float(value).is_integer() else float(value)
        for name, value in row.items()
    }


def _gate_dict(gate: QualityGate) -> dict[str, Any]:
    return {"passed": gate.passed, "checks": gate.checks}
