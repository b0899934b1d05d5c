"""The SageMaker API as botocore models it, shared by ``trainer submit`` and ``trainer deploy``:
the request check AWS runs first, resource-name rules, waiting for a resource to settle, and the
boto3 client."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from artifact_contract import Reference

from trainer import handoff
from trainer.errors import TrainerError

# SageMaker's pattern for job, model, endpoint-config and endpoint names.
RESOURCE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


def request_errors(operation: str, request: Mapping[str, Any]) -> str:
    """botocore's own check of ``request`` against the SageMaker service model's input shape
    for ``operation`` (e.g. ``CreateModel``): one line listing every problem, "" when valid."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model(operation).input_shape
    if shape is None:  # never for the operations we send; keeps the type checker honest
        return f"botocore has no input shape for {operation}"
    report = ParamValidator().validate(request, shape)
    return " ".join(report.generate_report().split()) if report.has_errors() else ""


def check_identity(
    kind: str, name: str, image_uri: str, role_arn: str, error: type[TrainerError]
) -> None:
    """The resource name (``kind`` says which, e.g. "job name"), image and role of a request,
    checked before the request is built; the first problem raises ``error``."""
    if not RESOURCE_NAME.match(name):
        raise error(f"{kind} {name!r}: 1-63 letters, digits and hyphens")
    if not image_uri.strip():
        raise error("--image-uri is empty")
    if not ROLE_ARN.match(role_arn):
        raise error(f"--role-arn {role_arn!r} is not an IAM role ARN")


def validate(requests: Mapping[str, Mapping[str, Any]], error: type[TrainerError]) -> None:
    """botocore's own check of each request (under its operation's name) against the SageMaker
    service model; the first invalid one raises ``error``."""
    for operation, request in requests.items():
        errors = request_errors(operation, request)
        if errors:
            raise error(f"invalid {operation} request: {errors}")


def settle(
    client: Any,
    what: str,
    waiter: str,
    describe: str,
    name: dict[str, str],
    wait_config: dict[str, int],
    error: type[TrainerError],
) -> dict[str, Any]:
    """Block on boto3's ``waiter`` until ``what`` (e.g. "endpoint e1", named to the API by
    ``name``: ``{"EndpointName": "e1"}``) settles, then its description by the ``describe``
    call; a failure ends the waiter too, and the caller reads why from the description."""
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError

    try:
        client.get_waiter(waiter).wait(**name, WaiterConfig=wait_config)
    except WaiterError:
        pass
    try:
        described: dict[str, Any] = getattr(client, describe)(**name)
    except (BotoCoreError, ClientError) as exc:
        raise error(f"cannot describe {what}: {exc}") from None
    return described


def client(region: str | None) -> Any:
    import boto3

    return boto3.client("sagemaker", region_name=region)


def error_text(exc: Exception) -> str:
    """``Code: Message`` of a botocore ClientError, else the exception's own text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code')}: {error.get('Message')}"
    return str(exc)


def model_request(
    reference: Reference, image_uri: str, role_arn: str, environment: Mapping[str, str] = {}
) -> dict[str, Any]:
    """CreateModel's container and role for the model-agnostic inference image serving the
    reference's S3 artifact, whose digest the container must verify (``MODEL_SHA256``)."""
    artifact = handoff.s3_artifact(reference)
    container: dict[str, Any] = {
        "Image": image_uri,
        "Mode": "SingleModel",
        "Environment": {**environment, "MODEL_SHA256": reference.manifest_sha256},
    }
    if urlparse(artifact).path.endswith((".tar.gz", ".tgz")):
        container["ModelDataUrl"] = artifact
    else:  # a run directory under an S3 prefix: SageMaker copies it as is (no tarball)
        container["ModelDataSource"] = {
            "S3DataSource": {
                "S3Uri": artifact.rstrip("/") + "/",
                "S3DataType": "S3Prefix",
                "CompressionType": "None",
            }
        }
    return {"PrimaryContainer": container, "ExecutionRoleArn": role_arn}


def reference_tags(target: str, reference: Reference) -> list[dict[str, str]]:
    """What every resource we create says about the promotion it serves."""
    return [
        {"Key": "mlpipeline:target", "Value": target},
        {"Key": "mlpipeline:model-version", "Value": reference.model_version},
        {"Key": "mlpipeline:manifest-sha256", "Value": reference.manifest_sha256},
    ]


def resource_name(prefix: str, version: str, request: Mapping[str, Any]) -> str:
    """``<prefix>-<version>-<digest of the request>``, cut to SageMaker's 63 characters: the
    same request always gets the same name, so an existing resource is reused, not duplicated."""
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:10]
    suffix = f"-{version}-{digest}"
    return prefix[: 63 - len(suffix)].rstrip("-") + suffix


def describe_or_none(describe: Any, **name: str) -> dict[str, Any] | None:
    """The resource's description, or None when SageMaker says it does not exist."""
    from botocore.exceptions import ClientError

    try:
        found: dict[str, Any] = describe(**name)
    except ClientError as exc:
        if "Could not find" in str(exc.response.get("Error", {}).get("Message")):
            return None
        raise
    return found
