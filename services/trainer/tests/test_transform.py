"""`trainer submit-transform`: the Batch Transform requests from a deployment reference, checked
against botocore's model of the SageMaker API, and sent over HTTP to moto's SageMaker server on a
loopback port.

moto is the boundary: SageMaker itself cannot be reached from a test. moto 5.2.5 implements
CreateModel, DescribeModel, CreateTransformJob and DescribeTransformJob; it runs no job.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from artifact_contract import Reference
from botocore.validate import ParamValidator

from tests.conftest import CliResult, make_settings, run_cli
from trainer.promotion.deployments import Deployments
from trainer.settings import Settings

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlpipeline-inference:abc1234"
ROLE = "arn:aws:iam::123456789012:role/mlpipeline-sagemaker"
INPUT = "s3://team-data/scoring/2026-11/"
OUTPUT = "s3://team-data/predictions/2026-11/"
REGION = "eu-west-1"  # the region of conftest.aws_env
V4 = ("v004", "s3://team-models/runs/v004/model.tar.gz", "4" * 64)


def promote(settings: Settings, version: tuple[str, str, str]) -> None:
    """The reference `make promote` leaves behind, written by the same code."""
    model_version, artifact_uri, sha = version
    reference = Reference(model_version, artifact_uri, sha, "2026-11-30T07:00:00+00:00", "ana")
    Deployments(settings.deployments_dir).write("production", reference)


def settings_for(tmp_path: Path) -> Settings:
    return replace(make_settings(tmp_path), deployments_dir=tmp_path / "deployments")


def transform(
    settings: Settings, out: Path, *extra: str, model: bool = True
) -> tuple[CliResult, dict[str, Any] | None]:
    argv = ["submit-transform", "--target", "production", "--input-uri", INPUT]
    argv += ["--output-uri", OUTPUT, "--out", str(out)]
    if model:
        argv += ["--image-uri", IMAGE, "--role-arn", ROLE]
    argv += extra  # last: a flag here wins over the defaults above
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

    result, record = transform(settings, tmp_path / "job.json", "--dry-run")

    assert result.code == 0, result.stderr
    assert "nothing sent" in result.stdout
    assert record is not None and record["sent"] is None
    requests = record["requests"]
    assert sorted(requests) == ["CreateModel", "CreateTransformJob"]
    for operation, request in requests.items():
        assert botocore_errors(operation, request) == "", operation
    model = requests["CreateModel"]
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == V4[1]
    assert model["PrimaryContainer"]["Environment"] == {"MODEL_SHA256": V4[2]}
    assert model["ExecutionRoleArn"] == ROLE
    job = requests["CreateTransformJob"]
    assert job["ModelName"] == model["ModelName"]
    assert job["TransformJobName"].startswith("mlpipeline-production-v004-")
    assert (job["BatchStrategy"], job["MaxPayloadInMB"]) == ("MultiRecord", 6)
    assert job["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": INPUT}},
        "ContentType": "text/csv",
        "CompressionType": "None",
        "SplitType": "Line",
    }
    assert job["TransformOutput"] == {
        "S3OutputPath": OUTPUT,
        "Accept": "text/csv",
        "AssembleWith": "Line",
    }
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1}
    # 6 MiB of two-byte lines: the server's row bound never refuses a payload SageMaker sends.
    assert job["Environment"] == {"MAX_BATCH_ROWS": str(6 * 1024 * 1024 // 2)}
    assert record["reference"]["manifest_sha256"] == V4[2]


def test_an_existing_model_and_json_lines(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    promote(settings, V4)
    argv = ["--dry-run", "--model-name", "mlpipeline-production-v004-abc"]
    argv += ["--content-type", "application/jsonlines", "--max-payload-mb", "2"]
    argv += ["--instance-type", "ml.c5.xlarge", "--instance-count", "3", "--job-name", "score-1"]

    result, record = transform(settings, tmp_path / "job.json", *argv, model=False)

    assert result.code == 0, result.stderr
    assert record is not None
    assert list(record["requests"]) == ["CreateTransformJob"]
    job = record["requests"]["CreateTransformJob"]
    assert botocore_errors("CreateTransformJob", job) == ""
    assert (job["TransformJobName"], job["ModelName"]) == ("score-1", argv[2])
    assert job["TransformInput"]["ContentType"] == "application/jsonlines"
    assert job["TransformOutput"]["Accept"] == "application/jsonlines"
    assert job["MaxPayloadInMB"] == 2
    assert job["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 3}


@pytest.mark.parametrize(
    ("artifact_uri", "extra", "message"),
    [
        ("file:///home/ana/runs/artifacts/runs/v004", (), "is not in S3"),
        (V4[1], ("--max-payload-mb", "7"), "--max-payload-mb 7: 1 to 6"),
        (V4[1], ("--input-uri", "/home/ana/data.csv"), "--input-uri must be an s3://"),
        (V4[1], ("--role-arn", "mlpipeline-role"), "is not an IAM role ARN"),
        (V4[1], ("--model-name", "m"), "drop --image-uri/--role-arn"),
        (V4[1], ("--instance-count", "0"), "invalid CreateTransformJob request"),
    ],
)
def test_bad_transforms_fail_with_one_line_and_write_nothing(
    tmp_path: Path, artifact_uri: str, extra: tuple[str, ...], message: str
) -> None:
    settings = settings_for(tmp_path)
    promote(settings, ("v004", artifact_uri, V4[2]))

    result, record = transform(settings, tmp_path / "job.json", "--dry-run", *extra)

    assert result.code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert record is None


# --- sent to moto --------------------------------------------------------------------------


def test_submit_creates_the_model_once_and_the_job(tmp_path: Path, aws_env: str) -> None:
    settings = settings_for(tmp_path)
    client = boto3.client("sagemaker", endpoint_url=aws_env, region_name=REGION)
    out = tmp_path / "job.json"
    promote(settings, V4)

    first, record = transform(settings, out, "--job-name", "score-first")

    assert first.code == 0, first.stderr
    assert record is not None
    assert record["sent"]["operations"] == ["CreateModel", "CreateTransformJob"]
    assert json.loads(first.stdout)["transform_job_arn"].endswith(":transform-job/score-first")
    job = client.describe_transform_job(TransformJobName="score-first")
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == INPUT
    assert (job["BatchStrategy"], job["TransformInput"]["SplitType"]) == ("MultiRecord", "Line")
    model = client.describe_model(ModelName=job["ModelName"])["PrimaryContainer"]
    assert model["ModelDataUrl"] == V4[1]
    assert model["Environment"]["MODEL_SHA256"] == V4[2]

    second, record = transform(settings, out, "--job-name", "score-second")
    assert second.code == 0, second.stderr
    assert record is not None and record["sent"]["operations"] == ["CreateTransformJob"]

    # The model just made, named: accepted; it carries the promoted digest.
    third, record = transform(
        settings, out, "--job-name", "score-third", "--model-name", job["ModelName"], model=False
    )
    assert third.code == 0, third.stderr
    assert record is not None and record["sent"]["operations"] == ["CreateTransformJob"]


@pytest.mark.usefixtures("aws_env")
def test_a_missing_or_different_model_is_refused_in_one_line(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    out = tmp_path / "job.json"
    promote(settings, ("v003", "s3://team-models/runs/v003/model.tar.gz", "3" * 64))
    made, record = transform(settings, out, "--job-name", "score-v003")
    assert made.code == 0, made.stderr
    assert record is not None
    v003_model = record["sent"]["model_name"]
    out.unlink()

    promote(settings, V4)
    for name, message in (
        ("no-such-model", "model no-such-model does not exist in SageMaker"),
        (v003_model, f"has MODEL_SHA256 {'3' * 64}, not the promoted v004's {V4[2]}"),
    ):
        result, record = transform(settings, out, "--model-name", name, model=False)
        assert result.code == 1
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert message in result.stderr
        assert record is None
