"""What the real image builds of `make images-smoke` (infra/docker/smoke.py) cannot show.

The images themselves are built and run there, with Docker or podman. Left here: the failure a
machine with no engine meets, the layer order that keeps a code edit from re-installing every
dependency (a build succeeds either way), and the refusal to bake in what is not a run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BUILD_SUPPORT = REPO / "infra" / "docker" / "build_support.py"
SERVICE_DOCKERFILES = [REPO / "services" / name / "Dockerfile" for name in ("inference", "trainer")]


def test_without_a_docker_engine_the_image_target_fails_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        ["make", "-C", str(REPO), "image-inference", "TAG=x", "DOCKER=docker"],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("error: no Docker engine answers (docker info failed)"), lines
    assert all(line.startswith("make") for line in lines[1:]), done.stderr


def _instructions(dockerfile: Path) -> list[str]:
    """Logical lines (continuations joined, comments dropped) of the builder stage."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("#")]
    builder = lines.index(next(line for line in lines if line.endswith("AS builder")))
    runtime = lines.index(next(line for line in lines if line.endswith("AS runtime")))
    return lines[builder:runtime]


@pytest.mark.parametrize("dockerfile", SERVICE_DOCKERFILES, ids=lambda path: path.parent.name)
def test_dependencies_install_before_any_of_our_code_is_copied(dockerfile: Path) -> None:
    lines = _instructions(dockerfile)
    [sync] = [i for i, line in enumerate(lines) if "uv pip sync" in line]
    copied_before = [line for line in lines[:sync] if line.startswith("COPY")]
    assert all(line.split()[1].endswith(".lock") for line in copied_before), copied_before
    # The contract library is installed once, with the service, after the sync.
    installs = [line for line in lines if "libs/artifact-contract" in line and "RUN" in line]
    assert len(installs) == 1 and lines.index(installs[0]) > sync, installs


def test_staging_a_model_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BUILD_SUPPORT), "stage-model", str(tmp_path), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: no run directory at {tmp_path} (make train first, or pass RUN_DIR=...)"
    ]
    assert not (tmp_path / "out").exists()
