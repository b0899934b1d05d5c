"""What the serving engines (SageMaker, Kubernetes) take from a deployment reference.

Both run the model-agnostic inference image somewhere else, so the artifact must be somewhere
they can read it (S3) and the manifest digest travels with it as ``MODEL_SHA256``: the server
refuses any artifact whose manifest does not match the promoted one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlparse

from artifact_contract import Reference, read_reference

from trainer.errors import TrainerError
from trainer.promotion.deployments import TARGETS
from trainer.promotion.s3deployments import open_deployments
from trainer.settings import Settings


class HandoffError(TrainerError):
    """The reference cannot be handed to a serving engine, or the engine refused it."""


def add_reference_arguments(parser: argparse.ArgumentParser) -> None:
    """``--target`` and ``--reference``, the same for every handoff command."""
    parser.add_argument(
        "--target", required=True, choices=TARGETS, help="the deployment reference to hand off"
    )
    parser.add_argument(
        "--reference",
        type=Path,
        help="a reference JSON file (default: <MLPIPELINE_DEPLOYMENTS_DIR>/<target>.json)",
    )


def load_reference(settings: Settings, target: str, path: Path | None) -> Reference:
    """The promoted reference of ``target``, or the one in ``path``; one line when missing."""
    if path is None:
        deployments = open_deployments(settings)
        reference = deployments.read(target)
        if reference is None:
            raise HandoffError(
                f"nothing promoted to {target} yet (no {deployments.reference_location(target)}): "
                f"run `make promote VERSION=vNNN TARGET={target}` first"
            )
        return reference
    return read_reference(path)


def s3_artifact(reference: Reference) -> str:
    """The reference's artifact URI when it is in S3 (a ``.tar.gz`` or a run-directory prefix)."""
    uri = reference.artifact_uri
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise HandoffError(
            f"{reference.model_version}: artifact_uri {uri} is not in S3; the serving engine "
            "reads the model from S3, so promote a run published to s3:// "
            "(MLPIPELINE_ARTIFACT_ROOT=s3://bucket/prefix, docs/07_team_scale.md)"
        )
    return uri
