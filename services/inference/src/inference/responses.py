"""JSON responses, made one way for every route and every error."""

from __future__ import annotations

import json
from typing import Any

from flask import Response


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return Response(text, status=status, mimetype="application/json")
