"""Shared store mode: runs published to S3 (moto's server on a loopback port, reached through
AWS_ENDPOINT_URL exactly as boto3 reaches AWS), promoted and rolled back from there."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from artifact_contract import sha256_file
from moto.server import ThreadedMotoServer

from tests.conftest import SAMPLES, make_settings, run_cli
from trainer.s3store import S3ArtifactRoot
from trainer.settings import Settings

BUCKET = "team"
ROOT = f"s3://{BUCKET}/mlpipeline/runs-root"


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's servers share one in-process backend: start from an empty S3.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def shared_settings(tmp: Path) -> Settings:
    env = {"MLPIPELINE_ARTIFACT_ROOT": ROOT, "MLPIPELINE_DEPLOYMENTS_DIR": ROOT + "/deployments"}
    from_env = Settings.from_env(env, cwd=tmp)
    return replace(
        make_settings(tmp),
        artifact_root=from_env.artifact_root,
        artifact_store=from_env.artifact_store,
        deployments_dir=from_env.deployments_dir,
        deployments_store=from_env.deployments_store,
    )


def keys(prefix: str = "") -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_an_unsupported_scheme_is_refused_not_made_a_folder(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(Exception, match=r"gs://b/p: unsupported location"):
        Settings.from_env({"MLPIPELINE_ARTIFACT_ROOT": "gs://b/p"}, cwd=tmp_path)
    with pytest.raises(SystemExit) as exited:
        run_cli(["train", "--output-dir", "s3://b/p"], settings)
    assert exited.value.code == 2
    assert not (tmp_path / "s3:").exists()
    assert not (Path.cwd() / "s3:").exists()


@pytest.mark.usefixtures("s3")
def test_train_publishes_an_immutable_version_to_s3(tmp_path: Path) -> None:
    settings = shared_settings(tmp_path)

    result = run_cli(["train", "--samples", SAMPLES, "--seed", "3"], settings)

    assert result.code == 0, result.stderr
    summary = result.summary
    assert summary["model_version"] == "v001"
    assert summary["artifact_uri"] == f"{ROOT}/runs/v001/"
    published = keys("mlpipeline/runs-root/runs/v001/")
    local = Path(summary["run_dir"])
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert published == [f"mlpipeline/runs-root/runs/v001/{name}" for name in files]
    assert "manifest.json" in files
    body = (
        boto3.client("s3")
        .get_object(Bucket=BUCKET, Key="mlpipeline/runs-root/runs/v001/manifest.json")["Body"]
        .read()
    )
    assert body == (local / "manifest.json").read_bytes()
    assert summary["manifest_sha256"] == sha256_file(local / "manifest.json")
    latest = boto3.client("s3").get_object(Bucket=BUCKET, Key="mlpipeline/runs-root/latest")
    assert latest["Body"].read() == b"v001\n"
    assert not (tmp_path / "s3:").exists()


class StaleListing(S3ArtifactRoot):
    """A trainer whose listing has not seen its rivals' claims yet (the race window)."""

    def claimed(self) -> list[str]:
        return []


@pytest.mark.usefixtures("s3")
def test_a_version_claimed_by_a_rival_is_never_reused() -> None:
    first, second = S3ArtifactRoot(ROOT), S3ArtifactRoot(ROOT)
    assert [first.allocate(), second.allocate()] == ["v001", "v002"]
    # The conditional write, not the listing, decides: the stale trainer skips both.
    assert StaleListing(ROOT).allocate() == "v003"
    assert keys("mlpipeline/runs-root/claims/") == [
        f"mlpipeline/runs-root/claims/v00{n}" for n in (1, 2, 3)
    ]


@pytest.mark.usefixtures("s3")
def test_a_published_file_is_never_overwritten(tmp_path: Path) -> None:
    root = S3ArtifactRoot(ROOT)
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text("{}")
    root.upload(run, "v001")
    with pytest.raises(Exception, match="never overwritten"):
        root.upload(run, "v001")
