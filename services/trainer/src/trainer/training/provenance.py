"""Where a run came from: git commit, library versions, creation time."""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from artifact_contract import GitInfo

LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas", "skops", "mlflow")


def libraries() -> dict[str, str]:
    return {"python": platform.python_version(), **{name: version(name) for name in LIBRARIES}}


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def git_info(repo: Path) -> GitInfo | None:
    """The checkout's commit and whether tracked or untracked files differ from it; None outside
    a git checkout (e.g. in a container image) or without git."""
    try:
        commit = _git(repo, "rev-parse", "HEAD")
        status = _git(repo, "status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return None
    return GitInfo(commit=commit, dirty=bool(status))


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()
