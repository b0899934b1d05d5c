"""The manifest's JSON Schema, shipped as package data for tools outside Python.

It checks the structure and the type of every field for each schema version, and the metrics
and prediction shapes each task requires. Rules that relate fields to each other are checked by
``Manifest`` validation only (the schema's description lists them): example values typed by their
feature, profile entries shaped by their feature's type, ``model.path`` listed in ``files``,
``min <= max``, unique names and labels, sorted categories, shares summing to 1.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

MANIFEST_SCHEMA_FILE = "manifest.schema.json"


def manifest_json_schema() -> dict[str, Any]:
    text = files("artifact_contract").joinpath(MANIFEST_SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
