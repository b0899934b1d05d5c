"""Deployment references and ``history.jsonl`` under faults (issue 11, items 9 and 11): a torn
last line (an append cut short by a crash or a full disk) and a reference read by a server
running as another user."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from artifact_contract import Reference

from trainer.promotion.deployments import Deployments

TORN = '{"event": "promote", "target": "production", "to": {"model_ver'


def reference(version: str) -> Reference:
    return Reference(
        model_version=version,
        artifact_uri=f"file:///runs/{version}",
        manifest_sha256=version[-1] * 64,
        promoted_at="2026-11-26T10:00:00Z",
        approved_by="alice",
    )


def promotion(version: str) -> dict[str, object]:
    return {"event": "promote", "target": "production", "to": reference(version).to_dict()}


@pytest.fixture
def torn(tmp_path: Path) -> Deployments:
    """A history of two production promotions whose third append was cut short."""
    deployments = Deployments(tmp_path / "deployments")
    deployments.append_history(promotion("v001"))
    deployments.append_history(promotion("v002"))
    with deployments.history_path.open("a", encoding="utf-8") as handle:
        handle.write(TORN)
    return deployments


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    logger = logging.getLogger("trainer")
    propagate, logger.propagate = logger.propagate, True
    caplog.set_level(logging.WARNING, logger="trainer")
    yield caplog
    logger.propagate = propagate


def test_a_torn_last_line_is_reported_and_rollback_still_finds_its_previous_reference(
    torn: Deployments, warnings: pytest.LogCaptureFixture
) -> None:
    assert [record["to"]["model_version"] for record in torn.history()] == ["v001", "v002"]
    assert torn.lineage("production") == [reference("v001"), reference("v002")]
    reported = [r.getMessage() for r in warnings.records if r.levelno == logging.WARNING]
    assert reported, "the torn line must be reported"
    assert f"{torn.history_path}:3" in reported[0] and "torn" in reported[0]


def test_the_next_append_starts_on_a_fresh_line_and_is_read_back(torn: Deployments) -> None:
    torn.append_history(promotion("v003"))
    lines = torn.history_path.read_text(encoding="utf-8").splitlines()
    assert lines[2] == TORN  # kept as it was: history is never rewritten
    assert json.loads(lines[3]) == promotion("v003")
    assert torn.lineage("production") == [reference(v) for v in ("v001", "v002", "v003")]


def test_a_history_line_that_is_json_but_not_a_record_is_still_an_error(tmp_path: Path) -> None:
    deployments = Deployments(tmp_path)
    deployments.history_path.write_text('["not", "a", "record"]\n', encoding="utf-8")
    with pytest.raises(Exception, match=r"history.jsonl:1: not a JSON object"):
        deployments.history()


def test_appends_are_fsynced_and_so_is_the_directory_that_gains_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        mode = os.fstat(descriptor).st_mode
        synced.append("dir" if stat.S_ISDIR(mode) else "file")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    deployments = Deployments(tmp_path / "deployments")
    deployments.append_history(promotion("v001"))
    assert synced.count("file") == 1 and synced.count("dir") >= 1
    synced.clear()
    deployments.append_history(promotion("v002"))
    assert synced == ["file"]  # the directory entry exists already


def test_references_are_world_readable_whatever_the_umask(tmp_path: Path) -> None:
    """A server running as another user (the image's uid 10001) reads the reference; it holds
    no secret."""
    deployments = Deployments(tmp_path / "deployments")
    previous = os.umask(0o077)
    try:
        path = Path(deployments.write("staging", reference("v001")))
        deployments.append_history(promotion("v001"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(deployments.history_path.stat().st_mode) == 0o644
    assert deployments.read("staging") == reference("v001")
