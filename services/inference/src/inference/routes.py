"""The HTTP API. Views validate, call the model boundary and shape JSON; nothing else."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from inference.body import read_body
from inference.errors import NonFinitePrediction, UnsupportedMediaType
from inference.following import FOLLOW
from inference.formats import JSON, answer_media_type, parse_invocation, render_lines
from inference.model import LoadedModel
from inference.responses import json_response
from inference.state import ServiceState, current_state
from inference.validation import ParsedRequest

api = Blueprint("api", __name__)


def _health() -> Response:
    model, _ = current_state().require_model()
    body: dict[str, Any] = {
        "status": "ok",
        "model_version": model.model_version,
        "manifest_sha256": model.manifest_sha256,
    }
    follow = current_app.extensions.get(FOLLOW)  # set when serving from MODEL_REFERENCE
    if follow is not None:
        body["reference"] = follow.to_dict(model.manifest_sha256)
    return json_response(body)


@api.get("/health")
def health() -> Response:
    return _health()


@api.get("/ping")
def ping() -> Response:
    """SageMaker's health check."""
    return _health()


@api.get("/model")
def model_summary() -> Response:
    model, _ = current_state().require_model()
    return json_response(model.summary())


@api.post("/predict")
def predict() -> Response:
    state = current_state()
    model, validator = state.require_model()
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            "send the body as JSON with the header Content-Type: application/json"
        )
    parsed = validator.parse(read_body(state.settings.max_body_bytes))
    return json_response(answer(state, model, parsed))


@api.post("/invocations")
def invocations() -> Response:
    """SageMaker's inference route: /predict's JSON, MLflow's scoring forms, CSV and JSON Lines
    (formats.py)."""
    state = current_state()
    model, validator = state.require_model()
    parsed = parse_invocation(validator, request.mimetype, read_body(state.settings.max_body_bytes))
    body = answer(state, model, parsed)
    media_type = answer_media_type(request.accept_mimetypes) if parsed.batch else JSON
    if media_type == JSON:
        return json_response(body)
    return Response(render_lines(body, media_type), mimetype=media_type)


def answer(state: ServiceState, model: LoadedModel, parsed: ParsedRequest) -> dict[str, Any]:
    """Predict for validated rows (timed, counted, sampled) and shape /predict's answer."""
    if parsed.outside:
        state.metrics.count_outside(parsed.outside)
    started = time.perf_counter()
    try:
        result = model.infer(parsed.rows)
    except NonFinitePrediction as exc:
        raise NonFinitePrediction(exc.rows, parsed.batch) from None
    elapsed = time.perf_counter() - started
    predictions = result.predictions
    g.predict_ms = round(elapsed * 1000, 3)
    g.rows = len(predictions)
    state.metrics.predict_time.observe(elapsed)
    state.metrics.rows.inc(len(predictions))
    if state.sampler is not None:
        state.sampler.record(g.request_id, model.model_version, parsed.rows, predictions)
    body: dict[str, Any]
    if parsed.batch:
        body = {"predictions": predictions}
        if result.probabilities is not None:
            body["probabilities"] = result.probabilities
    else:
        body = {"prediction": predictions[0]}
        if result.probabilities is not None:
            body["probabilities"] = result.probabilities[0]
    body["model_version"] = model.model_version
    body["request_id"] = g.request_id
    return body


@api.get("/metrics")
def metrics() -> Response:
    registry = current_state().metrics
    return Response(registry.render(), content_type=registry.content_type)
