"""The shipped JSON Schema and the Python validator agree on valid and invalid manifests."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from artifact_contract import Manifest, ManifestError, manifest_json_schema

from .conftest import make_manifest, make_v3_manifest
from .test_manifest import INVALID_V1
from .test_manifest_v3 import INVALID_V3
from .test_profile import INVALID_PROFILES, make_profile

# Rules that need more than one field at a time: Manifest validation checks them, the JSON
# Schema does not (its description says so). Matched against the cases' expected messages.
CROSS_FIELD = {
    "min greater than max",
    "exactly the input_schema",
    "not listed in files",
    "repeats feature",
    "sorted",
    "must not repeat",
    "must be a string",
    "input.has_garden' must be true or false",
    "an integer",
    "not nullable",
    "one of output.classes",
    "exactly the output.classes",
    "must sum to 1",
    "'profile.features.city.categories' must be",
    "sum to 1 with unseen",
    "must be non-negative and sum to 1",
    "one share per bin",
    "must be in ascending order",
    "has more than 1",
    "'profile.features.city' must be an object",
}


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = manifest_json_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _base(run_dir: Path, kind: str) -> dict[str, Any]:
    if kind == "v1":
        return make_manifest(run_dir).to_dict()
    if kind == "v2":
        return make_manifest(run_dir, profile=make_profile()).to_dict()
    return make_v3_manifest(run_dir, kind).to_dict()


def _python_accepts(raw: dict[str, Any]) -> bool:
    try:
        Manifest.from_dict(raw)
    except ManifestError:
        return False
    return True


def _as_json(raw: dict[str, Any]) -> Any:
    # What a reader of manifest.json sees (tuples become lists, and so on).
    return json.loads(json.dumps(raw, allow_nan=False))


def test_the_schema_file_ships_with_the_package() -> None:
    schema = manifest_json_schema()
    assert schema["properties"]["schema_version"] == {"enum": [1, 2, 3]}


@pytest.mark.parametrize("kind", ["v1", "v2", "regression", "classification", "multiclass"])
def test_valid_manifests_of_every_version_are_valid_for_both(run_dir: Path, kind: str) -> None:
    if kind == "multiclass":
        raw = make_v3_manifest(run_dir, "classification").to_dict()
        raw["output"]["classes"] = ["a", "b", "c"]
        raw["metrics"].pop("roc_auc")
        raw["examples"][0].update(prediction="b", probabilities={"a": 0.2, "b": 0.5, "c": 0.3})
        raw["profile"]["prediction"].update(categories=["a", "b", "c"], proportions=[0.2, 0.5, 0.3])
    else:
        raw = _base(run_dir, kind)
    raw = _as_json(raw)
    assert _python_accepts(raw)
    _validator().validate(raw)


CASES = (
    [("v1", mutate, message) for mutate, message in INVALID_V1]
    + [("v2", mutate, message) for mutate, message in INVALID_PROFILES]
    + INVALID_V3
)


@pytest.mark.parametrize(("kind", "mutate", "message"), CASES)
def test_invalid_manifests_are_invalid_for_both(
    run_dir: Path, kind: str, mutate: Any, message: str
) -> None:
    raw = _as_json(_base(run_dir, kind))
    mutate(raw)
    assert not _python_accepts(raw)
    try:
        document = _as_json(raw)
    except ValueError:
        return  # NaN or infinity: no JSON document can hold it, and Python refuses it
    schema_accepts = _validator().is_valid(document)
    # Structural rules: both refuse. Cross-field rules: only Manifest validation does.
    assert schema_accepts == any(rule in message for rule in CROSS_FIELD)
