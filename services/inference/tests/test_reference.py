"""MODEL_REFERENCE: the server reads a deployment reference (local or in S3 on moto's server)
and serves its artifact only with the promoted manifest digest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from artifact_contract import Reference, serialize_reference, sha256_file
from moto.server import ThreadedMotoServer

from inference.errors import ArtifactIntegrityError, ConfigurationError, ModelSourceError
from inference.loader import load_model
from inference.reference import resolve
from inference.settings import Settings

BUCKET = "team-store"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def store(s3_endpoint: str, aws_env: None, monkeypatch: pytest.MonkeyPatch, ridge_run: Path) -> str:  # noqa: ARG001
    """The ridge run published under s3://<bucket>/runs/v002/ and a reference to it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    for path in ridge_run.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"runs/v002/{path.relative_to(ridge_run)}")
    reference = Reference(
        model_version="v002",
        artifact_uri=f"s3://{BUCKET}/runs/v002/",
        manifest_sha256=sha256_file(ridge_run / "manifest.json"),
        promoted_at="2026-11-30T07:00:00Z",
        approved_by="ana",
    )
    client.put_object(
        Bucket=BUCKET, Key="deployments/production.json", Body=serialize_reference(reference)
    )
    return f"s3://{BUCKET}/deployments/production.json"


def test_a_reference_in_s3_names_the_model_and_its_digest(store: str, tmp_path: Path) -> None:
    settings = resolve(Settings(model_reference_uri=store, model_cache_dir=tmp_path / "cache"))
    assert settings.model_artifact_uri == f"s3://{BUCKET}/runs/v002/"
    model = load_model(settings)
    assert model.model_version == "v002"
    assert model.manifest_sha256 == settings.model_sha256


def test_a_tampered_s3_artifact_is_refused_at_serving(store: str, tmp_path: Path) -> None:
    client = boto3.client("s3")
    key = "runs/v002/manifest.json"
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    client.put_object(Bucket=BUCKET, Key=key, Body=body.replace(b'"v002"', b'"v009"'))
    settings = resolve(Settings(model_reference_uri=store, model_cache_dir=tmp_path / "cache"))
    with pytest.raises(ArtifactIntegrityError, match=r"expected [0-9a-f]{64} \(MODEL_SHA256\)"):
        load_model(settings)


def test_a_local_reference_and_its_refusals(ridge_run: Path, tmp_path: Path) -> None:
    path = tmp_path / "staging.json"
    reference = Reference("v002", ridge_run.as_uri(), "0" * 64, "2026-11-30T07:00:00Z", None)
    path.write_bytes(serialize_reference(reference))
    settings = resolve(Settings(model_reference_uri=str(path)))
    assert (settings.model_artifact_uri, settings.model_sha256) == (ridge_run.as_uri(), "0" * 64)
    with pytest.raises(ArtifactIntegrityError):
        load_model(replace(settings, model_cache_dir=tmp_path / "cache"))

    with pytest.raises(ConfigurationError, match="leave MODEL_ARTIFACT_URI and MODEL_SHA256"):
        resolve(Settings(model_reference_uri=str(path), model_sha256="0" * 64))
    path.write_text('{"model_version": "v002"}')
    with pytest.raises(ModelSourceError, match=r"MODEL_REFERENCE .*staging.json: a reference"):
        resolve(Settings(model_reference_uri=str(path)))
    with pytest.raises(ModelSourceError, match=r"cannot read \(No such file"):
        resolve(Settings(model_reference_uri=str(tmp_path / "none.json")))
