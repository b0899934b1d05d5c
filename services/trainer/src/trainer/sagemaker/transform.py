"""``trainer submit-transform``: score an S3 data set with a target's promoted model as a
SageMaker Batch Transform job.

The job runs the model-agnostic inference image on the deployment reference's artifact, as
``trainer deploy`` does for an endpoint: a CreateModel request (the S3 artifact as model data,
the manifest digest as ``MODEL_SHA256``, so the server refuses anything else) unless
``--model-name`` names an existing model, and a CreateTransformJob request. SageMaker splits the
input at line ends (``SplitType=Line``), packs lines into requests of at most ``MaxPayloadInMB``
(``BatchStrategy=MultiRecord``), posts them to ``/invocations`` and joins the answers line by
line (``AssembleWith=Line``) into ``<output>/<input file>.out``.

Every request is first checked against botocore's model of the SageMaker API; ``--dry-run``
writes them to a file and sends nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from artifact_contract import Reference
from artifact_contract.files import write_json_atomically

from trainer import handoff
from trainer.errors import EXIT_OK
from trainer.sagemaker import service
from trainer.settings import Settings

CONTENT_TYPES = ("text/csv", "application/jsonlines")
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_INSTANCE_COUNT = 1
# The inference server's MAX_BODY_BYTES default is 6 MiB; SageMaker's MB is at most a MiB.
MAX_PAYLOAD_MB = 6
DEFAULT_OUT = Path("transform_job.json")
_MIB = 1024 * 1024


class TransformError(handoff.HandoffError):
    """The transform requests are invalid, or SageMaker refused them."""


@dataclass(frozen=True)
class Plan:
    job_name: str
    model_name: str
    create_model: dict[str, Any] | None  # None: --model-name, an existing model
    create_transform_job: dict[str, Any]

    def requests(self) -> dict[str, dict[str, Any]]:
        """Each request under the name of its SageMaker operation."""
        requests = {"CreateModel": self.create_model} if self.create_model else {}
        return {**requests, "CreateTransformJob": self.create_transform_job}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "submit-transform",
        help="score S3 data with a target's promoted model as a SageMaker Batch Transform job",
        description="Build CreateModel (unless --model-name) and CreateTransformJob for the "
        "inference image and the target's promoted artifact in S3, check them against "
        "botocore's service model, then write them (--dry-run) or send them with boto3.",
    )
    handoff.add_reference_arguments(parser)
    parser.add_argument("--input-uri", required=True, help="s3:// prefix or object to score")
    parser.add_argument("--output-uri", required=True, help="s3:// prefix for the predictions")
    parser.add_argument(
        "--content-type", choices=CONTENT_TYPES, default="text/csv", help="default text/csv"
    )
    parser.add_argument("--image-uri", help="inference image in ECR (unless --model-name)")
    parser.add_argument("--role-arn", help="SageMaker execution role ARN (unless --model-name)")
    parser.add_argument(
        "--model-name",
        help="an existing SageMaker model carrying the reference's MODEL_SHA256 "
        "(e.g. one `trainer deploy` made) instead of a new one",
    )
    parser.add_argument(
        "--instance-type", default=DEFAULT_INSTANCE_TYPE, help=f"default {DEFAULT_INSTANCE_TYPE}"
    )
    parser.add_argument(
        "--instance-count",
        type=int,
        default=DEFAULT_INSTANCE_COUNT,
        help=f"default {DEFAULT_INSTANCE_COUNT}",
    )
    parser.add_argument(
        "--max-payload-mb",
        type=int,
        default=MAX_PAYLOAD_MB,
        help=f"largest request SageMaker sends, 1-{MAX_PAYLOAD_MB} (default {MAX_PAYLOAD_MB}: "
        "the server's MAX_BODY_BYTES)",
    )
    parser.add_argument("--job-name", help="default: mlpipeline-<target>-<version>-<UTC time>")
    parser.add_argument("--region", help="AWS region (default: boto3's configuration)")
    parser.add_argument("--dry-run", action="store_true", help="write the requests, send nothing")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"job record (default {DEFAULT_OUT})"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    reference = handoff.load_reference(settings, args.target, args.reference)
    plan = build_plan(
        reference=reference,
        target=args.target,
        job_name=args.job_name or default_job_name(args.target, reference.model_version),
        input_uri=args.input_uri,
        output_uri=args.output_uri,
        content_type=args.content_type,
        image_uri=args.image_uri,
        role_arn=args.role_arn,
        model_name=args.model_name,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        max_payload_mb=args.max_payload_mb,
    )
    service.validate(plan.requests(), TransformError)
    record: dict[str, Any] = {
        "target": args.target,
        "reference": reference.to_dict(),
        "requests": plan.requests(),
        "sent": None,
    }
    if args.dry_run:
        write_json_atomically(args.out, record)
        sys.stdout.write(
            f"dry run: wrote {args.out} (job {plan.job_name}, model {plan.model_name}, "
            "nothing sent)\n"
        )
        return EXIT_OK

    record["sent"] = send(service.client(args.region), plan, reference)
    write_json_atomically(args.out, record)
    sys.stdout.write(json.dumps({"transform_job": plan.job_name, **record["sent"]}) + "\n")
    return EXIT_OK


def default_job_name(target: str, version: str) -> str:
    return f"mlpipeline-{target}-{version}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def build_plan(
    *,
    reference: Reference,
    target: str,
    job_name: str,
    input_uri: str,
    output_uri: str,
    content_type: str,
    image_uri: str | None,
    role_arn: str | None,
    model_name: str | None,
    instance_type: str,
    instance_count: int,
    max_payload_mb: int,
) -> Plan:
    """The exact keyword arguments for boto3's create_model and create_transform_job."""
    if not service.RESOURCE_NAME.match(job_name):
        raise TransformError(f"job name {job_name!r}: 1-63 letters, digits and hyphens")
    for flag, uri in (("--input-uri", input_uri), ("--output-uri", output_uri)):
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise TransformError(f"{flag} must be an s3://bucket/... URI, got {uri!r}")
    if not 1 <= max_payload_mb <= MAX_PAYLOAD_MB:
        raise TransformError(
            f"--max-payload-mb {max_payload_mb}: 1 to {MAX_PAYLOAD_MB} (the inference server "
            "refuses bodies over MAX_BODY_BYTES, 6 MiB)"
        )
    tags = service.reference_tags(target, reference)
    create_model = None
    if model_name is None:
        model = _model(reference, image_uri, role_arn)
        model_name = service.resource_name(f"mlpipeline-{target}", reference.model_version, model)
        create_model = {"ModelName": model_name, **model, "Tags": tags}
    elif image_uri or role_arn:
        raise TransformError("--model-name uses an existing model: drop --image-uri/--role-arn")
    elif not service.RESOURCE_NAME.match(model_name):
        raise TransformError(f"model name {model_name!r}: 1-63 letters, digits and hyphens")

    job = {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": max_payload_mb,
        # A payload holds at most one line per 2 bytes (a character and its newline): the
        # server's row bound must not refuse what the payload bound lets through.
        "Environment": {"MAX_BATCH_ROWS": str(max_payload_mb * _MIB // 2)},
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": content_type,
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": output_uri,
            "Accept": content_type,
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": instance_count},
        "Tags": tags,
    }
    return Plan(job_name, model_name, create_model, job)


def _model(reference: Reference, image_uri: str | None, role_arn: str | None) -> dict[str, Any]:
    """CreateModel's container and role, as ``trainer deploy`` builds them."""
    if not image_uri or not image_uri.strip():
        raise TransformError("--image-uri is required (or --model-name of an existing model)")
    if not role_arn or not service.ROLE_ARN.match(role_arn):
        raise TransformError(f"--role-arn {role_arn!r} is not an IAM role ARN")
    return service.model_request(reference, image_uri, role_arn)


def send(client: Any, plan: Plan, reference: Reference) -> dict[str, Any]:
    """Create the model unless it exists (an existing one must carry the promoted digest), then
    the transform job; what was sent."""
    from botocore.exceptions import BotoCoreError, ClientError

    sent: list[str] = []
    operation = "DescribeModel"
    try:
        model = service.describe_or_none(client.describe_model, ModelName=plan.model_name)
        if model is None:
            if plan.create_model is None:
                raise TransformError(f"model {plan.model_name} does not exist in SageMaker")
            operation = "CreateModel"
            client.create_model(**plan.create_model)
            sent.append(operation)
        else:
            digest = model.get("PrimaryContainer", {}).get("Environment", {}).get("MODEL_SHA256")
            if digest != reference.manifest_sha256:
                raise TransformError(
                    f"model {plan.model_name} has MODEL_SHA256 {digest}, not the promoted "
                    f"{reference.model_version}'s {reference.manifest_sha256}"
                )
        operation = "CreateTransformJob"
        arn = client.create_transform_job(**plan.create_transform_job)["TransformJobArn"]
        sent.append(operation)
    except ClientError as exc:
        raise TransformError(f"SageMaker refused {operation}: {service.error_text(exc)}") from None
    except BotoCoreError as exc:
        raise TransformError(f"cannot reach SageMaker: {exc}") from None
    return {"operations": sent, "transform_job_arn": str(arn), "model_name": plan.model_name}
