"""The SageMaker API as botocore models it, shared by ``trainer submit`` and ``trainer deploy``:
the request check AWS runs first, resource-name rules, and the boto3 client."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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
