"""The Flask application factory. Nothing happens at import time: ``create_app`` does it all."""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from artifact_contract.errors import first_line
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from inference.errors import InferenceError
from inference.logs import configure_logging, log_event
from inference.metrics import Metrics
from inference.model import LoadedModel
from inference.openapi import register_discovery
from inference.responses import json_response
from inference.routes import api
from inference.sampling import prediction_sampler
from inference.schema import field_rules
from inference.settings import Settings
from inference.state import EXTENSION, ServiceState, current_state
from inference.v2 import v2
from inference.validation import RequestValidator

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_MAX = 128
_REQUEST_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._:\-]")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID, reduced to safe characters and bounded; else a fresh one."""
    if header:
        cleaned = _REQUEST_ID_UNSAFE.sub("", header[: REQUEST_ID_MAX * 4])[:REQUEST_ID_MAX]
        if cleaned:
            return cleaned
    # Not a secret, only unique: the PRNG (reseeded in each forked worker) spares a urandom
    # system call per request.
    return f"{random.getrandbits(128):032x}"


def create_app(
    settings: Settings, model: LoadedModel | None, metrics: Metrics | None = None
) -> Flask:
    app = Flask(__name__, static_folder=None)  # no static files: no /static route
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    metrics = metrics or Metrics(settings.metrics_dir)
    validator = None if model is None else request_validator(settings, model)
    logger = configure_logging(settings.log_level)
    sampler = prediction_sampler(settings, model, logger)
    state = ServiceState(settings, model, validator, metrics, logger, sampler)
    app.extensions[EXTENSION] = state
    if model is not None:
        metrics.model_info.labels(model.model_version, model.manifest_sha256).set(1)
    app.register_blueprint(api)
    app.register_blueprint(v2)  # the Open Inference Protocol
    register_discovery(app, settings, model)

    @app.before_request
    def start_request() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))

    # current_state(), not `state`: a server following MODEL_REFERENCE swaps the state.
    @app.after_request
    def finish_request(response: Response) -> Response:
        _finish(current_state(), response)
        return response

    @app.errorhandler(Exception)
    def handle_error(exc: Exception) -> Response:
        return _error_response(current_state(), exc)

    return app


def request_validator(settings: Settings, model: LoadedModel) -> RequestValidator:
    return RequestValidator(
        field_rules(model.manifest.input_schema, settings.input_range_margin),
        settings.max_batch_rows,
        frame=model.takes_frame,
    )


def _error_response(state: ServiceState, exc: Exception) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, InferenceError):
        status, code, message = exc.status, exc.code, exc.message
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = _http_message(state, exc, status)
        allow = dict(exc.get_headers()).get("Allow")
        if allow:
            headers["Allow"] = allow
    else:
        status, code = 500, "internal_error"
        message = "internal error; the server log has the details under this request_id"
        state.logger.error(
            "unhandled_exception",
            exc_info=exc,
            extra={"fields": {"request_id": g.get("request_id"), "path": request.path[:200]}},
        )
    g.error_code = code
    request_id = g.get("request_id") or request_id_from(None)
    g.request_id = request_id
    body = {"error": {"code": code, "message": message}, "request_id": request_id}
    response = json_response(body, status)
    response.headers.update(headers)
    return response


def _http_message(state: ServiceState, exc: HTTPException, status: int) -> str:
    if status == 404:
        return "no such endpoint; GET / lists the routes, GET /openapi.json describes them"
    if status == 405:
        return f"method {request.method} is not allowed here"
    if status == 413:
        return f"request body is larger than {state.settings.max_body_bytes} bytes (MAX_BODY_BYTES)"
    return first_line(exc.description or exc.name, limit=200)


def _finish(state: ServiceState, response: Response) -> None:
    # Local references: every `g.x` / `request.x` goes through a context-local proxy.
    context = g._get_current_object()
    current = request._get_current_object()  # type: ignore[attr-defined]  # typed as Request
    request_id = context.get("request_id") or request_id_from(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    started = context.get("started")
    latency = 0.0 if started is None else time.perf_counter() - started
    status = response.status_code
    rule = current.url_rule
    route = rule.rule if rule is not None else "unmatched"
    method = current.method
    state.metrics.observe_request(route, method if method in _METHODS else "OTHER", status, latency)
    fields = {
        "request_id": request_id,
        "method": method,
        "path": current.path[:200],
        "status": status,
        "latency_ms": round(latency * 1000, 3),
        "predict_ms": context.get("predict_ms"),
        "model_version": None if state.model is None else state.model.model_version,
        "rows": context.get("rows", 0),
    }
    error_code = context.get("error_code")
    if error_code is not None:
        fields["error_code"] = error_code
    _log_request(state, status, fields)


def record_refused_request(
    state: ServiceState,
    request_id: str,
    method: str,
    path: str,
    status: int,
    error_code: str,
    latency: float,
) -> None:
    """Log and count a request the worker refused before it reached Flask (worker.py), with
    the same fields and metric as any other request."""
    method = method if method in _METHODS else "OTHER"
    state.metrics.observe_request("unmatched", method, status, latency)
    fields = {
        "request_id": request_id,
        "method": method,
        "path": path,
        "status": status,
        "latency_ms": round(latency * 1000, 3),
        "predict_ms": None,
        "model_version": None if state.model is None else state.model.model_version,
        "rows": 0,
        "error_code": error_code,
    }
    _log_request(state, status, fields)


def _log_request(state: ServiceState, status: int, fields: dict[str, Any]) -> None:
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    log_event(state.logger, level, "request", **fields)
