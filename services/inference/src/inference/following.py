"""Servers follow their reference (``MODEL_REFERENCE``): a promotion or rollback reaches every
running worker without a restart and without dropping a request.

Each gunicorn worker re-reads the reference every ``REFERENCE_POLL_SECONDS`` in a background
thread. When it names another manifest digest, the thread fetches, verifies and self-tests the
new artifact (the same ``load_model`` as at start) while the worker keeps serving, then swaps it
in with one assignment of the app's state: a request in flight finishes on the model it started
with, the next one gets the new model. An artifact that fails is not swapped in: the old model
keeps serving, and the failure shows in ``/health`` (``reference.error``), the log
(``model_swap_refused``) and the metric ``inference_model_swaps_total{outcome="refused"}``.

SIGHUP to the master makes gunicorn start fresh workers and stop the old ones gracefully; each
new worker checks the reference before it serves (``post_worker_init``), so the switch is
immediate. Workers follow independently (no coordination between processes): for up to one
polling interval, two workers may answer with different models.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from flask import Flask

from inference.errors import StartupRefusal
from inference.logs import log_event
from inference.model import LoadedModel
from inference.settings import Settings
from inference.state import EXTENSION, ServiceState

FOLLOW = "inference.follow"


@dataclass
class FollowStatus:
    location: str
    names: str | None = None  # the manifest digest the reference names, once read
    error: str | None = None  # why the last check could not serve what it names
    checked_at: float | None = None

    def to_dict(self, serving: str | None) -> dict[str, Any]:
        return {
            "location": self.location,
            "manifest_sha256": self.names,
            "in_sync": self.names is not None and self.names == serving,
            "error": self.error,
        }


class Follower:
    def __init__(self, app: Flask, settings: Settings) -> None:
        if settings.model_reference_uri is None:
            raise ValueError("a follower needs MODEL_REFERENCE")
        self.app = app
        self.settings = settings
        self.status = FollowStatus(settings.model_reference_uri)
        self._lock = threading.Lock()
        app.extensions[FOLLOW] = self.status

    @property
    def state(self) -> ServiceState:
        state: ServiceState = self.app.extensions[EXTENSION]
        return state

    def check(self) -> bool:
        """Read the reference; load, verify and swap in what it names if that is new. True when
        a new model was swapped in."""
        from inference.loader import load_model
        from inference.reference import follow, read_reference

        with self._lock:
            state = self.state
            serving = None if state.model is None else state.model.manifest_sha256
            try:
                reference = read_reference(self.status.location)
            except StartupRefusal as exc:
                self._failed(state, exc, None)
                return False
            self.status.names = reference.manifest_sha256
            self.status.checked_at = time.time()
            if reference.manifest_sha256 == serving:
                self.status.error = None
                return False
            started = time.perf_counter()
            try:
                model = load_model(follow(self.settings, reference))
            except StartupRefusal as exc:
                self._failed(state, exc, reference.model_version)
                return False
            swap(self.app, model)
            self.status.error = None
            state.metrics.model_swaps.labels("swapped").inc()
            log_event(
                state.logger,
                logging.INFO,
                "model_swapped",
                model_source=model.source,
                from_version=None if state.model is None else state.model.model_version,
                model_version=model.model_version,
                manifest_sha256=model.manifest_sha256,
                load_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            return True

    def _failed(self, state: ServiceState, exc: StartupRefusal, version: str | None) -> None:
        message = exc.message
        if message != self.status.error:  # once per distinct failure, not every poll
            state.metrics.model_swaps.labels("refused").inc()
            log_event(
                state.logger,
                logging.ERROR,
                "model_swap_refused",
                code=exc.code,
                message=message,
                reference=self.status.location,
                model_version=version,
                serving_version=None if state.model is None else state.model.model_version,
            )
        self.status.error = message

    def run_forever(self) -> None:
        while True:
            time.sleep(self.settings.reference_poll_seconds)
            try:
                self.check()
            except Exception as exc:  # the thread must outlive any surprise; it is logged
                self.state.logger.exception("reference check failed: %s", exc)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="reference-follower", daemon=True)
        thread.start()
        return thread


def swap(app: Flask, model: LoadedModel) -> None:
    """Serve ``model`` from the next request on (one assignment: requests see one or the
    other, never a mix of a model and another's validator)."""
    from inference.app import request_validator
    from inference.sampling import prediction_sampler

    old: ServiceState = app.extensions[EXTENSION]
    new = replace(
        old,
        model=model,
        validator=request_validator(old.settings, model),
        sampler=prediction_sampler(old.settings, model, old.logger),
    )
    app.extensions[EXTENSION] = new
    if old.model is not None:
        old.metrics.model_info.labels(old.model.model_version, old.model.manifest_sha256).set(0)
    new.metrics.model_info.labels(model.model_version, model.manifest_sha256).set(1)


def follow_in_worker(app: Flask, settings: Settings) -> None:
    """gunicorn's post_worker_init: check once before serving, then keep polling."""
    follower = Follower(app, settings)
    follower.check()
    follower.start()
