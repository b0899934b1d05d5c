"""Logging for the console scripts (``trainer`` and SageMaker's ``train``): progress on stderr."""

from __future__ import annotations

import logging
import sys


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("trainer: %(message)s"))
    logger = logging.getLogger("trainer")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # MLflow warns that pip has no version in a venv without pip; the pins are explicit anyway.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    # MLflow's SQL store logs a store failure (locked, corrupt) with its traceback before raising
    # it; the trainer reports it in one line (tracking.py). Its schema-migration notes go too.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
