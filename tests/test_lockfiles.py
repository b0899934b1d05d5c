"""Every lockfile carries hashed pins only; both services pin the model's libraries alike, and
MLflow (with its gunicorn<27 pin) stays out of the serving lock."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# What the trainer writes into a model file and the inference service reads back.
SHARED = ("numpy", "pandas", "scikit-learn", "scipy", "skops")
_PIN = re.compile(r"^([a-z0-9][a-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)( ;[^\\]*)?", re.MULTILINE)
_ABSOLUTE = re.compile(r"(?:^|[\s=@'\"])(/[^\s]+|[A-Za-z]:\\)")


def lockfiles() -> list[Path]:
    found = sorted(
        [
            *REPO_ROOT.glob("libs/*/requirements*.lock"),
            *REPO_ROOT.glob("services/*/requirements*.lock"),
            *REPO_ROOT.glob("infra/*/requirements*.lock"),
        ]
    )
    assert len(found) >= 6, found
    return found


def pins(lock: Path) -> dict[str, str]:
    """``name[ ; marker]`` -> version: a package pinned per platform keeps one entry each."""
    return {
        f"{name.lower()}{marker or ''}".strip(): version
        for name, version, marker in _PIN.findall(lock.read_text())
    }


def test_no_lockfile_holds_a_url_or_an_absolute_path_and_every_one_is_hashed() -> None:
    for path in lockfiles():
        text = path.read_text()
        assert "--hash=sha256:" in text, f"{path}: not a hashed lock"
        for number, line in enumerate(text.splitlines(), start=1):
            assert "://" not in line, f"{path}:{number}: {line}"
            assert not _ABSOLUTE.search(line.split("#", 1)[0]), f"{path}:{number}: {line}"


def test_the_inference_locks_pin_the_model_libraries_as_the_trainer_does() -> None:
    trainer = pins(REPO_ROOT / "services/trainer/requirements.lock")
    for name in ("requirements.lock", "requirements-dev.lock"):
        ours = pins(REPO_ROOT / "services/inference" / name)
        assert {key.split(" ;")[0] for key in ours} >= set(SHARED), name
        for key, version in ours.items():
            if key.split(" ;")[0] in SHARED:
                assert trainer.get(key) == version, f"{name}: {key}=={version}"


def test_mlflow_and_its_gunicorn_pin_stay_out_of_the_serving_lock() -> None:
    runtime = pins(REPO_ROOT / "services/inference/requirements.lock")
    assert not any(key.startswith("mlflow") for key in runtime)
    assert int(runtime["gunicorn"].split(".")[0]) >= 27
