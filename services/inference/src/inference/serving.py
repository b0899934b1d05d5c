"""gunicorn configuration for the service, and the gunicorn application that runs our app.

The Flask app (and so the model) is built once in the master before it forks: workers share it
and never fetch, extract or verify anything themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from inference.app import record_refused_request
from inference.following import follow_in_worker
from inference.logs import JsonFormatter, StdoutHandler
from inference.metrics import mark_worker_dead
from inference.refusals import Rejection
from inference.settings import SHM, Settings
from inference.state import EXTENSION
from inference.worker import BufferingWorker, Limits


def bind_address(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"{host}:{settings.port}"


def gunicorn_options(settings: Settings, metrics_dir: Path, app: Flask) -> dict[str, Any]:
    def child_exit(_server: Any, worker: Any) -> None:
        mark_worker_dead(worker.pid, metrics_dir)

    options: dict[str, Any] = {
        "bind": [bind_address(settings)],
        "workers": settings.workers,
        # One process per core, each with THREADS threads (default 4) for the app and an event
        # loop that reads every request, with deadlines, before a thread sees it (worker.py).
        # Connections stay alive for KEEPALIVE seconds in that loop, not in a thread.
        "worker_class": worker_class(settings, app),
        "threads": settings.threads,
        "keepalive": settings.keepalive,
        "preload_app": True,
        "timeout": settings.timeout,
        # SIGTERM: stop accepting, let in-flight requests finish for up to this long.
        "graceful_timeout": settings.graceful_timeout,
        "control_socket_disable": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level,
        "logger_class": JsonLogger,
        "proc_name": "inference",
        "child_exit": child_exit,
    }
    if settings.model_reference_uri is not None:

        def post_worker_init(_worker: Any) -> None:
            follow_in_worker(app, settings)

        options["post_worker_init"] = post_worker_init
    if SHM.is_dir():
        # The worker heartbeat file: on a container's overlay /tmp, writes can stall workers.
        options["worker_tmp_dir"] = str(SHM)
    return options


def worker_class(settings: Settings, app: Flask) -> type[BufferingWorker]:
    """Our worker class, configured for these settings and reporting to this app."""
    state = app.extensions[EXTENSION]

    def report(rejection: Rejection) -> None:
        record_refused_request(
            state,
            rejection.request_id,
            rejection.method,
            rejection.path,
            rejection.status,
            rejection.code,
            rejection.latency,
        )

    limits = Limits(
        header_timeout=settings.client_header_timeout,
        body_timeout=settings.client_body_timeout,
        max_body_bytes=settings.max_body_bytes,
    )
    return type(
        "InferenceWorker",
        (BufferingWorker,),
        {"limits": limits, "report": staticmethod(report), "__module__": __name__},
    )


class JsonLogger(Logger):  # type: ignore[misc]
    """gunicorn's own messages as the service's JSON lines on stdout, and no access log: the
    app logs each request itself, with more fields. (With a logging config of its own, gunicorn
    would also build its access-log fields for every request, only to drop them.)"""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        handler = StdoutHandler()
        handler.setFormatter(JsonFormatter())
        self.error_log.handlers = [handler]
        self.error_log.propagate = False

    @property
    def access_log_enabled(self) -> bool:
        return False  # gunicorn then skips its access-log work for each request


class InferenceServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._app
