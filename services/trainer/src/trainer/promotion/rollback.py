"""``trainer rollback``: put a target back on the reference it stood on before the current one.

The previous reference comes from ``history.jsonl`` (replayed as a stack: a promotion pushes, a
rollback pops). Its artifact must still verify against the digest recorded when it was promoted,
and pass the contract smoke gate again; then the alias, the reference and the history move as in
a promotion.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from artifact_contract import Reference, read_manifest

from trainer.errors import EXIT_OK
from trainer.promotion.deployments import TARGETS, DeploymentError, open_run
from trainer.promotion.gates import integrity
from trainer.promotion.promote import (
    GateRunner,
    PromotionRefused,
    downloads_dir,
    emit,
    install,
)
from trainer.promotion.record import PromotionRecord
from trainer.promotion.s3deployments import open_deployments
from trainer.promotion.smoke import smoke
from trainer.settings import Settings

_log = logging.getLogger("trainer")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rollback",
        help="restore a target's previous deployment reference (and registry alias)",
        description="Restore the reference the target held before the current one, after "
        "re-running the integrity and smoke gates on it. Exit codes: 0 rolled back, 1 error, "
        "2 bad command line, 3 refused by a gate.",
    )
    parser.add_argument("--target", required=True, choices=TARGETS)
    parser.add_argument("--approved-by", help="who asked for the rollback (recorded)")
    parser.add_argument("--record", type=Path, help="also write the record (JSON) to this file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        record = rollback(settings, target=args.target, approved_by=args.approved_by)
    except PromotionRefused as exc:
        emit(exc.record, args.record)
        raise
    emit(record, args.record)
    return EXIT_OK


def rollback(
    settings: Settings,
    *,
    target: str,
    approved_by: str | None,
    reason: str | None = None,
    only_if_current: str | None = None,
) -> PromotionRecord:
    """Restore ``target``'s previous reference. ``reason`` marks an automatic rollback (post-
    promotion verification); ``only_if_current`` refuses unless that digest is still current
    (so an automatic rollback never undoes a later promotion by someone else)."""
    deployments = open_deployments(settings)
    with deployments.lock():
        current = deployments.read(target)
        if current is None:
            raise DeploymentError(f"nothing to roll back: {target} has no reference")
        if only_if_current is not None and current.manifest_sha256 != only_if_current:
            raise DeploymentError(
                f"{target} moved to {current.model_version} meanwhile: not rolling it back"
            )
        lineage = deployments.lineage(target)
        if not lineage or lineage[-1].manifest_sha256 != current.manifest_sha256:
            raise DeploymentError(
                f"{deployments.reference_location(target)} ({current.model_version}) is not "
                f"the latest reference recorded in {deployments.history_location}; refusing "
                "to guess"
            )
        if len(lineage) < 2:
            raise DeploymentError(
                f"nothing to roll back to: {current.model_version} is the first {target} reference"
            )
        previous = lineage[-2]
        record = PromotionRecord.start(
            settings, "rollback", target, previous.model_version, current, None, approved_by, reason
        )
        gates = GateRunner(record, f"rollback of {target} to {previous.model_version}")
        with open_run(previous.artifact_uri, downloads_dir(settings)) as run_dir:
            gates.check(integrity(run_dir, previous.manifest_sha256))
            manifest = read_manifest(run_dir)
            gates.check(smoke(settings.inference_bin, run_dir, manifest, previous.manifest_sha256))
        restored = Reference(
            model_version=previous.model_version,
            artifact_uri=previous.artifact_uri,
            manifest_sha256=previous.manifest_sha256,
            promoted_at=record.at,
            # The artifact's approval is the one it was promoted with; who asked for the
            # rollback is in the history record.
            approved_by=previous.approved_by,
        )
        install(settings, deployments, target, restored, record, None)
    return record
