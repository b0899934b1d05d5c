"""``--data-uri s3://...`` against moto's S3 server on a loopback port (a real HTTP endpoint that
boto3 reaches through AWS_ENDPOINT_URL, exactly as it would reach MinIO or AWS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from artifact_contract import read_manifest, sha256_bytes

from tests.conftest import make_settings, moto_server, run_cli
from trainer.training import data

pytestmark = pytest.mark.slow  # trainings against moto's S3 server

BUCKET = "training-data"


@pytest.fixture()
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint


@pytest.mark.usefixtures("s3_endpoint")
def test_trains_from_a_csv_in_s3(tmp_path: Path) -> None:
    body = data.synthetic(200, 21).frame.to_csv(index=False).encode()
    boto3.client("s3").put_object(Bucket=BUCKET, Key="sets/train.csv", Body=body)
    uri = f"s3://{BUCKET}/sets/train.csv"

    result = run_cli(["train", "--data-uri", uri], make_settings(tmp_path))

    assert result.code == 0, result.stderr
    manifest = read_manifest(Path(result.summary["run_dir"]))
    assert manifest.data.source == uri
    assert manifest.data.sha256 == sha256_bytes(body)
    assert manifest.data.rows == 200


@pytest.mark.usefixtures("s3_endpoint")
def test_missing_s3_object_is_one_line(tmp_path: Path) -> None:
    uri = f"s3://{BUCKET}/nope.csv"
    result = run_cli(["train", "--data-uri", uri], make_settings(tmp_path))
    assert result.code == 1
    assert result.stderr == f"error: {uri}: cannot read from S3 (NoSuchKey)\n"
