"""The API's own description: ``GET /openapi.json``, an OpenAPI 3.1 document generated from the
loaded model's manifest (each feature's type, accepted range, categories and nullability; the
answer's shape for this model's task and classes), and ``GET /``, a short index of the routes.

Both are built once, when the app is made: they describe the model this process serves.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Flask, Response

from inference.errors import BATCH_KEY
from inference.formats import CSV, JSON, JSONLINES
from inference.model import CLASSIFICATION, LoadedModel
from inference.responses import json_response
from inference.schema import field_rules
from inference.settings import Settings
from inference.shapes import (
    answer_schemas,
    label_schemas,
    obj,
    ref,
    request_schemas,
    v2_schemas,
)

OPENAPI_VERSION = "3.1.0"
REQUEST_ID = "X-Request-ID"
# The errors each kind of route can answer, by status (every one is an Error object).
ERRORS = {
    400: "The body is not JSON (or not the format its Content-Type names).",
    413: "The body or the batch is larger than MAX_BODY_BYTES / MAX_BATCH_ROWS.",
    415: "The Content-Type is not one this route reads.",
    422: "The input does not follow the model's input schema (the message names the field).",
    503: "No verified model is loaded.",
}
PREDICT_ERRORS = (400, 413, 415, 422, 503)
V2_ERRORS = (400, 404, 413, 422, 503)
V2_TEXT = {404: "No such model, or not this version (the message names the served one)."}
CSV_TEXT = (
    "One record per line, values in schema order or in the order of an optional header line "
    "naming every feature; an empty cell is null; booleans true/false."
)
JSONLINES_TEXT = "One record (an object) or one row in schema order (an array) per line."


def _content(schema: dict[str, Any], media_type: str = JSON) -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def _response(description: str, schema: dict[str, Any], media_type: str = JSON) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {REQUEST_ID: {"$ref": "#/components/headers/RequestId"}},
        "content": _content(schema, media_type),
    }


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/E{status}"} for status in statuses}


def _operation(
    summary: str,
    responses: dict[str, Any],
    body: dict[str, Any] | None = None,
    path: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": summary.split(":")[0].lower().replace(" ", "_"),
        "parameters": [*path, {"$ref": "#/components/parameters/RequestId"}],
        "responses": responses,
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
    return operation


def _v2_paths(name: str, version: str) -> dict[str, Any]:
    """The Open Inference Protocol's routes (v2.py): each model route also under
    /versions/{version}."""
    named = {"name": "name", "in": "path", "required": True, "schema": {"enum": [name]}}
    versioned = {"name": "version", "in": "path", "required": True, "schema": {"enum": [version]}}

    def v2(description: str, schema: dict[str, Any], *statuses: int) -> dict[str, Any]:
        errors = {str(s): {"$ref": f"#/components/responses/V{s}"} for s in statuses}
        return {"200": _response(description, schema), **errors}

    flag = {"type": "object", "additionalProperties": {"type": ["boolean", "string"]}}
    paths: dict[str, Any] = {
        "/v2": {
            "get": _operation("V2 server: metadata", v2("The server.", ref("V2ServerMetadata")))
        },
        "/v2/health/live": {"get": _operation("V2 live", v2("The process answers.", flag))},
        "/v2/health/ready": {"get": _operation("V2 ready", v2("A model is loaded.", flag, 503))},
    }
    for prefix, params, tag in (
        ("/v2/models/{name}", (named,), ""),
        ("/v2/models/{name}/versions/{version}", (named, versioned), " version"),
    ):
        paths[prefix] = {
            "get": _operation(
                f"V2 model{tag} metadata: inputs, outputs, classes",
                v2("The model's metadata.", ref("V2ModelMetadata"), 404, 503),
                path=params,
            )
        }
        paths[prefix + "/ready"] = {
            "get": _operation(
                f"V2 model{tag} ready", v2("The model is ready.", flag, 404, 503), path=params
            )
        }
        paths[prefix + "/infer"] = {
            "post": _operation(
                f"V2 infer{tag}: predictions as tensors",
                v2("The prediction tensors.", ref("V2InferResponse"), *V2_ERRORS),
                _content(ref("V2InferRequest")),
                path=params,
            )
        }
    return paths


def openapi_document(settings: Settings, model: LoadedModel | None) -> dict[str, Any]:
    rules = (
        ()
        if model is None
        else field_rules(model.manifest.input_schema, settings.input_range_margin)
    )
    classification = model is not None and model.task == CLASSIFICATION
    own = (
        [ref("Record")]
        if BATCH_KEY in {rule.name for rule in rules}
        else [ref("Record"), ref("Batch")]
    )
    predict_body = _content({"oneOf": own})
    mlflow = [ref(name) for name in ("DataframeSplit", "DataframeRecords", "Instances", "Inputs")]
    invocations_body = {
        JSON: {"schema": {"anyOf": own + mlflow}},
        CSV: {"schema": {"type": "string", "description": CSV_TEXT}},
        JSONLINES: {"schema": {"type": "string", "description": JSONLINES_TEXT}},
    }
    answer = {"oneOf": [ref("Prediction"), ref("Predictions")]}
    answered = "The prediction(s), with the model version and the request id."
    answers = {"200": _response(answered, answer), **_errors(*PREDICT_ERRORS)}
    line_answers = {
        "200": {
            **_response(answered + " Accept: text/csv or application/jsonlines for lines.", answer),
            "content": {
                JSON: {"schema": answer},
                CSV: {"schema": {"type": "string", "description": "one prediction per line"}},
                JSONLINES: {"schema": {"type": "string", "description": "one answer per line"}},
            },
        },
        **_errors(*PREDICT_ERRORS),
    }
    health = _response("A verified model is loaded.", ref("Health"))
    paths: dict[str, Any] = {
        "/": {
            "get": _operation("Index: the routes", {"200": _response("The routes.", ref("Index"))})
        },
        "/openapi.json": {
            "get": _operation(
                "OpenAPI: this document", {"200": _response("This document.", {"type": "object"})}
            )
        },
        "/health": {"get": _operation("Health", {"200": health, **_errors(503)})},
        "/ping": {
            "get": _operation("Ping: SageMaker's health check", {"200": health, **_errors(503)})
        },
        "/model": {
            "get": _operation(
                "Model: the manifest summary",
                {"200": _response("The served model.", ref("ModelSummary")), **_errors(503)},
            )
        },
        "/predict": {"post": _operation("Predict: one record or a batch", answers, predict_body)},
        "/invocations": {
            "post": _operation(
                "Invocations: /predict's JSON, MLflow's scoring forms, CSV, JSON Lines",
                line_answers,
                invocations_body,
            )
        },
        **_v2_paths(settings.model_name, "" if model is None else model.model_version),
        "/metrics": {
            "get": _operation(
                "Metrics: Prometheus text format",
                {
                    "200": _response(
                        "The metrics of every worker.", {"type": "string"}, "text/plain"
                    )
                },
            )
        },
    }
    error = obj(
        {
            "error": obj({"code": {"type": "string"}, "message": {"type": "string"}}),
            "request_id": {"type": "string"},
        },
        "Every error: a stable code and a message naming the problem (never the payload).",
    )
    schemas = {
        **request_schemas(rules, settings.max_batch_rows),
        **label_schemas(model),
        **answer_schemas(classification),
        **v2_schemas(),
        "Error": error,
        "Health": obj(
            {
                "status": {"const": "ok"},
                "model_version": {"type": "string"},
                "manifest_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            }
        ),
        "ModelSummary": {
            "type": "object",
            "required": ["model_version", "manifest_sha256", "input_schema", "output"],
            "properties": {"input_schema": {"type": "array"}, "output": {"type": "object"}},
        },
        "Index": {
            "type": "object",
            "required": ["service", "openapi", "routes"],
            "properties": {"routes": {"type": "array", "items": {"type": "object"}}},
        },
    }
    title = "mlpipeline inference"
    version = "no model" if model is None else model.model_version
    description = "Predictions from one verified model artifact."
    if model is not None:
        description = (
            f"Serves model {model.model_version} (manifest sha256 {model.manifest_sha256}): "
            f"{model.task} of {model.manifest.output['name']!r} from "
            f"{len(rules)} features. Every answer carries the header {REQUEST_ID}."
        )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                f"E{status}": _response(text, ref("Error")) for status, text in ERRORS.items()
            }
            | {
                f"V{status}": _response(text, ref("V2Error"))
                for status, text in (ERRORS | V2_TEXT).items()
            },
            "headers": {
                "RequestId": {
                    "description": "The request's id (the caller's, sanitised, or a new one).",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
            "parameters": {
                "RequestId": {
                    "name": REQUEST_ID,
                    "in": "header",
                    "required": False,
                    "description": "An id for the logs (up to 128 safe characters kept).",
                    "schema": {"type": "string"},
                }
            },
        },
    }


def route_index(document: dict[str, Any]) -> dict[str, Any]:
    """``GET /``: every route of the document, one line each."""
    return {
        "service": document["info"]["title"],
        "model_version": document["info"]["version"],
        "openapi": "/openapi.json",
        "routes": [
            {"method": method.upper(), "path": path, "summary": operation["summary"]}
            for path, item in document["paths"].items()
            for method, operation in item.items()
        ],
    }


def register_discovery(app: Flask, settings: Settings, model: LoadedModel | None) -> None:
    document = openapi_document(settings, model)
    body = orjson.dumps(document)
    index = route_index(document)
    discovery = Blueprint("discovery", __name__)

    @discovery.get("/")
    def routes() -> Response:
        return json_response(index)

    @discovery.get("/openapi.json")
    def openapi() -> Response:
        return Response(body, mimetype=JSON)

    app.register_blueprint(discovery)
