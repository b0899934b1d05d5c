"""``trainer promote``: move an immutable artifact (its manifest digest) to staging or production.

Gates, in order, the instant ones first, stopping at the first that fails (exit 3, one line
saying which and why):
  1 integrity  — the run directory exists and every digest verifies;
  2 quality    — the run passed its training gate, and its holdout metric meets policy.toml's
                 [promotion] rule for its task: skill over its own baseline, any absolute limits
                 of the registered model, and (production, or --against-production) no more than
                 the tolerated drop below the current production model's skill;
  3 staging and approval (production only) — the same artifact is in staging, an approver named;
  4 smoke      — (3 for staging) the real inference service, started on the candidate,
                 reproduces its examples; seconds, so it runs once every instant gate passed.
Then: the MLflow alias moves and is tagged, ``runs/deployments/<target>.json`` is replaced
atomically and a record is appended to ``runs/deployments/history.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from artifact_contract import ArtifactRoot, ContractError, Manifest, Reference, read_manifest
from artifact_contract.files import write_json_atomically

from trainer.errors import EXIT_GATE_FAILED, EXIT_OK, TrainerError
from trainer.policy import POLICY_FILE
from trainer.promotion.deployments import (
    TARGETS,
    DeploymentError,
    DeploymentStore,
    artifact_uri_of,
    open_run,
)
from trainer.promotion.gates import Gate, PromotionPolicy, integrity, quality, staged_and_approved
from trainer.promotion.record import PromotionRecord, RegistryAlias
from trainer.promotion.registry import Registry
from trainer.promotion.s3deployments import open_deployments
from trainer.promotion.smoke import smoke
from trainer.s3store import S3ArtifactRoot
from trainer.settings import Settings

_log = logging.getLogger("trainer")


class PromotionRefused(TrainerError):
    """A gate said no. Carries the record (every gate run so far, with its figures)."""

    exit_code = EXIT_GATE_FAILED

    def __init__(self, message: str, record: PromotionRecord) -> None:
        super().__init__(message)
        self.record = record


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "promote",
        help="gate a run and promote it to staging or production",
        description="Promote runs/vNNN to a target after the integrity, quality, (production) "
        "staging+approval and smoke gates. Exit codes: 0 promoted, 1 error, "
        "2 bad command line, 3 refused by a gate.",
    )
    parser.add_argument("--version", required=True, help="the run to promote, e.g. v003")
    parser.add_argument("--target", required=True, choices=TARGETS)
    add_common_arguments(parser)
    parser.add_argument(
        "--against-production",
        action="store_true",
        help="staging too: refuse a run worse than the current production model",
    )
    parser.add_argument(
        "--verify-url",
        help="after promoting: wait until the server at this URL (following the target's "
        "reference) serves the promoted digest, probe it, and roll back automatically when the "
        "policy's [verification] SLOs fail (exit 3)",
    )
    parser.set_defaults(handler=run)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--approved-by",
        help="who approved: recorded in the reference and history (promote requires it for "
        "production)",
    )
    parser.add_argument(
        "--policy", type=Path, help=f"policy file with a [promotion] table (default {POLICY_FILE})"
    )
    parser.add_argument(
        "--output-dir", type=Path, help="artifact root (default runs/artifacts at the repo root)"
    )
    parser.add_argument("--record", type=Path, help="also write the record (JSON) to this file")


def run(args: argparse.Namespace, settings: Settings) -> int:
    root = ArtifactRoot((args.output_dir or settings.artifact_root).absolute())
    shared = None
    if args.output_dir is None and settings.artifact_store is not None:
        shared = S3ArtifactRoot(settings.artifact_store)
    policy = PromotionPolicy.load(args.policy or POLICY_FILE)
    try:
        record = promote(
            settings,
            shared or root,
            policy,
            version=args.version,
            target=args.target,
            approved_by=args.approved_by,
            against_production=args.against_production,
        )
    except PromotionRefused as exc:
        emit(exc.record, args.record)
        raise
    if args.verify_url:
        record = verify_or_roll_back(settings, record, args.verify_url, policy.path)
    emit(record, args.record)
    if record.verification is not None and not record.verification.passed:
        rolled = record.rollback
        sys.stderr.write(
            f"error: post-promotion verification of {record.to_version} failed "
            f"({record.verification.detail}); {record.target} rolled back to "
            f"{rolled.to_version if rolled else '(rollback failed)'}\n"
        )
        return EXIT_GATE_FAILED
    return EXIT_OK


def verify_or_roll_back(
    settings: Settings, record: PromotionRecord, url: str, policy_path: Path
) -> PromotionRecord:
    """Post-promotion verification of a promotion just installed; on failure, the automatic
    rollback (its own history record, ``automatic: true`` with the reason)."""
    from trainer.promotion.rollback import rollback
    from trainer.promotion.verify import VerificationPolicy, verify

    policy = VerificationPolicy.load(policy_path)
    reference = record.installed
    if reference is None:
        raise TrainerError(f"{record.target}: nothing was installed to verify")
    with open_run(reference.artifact_uri, downloads_dir(settings)) as run_dir:
        examples = [dict(example.input) for example in read_manifest(run_dir).examples]
    result = verify(url, reference.manifest_sha256, examples, policy)
    record.verification = result
    if result.passed:
        _log.info("verification passed: %s", result.detail)
        return record
    _log.error("verification failed: %s; rolling %s back", result.detail, record.target)
    try:
        record.rollback = rollback(
            settings,
            target=record.target,
            approved_by=record.approved_by,
            reason=f"post-promotion verification failed: {result.detail}",
            only_if_current=reference.manifest_sha256,
        )
    except (TrainerError, ContractError) as exc:
        _log.error("automatic rollback failed: %s", exc)
    return record


def emit(record: PromotionRecord, path: Path | None) -> None:
    document = record.to_dict()
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    if path is not None:
        write_json_atomically(path, document)


def promote(
    settings: Settings,
    root: ArtifactRoot | S3ArtifactRoot,
    policy: PromotionPolicy,
    *,
    version: str,
    target: str,
    approved_by: str | None,
    against_production: bool = False,
) -> PromotionRecord:
    """Run the gates on ``version`` of ``root`` (a local artifact root, or the shared store in
    S3, downloaded and verified here), then install it as ``target``'s reference."""
    deployments = open_deployments(settings)
    with deployments.lock(), candidate(settings, root, version) as (run_dir, artifact_uri):
        current = deployments.read(target)
        record = PromotionRecord.start(
            settings, "promote", target, version, current, policy, approved_by
        )
        gates = GateRunner(record, f"promotion of {version} to {target}")

        first = gates.check(integrity(run_dir))
        manifest_sha256 = str(first.figures["manifest_sha256"])
        manifest = read_manifest(run_dir)
        if current is not None and current.manifest_sha256 == manifest_sha256:
            raise DeploymentError(f"{version} is already the {target} reference: nothing to do")
        production = None
        if target == "production" or against_production:
            production = production_manifest(settings, deployments, manifest_sha256)
        gates.check(quality(manifest, policy, production, settings.registered_model_name))
        if target == "production":
            staging = deployments.read("staging")
            gates.check(staged_and_approved(version, manifest_sha256, staging, approved_by))
        gates.check(smoke(settings.inference_bin, run_dir, manifest, manifest_sha256))

        reference = Reference(
            model_version=version,
            artifact_uri=artifact_uri,
            manifest_sha256=manifest_sha256,
            promoted_at=record.at,
            approved_by=approved_by.strip() if approved_by and approved_by.strip() else None,
        )
        install(settings, deployments, target, reference, record, policy.sha256)
    return record


class GateRunner:
    """Runs gates in order into the record; the first failure raises PromotionRefused."""

    def __init__(self, record: PromotionRecord, action: str) -> None:
        self.record = record
        self.action = action

    def check(self, gate: Gate) -> Gate:
        number = self.record.add_gate(gate)
        if not gate.passed:
            raise PromotionRefused(
                f"{self.action} refused at gate {number} ({gate.name}): {gate.detail}",
                self.record,
            )
        _log.info("gate %d %s: passed (%s)", number, gate.name, gate.detail)
        return gate


@contextmanager
def candidate(
    settings: Settings, root: ArtifactRoot | S3ArtifactRoot, version: str
) -> Iterator[tuple[Path, str]]:
    """(local run directory, artifact URI for the reference) of the run to promote."""
    if isinstance(root, S3ArtifactRoot):
        with root.downloaded(version, downloads_dir(settings)) as run_dir:
            yield run_dir, root.run_uri(version)
    else:
        run_dir = root.run_dir(version)
        yield run_dir, artifact_uri_of(run_dir)


def downloads_dir(settings: Settings) -> Path:
    """Where runs in S3 are downloaded to be verified (each into a fresh directory)."""
    return settings.artifact_root.absolute() / ".downloads"


def production_manifest(
    settings: Settings, deployments: DeploymentStore, candidate_sha256: str
) -> Manifest | None:
    """The manifest of the current production model to compare against; None when there is no
    production model yet, or it is this very artifact."""
    production = deployments.read("production")
    if production is None or production.manifest_sha256 == candidate_sha256:
        return None
    try:
        with open_run(production.artifact_uri, downloads_dir(settings)) as run_dir:
            return read_manifest(run_dir)
    except ContractError as exc:
        raise DeploymentError(
            f"cannot read the current production model {production.model_version}: {exc}"
        ) from None


def install(
    settings: Settings,
    deployments: DeploymentStore,
    target: str,
    reference: Reference,
    record: PromotionRecord,
    policy_sha256: str | None,
) -> None:
    """After every gate passed: the registry alias, then the reference, then the history record.
    The reference is what servers start from, so it is written only once the alias has moved."""
    registry = Registry(settings.tracking_uri, settings.registered_model_name)
    registered = registry.find(reference.model_version, reference.manifest_sha256)
    tags = {"promoted_at": reference.promoted_at, "approved_by": reference.approved_by or ""}
    if policy_sha256 is not None:
        tags["policy_sha256"] = policy_sha256
    registry.move_alias(target, registered, tags)
    path = deployments.write(target, reference)
    record.install(
        reference, RegistryAlias(registered.name, registered.version, target, settings.tracking_uri)
    )
    deployments.append_history(record.to_dict())
    _log.info(
        "%s: %s -> %s (registry %s version %s, alias %s); reference %s",
        target,
        record.from_version or "none",
        reference.model_version,
        registered.name,
        registered.version,
        target,
        path,
    )
