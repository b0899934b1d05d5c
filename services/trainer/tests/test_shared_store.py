"""Shared store mode: runs published to S3 (moto's server on a loopback port, reached through
AWS_ENDPOINT_URL exactly as boto3 reaches AWS), promoted and rolled back from there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from artifact_contract import sha256_bytes, sha256_file

from tests.conftest import SAMPLES, make_settings, moto_server, run_cli
from trainer.promotion.deployments import DeploymentError
from trainer.promotion.s3deployments import S3Deployments
from trainer.s3store import S3ArtifactRoot
from trainer.settings import Settings

BUCKET = "team"
ROOT = f"s3://{BUCKET}/mlpipeline/runs-root"


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with moto_server() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint


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


def s3_object(key: str) -> bytes:
    return bytes(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())


@pytest.mark.usefixtures("s3")
def test_promote_and_rollback_work_on_runs_in_s3(tmp_path: Path) -> None:
    settings = shared_settings(tmp_path)
    for seed in ("3", "4"):
        assert run_cli(["train", "--samples", SAMPLES, "--seed", seed], settings).code == 0

    for version in ("v001", "v002"):
        promoted = run_cli(["promote", "--version", version, "--target", "staging"], settings)
        assert promoted.code == 0, promoted.stderr
    reference = json.loads(s3_object("mlpipeline/runs-root/deployments/staging.json"))
    assert reference["artifact_uri"] == f"{ROOT}/runs/v002/"
    assert reference["manifest_sha256"] == sha256_bytes(
        s3_object("mlpipeline/runs-root/runs/v002/manifest.json")
    )
    # Nothing of the references lives on this machine's disk.
    assert not (settings.deployments_dir / "staging.json").exists()

    rolled = run_cli(["rollback", "--target", "staging"], settings)

    assert rolled.code == 0, rolled.stderr
    reference = json.loads(s3_object("mlpipeline/runs-root/deployments/staging.json"))
    assert reference["model_version"] == "v001"
    history = keys("mlpipeline/runs-root/deployments/history/")
    assert [key.rsplit("/", 1)[1] for key in history] == [
        "00000001.json",
        "00000002.json",
        "00000003.json",
    ]
    events = [json.loads(s3_object(key)) for key in history]
    assert [(e["event"], e["outcome"], e["to_version"]) for e in events] == [
        ("promote", "promoted", "v001"),
        ("promote", "promoted", "v002"),
        ("rollback", "rolled_back", "v001"),
    ]
    # Downloads for verification are removed afterwards.
    assert list((settings.artifact_root / ".downloads").iterdir()) == []


@pytest.mark.usefixtures("s3")
def test_a_tampered_s3_artifact_is_refused_at_promotion(tmp_path: Path) -> None:
    settings = shared_settings(tmp_path)
    assert run_cli(["train", "--samples", SAMPLES, "--seed", "3"], settings).code == 0
    key = "mlpipeline/runs-root/runs/v001/metrics.json"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=s3_object(key) + b" ")

    refused = run_cli(["promote", "--version", "v001", "--target", "staging"], settings)

    assert refused.code == 3
    assert "refused at gate 1 (integrity)" in refused.stderr
    assert "metrics.json" in refused.stderr
    assert keys("mlpipeline/runs-root/deployments/") == []


@pytest.mark.usefixtures("s3")
def test_a_version_not_in_s3_is_one_line(tmp_path: Path) -> None:
    refused = run_cli(
        ["promote", "--version", "v009", "--target", "staging"], shared_settings(tmp_path)
    )
    assert refused.code == 1
    assert refused.stderr == f"error: no published run v009 under {ROOT}/runs\n"


@pytest.mark.usefixtures("s3")
def test_the_s3_lock_is_one_promotion_at_a_time() -> None:
    first = S3Deployments(ROOT + "/deployments", wait_seconds=0.2)
    second = S3Deployments(ROOT + "/deployments", wait_seconds=0.2)
    with first.lock():
        with pytest.raises(DeploymentError, match=r"\.lock: held by .*\(another promotion"):
            with second.lock():
                pass
    with second.lock():
        assert keys("mlpipeline/runs-root/deployments/") == [
            "mlpipeline/runs-root/deployments/.lock"
        ]
    assert keys("mlpipeline/runs-root/deployments/") == []
