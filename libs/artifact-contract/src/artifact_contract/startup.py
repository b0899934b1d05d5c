"""The inference service's refusal line: the one JSON log line it writes before it exits with
status 2 instead of serving (``inference serve``/``check``), which the trainer's smoke gate and
the image smoke test read back to say why a server did not start::

    {"ts": "...Z", "level": "error", "pid": 7, "event": "startup_refused",
     "code": "model_integrity", "message": "...", "model_source": "..."}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

STARTUP_REFUSED = "startup_refused"
EXIT_REFUSED = 2


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    model_source: str | None = None

    def fields(self) -> dict[str, Any]:
        """The line's fields besides ``ts``, ``level``, ``pid`` and ``event``."""
        return {"code": self.code, "message": self.message, "model_source": self.model_source}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def parse_refusal(line: str) -> Refusal | None:
    """The refusal on ``line``, None for any other line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("event") != STARTUP_REFUSED:
        return None
    source = record.get("model_source")
    return Refusal(
        code=str(record.get("code")),
        message=str(record.get("message")),
        model_source=source if isinstance(source, str) else None,
    )


def last_refusal(lines: Iterable[str]) -> Refusal | None:
    """The last refusal among ``lines`` (a server's whole output), None when it gave none."""
    found = None
    for line in lines:
        refusal = parse_refusal(line)
        if refusal is not None:
            found = refusal
    return found
