"""``inference serve``: verify and load the model once, then serve it with gunicorn.

``inference check`` does the same verification and loading, prints the model summary and exits.
``inference score --input FILE --output FILE`` scores a CSV or JSON Lines file (score.py).
Any refusal ends the process with exit status 2 and one JSON log line saying why; a bad input
line ends ``score`` with exit status 1 and one line naming it.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from inference.errors import ConfigurationError, StartupRefusal
from inference.logs import configure_logging, log_event
from inference.settings import Settings, apply_process_environment

REFUSED = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inference", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the configured model with gunicorn")
    commands.add_parser("check", help="verify and load the configured model, then exit")
    scoring = commands.add_parser(
        "score", help="score a CSV or JSON Lines file into the same format (bounded memory)"
    )
    scoring.add_argument(
        "--input", required=True, help="a .csv, .jsonl or .ndjson file or s3:// key"
    )
    scoring.add_argument("--output", required=True, help="the same format; complete or not at all")
    scoring.add_argument(
        "--chunk-rows", type=int, default=1000, help="records predicted at a time (memory bound)"
    )
    args = parser.parse_args(argv)

    logger = configure_logging("info")
    try:
        settings = Settings.from_env()
    except StartupRefusal as exc:
        return _refuse(logger, exc, None)
    logger = configure_logging(settings.log_level)
    if args.command == "score":
        return score_file(settings, logger, args.input, args.output, args.chunk_rows)
    return serve(settings, logger) if args.command == "serve" else check(settings, logger)


def _refuse(logger: logging.Logger, exc: StartupRefusal, settings: Settings | None) -> int:
    source = None if settings is None else settings.model_reference
    log_event(
        logger,
        logging.ERROR,
        "startup_refused",
        code=exc.code,
        message=exc.message,
        model_source=source,
    )
    return REFUSED


def _prepare_metrics_dir(settings: Settings) -> tuple[Path, bool]:
    """prometheus_client's multiprocess directory: ours (temporary) unless one is configured,
    and empty at start (samples of an earlier run would be counted again)."""
    if settings.metrics_dir is None:
        return Path(tempfile.mkdtemp(prefix="inference-metrics-")), True
    settings.metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in settings.metrics_dir.glob("*.db"):
        stale.unlink()
    return settings.metrics_dir, False


def serve(settings: Settings, logger: logging.Logger) -> int:
    metrics_dir, owned = _prepare_metrics_dir(settings)
    # Before numpy/sklearn/prometheus_client are imported: they read these at import time.
    apply_process_environment(settings, metrics_dir)
    settings = replace(settings, metrics_dir=metrics_dir)
    master = os.getpid()
    try:
        from inference.app import create_app
        from inference.loader import load_model
        from inference.serving import InferenceServer, bind_address, gunicorn_options

        started = time.perf_counter()
        model = load_model(settings)
        app = create_app(settings, model)
        log_event(
            logger,
            logging.INFO,
            "model_loaded",
            model_source=model.source,
            model_version=model.model_version,
            manifest_sha256=model.manifest_sha256,
            predict_path=model.predict_path,
            load_ms=round((time.perf_counter() - started) * 1000, 1),
            bind=bind_address(settings),
            workers=settings.workers,
        )
        # Keep the loaded model's objects out of the collector's way, so forked workers do not
        # copy the pages it would touch.
        gc.freeze()
        InferenceServer(app, gunicorn_options(settings, metrics_dir)).run()
    except StartupRefusal as exc:
        return _refuse(logger, exc, settings)
    finally:
        # gunicorn workers unwind through here too when they exit: only the master cleans up.
        if owned and os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def check(settings: Settings, logger: logging.Logger) -> int:
    from inference.loader import load_model

    try:
        model = load_model(settings)
    except StartupRefusal as exc:
        return _refuse(logger, exc, settings)
    log_event(
        logger,
        logging.INFO,
        "model_verified",
        model_source=model.source,
        model_version=model.model_version,
        manifest_sha256=model.manifest_sha256,
    )
    return 0


def score_file(
    settings: Settings, logger: logging.Logger, source: str, destination: str, chunk_rows: int
) -> int:
    from inference.errors import InferenceError
    from inference.loader import load_model
    from inference.score import file_format, score

    try:
        file_format(source)
        file_format(destination)
        if chunk_rows < 1:
            raise ConfigurationError("--chunk-rows must be >= 1")
        model = load_model(settings)
    except StartupRefusal as exc:
        return _refuse(logger, exc, settings)

    def progress(line: str) -> None:
        sys.stderr.write(f"inference score: {line}\n")
        sys.stderr.flush()

    try:
        score(model, settings, source, destination, chunk_rows, progress)
    except (InferenceError, OSError, UnicodeDecodeError) as exc:
        message = exc.message if isinstance(exc, InferenceError) else str(exc)
        progress(f"{source}: {message}; nothing written")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
