"""Requests refused before they reach Flask: their JSON answer, and what is logged of them.

The worker (worker.py) refuses some requests itself (408, 413, 414, 431, a malformed chunked
body) and answers gunicorn's parse errors: all in the service's error shape,
``{"error": {"code", "message"}, "request_id"}`` with ``X-Request-ID``, as the app answers its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import orjson
from gunicorn.http import errors as http_errors


@dataclass(frozen=True)
class Rejection:
    """What the service logs (and counts) about a request refused before it reached Flask."""

    request_id: str
    method: str
    path: str
    status: int
    code: str
    latency: float


def error_response(status: int, code: str, message: str, request_id: str) -> bytes:
    body = orjson.dumps({"error": {"code": code, "message": message}, "request_id": request_id})
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def parse_error(exc: Exception) -> tuple[int, str]:
    """gunicorn's parse errors as (status, code), the way its own HTML page would say them."""
    if isinstance(exc, http_errors.LimitRequestLine):
        return 414, "uri_too_long"
    if isinstance(exc, http_errors.LimitRequestHeaders):
        return 431, "request_header_fields_too_large"
    if isinstance(exc, http_errors.UnsupportedTransferCoding):
        return 501, "not_implemented"
    if isinstance(exc, http_errors.ExpectationFailed):
        return 417, "expectation_failed"
    if isinstance(exc, http_errors.ForbiddenProxyRequest):
        return 403, "forbidden"
    chunk_errors = (
        http_errors.InvalidChunkSize,
        http_errors.ChunkMissingTerminator,
        http_errors.InvalidChunkExtension,
    )
    if isinstance(exc, chunk_errors):
        return 400, "invalid_chunked_body"
    return 400, "bad_request"
