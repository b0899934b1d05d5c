"""``trainer deploy``: hand a promoted model to a SageMaker real-time endpoint.

Three requests for the model-agnostic inference image, built from the deployment reference of
``--target``: CreateModel (the S3 artifact as the model data, which SageMaker puts in
/opt/ml/model, the image's default MODEL_DIR; the manifest digest as ``MODEL_SHA256``, so the
server refuses anything else), CreateEndpointConfig (one variant: instance type and count), and
CreateEndpoint, or UpdateEndpoint when the endpoint exists (SageMaker then brings up the new
instances and shifts traffic to them before it retires the old ones).

Model and endpoint-config names carry the model version and a digest of their own request: the
same reference deployed with the same flags creates nothing twice, and the previous config stays
in AWS for a rollback (``aws sagemaker update-endpoint --endpoint-config-name <previous>``).
Every request is first checked against botocore's model of the SageMaker API; ``--dry-run``
writes them to a file and sends nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifact_contract import Reference
from artifact_contract.files import write_json_atomically

from trainer import handoff
from trainer.errors import EXIT_OK
from trainer.sagemaker import service
from trainer.settings import Settings

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_INSTANCE_COUNT = 1
DEFAULT_OUT = Path("endpoint_deployment.json")
VARIANT = "AllTraffic"  # the SageMaker Python SDK's name for a single-variant endpoint
# Set from the reference; --env may not override them.
_REFERENCE_ENV = frozenset({"MODEL_SHA256", "MODEL_ARTIFACT_URI", "MODEL_DIR"})
_ENV_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,1023}$")
_WAIT_DELAY_SECONDS = 30
_WAIT_ATTEMPTS = 120


class DeployError(handoff.HandoffError):
    """The endpoint requests are invalid, or SageMaker refused or failed them."""


@dataclass(frozen=True)
class Plan:
    endpoint: str
    model_name: str
    config_name: str
    create_model: dict[str, Any]
    create_endpoint_config: dict[str, Any]
    create_endpoint: dict[str, Any]
    update_endpoint: dict[str, Any]

    def requests(self) -> dict[str, dict[str, Any]]:
        """Each request under the name of its SageMaker operation."""
        return {
            "CreateModel": self.create_model,
            "CreateEndpointConfig": self.create_endpoint_config,
            "CreateEndpoint": self.create_endpoint,
            "UpdateEndpoint": self.update_endpoint,
        }


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="deploy a target's promoted model to a SageMaker endpoint (or --dry-run)",
        description="Build CreateModel, CreateEndpointConfig and CreateEndpoint (or "
        "UpdateEndpoint, when the endpoint exists) for the inference image and the target's "
        "promoted artifact in S3, check them against botocore's service model, then write them "
        "(--dry-run) or send them with boto3.",
    )
    handoff.add_reference_arguments(parser)
    parser.add_argument("--endpoint", required=True, help="SageMaker endpoint name")
    parser.add_argument("--image-uri", required=True, help="inference image in ECR")
    parser.add_argument("--role-arn", required=True, help="SageMaker execution role ARN")
    parser.add_argument(
        "--instance-type",
        default=DEFAULT_INSTANCE_TYPE,
        help=f"default {DEFAULT_INSTANCE_TYPE}",
    )
    parser.add_argument(
        "--instance-count",
        type=int,
        default=DEFAULT_INSTANCE_COUNT,
        help=f"default {DEFAULT_INSTANCE_COUNT}",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="more container environment, e.g. --env WORKERS=2 (repeat)",
    )
    parser.add_argument("--region", help="AWS region (default: boto3's configuration)")
    parser.add_argument("--dry-run", action="store_true", help="write the requests, send nothing")
    parser.add_argument("--wait", action="store_true", help="wait until the endpoint is InService")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"deployment record (default {DEFAULT_OUT})"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    reference = handoff.load_reference(settings, args.target, args.reference)
    plan = build_plan(
        reference=reference,
        target=args.target,
        endpoint=args.endpoint,
        image_uri=args.image_uri,
        role_arn=args.role_arn,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        environment=parse_environment(args.env),
    )
    service.validate(plan.requests(), DeployError)
    record: dict[str, Any] = {
        "target": args.target,
        "endpoint": plan.endpoint,
        "reference": reference.to_dict(),
        "requests": plan.requests(),
        "sent": None,
    }
    if args.dry_run:
        write_json_atomically(args.out, record)
        sys.stdout.write(
            f"dry run: wrote {args.out} (endpoint {plan.endpoint}, model {plan.model_name}, "
            "nothing sent)\n"
        )
        return EXIT_OK

    client = service.client(args.region)
    record["sent"] = send(client, plan)
    write_json_atomically(args.out, record)
    if args.wait:
        record["sent"]["status"] = wait(client, plan)
        write_json_atomically(args.out, record)
    sys.stdout.write(json.dumps({"endpoint": plan.endpoint, **record["sent"]}) + "\n")
    return EXIT_OK


def parse_environment(pairs: list[str]) -> dict[str, str]:
    environment: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _ENV_NAME.match(name):
            raise DeployError(f"--env wants NAME=VALUE with a variable name, got {pair!r}")
        if name in _REFERENCE_ENV:
            raise DeployError(f"--env {name}: set from the deployment reference, not by hand")
        environment[name] = value
    return environment


def build_plan(
    *,
    reference: Reference,
    target: str,
    endpoint: str,
    image_uri: str,
    role_arn: str,
    instance_type: str,
    instance_count: int,
    environment: dict[str, str],
) -> Plan:
    """The exact keyword arguments for boto3's create_model, create_endpoint_config,
    create_endpoint and update_endpoint."""
    service.check_identity("endpoint name", endpoint, image_uri, role_arn, DeployError)
    tags = service.reference_tags(target, reference)
    model = service.model_request(reference, image_uri, role_arn, environment)
    model_name = service.resource_name(endpoint, reference.model_version, model)
    config = {
        "ProductionVariants": [
            {
                "VariantName": VARIANT,
                "ModelName": model_name,
                "InstanceType": instance_type,
                "InitialInstanceCount": instance_count,
                "InitialVariantWeight": 1.0,
            }
        ]
    }
    config_name = service.resource_name(endpoint, reference.model_version, config)
    return Plan(
        endpoint=endpoint,
        model_name=model_name,
        config_name=config_name,
        create_model={"ModelName": model_name, **model, "Tags": tags},
        create_endpoint_config={"EndpointConfigName": config_name, **config, "Tags": tags},
        create_endpoint={
            "EndpointName": endpoint,
            "EndpointConfigName": config_name,
            "Tags": [tags[0]],
        },
        update_endpoint={"EndpointName": endpoint, "EndpointConfigName": config_name},
    )


def send(client: Any, plan: Plan) -> dict[str, Any]:
    """Create what does not exist yet, then create or update the endpoint; what was sent."""
    from botocore.exceptions import BotoCoreError, ClientError

    sent: list[str] = []
    operation = "DescribeModel"
    try:
        if service.describe_or_none(client.describe_model, ModelName=plan.model_name) is None:
            operation = "CreateModel"
            client.create_model(**plan.create_model)
            sent.append(operation)
        operation = "DescribeEndpointConfig"
        if (
            service.describe_or_none(
                client.describe_endpoint_config, EndpointConfigName=plan.config_name
            )
            is None
        ):
            operation = "CreateEndpointConfig"
            client.create_endpoint_config(**plan.create_endpoint_config)
            sent.append(operation)
        operation = "DescribeEndpoint"
        current = service.describe_or_none(client.describe_endpoint, EndpointName=plan.endpoint)
        previous = None if current is None else str(current["EndpointConfigName"])
        status = None if current is None else current["EndpointStatus"]
        if current is None:
            operation = "CreateEndpoint"
            arn = client.create_endpoint(**plan.create_endpoint)["EndpointArn"]
            sent.append(operation)
        elif status == "Failed":  # AWS: DeleteEndpoint is the only operation a Failed one takes
            raise DeployError(
                f"endpoint {plan.endpoint} is Failed ({current.get('FailureReason')}): delete "
                f"it (aws sagemaker delete-endpoint --endpoint-name {plan.endpoint}), then deploy "
                "again"
            )
        elif previous == plan.config_name:
            arn = current["EndpointArn"]  # already on this config: nothing to change
        elif status != "InService":
            raise DeployError(
                f"endpoint {plan.endpoint} is {status}: SageMaker updates an endpoint only when "
                "it is InService; wait for it, then deploy again"
            )
        else:
            operation = "UpdateEndpoint"
            arn = client.update_endpoint(**plan.update_endpoint)["EndpointArn"]
            sent.append(operation)
    except ClientError as exc:
        raise DeployError(f"SageMaker refused {operation}: {service.error_text(exc)}") from None
    except BotoCoreError as exc:
        raise DeployError(f"cannot reach SageMaker: {exc}") from None
    return {
        "operations": sent,
        "endpoint_arn": str(arn),
        "model_name": plan.model_name,
        "endpoint_config_name": plan.config_name,
        "previous_endpoint_config_name": previous,
    }


def wait(client: Any, plan: Plan) -> str:
    """Block until the endpoint settles; it must be InService on the new config (a failed
    update leaves it InService on the previous one, which is an error here)."""
    endpoint = service.settle(
        client,
        f"endpoint {plan.endpoint}",
        "endpoint_in_service",
        "describe_endpoint",
        {"EndpointName": plan.endpoint},
        {"Delay": _WAIT_DELAY_SECONDS, "MaxAttempts": _WAIT_ATTEMPTS},
        DeployError,
    )
    status = str(endpoint["EndpointStatus"])
    reason = endpoint.get("FailureReason") or "no reason given"
    if status != "InService":
        raise DeployError(f"endpoint {plan.endpoint} is {status}: {reason}")
    if endpoint["EndpointConfigName"] != plan.config_name:
        raise DeployError(
            f"endpoint {plan.endpoint} stayed on {endpoint['EndpointConfigName']}: the update "
            f"to {plan.config_name} failed: {reason}"
        )
    return status
