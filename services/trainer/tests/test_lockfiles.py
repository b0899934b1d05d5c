"""Lockfiles carry pins and hashes only, and both services pin the model's libraries alike."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO_ROOT

SHARED = ("scikit-learn", "numpy", "scipy", "skops")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)
_ABSOLUTE = re.compile(r"(?:^|[\s=@'\"])(/[^\s]+|[A-Za-z]:\\)")


def _lockfiles() -> list[Path]:
    found = sorted(
        [
            *REPO_ROOT.glob("libs/*/requirements*.lock"),
            *REPO_ROOT.glob("services/*/requirements*.lock"),
            *REPO_ROOT.glob("infra/*/requirements*.lock"),
        ]
    )
    assert found, "no lockfiles found"
    return found


def _pins(path: Path) -> dict[str, str]:
    return {name.lower(): version for name, version in _PIN.findall(path.read_text())}


def test_no_lockfile_holds_a_url_or_an_absolute_path() -> None:
    for path in _lockfiles():
        assert "--hash=sha256:" in path.read_text(), f"{path}: not a hashed lock"
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            assert "://" not in line, f"{path}:{number}: {line}"
            assert not _ABSOLUTE.search(line.split("#", 1)[0]), f"{path}:{number}: {line}"


def test_trainer_and_inference_pin_the_same_model_libraries() -> None:
    trainer = _pins(REPO_ROOT / "services/trainer/requirements.lock")
    inference = _pins(REPO_ROOT / "services/inference/requirements.lock")
    for name in SHARED:
        assert name in trainer, f"trainer does not lock {name}"
        assert trainer[name] == inference.get(name), f"{name}: {trainer[name]} vs {inference}"
