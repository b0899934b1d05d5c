from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from artifact_contract import (
    SCHEMA_VERSION,
    Histogram,
    Manifest,
    ManifestError,
    Profile,
    read_manifest,
    verify_run_dir,
    write_manifest,
)

from .conftest import make_manifest


def make_profile() -> Profile:
    return Profile(
        bins=4,
        features={
            # age has few distinct values: repeated edges, fewer than 4 bins carry weight.
            "age": Histogram(edges=[18.0, 30.0, 30.0, 50.0, 69.0], proportions=[0.25] * 4, rows=80),
            "income_k": Histogram(edges=[30.0, 55.5, 120.0], proportions=[0.5, 0.5], rows=80),
        },
        prediction=Histogram(edges=[-3.5, 0.0, 2.25], proportions=[0.4, 0.6], rows=20),
    )


def test_a_manifest_with_a_profile_is_schema_version_2(run_dir: Path) -> None:
    manifest = make_manifest(run_dir, profile=make_profile())
    assert manifest.schema_version == 2 < SCHEMA_VERSION
    write_manifest(run_dir, manifest)
    loaded = read_manifest(run_dir)
    assert loaded == manifest
    assert loaded.profile is not None
    income = loaded.profile.features["income_k"]
    assert isinstance(income, Histogram)
    assert income.edges == [30.0, 55.5, 120.0]
    raw = json.loads((run_dir / "manifest.json").read_text())
    assert raw["schema_version"] == 2
    assert raw["profile"]["prediction"] == {
        "edges": [-3.5, 0.0, 2.25],
        "proportions": [0.4, 0.6],
        "rows": 20,
    }


def test_callers_without_a_profile_still_write_version_1(run_dir: Path) -> None:
    manifest = make_manifest(run_dir)
    assert manifest.schema_version == 1
    raw = manifest.to_dict()
    assert "profile" not in raw
    assert raw["schema_version"] == 1


def test_a_version_2_manifest_keeps_its_bytes(run_dir: Path) -> None:
    # Bytes as the version-2 library wrote them: features {name, type, min, max}, output {name}.
    raw = _v2(run_dir)
    data = (json.dumps(raw, indent=2) + "\n").encode()
    (run_dir / "manifest.json").write_bytes(data)
    loaded = verify_run_dir(run_dir)
    assert loaded.schema_version == 2
    assert loaded.task == "regression"
    assert [feature.nullable for feature in loaded.input_schema] == [False, False]
    assert loaded.to_json() == data


def test_a_version_1_manifest_written_before_profiles_still_loads_and_verifies(
    run_dir: Path,
) -> None:
    # Bytes as the version-1 library wrote them: no profile key at all.
    raw = make_manifest(run_dir).to_dict()
    raw.pop("profile", None)
    raw["schema_version"] = 1
    data = (json.dumps(raw, indent=2) + "\n").encode()
    (run_dir / "manifest.json").write_bytes(data)
    loaded = verify_run_dir(run_dir)
    assert loaded.schema_version == 1
    assert loaded.profile is None
    assert loaded.to_json() == data


def _v2(run_dir: Path) -> dict[str, Any]:
    return make_manifest(run_dir, profile=make_profile()).to_dict()


INVALID_PROFILES: list[tuple[Any, str]] = [
    (lambda raw: raw.pop("profile"), "missing profile"),
    (lambda raw: raw.update(schema_version=1), "'profile' needs schema_version 2"),
    (lambda raw: raw["profile"].update(method="uniform"), "'profile.method'"),
    (lambda raw: raw["profile"].update(bins=0), "'profile.bins'"),
    (lambda raw: raw["profile"]["features"].pop("age"), "exactly the input_schema"),
    (
        lambda raw: raw["profile"]["features"].update(height=raw["profile"]["prediction"]),
        "exactly the input_schema",
    ),
    (
        lambda raw: raw["profile"]["features"]["age"]["edges"].reverse(),
        "'profile.features.age.edges' must be in ascending order",
    ),
    (
        lambda raw: raw["profile"]["features"]["age"].update(edges=[1.0]),
        "at least 2 edges",
    ),
    (
        lambda raw: raw["profile"]["features"]["income_k"].update(proportions=[0.5, 0.6]),
        "'profile.features.income_k.proportions' must be non-negative and sum to 1",
    ),
    (
        lambda raw: raw["profile"]["features"]["income_k"].update(proportions=[1.0]),
        "one share per bin",
    ),
    (
        lambda raw: raw["profile"]["prediction"].update(edges=[0.0, float("nan")]),
        "'profile.prediction.edges' must hold finite numbers",
    ),
    (lambda raw: raw["profile"]["prediction"].update(rows=0), "'profile.prediction.rows'"),
    (lambda raw: raw["profile"]["prediction"].pop("rows"), "exactly edges, proportions"),
    (lambda raw: raw["profile"].update(bins=1), "'profile.features.age' has more than 1"),
]


@pytest.mark.parametrize(("mutate", "message"), INVALID_PROFILES)
def test_an_invalid_profile_is_refused_with_the_field_named(
    run_dir: Path, mutate: object, message: str
) -> None:
    raw = _v2(run_dir)
    mutate(raw)  # type: ignore[operator]
    with pytest.raises(ManifestError, match=message):
        Manifest.from_dict(raw)


def test_an_explicit_version_2_without_a_profile_is_refused_on_write(run_dir: Path) -> None:
    manifest = make_manifest(run_dir, schema_version=2)
    with pytest.raises(ManifestError, match="missing profile"):
        write_manifest(run_dir, manifest)
    assert not (run_dir / "manifest.json").exists()
