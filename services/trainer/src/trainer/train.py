"""``trainer train``: parse the flags into a TrainConfig, call ``train()``, print the summary."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

from trainer.errors import EXIT_GATE_FAILED, EXIT_OK, TrainerError
from trainer.settings import Settings
from trainer.training import model
from trainer.training.data import TARGET
from trainer.training.pipeline import TrainConfig, TrainResult, train
from trainer.training.schema import TASKS


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one model into <output-dir>/runs/vNNN and track it in MLflow",
        description="Train, evaluate, gate, track and register in MLflow, publish a run "
        "directory. Exit codes: 0 ok, 1 error, 2 bad command line, 3 quality gate failed.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `trainer train` flags (also parsed by `retrain --train-args` and SageMaker's `train`)."""
    source = parser.add_argument_group("data")
    source.add_argument(
        "--data-uri",
        help="CSV or Parquet: local path, file:// or s3:// (default: the seed's synthetic set)",
    )
    source.add_argument("--target", default=TARGET, help=f"target column (default {TARGET})")
    source.add_argument(
        "--features", type=_names, help="feature columns a,b,c (default: every other column)"
    )
    source.add_argument("--drop", type=_names, default=(), help="columns to leave out: id,...")
    source.add_argument(
        "--task", choices=TASKS, help="default: numeric target -> regression, else classification"
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
        "--output-dir",
        type=local_dir,
        help="local artifact root (default $MLPIPELINE_ARTIFACT_ROOT, else runs/artifacts)",
    )
    out.add_argument("--experiment", help="MLflow experiment (default $MLFLOW_EXPERIMENT_NAME)")
    hyper = parser.add_argument_group("model")
    hyper.add_argument(
        "--model",
        choices=model.MODEL_KINDS,
        help="ridge or hist_gb (regression), logistic or hist_gb (classification); "
        "default ridge / logistic",
    )
    hyper.add_argument("--alpha", type=float, default=1.0, help="ridge: L2 strength")
    hyper.add_argument("--c", type=float, default=1.0, help="logistic: inverse L2 strength (C)")
    hyper.add_argument("--max-iter", type=int, default=200, help="hist_gb: boosting rounds")
    hyper.add_argument("--learning-rate", type=float, default=0.1, help="hist_gb")
    hyper.add_argument("--max-leaf-nodes", type=int, default=31, help="hist_gb")
    hyper.add_argument("--l2-regularization", type=float, default=0.0, help="hist_gb")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        data_uri=args.data_uri,
        samples=args.samples,
        target=args.target,
        features=args.features,
        drop=args.drop,
        task=args.task,
        seed=args.seed,
        holdout_fraction=args.holdout_fraction,
        output_dir=args.output_dir,
        experiment=args.experiment,
        model=model.ModelConfig(
            kind=args.model,
            alpha=args.alpha,
            c=args.c,
            max_iter=args.max_iter,
            learning_rate=args.learning_rate,
            max_leaf_nodes=args.max_leaf_nodes,
            l2_regularization=args.l2_regularization,
        ),
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    result = train(config_from_args(args), settings)
    sys.stdout.write(json.dumps(summary(result, settings), indent=2) + "\n")
    if not result.gate.passed:
        check = result.gate.checks[0]
        sys.stderr.write(
            f"error: quality gate failed: {result.version} kept, latest not moved "
            f"({check['name']}: {check['value']:.4g} >= {check['threshold']:.4g})\n"
        )
        return EXIT_GATE_FAILED
    return EXIT_OK


def summary(result: TrainResult, settings: Settings) -> dict[str, Any]:
    published, tracked = result.published, result.tracked
    return {
        "model_version": published.version,
        "run_dir": str(published.run_dir),
        "artifact_uri": published.artifact_uri,
        "latest": published.is_latest,
        "manifest_sha256": published.manifest_sha256,
        "task": result.schema.task,
        "target": result.schema.target,
        "features": {column.name: column.type for column in result.schema.features},
        "rows": {
            "train": result.train_rows,
            "holdout": result.holdout_rows,
            "dropped_without_target": result.schema.dropped_rows,
        },
        "metrics": result.metrics,
        "quality_gate": {"passed": result.gate.passed, "checks": result.gate.checks},
        "wall_seconds": round(result.wall_seconds, 2),
        "mlflow": {
            "tracking_uri": settings.tracking_uri,
            "experiment_id": tracked.experiment_id,
            "run_id": tracked.run_id,
            "logged_model_id": tracked.model_id,
            "registered_model": tracked.registered_name,
            "registered_version": tracked.registered_version,
        },
    }


def parse_train_flags(flags: list[str], what: str) -> TrainConfig:
    """`trainer train` flags given as a list (retrain's --train-args, SageMaker's hyper-parameters)
    -> a TrainConfig; argparse's complaint becomes one TrainerError line."""
    parser = argparse.ArgumentParser(prog="trainer train", add_help=False)
    add_arguments(parser)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            args = parser.parse_args(flags)
    except SystemExit:
        lines = [line for line in captured.getvalue().splitlines() if line.strip()]
        # argparse says "trainer train: error: <what>"; keep the <what>.
        reason = lines[-1].split(": error: ", 1)[-1] if lines else "invalid arguments"
        raise TrainerError(f"invalid {what}: {reason}") from None
    return config_from_args(args)


def local_dir(text: str) -> Path:
    if "://" in text:
        raise argparse.ArgumentTypeError(
            f"{text}: a local directory; for S3 set MLPIPELINE_ARTIFACT_ROOT=s3://bucket/prefix"
        )
    return Path(text)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected column names separated by commas")
    return names


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.05 <= value <= 0.5:
        raise argparse.ArgumentTypeError(f"must be between 0.05 and 0.5, got {value}")
    return value
