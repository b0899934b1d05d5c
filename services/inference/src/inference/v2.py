"""The Open Inference Protocol (KServe / Triton "v2" REST): health, metadata and infer.

The model is named by MODEL_NAME (the trainer's registered model name by default) and
versioned by its ``vNNN``. ``infer`` takes one input tensor per feature (FP64 for numbers,
INT64 for integers, BOOL for booleans, BYTES for categories; null where the feature is
nullable) or one 2-D FP64 tensor ``[rows, features]`` in schema order, as JSON data (flat or
nested) or as Triton's binary tensor data; it answers a ``prediction`` tensor (and, for a
classifier, ``probabilities`` ``[rows, classes]`` in the metadata's class order), always as
JSON data. Rows pass /predict's validation; errors take the protocol's ``{"error": "..."}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from artifact_contract import label_key
from flask import Blueprint, Response, g, request

from inference.body import read_body
from inference.errors import InferenceError, InvalidInput, InvalidJSON
from inference.model import CLASSIFICATION, LoadedModel
from inference.responses import json_response
from inference.routes import answer
from inference.state import current_state
from inference.tensors import DATATYPE, feature_columns
from inference.validation import RequestValidator, parse_json

v2 = Blueprint("v2", __name__, url_prefix="/v2")
BINARY_HEADER = "Inference-Header-Content-Length"
PREDICTION, PROBABILITIES = "prediction", "probabilities"
_REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})


class UnknownModel(InferenceError):
    status = 404
    code = "unknown_model"


@v2.after_request
def protocol_errors(response: Response) -> Response:
    """The app's one error handler made the body; the protocol's shape is {"error": message}."""
    if response.status_code >= 400 and response.mimetype == "application/json":
        body = orjson.loads(response.get_data())
        error = body.get("error")
        if isinstance(error, dict):
            response.set_data(orjson.dumps({"error": error["message"]}))
    return response


@v2.get("")
def server_metadata() -> Response:
    return json_response({"name": "mlpipeline-inference", "version": "2", "extensions": []})


@v2.get("/health/live")
def live() -> Response:
    return json_response({"live": True})


@v2.get("/health/ready")
def ready() -> Response:
    current_state().require_model()
    return json_response({"ready": True})


def _model(name: str, version: str | None) -> tuple[LoadedModel, RequestValidator]:
    state = current_state()
    model, validator = state.require_model()
    served = state.settings.model_name
    if name != served or (version is not None and version != model.model_version):
        asked = name if version is None else f"{name} version {version}"
        raise UnknownModel(
            f"unknown model {asked[:140]!r}; this server serves {served!r} version "
            f"{model.model_version!r}"
        )
    return model, validator


@v2.get("/models/<name>")
@v2.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None) -> Response:
    model, validator = _model(name, version)
    return json_response(metadata(model, validator, current_state().settings.model_name))


def metadata(model: LoadedModel, validator: RequestValidator, name: str) -> dict[str, Any]:
    rows = -1
    outputs = [{"name": PREDICTION, "datatype": _label_type(model), "shape": [rows]}]
    parameters: dict[str, Any] = {"task": model.task, "manifest_sha256": model.manifest_sha256}
    if model.task == CLASSIFICATION:
        outputs.append(
            {"name": PROBABILITIES, "datatype": "FP64", "shape": [rows, len(model.classes)]}
        )
        parameters["classes"] = [label_key(label) for label in model.classes]
    return {
        "name": name,
        "versions": [model.model_version],
        "platform": f"{model.manifest.model.flavor}-{model.manifest.model.format}",
        "inputs": [
            {"name": rule.name, "datatype": DATATYPE[rule.type], "shape": [rows]}
            for rule in validator.rules
        ],
        "outputs": outputs,
        "parameters": parameters,
    }


@v2.get("/models/<name>/ready")
@v2.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> Response:
    _model(name, version)
    return json_response({"name": name, "ready": True})


@v2.post("/models/<name>/infer")
@v2.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Response:
    state = current_state()
    model, validator = _model(name, version)
    payload, binary = _split_body(read_body(state.settings.max_body_bytes))
    if not isinstance(payload, dict):
        raise InvalidInput("the body must be an inference request object with 'inputs'")
    unknown = sorted(str(key) for key in payload if key not in _REQUEST_KEYS)
    if unknown or not isinstance(payload.get("inputs"), list) or not payload["inputs"]:
        raise InvalidInput(
            "an inference request has 'inputs' (a non-empty array of tensors) and optionally "
            "'id', 'parameters' and 'outputs'" + (f"; got {unknown[0][:64]!r}" if unknown else "")
        )
    if not isinstance(payload.get("id", ""), str) or not isinstance(
        payload.get("parameters", {}), dict
    ):
        raise InvalidInput("'id' must be a string and 'parameters' an object")
    wanted = _requested_outputs(payload.get("outputs"), model)
    columns = feature_columns(payload["inputs"], binary, validator.rules)
    names = [rule.name for rule in validator.rules]
    records = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    parsed = validator.parse_records(records, lambda index: f"row {index}")
    body = answer(state, model, parsed)
    rows = len(body["predictions"])
    outputs = [
        {
            "name": PREDICTION,
            "datatype": _label_type(model),
            "shape": [rows],
            "data": body["predictions"],
        }
    ]
    if "probabilities" in body:
        keys = [label_key(label) for label in model.classes]
        outputs.append(
            {
                "name": PROBABILITIES,
                "datatype": "FP64",
                "shape": [rows, len(keys)],
                "data": [row[key] for row in body["probabilities"] for key in keys],
                "parameters": {"classes": keys},
            }
        )
    request_id = payload.get("id")
    return json_response(
        {
            "model_name": state.settings.model_name,
            "model_version": model.model_version,
            "id": request_id if isinstance(request_id, str) else g.request_id,
            "outputs": [output for output in outputs if output["name"] in wanted],
        }
    )


def _label_type(model: LoadedModel) -> str:
    if model.task != CLASSIFICATION:
        return "FP64"
    kinds = {type(label) for label in model.classes}
    return "BOOL" if kinds == {bool} else "INT64" if kinds == {int} else "BYTES"


def _requested_outputs(outputs: Any, model: LoadedModel) -> set[str]:
    available = {PREDICTION} | ({PROBABILITIES} if model.task == CLASSIFICATION else set())
    if outputs is None:
        return available
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict)
        and isinstance(o.get("name"), str)
        and set(o) <= {"name", "parameters"}
        and isinstance(o.get("parameters", {}), dict)
        for o in outputs
    ):
        raise InvalidInput("'outputs' must be an array of {\"name\": ...} objects")
    wanted = {o["name"] for o in outputs}
    if not wanted <= available:
        unknown = sorted(wanted - available)[0]
        raise InvalidInput(
            f"unknown output {unknown[:64]!r}; this model has {', '.join(sorted(available))}"
        )
    return wanted


def _split_body(body: bytes) -> tuple[Any, bytes]:
    """The JSON request, and the binary tensor data after it (Triton's binary extension)."""
    header = request.headers.get(BINARY_HEADER)
    if header is None:
        return parse_json(body), b""
    if not header.isdigit() or int(header) > len(body):
        raise InvalidJSON(f"{BINARY_HEADER} must be the JSON part's length in bytes")
    size = int(header)
    return parse_json(body[:size]), body[size:]
