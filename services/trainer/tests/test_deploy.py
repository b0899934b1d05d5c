"""`trainer deploy`: the endpoint requests from a deployment reference, checked against botocore's
model of the SageMaker API, and sent over HTTP to moto's SageMaker server on a loopback port.

moto is the boundary: SageMaker itself cannot be reached from a test. moto 5.2.5 has no
UpdateEndpoint and lets CreateModel/CreateEndpointConfig/CreateEndpoint overwrite an existing
name, where AWS refuses it; the `moto_sagemaker` fixture adds both behaviours to moto's
backend as AWS documents them, so a deploy that created anything twice, or created an endpoint
that exists instead of updating it, fails here as it would in AWS.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from artifact_contract import Reference
from botocore.validate import ParamValidator
from moto.core.common_types import TYPE_RESPONSE
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

from tests.conftest import CliResult, make_settings, moto_server, run_cli
from trainer.promotion.deployments import Deployments
from trainer.settings import Settings

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlpipeline-inference:abc1234"
ROLE = "arn:aws:iam::123456789012:role/mlpipeline-sagemaker"
ENDPOINT = "mlpipeline-production"
REGION = "eu-west-1"  # the region of conftest.aws_env
V4 = ("v004", "s3://team-models/runs/v004/model.tar.gz", "4" * 64)
V5 = ("v005", "s3://team-models/runs/v005/model.tar.gz", "5" * 64)


def promote(settings: Settings, version: tuple[str, str, str], target: str = "production") -> None:
    """The reference `make promote` leaves behind, written by the same code."""
    model_version, artifact_uri, sha = version
    reference = Reference(model_version, artifact_uri, sha, "2026-11-30T07:00:00+00:00", "ana")
    Deployments(settings.deployments_dir).write(target, reference)


def settings_for(tmp_path: Path) -> Settings:
    return replace(make_settings(tmp_path), deployments_dir=tmp_path / "deployments")


def deploy(settings: Settings, out: Path, *extra: str) -> tuple[CliResult, dict[str, Any] | None]:
    argv = ["deploy", "--target", "production", "--endpoint", ENDPOINT]
    argv += ["--image-uri", IMAGE, "--role-arn", ROLE, "--out", str(out), *extra]
    result = run_cli(argv, settings)
    return result, json.loads(out.read_text()) if out.exists() else None


def botocore_errors(operation: str, request: dict[str, Any]) -> str:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model(operation).input_shape
    assert shape is not None
    report = ParamValidator().validate(request, shape)
    return str(report.generate_report()) if report.has_errors() else ""


def test_dry_run_writes_requests_botocore_accepts(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    promote(settings, V4)

    result, record = deploy(settings, tmp_path / "plan.json", "--dry-run", "--env", "WORKERS=2")

    assert result.code == 0, result.stderr
    assert "nothing sent" in result.stdout
    assert record is not None and record["sent"] is None
    requests = record["requests"]
    assert sorted(requests) == [
        "CreateEndpoint",
        "CreateEndpointConfig",
        "CreateModel",
        "UpdateEndpoint",
    ]
    for operation, request in requests.items():
        assert botocore_errors(operation, request) == "", operation
    model = requests["CreateModel"]
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == V4[1]
    assert model["PrimaryContainer"]["Environment"] == {"MODEL_SHA256": V4[2], "WORKERS": "2"}
    assert model["ExecutionRoleArn"] == ROLE
    [variant] = requests["CreateEndpointConfig"]["ProductionVariants"]
    assert variant["ModelName"] == model["ModelName"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)
    config_name = requests["CreateEndpointConfig"]["EndpointConfigName"]
    assert model["ModelName"].startswith(f"{ENDPOINT}-v004-")
    assert requests["UpdateEndpoint"] == {
        "EndpointName": ENDPOINT,
        "EndpointConfigName": config_name,
    }
    assert record["reference"]["manifest_sha256"] == V4[2]


def test_a_run_directory_in_s3_is_handed_over_uncompressed(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    promote(settings, ("v004", "s3://team-models/runs/v004", V4[2]))

    result, record = deploy(settings, tmp_path / "plan.json", "--dry-run")

    assert result.code == 0, result.stderr
    assert record is not None
    container = record["requests"]["CreateModel"]["PrimaryContainer"]
    assert "ModelDataUrl" not in container
    assert container["ModelDataSource"] == {
        "S3DataSource": {
            "S3Uri": "s3://team-models/runs/v004/",
            "S3DataType": "S3Prefix",
            "CompressionType": "None",
        }
    }
    assert botocore_errors("CreateModel", record["requests"]["CreateModel"]) == ""


@pytest.mark.parametrize(
    ("artifact_uri", "extra", "message"),
    [
        ("file:///home/ana/runs/artifacts/runs/v004", (), "is not in S3"),
        (V4[1], ("--env", "MODEL_SHA256=" + "0" * 64), "set from the deployment reference"),
        (V4[1], ("--env", "NOVALUE"), "NAME=VALUE"),
        (V4[1], ("--role-arn", "mlpipeline-role"), "is not an IAM role ARN"),
        (V4[1], ("--endpoint", "has_underscores"), "endpoint name"),
        (V4[1], ("--instance-count", "0"), "invalid CreateEndpointConfig request"),
    ],
)
def test_bad_deploys_fail_with_one_line_and_write_nothing(
    tmp_path: Path, artifact_uri: str, extra: tuple[str, ...], message: str
) -> None:
    settings = settings_for(tmp_path)
    promote(settings, ("v004", artifact_uri, V4[2]))

    result, record = deploy(settings, tmp_path / "plan.json", "--dry-run", *extra)

    assert result.code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert record is None


def test_without_a_promotion_there_is_nothing_to_deploy(tmp_path: Path) -> None:
    result, record = deploy(settings_for(tmp_path), tmp_path / "plan.json", "--dry-run")
    assert result.code == 1
    assert "nothing promoted to production yet" in result.stderr
    assert record is None


# --- sent to moto --------------------------------------------------------------------------


def _update_endpoint(self: SageMakerResponse) -> TYPE_RESPONSE:
    """UpdateEndpoint as AWS documents it: the endpoint moves to an existing config."""
    backend = self.sagemaker_backend
    name = self._get_param("EndpointName")
    config = backend.describe_endpoint_config(self._get_param("EndpointConfigName"))
    backend.describe_endpoint(name)  # ValidationError "Could not find endpoint" like AWS
    endpoint = backend.endpoints[name]
    endpoint.endpoint_config_name = config["EndpointConfigName"]
    endpoint.production_variants = endpoint._process_production_variants(
        config["ProductionVariants"]
    )
    return 200, {}, json.dumps({"EndpointArn": endpoint.arn})


def _refusing_existing(create: Callable[..., Any], existing: str, kind: str) -> Callable[..., Any]:
    def strict_create(self: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        name = kwargs[f"{kind}_name"]
        if name in getattr(self, existing):
            raise ValidationError(message=f"Cannot create already existing {kind} {name!r}.")
        return create(self, *args, **kwargs)

    return strict_create


@pytest.fixture(scope="module")
def moto_sagemaker() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SageMakerResponse, "update_endpoint", _update_endpoint, raising=False)
        for method, existing, kind in (
            ("create_model", "_models", "model"),
            ("create_endpoint_config", "endpoint_configs", "endpoint_config"),
            ("create_endpoint", "endpoints", "endpoint"),
        ):
            original = getattr(SageMakerModelBackend, method)
            patch.setattr(
                SageMakerModelBackend, method, _refusing_existing(original, existing, kind)
            )
        with moto_server() as url:
            yield url


def served_model(client: Any, endpoint: str) -> dict[str, Any]:
    """What the endpoint runs, as SageMaker describes it: endpoint -> config -> model."""
    config_name = client.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    config = client.describe_endpoint_config(EndpointConfigName=config_name)
    [variant] = config["ProductionVariants"]
    model: dict[str, Any] = client.describe_model(ModelName=variant["ModelName"])
    return model


@pytest.mark.slow
def test_deploy_creates_the_endpoint_then_updates_it_on_promotion_and_rollback(
    tmp_path: Path, aws_env: str
) -> None:
    settings = settings_for(tmp_path)
    client = boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)
    out = tmp_path / "deployment.json"

    promote(settings, V4)
    first, record = deploy(settings, out)
    assert first.code == 0, first.stderr
    assert record is not None
    assert record["sent"]["operations"] == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    assert json.loads(first.stdout)["endpoint_arn"].endswith(f":endpoint/{ENDPOINT}")
    container = served_model(client, ENDPOINT)["PrimaryContainer"]
    assert container["ModelDataUrl"] == V4[1]
    assert container["Environment"]["MODEL_SHA256"] == V4[2]
    assert container["Image"] == IMAGE
    first_config = record["sent"]["endpoint_config_name"]

    promote(settings, V5)
    second, record = deploy(settings, out, "--wait")
    assert second.code == 0, second.stderr
    assert record is not None
    assert record["sent"]["operations"] == ["CreateModel", "CreateEndpointConfig", "UpdateEndpoint"]
    assert record["sent"]["previous_endpoint_config_name"] == first_config
    assert record["sent"]["status"] == "InService"
    container = served_model(client, ENDPOINT)["PrimaryContainer"]
    assert container["ModelDataUrl"] == V5[1]
    assert container["Environment"]["MODEL_SHA256"] == V5[2]
    # The previous config stays for a rollback.
    assert client.describe_endpoint_config(EndpointConfigName=first_config)

    again, record = deploy(settings, out)
    assert again.code == 0, again.stderr
    assert record is not None and record["sent"]["operations"] == []

    # A rollback of the reference: its model and config still exist, so only the endpoint moves.
    promote(settings, V4)
    back, record = deploy(settings, out)
    assert back.code == 0, back.stderr
    assert record is not None and record["sent"]["operations"] == ["UpdateEndpoint"]
    assert record["sent"]["endpoint_config_name"] == first_config
    assert served_model(client, ENDPOINT)["PrimaryContainer"]["ModelDataUrl"] == V4[1]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("Updating", "is Updating: SageMaker updates an endpoint only when it is InService"),
        ("Failed", "is Failed (disk full): delete it (aws sagemaker delete-endpoint"),
    ],
)
@pytest.mark.usefixtures("aws_env")
def test_an_endpoint_that_cannot_be_updated_is_refused_in_one_line(
    tmp_path: Path, status: str, message: str
) -> None:
    settings = settings_for(tmp_path)
    out = tmp_path / "deployment.json"
    name = f"busy-{status.lower()}"
    promote(settings, V4)
    assert deploy(settings, out, "--endpoint", name)[0].code == 0
    endpoint = sagemaker_backends["123456789012"][REGION].endpoints[name]
    endpoint.endpoint_status = status
    endpoint.failure_reason = "disk full"  # type: ignore[assignment]  # moto types it None

    promote(settings, V5)
    result, _ = deploy(settings, out, "--endpoint", name)

    assert result.code == 1
    assert result.stderr.startswith(f"error: endpoint {name} {message}")
    assert result.stderr.count("\n") == 1


@pytest.mark.usefixtures("aws_env")
def test_an_unreachable_sagemaker_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a loopback port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    settings = settings_for(tmp_path)
    promote(settings, V4)

    result, record = deploy(settings, tmp_path / "deployment.json")

    assert result.code == 1
    assert result.stderr.startswith("error: cannot reach SageMaker")
    assert result.stderr.count("\n") == 1
    assert record is None
