from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from artifact_contract import Manifest, ManifestError, read_manifest, sha256_file, write_manifest

from .conftest import make_manifest

CONTRACT_KEYS = {
    "schema_version",
    "model_version",
    "created_at",
    "model",
    "files",
    "input_schema",
    "output",
    "data",
    "params",
    "metrics",
    "libraries",
    "git",
    "examples",
}


def test_round_trip_keeps_every_field(run_dir: Path) -> None:
    manifest = make_manifest(run_dir)
    digest = write_manifest(run_dir, manifest)
    assert digest == sha256_file(run_dir / "manifest.json") == manifest.sha256
    assert read_manifest(run_dir) == manifest


def test_json_has_the_contract_keys(run_dir: Path) -> None:
    write_manifest(run_dir, make_manifest(run_dir))
    raw = json.loads((run_dir / "manifest.json").read_text())
    assert CONTRACT_KEYS <= set(raw)
    assert next(iter(raw)) == "schema_version"
    assert set(raw["model"]) == {"flavor", "path", "format"}
    assert set(raw["data"]) == {"source", "sha256", "rows"}
    assert raw["input_schema"][0] == {"name": "age", "type": "integer", "min": 18, "max": 69}
    assert raw["examples"][0] == {"input": {"age": 40, "income_k": 70.5}, "prediction": 123.25}
    assert set(raw["files"]) == {"MLmodel", "model.skops"}


def test_serialisation_is_deterministic(run_dir: Path) -> None:
    assert make_manifest(run_dir).to_json() == make_manifest(run_dir).to_json()


def test_git_may_be_unknown(run_dir: Path) -> None:
    manifest = make_manifest(run_dir, git=None)
    write_manifest(run_dir, manifest)
    assert read_manifest(run_dir).git is None


INVALID_V1: list[tuple[Any, str]] = [
    (lambda raw: raw.pop("files"), "missing files"),
    (lambda raw: raw.update(extra=1), "unknown fields extra"),
    (lambda raw: raw.update(schema_version=99), "'schema_version'"),
    (lambda raw: raw.update(model_version="7"), "'model_version' must look like v001"),
    (lambda raw: raw.update(created_at="yesterday"), "'created_at'"),
    (lambda raw: raw["files"].update({"model.skops": "xyz"}), "sha256"),
    (lambda raw: raw["files"].update({"../evil": "a" * 64}), "not a relative path"),
    (lambda raw: raw["input_schema"][0].update(type="string"), "must be one of integer"),
    (lambda raw: raw["input_schema"][0].update(min=100), "min greater than max"),
    (lambda raw: raw["input_schema"].append(raw["input_schema"][0]), "repeats feature"),
    (lambda raw: raw["data"].update(rows=0), "'data.rows' must be a positive integer"),
    (lambda raw: raw["params"].pop("seed"), "records the seed"),
    (lambda raw: raw["metrics"].update(rmse="low"), "'metrics.rmse' must be a finite number"),
    (lambda raw: raw["libraries"].pop("skops"), "'libraries.skops'"),
    (lambda raw: raw["examples"][0]["input"].pop("age"), "exactly the input_schema"),
    (lambda raw: raw["model"].update(path="other.skops"), "not listed in files"),
    (lambda raw: raw["data"].update(extra=1), "'data' must hold exactly"),
    (lambda raw: raw["git"].update(extra=1), "'git' must hold exactly"),
    (lambda raw: raw["quality_gate"].update(extra=1), "'quality_gate'"),
    (lambda raw: raw["input_schema"][0].update(nullable=True), "unknown keys nullable"),
    (lambda raw: raw["examples"][0].update(note="x"), "unknown keys note"),
]


@pytest.mark.parametrize(("mutate", "message"), INVALID_V1)
def test_invalid_manifest_is_refused_with_the_field_named(
    run_dir: Path, mutate: object, message: str
) -> None:
    raw = make_manifest(run_dir).to_dict()
    mutate(raw)  # type: ignore[operator]
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")):
        Manifest.from_dict(raw)


def test_invalid_manifest_is_refused_on_write(run_dir: Path) -> None:
    manifest = replace(make_manifest(run_dir), model_version="latest")
    with pytest.raises(ManifestError, match="model_version"):
        write_manifest(run_dir, manifest)
    assert not (run_dir / "manifest.json").exists()


def test_unreadable_manifests_name_the_file(run_dir: Path) -> None:
    with pytest.raises(ManifestError, match=r"no manifest\.json"):
        read_manifest(run_dir)
    (run_dir / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match=r"manifest\.json: not valid JSON"):
        read_manifest(run_dir)
    (run_dir / "manifest.json").write_text('{"metrics": NaN}')
    with pytest.raises(ManifestError, match="NaN is not allowed"):
        read_manifest(run_dir)
