"""Model sources: directories, file:// URIs, local tarballs, and S3 (moto's real HTTP server)."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from inference.errors import ArtifactIntegrityError, ModelSourceError, UnsafeArchiveError
from inference.loader import load_model
from inference.settings import Settings
from inference.source import fetch_model
from tests.conftest import copy_run


def tarball(run_dir: Path, path: Path, arcname: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(run_dir, arcname=arcname)
    return path


def settings_for(uri: str, cache: Path) -> Settings:
    return Settings(model_artifact_uri=uri, model_cache_dir=cache)


def test_a_run_directory_and_a_file_uri_load_in_place(ridge_run: Path, tmp_path: Path) -> None:
    for uri in (str(ridge_run), ridge_run.as_uri()):
        model = load_model(settings_for(uri, tmp_path / "cache"))
        assert model.model_version == "v002"
        assert model.source == uri
    assert not (tmp_path / "cache").exists()  # nothing to fetch, nothing written


def test_a_directory_holding_one_run_directory_serves_that_run(
    ridge_run: Path, tmp_path: Path
) -> None:
    """As SageMaker leaves /opt/ml/model for a model.tar.gz made of one directory."""
    copy_run(ridge_run, tmp_path / "opt-ml-model" / "v002")
    model = load_model(
        Settings(model_dir=tmp_path / "opt-ml-model", model_cache_dir=tmp_path / "cache")
    )
    assert model.model_version == "v002"


@pytest.mark.parametrize("arcname", [".", "v002"], ids=["files-at-top", "one-top-directory"])
def test_a_local_tarball_is_extracted_in_the_cache_and_cleaned_up(
    ridge_run: Path, tmp_path: Path, arcname: str
) -> None:
    archive = tarball(ridge_run, tmp_path / "model.tar.gz", arcname)
    cache = tmp_path / "cache"
    with fetch_model(settings_for(str(archive), cache)) as fetched:
        assert fetched.run_dir.is_relative_to(cache)
        assert (fetched.run_dir / "model.skops").is_file()
    assert list(cache.iterdir()) == []
    assert load_model(settings_for(archive.as_uri(), cache)).model_version == "v002"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "model.tar.gz"]


def test_a_tarball_with_a_traversal_member_is_refused_writing_nothing_outside(
    ridge_run: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(ridge_run, arcname=".")
        tar.add(ridge_run / "MLmodel", arcname="../../escaped")
    cache = tmp_path / "cache"
    with pytest.raises(UnsafeArchiveError, match="points outside"):
        load_model(settings_for(str(archive), cache))
    assert list(cache.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "evil.tar.gz"]


def test_an_archive_without_a_run_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    archive = tmp_path / "empty.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "a", arcname="a")
        tar.add(tmp_path / "b", arcname="b")
    with pytest.raises(ModelSourceError, match=r"no manifest\.json"):
        load_model(settings_for(str(archive), tmp_path / "cache"))


@pytest.mark.parametrize(
    ("uri", "message"),
    [("https://example.com/model.tar.gz", "scheme 'https' is not supported"),
     ("file://otherhost/model", "remote host")],
)  # fmt: skip
def test_unsupported_uris_are_refused(uri: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match=message):
        load_model(settings_for(uri, tmp_path / "cache"))


def test_a_plain_file_that_is_not_an_archive_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ModelSourceError, match=r"neither a run directory nor a \.tar\.gz"):
        load_model(settings_for(str(tmp_path / "model.bin"), tmp_path / "cache"))


# --- S3, against moto's server on a loopback port ------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: ARG001
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    name = f"models-{abs(hash(monkeypatch)) % 10**8}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def test_s3_tarball(bucket: str, ridge_run: Path, tmp_path: Path) -> None:
    archive = tarball(ridge_run, tmp_path / "model.tar.gz", ".")
    boto3.client("s3").upload_file(str(archive), bucket, "jobs/job-1/output/model.tar.gz")
    cache = tmp_path / "cache"
    model = load_model(settings_for(f"s3://{bucket}/jobs/job-1/output/model.tar.gz", cache))
    assert model.model_version == "v002"
    assert list(cache.iterdir()) == []


def test_s3_prefix_holding_a_run_directory(bucket: str, ridge_run: Path, tmp_path: Path) -> None:
    client = boto3.client("s3")
    for path in ridge_run.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"runs/v002/{path.relative_to(ridge_run)}")
    client.put_object(Bucket=bucket, Key="runs/v0020/other", Body=b"not ours")
    cache = tmp_path / "cache"
    for uri in (f"s3://{bucket}/runs/v002/", f"s3://{bucket}/runs/v002"):
        model = load_model(settings_for(uri, cache))
        assert model.model_version == "v002"
    assert list(cache.iterdir()) == []


def test_s3_tampered_prefix_is_refused(bucket: str, ridge_run: Path, tmp_path: Path) -> None:
    client = boto3.client("s3")
    for path in ridge_run.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"bad/{path.relative_to(ridge_run)}")
    client.put_object(Bucket=bucket, Key="bad/model.skops", Body=b"swapped")
    with pytest.raises(ArtifactIntegrityError, match=r"model\.skops has sha256"):
        load_model(settings_for(f"s3://{bucket}/bad/", tmp_path / "cache"))
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize(
    ("key", "message"),
    [("missing/model.tar.gz", "S3 said 404"), ("nothing-here/", "no objects under")],
)
def test_s3_missing_objects_are_refused(
    bucket: str, key: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ModelSourceError, match=message):
        load_model(settings_for(f"s3://{bucket}/{key}", tmp_path / "cache"))


def test_an_s3_prefix_holding_a_key_and_a_folder_of_that_name_is_refused(
    bucket: str, ridge_run: Path, tmp_path: Path
) -> None:
    """Issue 11: `k` and `k/x` under one prefix ended in a traceback."""
    client = boto3.client("s3")
    for path in ridge_run.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"clash/{path.relative_to(ridge_run)}")
    client.put_object(Bucket=bucket, Key="clash/extra", Body=b"a file")
    client.put_object(Bucket=bucket, Key="clash/extra/x", Body=b"and a folder")
    with pytest.raises(ModelSourceError, match=r"holds both clash/extra and clash/extra/x"):
        load_model(settings_for(f"s3://{bucket}/clash/", tmp_path / "cache"))
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("kind", ["world-writable", "other-owner"])
def test_a_cache_directory_others_can_write_is_refused(
    ridge_run: Path, tmp_path: Path, kind: str
) -> None:
    """Issue 11: a cache directory pre-created under /tmp by someone else (or mode 0777) let
    them swap the extracted model between its verification and its load."""
    cache = tmp_path / "shared-tmp" / "mlpipeline-inference"
    cache.mkdir(parents=True)
    if kind == "world-writable":
        cache.chmod(0o777)
        message = r"writable by group or others \(mode 777\)"
    else:
        if os.geteuid() != 0:
            pytest.skip("giving a directory to another owner needs root")
        os.chown(cache, 65534, 65534)
        cache.chmod(0o700)
        message = "belongs to uid 65534, not to this process"
    archive = tarball(ridge_run, tmp_path / "model.tar.gz", ".")
    with pytest.raises(ModelSourceError, match=message):
        load_model(settings_for(str(archive), cache))
    assert list(cache.iterdir()) == []
