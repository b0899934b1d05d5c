"""JSON log lines on stdout: one per request, one per start-up event, gunicorn's own too."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

LOGGER = "inference"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "event", ...fields}`` on one line; foreign records keep their text."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        entry: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "pid": record.process,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry["event"] = record.msg
            entry.update(fields)
        else:
            entry["event"] = "log"
            entry["logger"] = record.name
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).strip()
        return orjson.dumps(entry, default=str).decode()


class StdoutHandler(logging.Handler):
    """One ``write(2)`` per line on stdout, without a lock.

    The kernel keeps each write whole (a log line is far below PIPE_BUF, and writes to one file
    description update its offset atomically), so threads and worker processes never interleave
    half lines; the logging module's per-handler lock would make every request thread queue
    behind every other's write. When stdout has no file descriptor (a test runner's capture),
    it is written to as a stream.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            stream = sys.stdout
            try:
                descriptor = stream.fileno()
            except (AttributeError, OSError, ValueError):  # no descriptor: a capture buffer
                stream.write(line)
                stream.flush()
                return
            data = memoryview(line.encode())
            while data:
                data = data[os.write(descriptor, data) :]
        except Exception:
            self.handleError(record)


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER)


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


def configure_logging(level: str) -> logging.Logger:
    """Send the service's logger to stdout as JSON (idempotent)."""
    logger = get_logger()
    logger.setLevel(level.upper())
    logger.propagate = False
    if not any(isinstance(handler, StdoutHandler) for handler in logger.handlers):
        handler = StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    return logger
