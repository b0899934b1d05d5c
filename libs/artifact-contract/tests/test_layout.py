from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from artifact_contract import ArtifactRoot, ContractError, verify_run_dir, write_manifest

from .conftest import fill_run_dir, make_manifest


def _finalize(staging: Path, version: str) -> None:
    (staging / "model_version.txt").write_text(version + "\n")
    write_manifest(staging, make_manifest(staging, version=version))


def publish_one(root: Path, *, passed: bool = True, payload: bytes = b"model") -> str:
    artifacts = ArtifactRoot(root)
    with artifacts.staging() as staging:
        fill_run_dir(staging, payload)
        return artifacts.publish(staging, _finalize, move_latest=passed)


def test_versions_are_allocated_in_order_and_latest_follows(tmp_path: Path) -> None:
    assert publish_one(tmp_path) == "v001"
    assert publish_one(tmp_path) == "v002"
    root = ArtifactRoot(tmp_path)
    assert root.versions() == ["v001", "v002"]
    assert root.latest_version() == "v002"
    assert os.readlink(root.latest) == "runs/v002"
    assert verify_run_dir(root.latest).model_version == "v002"
    assert not [p for p in root.runs_dir.iterdir() if p.name.startswith(".staging-")]


def test_a_failed_gate_publishes_without_moving_latest(tmp_path: Path) -> None:
    publish_one(tmp_path)
    assert publish_one(tmp_path, passed=False) == "v002"
    assert ArtifactRoot(tmp_path).latest_version() == "v001"


def test_a_failing_finalize_leaves_no_version_and_no_staging(tmp_path: Path) -> None:
    root = ArtifactRoot(tmp_path)

    def broken(_staging: Path, _version: str) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError), root.staging() as staging:
        fill_run_dir(staging)
        root.publish(staging, broken, move_latest=True)
    assert root.versions() == []
    assert root.latest_version() is None
    assert [p.name for p in root.runs_dir.iterdir()] == [".publish.lock"]


def test_concurrent_threads_never_share_a_version(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(pool.map(lambda i: publish_one(tmp_path, payload=bytes([i])), range(16)))
    assert sorted(versions) == [f"v{n:03d}" for n in range(1, 17)]
    root = ArtifactRoot(tmp_path)
    for version in versions:
        verify_run_dir(root.run_dir(version))
    assert root.latest_version() == "v016"


def _publish_in_child(root: str) -> str:
    return publish_one(Path(root))


def test_concurrent_processes_never_share_a_version(tmp_path: Path) -> None:
    with get_context("spawn").Pool(4) as pool:
        versions = pool.map(_publish_in_child, [str(tmp_path)] * 8)
    assert sorted(versions) == [f"v{n:03d}" for n in range(1, 9)]
    assert ArtifactRoot(tmp_path).latest_version() == "v008"


def test_readers_never_see_a_torn_latest(tmp_path: Path) -> None:
    publish_one(tmp_path)
    publish_one(tmp_path)
    root = ArtifactRoot(tmp_path)
    stop = threading.Event()
    seen: set[str] = set()
    errors: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add(verify_run_dir(root.latest.resolve(strict=True)).model_version)
            except BaseException as exc:  # any failure is a torn read
                errors.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(200):
        root.set_latest("v001")
        root.set_latest("v002")
    stop.set()
    reader.join()
    assert errors == []
    assert seen <= {"v001", "v002"}


def test_latest_refuses_unknown_versions_and_foreign_targets(tmp_path: Path) -> None:
    root = ArtifactRoot(tmp_path)
    with pytest.raises(ContractError, match="no published run v003"):
        root.set_latest("v003")
    tmp_path.joinpath("latest").symlink_to("elsewhere")
    with pytest.raises(ContractError, match="not a run"):
        root.latest_version()


def test_publish_refuses_a_directory_outside_runs(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    fill_run_dir(outside)
    with pytest.raises(ContractError, match="not a staging directory"):
        ArtifactRoot(tmp_path / "root").publish(outside, _finalize, move_latest=True)
