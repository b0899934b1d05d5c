from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from artifact_contract import (
    SCHEMA_VERSION,
    Feature,
    Manifest,
    ManifestError,
    label_key,
    read_manifest,
    write_manifest,
)

from .conftest import make_v3_manifest


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_a_version_3_manifest_round_trips(run_dir: Path, task: str) -> None:
    manifest = make_v3_manifest(run_dir, task)
    assert manifest.schema_version == SCHEMA_VERSION == 3
    write_manifest(run_dir, manifest)
    loaded = read_manifest(run_dir)
    assert loaded == manifest
    assert loaded.task == task
    assert loaded.input_schema[3].categories == ("Lyon", "Paris")


def test_version_3_json_shapes(run_dir: Path) -> None:
    write_manifest(run_dir, make_v3_manifest(run_dir, "classification"))
    raw = json.loads((run_dir / "manifest.json").read_text())
    assert raw["schema_version"] == 3
    assert raw["input_schema"] == [
        {"name": "sqft", "type": "number", "nullable": True, "min": 350.0, "max": 4200.5},
        {"name": "bedrooms", "type": "integer", "nullable": False, "min": 1, "max": 6},
        {"name": "has_garden", "type": "boolean", "nullable": True},
        {
            "name": "city",
            "type": "categorical",
            "nullable": True,
            "categories": ["Lyon", "Paris"],
            "accepts_unknown": False,
        },
    ]
    assert raw["output"] == {"name": "sold", "task": "classification", "classes": [False, True]}
    assert raw["examples"][0] == {
        "input": {"sqft": None, "bedrooms": 3, "has_garden": True, "city": "Paris"},
        "prediction": True,
        "probabilities": {"false": 0.25, "true": 0.75},
    }
    assert raw["profile"]["features"]["city"] == {
        "kind": "categorical",
        "categories": ["Lyon", "Paris"],
        "proportions": [0.4, 0.6],
        "unseen": 0.0,
        "rows": 98,
    }


def test_content_picks_version_3_when_the_output_names_its_task(run_dir: Path) -> None:
    manifest = make_v3_manifest(run_dir, schema_version=0)
    assert manifest.schema_version == 3


def test_a_version_1_feature_reads_as_not_nullable() -> None:
    feature = Feature.from_dict({"name": "age", "type": "integer", "min": 18, "max": 69})
    assert feature == Feature(name="age", type="integer", min=18, max=69, nullable=False)


def test_label_keys_use_json_spelling() -> None:
    assert [label_key(label) for label in (True, False, 3, "setosa")] == [
        "true",
        "false",
        "3",
        "setosa",
    ]


def _feature(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in raw["input_schema"] if item["name"] == name)


# (task, mutation, message)
INVALID_V3: list[tuple[str, Any, str]] = [
    ("regression", lambda r: r["output"].pop("task"), "'output' is missing task"),
    ("regression", lambda r: r["output"].update(task="ranking"), "'output.task' must be one"),
    ("regression", lambda r: r["output"].update(classes=[1, 2]), "does not take: classes"),
    ("classification", lambda r: r["output"].update(classes=[True]), "at least 2 class"),
    ("classification", lambda r: r["output"].update(classes=[1.5, 2]), "'output.classes'"),
    ("classification", lambda r: r["output"].update(classes=["1", 1]), "must not repeat"),
    ("regression", lambda r: _feature(r, "sqft").pop("nullable"), "missing nullable"),
    ("regression", lambda r: _feature(r, "sqft").update(nullable=1), "true or false"),
    ("regression", lambda r: _feature(r, "city").update(type="text"), "must be one of"),
    ("regression", lambda r: _feature(r, "city").update(categories=[]), "non-empty list"),
    ("regression", lambda r: _feature(r, "city").update(categories=["b", "a"]), "sorted"),
    ("regression", lambda r: _feature(r, "city").update(categories=["a", 1]), "of strings"),
    ("regression", lambda r: _feature(r, "city").pop("accepts_unknown"), "accepts_unknown"),
    ("regression", lambda r: _feature(r, "has_garden").update(min=0), "does not take: min"),
    ("regression", lambda r: _feature(r, "bedrooms").pop("max"), "missing max"),
    ("regression", lambda r: r["examples"][0]["input"].update(city=3), "must be a string"),
    (
        "regression",
        lambda r: r["examples"][0]["input"].update(has_garden=1),
        "input.has_garden' must be true or false",
    ),
    ("regression", lambda r: r["examples"][0]["input"].update(bedrooms=2.5), "an integer"),
    ("regression", lambda r: r["examples"][0]["input"].update(bedrooms=None), "not nullable"),
    ("regression", lambda r: r["examples"][0].update(prediction="high"), "finite number"),
    ("regression", lambda r: r["examples"][0].update(probabilities={}), "unknown keys"),
    ("classification", lambda r: r["examples"][0].update(prediction=1), "one of output.classes"),
    (
        "classification",
        lambda r: r["examples"][0].update(probabilities={"true": 1.0}),
        "exactly the output.classes",
    ),
    (
        "classification",
        lambda r: r["examples"][0].update(probabilities={"false": 0.5, "true": 0.75}),
        "must sum to 1",
    ),
    ("regression", lambda r: r["metrics"].pop("r2"), "'metrics' is missing r2"),
    ("classification", lambda r: r["metrics"].pop("roc_auc"), "missing roc_auc"),
    ("classification", lambda r: r["metrics"].pop("log_loss"), "missing log_loss"),
    (
        "regression",
        lambda r: r["profile"]["features"]["city"].update(categories=["Lyon"]),
        "'profile.features.city.categories' must be",
    ),
    (
        "regression",
        lambda r: r["profile"]["features"]["city"].update(unseen=0.5),
        "sum to 1 with unseen",
    ),
    (
        "regression",
        lambda r: r["profile"]["features"]["has_garden"].pop("kind"),
        "'profile.features.has_garden' must be an object",
    ),
    (
        "regression",
        lambda r: r["profile"]["features"].update(city=r["profile"]["features"]["sqft"]),
        "'profile.features.city' must be an object",
    ),
    (
        "classification",
        lambda r: r["profile"].update(prediction=r["profile"]["features"]["sqft"]),
        "'profile.prediction' must be an object",
    ),
]


@pytest.mark.parametrize(("task", "mutate", "message"), INVALID_V3)
def test_an_invalid_version_3_manifest_is_refused_with_the_field_named(
    run_dir: Path, task: str, mutate: Any, message: str
) -> None:
    raw = make_v3_manifest(run_dir, task).to_dict()
    mutate(raw)
    with pytest.raises(ManifestError, match=message):
        Manifest.from_dict(raw)


def test_version_2_does_not_take_version_3_features(run_dir: Path) -> None:
    raw = make_v3_manifest(run_dir).to_dict()
    raw["schema_version"] = 2
    with pytest.raises(ManifestError, match="unknown keys nullable"):
        Manifest.from_dict(raw)
