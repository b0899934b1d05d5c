"""What a request handler can reach: the settings, the model, the validator, the metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app

from inference.errors import ModelNotReady
from inference.metrics import Metrics
from inference.model import LoadedModel
from inference.sampling import PredictionSampler
from inference.settings import Settings
from inference.validation import RequestValidator

EXTENSION = "inference"


@dataclass(frozen=True)
class ServiceState:
    settings: Settings
    model: LoadedModel | None
    validator: RequestValidator | None
    metrics: Metrics
    logger: logging.Logger
    sampler: PredictionSampler | None = None  # None: prediction sampling is off

    def require_model(self) -> tuple[LoadedModel, RequestValidator]:
        if self.model is None or self.validator is None:
            raise ModelNotReady("no verified model is loaded")
        return self.model, self.validator


def current_state() -> ServiceState:
    state: ServiceState = current_app.extensions[EXTENSION]
    return state
