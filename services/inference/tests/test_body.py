"""The body bound at the app's edge, for a body without Content-Length (chunked).

The app is called as gunicorn calls it (the test client would add a Content-Length).
"""

from __future__ import annotations

import io
import json
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from tests.conftest import RECORD


class BrokenStream(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:  # noqa: ARG002
        raise ValueError("Invalid chunk size")  # as gunicorn's chunked reader does


def post_stream(app: Flask, stream: io.BytesIO) -> tuple[int, dict[str, str], Any]:
    """POST a body as gunicorn passes a chunked one: no CONTENT_LENGTH, input_terminated."""
    builder = EnvironBuilder(
        path="/predict", method="POST", input_stream=stream, content_type="application/json"
    )
    environ = builder.get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    body, status, headers = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), dict(headers), json.loads(b"".join(body))


def test_a_body_without_length_over_the_limit_is_413_not_cut_and_served(app: Flask) -> None:
    body = json.dumps(RECORD).encode() + b" " * (7 * 1024 * 1024) + b"GARBAGE"
    status, headers, answer = post_stream(app, io.BytesIO(body))
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"
    assert headers["X-Request-ID"] == answer["request_id"]


def test_a_body_without_length_under_the_limit_is_served(app: Flask) -> None:
    status, _, answer = post_stream(app, io.BytesIO(json.dumps(RECORD).encode()))
    assert status == 200 and "prediction" in answer


def test_a_body_the_server_cannot_read_is_a_400(app: Flask) -> None:
    status, _, answer = post_stream(app, BrokenStream())
    assert status == 400
    assert answer["error"]["code"] == "invalid_body"
    assert "Invalid chunk size" in answer["error"]["message"]
