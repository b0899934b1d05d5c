"""The lockfiles: hashed pins only, and the model libraries pinned as in the trainer's lock."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
SHARED = ("numpy", "pandas", "scikit-learn", "scipy", "skops")


def pins(lock: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"([a-z0-9_.-]+)==([^ ;\\]+)( ;[^\\]*)?", line)
        if match:
            found[f"{match.group(1)}{match.group(3) or ''}".strip()] = match.group(2)
    return found


# Every lockfile in the repo (this one included) is checked for URLs, absolute paths and hashes
# by services/trainer/tests/test_lockfiles.py.


def test_model_libraries_are_pinned_as_in_the_trainer() -> None:
    trainer = pins(PACKAGE.parent / "trainer" / "requirements.lock")
    for name in ("requirements.lock", "requirements-dev.lock"):
        ours = pins(PACKAGE / name)
        for key, version in ours.items():
            if key.split(" ;")[0] in SHARED:
                assert trainer.get(key) == version, f"{name}: {key}=={version}"
        assert {key.split(" ;")[0] for key in ours} >= set(SHARED)


def test_mlflow_and_its_gunicorn_pin_stay_out_of_the_serving_lock() -> None:
    runtime = pins(PACKAGE / "requirements.lock")
    assert not any(key.startswith("mlflow") for key in runtime)
    assert int(runtime["gunicorn"].split(".")[0]) >= 27
