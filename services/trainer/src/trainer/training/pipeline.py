"""The training use case: ``train(config, settings) -> TrainResult``.

``trainer train``, ``trainer retrain`` and the SageMaker ``train`` entrypoint all call this one
function: data -> schema -> fitted pipeline -> holdout metrics and quality gate -> run directory
-> MLflow run, logged model and registered version -> published ``runs/vNNN`` (and ``latest``
when the gate passed). Expected failures raise TrainerError (one line for the user).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from artifact_contract import ArtifactRoot, Manifest, QualityGate

from trainer.s3store import S3ArtifactRoot
from trainer.settings import Settings, disable_mlflow_telemetry
from trainer.training import data, evaluate, model, provenance, schema, tracking
from trainer.training.publish import Published, TrainingOutcome, publish_run
from trainer.training.tracking import Tracked

_log = logging.getLogger("trainer")


@dataclass(frozen=True)
class TrainConfig:
    data_uri: str | None = None  # None: the seed's synthetic set
    samples: int = 2000  # synthetic rows
    target: str = data.TARGET
    features: tuple[str, ...] | None = None  # None: every column but the target and `drop`
    drop: tuple[str, ...] = ()
    task: str | None = None  # None: inferred from the target
    seed: int = 42
    holdout_fraction: float = 0.2
    output_dir: Path | None = None  # None: settings.artifact_root
    experiment: str | None = None  # None: settings.experiment_name
    model: model.ModelConfig = field(default_factory=model.ModelConfig)


@dataclass(frozen=True)
class TrainResult:
    published: Published
    tracked: Tracked
    schema: schema.TableSchema
    metrics: dict[str, float]
    gate: QualityGate
    train_rows: int
    holdout_rows: int
    wall_seconds: float

    @property
    def version(self) -> str:
        return self.published.version

    @property
    def manifest(self) -> Manifest:
        return self.published.manifest


def train(config: TrainConfig, settings: Settings) -> TrainResult:
    started = time.perf_counter()
    disable_mlflow_telemetry()
    root = ArtifactRoot((config.output_dir or settings.artifact_root).absolute())
    shared = None
    if config.output_dir is None and settings.artifact_store is not None:
        shared = S3ArtifactRoot(settings.artifact_store)
    tracking.preflight(settings.tracking_uri)
    # Libraries print to stdout (MLflow's "View run" links); stdout belongs to the caller.
    with contextlib.redirect_stdout(sys.stderr):
        return _train(config, settings, root, shared, started)


def _train(
    config: TrainConfig,
    settings: Settings,
    root: ArtifactRoot,
    shared: S3ArtifactRoot | None,
    started: float,
) -> TrainResult:
    if config.data_uri:
        dataset = data.load(config.data_uri)
    else:
        dataset = data.synthetic(config.samples, config.seed)
    frame, table = schema.prepare(
        dataset.frame,
        source=dataset.source,
        target=config.target,
        features=config.features,
        drop=config.drop,
        task=config.task,
        holdout_fraction=config.holdout_fraction,
    )
    kind = config.model.resolved_kind(table.task)
    _log.info(
        "data: %d rows from %s (sha256 %s)", dataset.rows, dataset.source, dataset.sha256[:12]
    )
    _log.info(
        "task: %s of %r (%s), model %s; %d feature(s): %s%s",
        table.task,
        table.target,
        "--task" if config.task else "inferred",
        kind,
        len(table.features),
        ", ".join(f"{c.name}:{c.type}{'?' if c.nullable else ''}" for c in table.features),
        f"; {table.dropped_rows} row(s) without a target dropped" if table.dropped_rows else "",
    )
    split = evaluate.split(frame, config.seed, config.holdout_fraction, table)
    estimator = model.fit(config.model, table, split.train, config.seed)
    metrics = evaluate.holdout_metrics(estimator, split, table)
    gate = evaluate.quality_gate(metrics, table.task)
    _log.info(
        "fit %s on %d rows; holdout %d rows: %s",
        kind,
        len(split.train),
        len(split.holdout),
        ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()),
    )
    check = gate.checks[0]
    _log.info("quality gate: %s (%s)", "passed" if gate.passed else "FAILED", check["rule"])

    params: dict[str, str | int | float | bool | None] = {
        "seed": config.seed,
        "samples": None if config.data_uri else config.samples,
        "holdout_fraction": config.holdout_fraction,
        **config.model.params(table.task),
    }
    if table.dropped_rows:
        params["dropped_rows_without_target"] = table.dropped_rows
    outcome = TrainingOutcome(
        estimator=estimator,
        schema=table,
        dataset=dataset,
        split=split,
        params=params,
        metrics=metrics,
        gate=gate,
        libraries=provenance.libraries(),
        git=provenance.git_info(settings.repo_root),
        created_at=provenance.utc_now(),
    )

    def record(run_dir: Path, manifest: Manifest, manifest_sha256: str) -> Tracked:
        return tracking.track(
            tracking_uri=settings.tracking_uri,
            experiment_name=config.experiment or settings.experiment_name,
            registered_model_name=settings.registered_model_name,
            run_dir=run_dir,
            manifest=manifest,
            manifest_sha256=manifest_sha256,
            training_data=frame,
        )

    published, tracked = publish_run(root, outcome, record, shared)
    _log.info(
        "mlflow: run %s, logged model %s, registered %s version %s",
        tracked.run_id,
        tracked.model_id,
        tracked.registered_name,
        tracked.registered_version,
    )
    wall = time.perf_counter() - started
    _log.info(
        "published %s at %s (latest %s) in %.1f s",
        published.version,
        published.artifact_uri,
        "-> " + published.version if published.is_latest else "unchanged",
        wall,
    )
    return TrainResult(
        published=published,
        tracked=tracked,
        schema=table,
        metrics=metrics,
        gate=gate,
        train_rows=len(split.train),
        holdout_rows=len(split.holdout),
        wall_seconds=wall,
    )
