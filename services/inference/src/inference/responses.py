"""JSON responses, made one way for every route and every error."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    # orjson writes NaN/Infinity as null: every float reaching here is finite already
    # (validated manifest values; predictions checked in LoadedModel.predict).
    return Response(orjson.dumps(body), status=status, mimetype="application/json")
