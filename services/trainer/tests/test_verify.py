"""Post-promotion verification against a real inference server that follows the staging
reference: a good candidate is verified; one that breaks the policy's SLOs is rolled back on its
own, and the rollback is recorded as automatic."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, make_settings, run_cli
from trainer.policy import POLICY_FILE
from trainer.processes import free_port, stop
from trainer.promotion.deployments import Deployments
from trainer.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("verify"))
    for seed in ("3", "4"):
        assert run_cli(["train", "--samples", SAMPLES, "--seed", seed], settings).code == 0
    promoted = run_cli(["promote", "--version", "v001", "--target", "staging"], settings)
    assert promoted.code == 0, promoted.stderr
    return settings


@pytest.fixture(scope="module")
def server(world: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")}
    env.update(
        MODEL_REFERENCE=str(world.deployments_dir / "staging.json"),
        REFERENCE_POLL_SECONDS="1",
        MODEL_CACHE_DIR=str(tmp_path_factory.mktemp("cache")),
        HOST="127.0.0.1",
        PORT=str(port),
        WORKERS="2",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [str(world.inference_bin), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            try:
                urllib.request.urlopen(url + "/health", timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        stop(process)


def policy_with(tmp_path: Path, **slo: float) -> Path:
    text = POLICY_FILE.read_text()
    for key, value in slo.items():
        text = "\n".join(
            f"{key} = {value}" if line.startswith(f"{key} =") else line
            for line in text.splitlines()
        )
    path = tmp_path / "policy.toml"
    path.write_text(text + "\n")
    return path


def staging_on_v001(settings: Settings) -> None:
    """Either test may run first: each starts from staging on v001."""
    reference = Deployments(settings.deployments_dir).read("staging")
    if reference is not None and reference.model_version != "v001":
        assert run_cli(["rollback", "--target", "staging"], settings).code == 0


def served_version(url: str) -> str:
    with urllib.request.urlopen(url + "/health", timeout=5) as response:
        return str(json.loads(response.read())["model_version"])


def test_a_candidate_breaking_the_slos_is_rolled_back_on_its_own(
    world: Settings, server: str, tmp_path: Path
) -> None:
    staging_on_v001(world)
    # p99 under 1 microsecond: no real server meets it, so this candidate "breaks" the SLO.
    policy = policy_with(tmp_path, p99_ms=0.001, wait_seconds=30.0)
    result = run_cli(
        ["promote", "--version", "v002", "--target", "staging", "--policy", str(policy),
         "--verify-url", server],
        world,
    )  # fmt: skip

    assert result.code == 3, result.stderr
    assert "post-promotion verification of v002 failed (p99" in result.stderr
    assert "staging rolled back to v001" in result.stderr
    record = result.summary
    assert record["verification"]["passed"] is False
    assert record["verification"]["probe_requests"] == 200
    history = Deployments(world.deployments_dir).history()
    assert [(r["event"], r["to_version"], r.get("automatic")) for r in history[-2:]] == [
        ("promote", "v002", None),
        ("rollback", "v001", True),
    ]
    assert history[-1]["reason"].startswith("post-promotion verification failed: p99")
    assert record["rolled_back_by"] == {"to_version": "v001", "at": history[-1]["at"]}
    reference = Deployments(world.deployments_dir).read("staging")
    assert reference is not None and reference.model_version == "v001"
    deadline = time.monotonic() + 15
    while served_version(server) != "v001":  # the server follows the rollback
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_candidate_meeting_the_slos_is_verified(
    world: Settings, server: str, tmp_path: Path
) -> None:
    staging_on_v001(world)
    policy = policy_with(tmp_path, p99_ms=5000.0, wait_seconds=30.0)
    result = run_cli(
        ["promote", "--version", "v002", "--target", "staging", "--policy", str(policy),
         "--verify-url", server],
        world,
    )  # fmt: skip

    assert result.code == 0, result.stderr
    verification = result.summary["verification"]
    assert verification["passed"] is True
    assert verification["error_rate"] == 0.0
    assert "rolled_back_by" not in result.summary
    assert served_version(server) == "v002"
    assert Deployments(world.deployments_dir).history()[-1]["event"] == "promote"
