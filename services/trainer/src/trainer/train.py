"""``trainer train``: data -> fit -> holdout metrics and gate -> run directory -> MLflow."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from artifact_contract import ArtifactRoot, QualityGate

from trainer import data, evaluate, model, provenance, tracking
from trainer.artifact import Published, TrainingOutcome, publish_run
from trainer.errors import EXIT_GATE_FAILED, EXIT_OK
from trainer.settings import Settings, disable_mlflow_telemetry
from trainer.tracking import Tracked

_log = logging.getLogger("trainer")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one model into <output-dir>/runs/vNNN and track it in MLflow",
        description="Train, evaluate, gate, publish a versioned run directory, track in MLflow. "
        "Exit codes: 0 ok, 1 error, 2 bad command line, 3 quality gate failed.",
    )
    source = parser.add_argument_group("data")
    source.add_argument(
        "--data-uri",
        help="CSV or Parquet: local path, file:// or s3:// (default: the seed's synthetic set)",
    )
    source.add_argument(
        "--samples", type=int, default=2000, help="rows of synthetic data (default 2000)"
    )
    source.add_argument("--seed", type=int, default=42, help="seed for data, split, model")
    source.add_argument(
        "--holdout-fraction", type=_fraction, default=0.2, help="share held out (default 0.2)"
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output-dir", type=Path, help="artifact root (default runs/artifacts at the repo root)"
    )
    out.add_argument("--experiment", help="MLflow experiment (default $MLFLOW_EXPERIMENT_NAME)")
    hyper = parser.add_argument_group("model")
    hyper.add_argument("--model", choices=model.MODEL_KINDS, default="ridge")
    hyper.add_argument("--alpha", type=float, default=1.0, help="ridge: L2 strength")
    hyper.add_argument("--max-iter", type=int, default=200, help="hist_gb: boosting rounds")
    hyper.add_argument("--learning-rate", type=float, default=0.1, help="hist_gb")
    hyper.add_argument("--max-leaf-nodes", type=int, default=31, help="hist_gb")
    hyper.add_argument("--l2-regularization", type=float, default=0.0, help="hist_gb")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    disable_mlflow_telemetry()
    config = model.ModelConfig(
        kind=args.model,
        alpha=args.alpha,
        max_iter=args.max_iter,
        learning_rate=args.learning_rate,
        max_leaf_nodes=args.max_leaf_nodes,
        l2_regularization=args.l2_regularization,
    )
    root = ArtifactRoot((args.output_dir or settings.artifact_root).absolute())
    tracking.preflight(settings.tracking_uri)

    # Libraries print to stdout (MLflow's "View run" links); stdout is for the JSON summary only.
    with contextlib.redirect_stdout(sys.stderr):
        published, tracked, metrics, gate = _train_publish_track(args, settings, config, root)
    summary = {
        "model_version": published.version,
        "run_dir": str(published.run_dir),
        "latest": published.is_latest,
        "manifest_sha256": published.manifest_sha256,
        "metrics": metrics,
        "quality_gate": {"passed": gate.passed, "checks": gate.checks},
        "mlflow": {
            "tracking_uri": settings.tracking_uri,
            "experiment_id": tracked.experiment_id,
            "run_id": tracked.run_id,
            "registered_model": tracked.registered_name,
            "registered_version": tracked.registered_version,
        },
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    if not gate.passed:
        sys.stderr.write(
            f"error: quality gate failed: {published.version} kept, latest not moved "
            f"(rmse {metrics['rmse']:.1f} >= {gate.checks[0]['threshold']:.1f})\n"
        )
        return EXIT_GATE_FAILED
    return EXIT_OK


def _train_publish_track(
    args: argparse.Namespace, settings: Settings, config: model.ModelConfig, root: ArtifactRoot
) -> tuple[Published, Tracked, dict[str, float], QualityGate]:
    dataset = data.load(args.data_uri) if args.data_uri else data.synthetic(args.samples, args.seed)
    _log.info(
        "data: %d rows from %s (sha256 %s)", dataset.rows, dataset.source, dataset.sha256[:12]
    )
    split = evaluate.split(dataset.frame, args.seed, args.holdout_fraction)
    estimator = model.fit(config, split.train, args.seed)
    metrics = evaluate.holdout_metrics(estimator, split)
    gate = evaluate.quality_gate(metrics)
    _log.info(
        "fit %s on %d rows; holdout %d rows: rmse %.1f, mae %.1f, r2 %.3f, baseline rmse %.1f",
        config.kind,
        len(split.train),
        len(split.holdout),
        metrics["rmse"],
        metrics["mae"],
        metrics["r2"],
        metrics["baseline_rmse"],
    )
    _log.info(
        "quality gate: %s (%s)", "passed" if gate.passed else "FAILED", gate.checks[0]["rule"]
    )

    params: dict[str, str | int | float | bool | None] = {
        "seed": args.seed,
        "samples": None if args.data_uri else args.samples,
        "holdout_fraction": args.holdout_fraction,
        **config.params(),
    }
    outcome = TrainingOutcome(
        estimator=estimator,
        kind=config.kind,
        dataset=dataset,
        split=split,
        params=params,
        metrics=metrics,
        gate=gate,
        libraries=provenance.libraries(),
        git=provenance.git_info(settings.repo_root),
        created_at=provenance.utc_now(),
    )
    published = publish_run(root, outcome)
    _log.info(
        "published %s at %s (latest %s)",
        published.version,
        published.run_dir,
        "-> " + published.version if published.is_latest else "unchanged",
    )
    tracked = tracking.track(
        tracking_uri=settings.tracking_uri,
        experiment_name=args.experiment or settings.experiment_name,
        registered_model_name=settings.registered_model_name,
        run_dir=published.run_dir,
        manifest=published.manifest,
        manifest_sha256=published.manifest_sha256,
    )
    _log.info(
        "mlflow: run %s, registered %s version %s",
        tracked.run_id,
        tracked.registered_name,
        tracked.registered_version,
    )
    return published, tracked, metrics, gate


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.05 <= value <= 0.5:
        raise argparse.ArgumentTypeError(f"must be between 0.05 and 0.5, got {value}")
    return value
