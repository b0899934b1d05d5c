"""`trainer submit`: the CreateTrainingJob request, checked against botocore's service model, and
sent for real over HTTP to moto's SageMaker server on a loopback port.

moto is the boundary here: AWS itself (SageMaker running the job) cannot be reached from a test,
so the send path is proven against moto's implementation of the same API, and the request's
shape against botocore's own model of CreateTrainingJob, which is what AWS validates first.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator

from trainer import cli
from trainer.settings import Settings

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlpipeline-trainer:abc1234"
ROLE = "arn:aws:iam::123456789012:role/mlpipeline-sagemaker"
DATA = "s3://mlpipeline-data/train/houses.csv"
OUTPUT = "s3://mlpipeline-models/jobs"


def submit(
    tmp_path: Path, *extra: str, tracking_uri: str | None = None
) -> tuple[int, dict[str, Any] | None]:
    out = tmp_path / "training_submission.json"
    env = {"MLFLOW_TRACKING_URI": tracking_uri} if tracking_uri else {}
    settings = Settings.from_env(env, cwd=Path(__file__).parent)
    argv = [
        "submit",
        "--image-uri",
        IMAGE,
        "--role-arn",
        ROLE,
        "--data-uri",
        DATA,
        "--output-uri",
        OUTPUT,
        "--out",
        str(out),
        *extra,
    ]
    code = cli.main(argv, settings)
    return code, json.loads(out.read_text()) if out.exists() else None


def head_commit() -> str | None:
    """The checkout's commit, or None outside a git checkout (e.g. an unpacked sdist)."""
    done = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def botocore_errors(request: dict[str, Any]) -> str:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateTrainingJob").input_shape
    assert shape is not None
    report = ParamValidator().validate(request, shape)
    return str(report.generate_report()) if report.has_errors() else ""


def test_dry_run_writes_a_request_botocore_accepts(tmp_path: Path) -> None:
    code, record = submit(
        tmp_path,
        "--dry-run",
        "--instance-type",
        "ml.c5.xlarge",
        "-H",
        "model=hist_gb",
        "-H",
        "max_iter=50",
        "--subnet",
        "subnet-0abc",
        "--security-group",
        "sg-0abc",
        tracking_uri="https://mlflow.internal.example:5000",
    )

    assert code == 0
    assert record is not None
    request = record["create_training_job"]
    assert botocore_errors(request) == ""
    job = request["TrainingJobName"]
    assert record["model_artifact_uri"] == f"{OUTPUT}/{job}/output/model.tar.gz"
    assert record["image_uri"] == IMAGE
    assert record["data_uri"] == DATA
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": IMAGE,
        "TrainingInputMode": "File",
    }
    [channel] = request["InputDataConfig"]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == DATA
    assert request["ResourceConfig"]["InstanceType"] == "ml.c5.xlarge"
    assert request["HyperParameters"] == {"max_iter": "50", "model": "hist_gb"}
    assert request["VpcConfig"] == {"Subnets": ["subnet-0abc"], "SecurityGroupIds": ["sg-0abc"]}
    assert request["Environment"] == {"MLFLOW_TRACKING_URI": "https://mlflow.internal.example:5000"}
    assert record["git_sha"] == head_commit()


def test_a_local_tracking_store_is_not_sent_to_sagemaker(tmp_path: Path) -> None:
    code, record = submit(tmp_path, "--dry-run", tracking_uri=f"sqlite:///{tmp_path}/m.db")
    assert code == 0 and record is not None
    assert "Environment" not in record["create_training_job"]
    assert "VpcConfig" not in record["create_training_job"]


def test_the_validator_rejects_a_malformed_request(tmp_path: Path) -> None:
    # Guards the guard: the same check flags a request SageMaker would refuse.
    code, record = submit(tmp_path, "--dry-run")
    assert code == 0 and record is not None
    broken = dict(record["create_training_job"])
    broken["ResourceConfig"] = {**broken["ResourceConfig"], "InstanceCount": "one"}
    del broken["RoleArn"]
    errors = botocore_errors(broken)
    assert "RoleArn" in errors
    assert "InstanceCount" in errors


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--data-uri", "/local/file.csv"), "--data-uri must be an s3://"),
        (("--role-arn", "mlpipeline-role"), "is not an IAM role ARN"),
        (("-H", "alpha=lots"), "argument --alpha: invalid float"),
        (("-H", "no_such=1"), "unrecognized arguments"),
        (("-H", "alpha"), "NAME=VALUE"),
        (("--subnet", "subnet-1"), "needs both --subnet and --security-group"),
        (("--job-name", "has_underscores"), "job name"),
    ],
)
def test_bad_submissions_fail_with_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str
) -> None:
    code, record = submit(tmp_path, "--dry-run", *extra)
    assert code != 0
    assert record is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert message in err[0]


def test_submit_sends_the_job_and_waits_for_it(tmp_path: Path, aws_env: str) -> None:
    code, record = submit(tmp_path, "--wait", "-H", "alpha=0.5", "--job-name", "mlpipeline-t1")

    assert code == 0
    assert record is not None
    assert record["training_job_arn"].endswith(":training-job/mlpipeline-t1")
    assert record["status"] == "Completed"
    job = boto3.client("sagemaker", endpoint_url=aws_env).describe_training_job(
        TrainingJobName="mlpipeline-t1"
    )
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert job["RoleArn"] == ROLE
    assert job["HyperParameters"] == {"alpha": "0.5"}
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == DATA
    assert job["OutputDataConfig"]["S3OutputPath"] == OUTPUT


@pytest.mark.usefixtures("aws_env")
def test_an_unreachable_endpoint_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a loopback port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    code, record = submit(tmp_path, "--job-name", "mlpipeline-unreachable")

    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert record is None
    assert len(err) == 1 and err[0].startswith("error: cannot reach SageMaker")
