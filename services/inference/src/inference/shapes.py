"""JSON Schemas of what requests and answers look like for the loaded model, built from its
manifest's input schema (as schema.py's FieldRule accepts each feature) and its output; the
pieces of the OpenAPI document (openapi.py)."""

from __future__ import annotations

from typing import Any

from artifact_contract import label_key

from inference.errors import BATCH_KEY
from inference.model import CLASSIFICATION, LoadedModel
from inference.schema import FieldRule


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def feature_schema(rule: FieldRule) -> dict[str, Any]:
    """What a request may give for one feature, as JSON Schema."""
    notes: list[str] = []
    schema: dict[str, Any]
    if rule.numeric:
        schema = {"type": rule.type, "minimum": rule.low, "maximum": rule.high}
        notes.append(
            f"training range {rule.min:.6g} to {rule.max:.6g}; accepted {rule.low:.6g} to "
            f"{rule.high:.6g} (INPUT_RANGE_MARGIN spans either side)"
        )
    elif rule.type == "boolean":
        schema = {"type": "boolean"}
    else:
        categories = sorted(rule.categories)
        if rule.accepts_unknown:
            schema = {"type": "string", "examples": categories[:20]}
            notes.append("any string: the model ignores categories it did not see in training")
        else:
            schema = {"type": "string", "enum": categories}
            notes.append("one of the training categories")
    if rule.nullable:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        notes.append("null allowed (the model imputes it)")
    schema["description"] = "; ".join([rule.type, *notes])
    return schema


def record_schema(rules: tuple[FieldRule, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "One record: every feature, no other field.",
        "properties": {rule.name: feature_schema(rule) for rule in rules},
        "required": [rule.name for rule in rules],
        "additionalProperties": False,
    }


def label_schemas(model: LoadedModel | None) -> dict[str, Any]:
    """The prediction of one record, and (classification) its probabilities."""
    if model is None:
        return {"Label": {}}
    if model.task != CLASSIFICATION:
        return {
            "Label": {"type": "number", "description": f"predicted {model.manifest.output['name']}"}
        }
    keys = [label_key(label) for label in model.classes]
    return {
        "Label": {"enum": model.classes, "description": "the most probable class"},
        "Probabilities": {
            "type": "object",
            "description": "probability of each class, keyed by the label as text",
            "properties": {key: {"type": "number", "minimum": 0, "maximum": 1} for key in keys},
            "required": keys,
            "additionalProperties": False,
        },
    }


def answer_schemas(classification: bool) -> dict[str, Any]:
    identity = {"model_version": {"type": "string"}, "request_id": {"type": "string"}}
    single: dict[str, Any] = {"prediction": ref("Label"), **identity}
    batch: dict[str, Any] = {
        "predictions": {"type": "array", "items": ref("Label")},
        **identity,
    }
    if classification:
        single["probabilities"] = ref("Probabilities")
        batch["probabilities"] = {"type": "array", "items": ref("Probabilities")}
    return {
        "Prediction": obj(single, "The answer for one record."),
        "Predictions": obj(batch, "The answers for a batch, in the order of its rows."),
    }


def obj(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def row_schema(rules: tuple[FieldRule, ...]) -> dict[str, Any]:
    """One record as an array of values in schema order."""
    return {
        "type": "array",
        "description": "One record as its values in schema order: "
        + ", ".join(rule.name for rule in rules),
        "prefixItems": [feature_schema(rule) for rule in rules],
        "items": False,
        "minItems": len(rules),
        "maxItems": len(rules),
    }


def columns_schema(rules: tuple[FieldRule, ...], max_rows: int) -> dict[str, Any]:
    """``{feature: [values]}``, every array as long."""
    return {
        "type": "object",
        "description": "One array of values per feature, all of one length.",
        "properties": {
            rule.name: {"type": "array", "items": feature_schema(rule), "maxItems": max_rows}
            for rule in rules
        },
        "required": [rule.name for rule in rules],
        "additionalProperties": False,
    }


def request_schemas(rules: tuple[FieldRule, ...], max_rows: int) -> dict[str, Any]:
    """/predict's record and batch; MLflow's scoring forms (formats.py) for /invocations."""
    bounded = {"minItems": 1, "maxItems": max_rows}
    records = {"type": "array", "items": ref("Record"), **bounded}
    rows = {"type": "array", "items": ref("Row"), **bounded}
    params = {"type": ["object", "null"], "maxProperties": 0, "description": "none: ignored"}
    mlflow_list = {"anyOf": [records, rows, ref("Columns")]}
    names = [rule.name for rule in rules]
    split = obj(
        {
            "columns": {"type": "array", "items": {"enum": names}, "uniqueItems": True},
            "data": {"type": "array", "items": {"type": "array"}, **bounded},
            "index": {"type": "array"},
        },
        "pandas' split orient: rows in the order of 'columns' (default: schema order).",
    )
    split["required"] = ["data"]

    def form(key: str, schema: dict[str, Any]) -> dict[str, Any]:
        shape = obj({key: schema, "params": params}, f"MLflow's {key!r} scoring form.")
        shape["required"] = [key]
        return shape

    return {
        "Record": record_schema(rules),
        "Batch": obj(
            {BATCH_KEY: records}, f"A batch of at most {max_rows} records (MAX_BATCH_ROWS)."
        ),
        "Row": row_schema(rules),
        "Columns": columns_schema(rules, max_rows),
        "DataframeSplit": form("dataframe_split", split),
        "DataframeRecords": form("dataframe_records", records),
        "Instances": form(BATCH_KEY, mlflow_list),
        "Inputs": form("inputs", mlflow_list),
    }


def v2_schemas() -> dict[str, Any]:
    """The Open Inference Protocol's bodies (v2.py), as this server reads and writes them."""
    parameters = {"type": "object"}
    tensor = obj(
        {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
            "datatype": {"enum": ["FP64", "FP32", "INT64", "INT32", "BOOL", "BYTES"]},
            "parameters": parameters,
            "data": {"type": "array"},
        },
        "A tensor: data flat or nested in row-major order, or parameters.binary_data_size.",
    )
    tensor["required"] = ["name", "shape", "datatype"]
    request = obj(
        {
            "id": {"type": "string"},
            "parameters": parameters,
            "inputs": {"type": "array", "items": ref("V2Tensor"), "minItems": 1},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "parameters": parameters},
                    "required": ["name"],
                    "additionalProperties": False,
                },
            },
        },
        "One tensor per feature, or one [rows, features] FP64 tensor in schema order.",
    )
    request["required"] = ["inputs"]
    output = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"enum": ["prediction", "probabilities"]},
            "data": {"type": "array"},
        },
    }
    metadata_tensor = obj(
        {"name": {"type": "string"}, "datatype": {"type": "string"}, "shape": {"type": "array"}}
    )
    return {
        "V2Tensor": tensor,
        "V2InferRequest": request,
        "V2InferResponse": obj(
            {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": output},
            }
        ),
        "V2ModelMetadata": obj(
            {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": metadata_tensor},
                "outputs": {"type": "array", "items": metadata_tensor},
                "parameters": {"type": "object"},
            }
        ),
        "V2ServerMetadata": obj(
            {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            }
        ),
        "V2Error": obj({"error": {"type": "string"}}, "The protocol's error: a message."),
    }
