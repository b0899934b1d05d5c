"""``trainer submit``: hand a training run to SageMaker as a CreateTrainingJob request.

The request runs the trainer image's ``train`` entrypoint (trainer/sagemaker/container.py) on
the ``train`` channel. ``--dry-run`` only writes ``training_submission.json``; otherwise the
request is sent with boto3 (credentials and region from boto3's usual chain) and, with ``--wait``,
followed to its end.
Either way the request is first checked against botocore's own model of the SageMaker API.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from artifact_contract.files import write_json_atomically

from trainer.errors import EXIT_OK, TrainerError
from trainer.sagemaker import service
from trainer.settings import Settings
from trainer.training import provenance

CHANNEL = "train"
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_OUT = Path("training_submission.json")
# Tracking URIs that name a server SageMaker could reach; a local sqlite file never travels.
_SERVER_SCHEMES = frozenset({"http", "https", "databricks", "arn"})

_log = logging.getLogger("trainer")


class SubmitError(TrainerError):
    """The submission is invalid, or AWS refused or failed it."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="submit a SageMaker training job (or --dry-run: write training_submission.json)",
        description="Build a SageMaker CreateTrainingJob request for the trainer image, check it "
        "against botocore's service model, then write it (--dry-run) or send it with boto3.",
    )
    parser.add_argument("--image-uri", required=True, help="trainer image in ECR")
    parser.add_argument("--role-arn", required=True, help="SageMaker execution role ARN")
    parser.add_argument("--data-uri", required=True, help="s3:// CSV or Parquet file (or prefix)")
    parser.add_argument("--output-uri", required=True, help="s3:// prefix for model.tar.gz")
    parser.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE)
    parser.add_argument("--volume-size-gb", type=int, default=10)
    parser.add_argument("--max-runtime-seconds", type=int, default=3600)
    parser.add_argument("--job-name", help="default: mlpipeline-<UTC time>-<git sha>")
    parser.add_argument(
        "--hyperparameter",
        "-H",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a `trainer train` flag for the job, e.g. -H model=hist_gb -H max_iter=50",
    )
    parser.add_argument("--subnet", action="append", default=[], help="VPC subnet id (repeat)")
    parser.add_argument(
        "--security-group", action="append", default=[], help="VPC security group id (repeat)"
    )
    parser.add_argument(
        "--mlflow-tracking-uri",
        help="MLflow server for the job (default: $MLFLOW_TRACKING_URI when it names a server)",
    )
    parser.add_argument("--region", help="AWS region (default: boto3's configuration)")
    parser.add_argument("--dry-run", action="store_true", help="write the request, send nothing")
    parser.add_argument("--wait", action="store_true", help="wait for the job to finish")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"submission record (default {DEFAULT_OUT})"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    git = provenance.git_info(settings.repo_root)
    git_sha = git.commit if git else None
    job_name = args.job_name or default_job_name(git_sha)
    hyperparameters = parse_hyperparameters(args.hyperparameter)
    tracking_uri = args.mlflow_tracking_uri or server_tracking_uri(settings.tracking_uri)
    request = build_request(
        job_name=job_name,
        image_uri=args.image_uri,
        role_arn=args.role_arn,
        data_uri=args.data_uri,
        output_uri=args.output_uri,
        instance_type=args.instance_type,
        volume_size_gb=args.volume_size_gb,
        max_runtime_seconds=args.max_runtime_seconds,
        hyperparameters=hyperparameters,
        subnets=args.subnet,
        security_groups=args.security_group,
        tracking_uri=tracking_uri,
        git_sha=git_sha,
    )
    service.validate({"CreateTrainingJob": request}, SubmitError)
    record: dict[str, Any] = {
        "create_training_job": request,
        "model_artifact_uri": model_artifact_uri(args.output_uri, job_name),
        "git_sha": git_sha,
        "image_uri": args.image_uri,
        "data_uri": args.data_uri,
    }
    if args.dry_run:
        write_record(args.out, record)
        sys.stdout.write(f"dry run: wrote {args.out} (job {job_name}, nothing sent)\n")
        return EXIT_OK

    client = service.client(args.region)
    record["training_job_arn"] = send(client, request)
    _log.info("submitted %s", record["training_job_arn"])
    write_record(args.out, record)
    if args.wait:
        record["status"] = wait(client, job_name, args.max_runtime_seconds)
        write_record(args.out, record)
    sys.stdout.write(json.dumps({k: v for k, v in record.items() if k != "create_training_job"}))
    sys.stdout.write("\n")
    return EXIT_OK


def default_job_name(git_sha: str | None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"mlpipeline-{stamp}" + (f"-{git_sha[:7]}" if git_sha else "")


def parse_hyperparameters(pairs: list[str]) -> dict[str, str]:
    """``["max_iter=50"]`` -> ``{"max_iter": "50"}``, checked by the `train` flags' own parser, so
    a typo fails here rather than an hour later in AWS."""
    from trainer.sagemaker.container import SageMakerError, hyperparameter_flags, parse_train_args

    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise SubmitError(f"--hyperparameter wants NAME=VALUE, got {pair!r}")
        values[name.strip()] = value
    try:
        parse_train_args(hyperparameter_flags(values))
    except SageMakerError as exc:
        raise SubmitError(str(exc)) from None
    return values


def server_tracking_uri(tracking_uri: str) -> str | None:
    return tracking_uri if urlparse(tracking_uri).scheme in _SERVER_SCHEMES else None


def build_request(
    *,
    job_name: str,
    image_uri: str,
    role_arn: str,
    data_uri: str,
    output_uri: str,
    instance_type: str,
    volume_size_gb: int,
    max_runtime_seconds: int,
    hyperparameters: dict[str, str],
    subnets: list[str],
    security_groups: list[str],
    tracking_uri: str | None,
    git_sha: str | None,
) -> dict[str, Any]:
    """The exact keyword arguments for boto3's ``sagemaker.create_training_job``."""
    service.check_identity("job name", job_name, image_uri, role_arn, SubmitError)
    for flag, uri in (("--data-uri", data_uri), ("--output-uri", output_uri)):
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise SubmitError(f"{flag} must be an s3://bucket/... URI, got {uri!r}")
    if bool(subnets) != bool(security_groups):
        raise SubmitError("a VPC needs both --subnet and --security-group")

    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {"TrainingImage": image_uri, "TrainingInputMode": "File"},
        "RoleArn": role_arn,
        "InputDataConfig": [
            {
                "ChannelName": CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": data_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "HyperParameters": {name: str(value) for name, value in sorted(hyperparameters.items())},
    }
    if subnets:
        request["VpcConfig"] = {"Subnets": subnets, "SecurityGroupIds": security_groups}
    if tracking_uri:
        request["Environment"] = {"MLFLOW_TRACKING_URI": tracking_uri}
    if git_sha:
        request["Tags"] = [{"Key": "mlpipeline:git-sha", "Value": git_sha}]
    return request


def model_artifact_uri(output_uri: str, job_name: str) -> str:
    """Where SageMaker puts the job's model/ directory: a valid MODEL_ARTIFACT_URI."""
    return f"{output_uri.rstrip('/')}/{job_name}/output/model.tar.gz"


def write_record(path: Path, record: dict[str, Any]) -> None:
    write_json_atomically(path, record, sort_keys=True, default=str)


def send(client: Any, request: dict[str, Any]) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.create_training_job(**request)
    except ClientError as exc:
        raise SubmitError(f"SageMaker refused the job: {service.error_text(exc)}") from None
    except BotoCoreError as exc:
        raise SubmitError(f"cannot reach SageMaker: {exc}") from None
    return str(response["TrainingJobArn"])


def wait(client: Any, job_name: str, max_runtime_seconds: int) -> str:
    """Block until the job completes, fails or stops; anything but Completed is an error."""
    delay = 30
    job = service.settle(
        client,
        f"training job {job_name}",
        "training_job_completed_or_stopped",
        "describe_training_job",
        {"TrainingJobName": job_name},
        {"Delay": delay, "MaxAttempts": max_runtime_seconds // delay + 60},
        SubmitError,
    )
    status = str(job["TrainingJobStatus"])
    if status != "Completed":
        reason = job.get("FailureReason") or "no reason given"
        raise SubmitError(f"training job {job_name} is {status}: {reason}")
    return status
