"""``trainer retrain``: the retraining bridge. Train on new data, compare the candidate with the
current production model, and promote it to staging when it passes the promotion gates against
production (so a scheduler or a drift alert can call one command; production stays a human call).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from artifact_contract import ArtifactRoot, ContractError, Manifest, read_manifest
from artifact_contract.files import write_json_atomically

from trainer.errors import EXIT_GATE_FAILED, EXIT_OK, TrainerError
from trainer.policy import POLICY_FILE
from trainer.promotion.deployments import open_run
from trainer.promotion.gates import PromotionPolicy
from trainer.promotion.promote import PromotionRefused, add_common_arguments, downloads_dir, promote
from trainer.promotion.s3deployments import open_deployments
from trainer.settings import Settings
from trainer.train import parse_train_flags
from trainer.training.pipeline import train

_log = logging.getLogger("trainer")
COMPARED = {
    "regression": ("rmse", "mae", "r2", "baseline_rmse"),
    "classification": ("log_loss", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc"),
}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="train on new data; promote to staging if it passes the gates against production",
        description="`trainer train --data-uri URI`, then `trainer promote --target staging "
        "--against-production` on the new run; prints candidate vs production metrics. "
        "Exit codes: 0 promoted to staging, 1 error, 2 bad command line, 3 not promoted.",
    )
    parser.add_argument("--data-uri", required=True, help="the new data: CSV or Parquet")
    parser.add_argument(
        "--train-args", default="", help='more `trainer train` flags, e.g. "--model hist_gb"'
    )
    add_common_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    root_dir = (args.output_dir or settings.artifact_root).absolute()
    policy = PromotionPolicy.load(args.policy or settings.repo_root / POLICY_FILE)
    candidate = train_candidate(settings, args.data_uri, args.train_args, root_dir)
    version = candidate.model_version
    root = ArtifactRoot(root_dir)
    production = current_production(settings)
    sys.stderr.write(comparison(candidate, production))
    summary: dict[str, Any] = {
        "candidate": {"model_version": version, "metrics": candidate.metrics},
        "production": None
        if production is None
        else {"model_version": production.model_version, "metrics": production.metrics},
    }
    code = EXIT_OK
    try:
        summary["promotion"] = promote(
            settings,
            root,
            policy,
            version=version,
            target="staging",
            approved_by=args.approved_by,
            against_production=True,
        ).to_dict()
        summary["outcome"] = f"{version} promoted to staging"
    except PromotionRefused as exc:
        summary["promotion"] = exc.record.to_dict()
        summary["outcome"] = f"{version} not promoted: {exc}"
        _log.error("error: %s", exc)
        code = EXIT_GATE_FAILED
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    if args.record is not None:
        write_json_atomically(args.record, summary)
    return code


def train_candidate(settings: Settings, data_uri: str, train_args: str, root_dir: Path) -> Manifest:
    """Train on ``data_uri`` (with `trainer train` flags from ``train_args``) and return the new
    run's manifest. A run that fails its own training gate is still a version (kept, tracked):
    the promotion gates then refuse it."""
    try:
        flags = shlex.split(train_args)
    except ValueError as exc:
        raise TrainerError(f"--train-args {train_args!r}: {exc}") from None
    config = parse_train_flags(flags, f"--train-args {train_args!r}")
    result = train(replace(config, data_uri=data_uri, output_dir=root_dir), settings)
    return result.manifest


def current_production(settings: Settings) -> Manifest | None:
    reference = open_deployments(settings).read("production")
    if reference is None:
        return None
    try:
        with open_run(reference.artifact_uri, downloads_dir(settings)) as run_dir:
            return read_manifest(run_dir)
    except ContractError as exc:
        raise TrainerError(f"production {reference.model_version}: {exc}") from None


def comparison(candidate: Manifest, production: Manifest | None) -> str:
    compared = COMPARED[candidate.task]
    if production is None:
        header = f"retrain: candidate {candidate.model_version}; no production model to compare"
        rows = [
            f"  {name:<14}{candidate.metrics[name]:>12.3f}"
            for name in compared
            if name in candidate.metrics
        ]
        return "\n".join([header, *rows]) + "\n"
    lines = [
        f"retrain: candidate {candidate.model_version} vs production {production.model_version}",
        f"  {'metric':<14}{'candidate':>12}{'production':>12}{'change':>9}",
    ]
    for name in compared:
        new, old = candidate.metrics.get(name), production.metrics.get(name)
        if new is None or old is None:
            continue
        change = f"{new / old - 1:+.1%}" if old else "n/a"
        lines.append(f"  {name:<14}{new:>12.3f}{old:>12.3f}{change:>9}")
    return "\n".join(lines) + "\n"
