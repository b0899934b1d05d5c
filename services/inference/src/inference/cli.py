"""``inference serve``: verify and load the model once, then serve it with gunicorn.

``inference check`` does the same verification and loading, prints the model summary (one JSON
line: the ``model_verified`` event with what ``GET /model`` serves) and exits.
``inference score --input FILE --output FILE`` scores a CSV or JSON Lines file (score.py).
Any refusal ends the process with exit status 2 and one JSON log line saying why; a bad input
line ends ``score`` with exit status 1 and one line naming it.
"""

from __future__ import annotations

import argparse
import errno
import gc
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType

from artifact_contract.startup import STARTUP_REFUSED, Refusal

from inference.errors import EXIT_OK, EXIT_REFUSED, ConfigurationError, StartupRefusal
from inference.logs import configure_logging, log_event
from inference.settings import SHM, Settings, apply_process_environment

# Every variable Settings.from_env reads (tests/test_cli.py holds the two together and with
# docs/03_inference.md's table), for --help.
ENVIRONMENT = (
    (
        "MODEL_ARTIFACT_URI",
        "the model: a run directory, file://..., a local .tar.gz, "
        "s3://bucket/key.tar.gz or s3://bucket/prefix/",
    ),
    (
        "MODEL_DIR",
        "run directory when MODEL_ARTIFACT_URI is unset (default runs/artifacts/latest; "
        "/opt/ml/model when it exists)",
    ),
    ("MODEL_SHA256", "required sha256 of the run's manifest.json; any other refuses the start"),
    (
        "MODEL_REFERENCE",
        "a deployment reference (<target>.json: a path, file:// or s3://bucket/key) naming the "
        "model and its sha256, instead of MODEL_ARTIFACT_URI and MODEL_SHA256",
    ),
    (
        "REFERENCE_POLL_SECONDS",
        "with MODEL_REFERENCE: how often workers re-read it and load a new model (default 30)",
    ),
    (
        "MODEL_CACHE_DIR",
        "the only place downloads and extractions are written (default "
        "<tmp>/mlpipeline-inference); must be ours and not group/other-writable",
    ),
    ("TMPDIR", "where the default MODEL_CACHE_DIR goes (default /tmp)"),
    (
        "MODEL_MAX_ARCHIVE_BYTES",
        "bound on an archive's or S3 prefix's unpacked size (default 2 GiB)",
    ),
    (
        "MODEL_MAX_INFLATED_BYTES",
        "bound on what the model file's (skops zip) members inflate to (default 1 GiB)",
    ),
    ("MAX_BATCH_ROWS", "most records in one instances batch (default 10000)"),
    ("MAX_BODY_BYTES", "largest request body (default 6 MiB)"),
    (
        "INPUT_RANGE_MARGIN",
        "numbers accepted within the training range +- this many spans (default 10)",
    ),
    ("MODEL_NAME", "the name on the /v2/models/{name} routes (default mlpipeline-regressor)"),
    ("HOST", "bind address (default 127.0.0.1; 0.0.0.0 in a container)"),
    ("PORT", "bind port (default 8080; 0 = any free port)"),
    ("WORKERS", "gunicorn worker processes (default: usable CPUs)"),
    ("THREADS", "threads per worker (default 4); requests are read in the event loop first"),
    ("KEEPALIVE", "seconds an idle keep-alive connection is held (default 5)"),
    ("CLIENT_HEADER_TIMEOUT", "seconds a client gets to send its headers (default 10; then 408)"),
    ("CLIENT_BODY_TIMEOUT", "seconds a client gets to send its body (default 30; then 408)"),
    ("TIMEOUT", "gunicorn worker timeout, seconds (default 30)"),
    ("GRACEFUL_TIMEOUT", "seconds in-flight requests get after SIGTERM (default 30)"),
    ("LOG_LEVEL", "debug, info (default), warning or error"),
    ("OMP_NUM_THREADS", "OpenMP threads per worker (default 1)"),
    ("PROMETHEUS_MULTIPROC_DIR", "prometheus_client's directory (default: a temporary one)"),
    ("PREDICTION_LOG", "sampled prediction log for drift checks: a file path or stdout"),
    ("PREDICTION_SAMPLE_RATE", "share of rows sampled to PREDICTION_LOG, 0 to 1 (default 0)"),
    ("AWS_*", "s3:// sources: boto3's own chain (AWS_ENDPOINT_URL, credentials, region, profile)"),
)


def environment_help() -> str:
    width = max(len(name) for name, _ in ENVIRONMENT) + 2
    lines = ["environment (read once at start; an empty value counts as unset):"]
    for name, meaning in ENVIRONMENT:
        wrapped = textwrap.wrap(meaning, 96 - width)
        lines.append(f"  {name:<{width}}{wrapped[0]}")
        lines.extend(" " * (width + 2) + more for more in wrapped[1:])
    lines.append("details: docs/03_inference.md (Configuration)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="inference",
        description=__doc__,
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, summary in (
        ("serve", "serve the configured model with gunicorn"),
        ("check", "verify and load the configured model, print its summary (one JSON line), exit"),
    ):
        commands.add_parser(
            name,
            help=summary,
            description=summary + ". Exit status 2 and one JSON line when it refuses.",
            epilog=environment_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
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
    try:
        from inference.reference import resolve

        settings = resolve(settings)
    except StartupRefusal as exc:
        return _refuse(logger, exc, settings)
    logger = configure_logging(settings.log_level)
    if args.command == "score":
        return score_file(settings, logger, args.input, args.output, args.chunk_rows)
    return serve(settings, logger) if args.command == "serve" else check(settings, logger)


def _refuse(logger: logging.Logger, exc: StartupRefusal, settings: Settings | None) -> int:
    source = None if settings is None else settings.model_reference
    refusal = Refusal(exc.code, exc.message, source)
    log_event(logger, logging.ERROR, STARTUP_REFUSED, **refusal.fields())
    return EXIT_REFUSED


def _prepare_metrics_dir(settings: Settings) -> tuple[Path, bool]:
    """prometheus_client's multiprocess directory: ours (temporary) unless one is configured,
    and empty at start (samples of an earlier run would be counted again)."""
    if settings.metrics_dir is None:
        scratch = SHM if SHM.is_dir() else None  # else the temporary directory
        return Path(tempfile.mkdtemp(prefix="inference-metrics-", dir=scratch)), True
    settings.metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in settings.metrics_dir.glob("*.db"):
        stale.unlink()
    return settings.metrics_dir, False


def _check_port_free(settings: Settings) -> None:
    """Before the model is loaded: a port another server holds is one clear line, not gunicorn
    retrying for five seconds after the load."""
    if settings.port == 0:
        return
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        # SO_REUSEADDR, as gunicorn binds: a port in TIME_WAIT is free.
        with socket.create_server((settings.host, settings.port), family=family):
            pass
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return  # gunicorn reports anything else in its own words
        raise ConfigurationError(
            f"{settings.host}:{settings.port} is in use (another server?): set PORT to a free "
            f"port, e.g. make serve PORT={settings.port + 1}"
        ) from None


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def serve(settings: Settings, logger: logging.Logger) -> int:
    metrics_dir, owned = _prepare_metrics_dir(settings)
    # Before numpy/sklearn/prometheus_client are imported: they read these at import time.
    apply_process_environment(settings, metrics_dir)
    settings = replace(settings, metrics_dir=metrics_dir)
    try:
        _check_port_free(settings)
    except StartupRefusal as exc:
        return _refuse(logger, exc, settings)
    master = os.getpid()
    # Until gunicorn installs its own handlers, SIGTERM (a supervisor, or the trainer's smoke gate
    # dying) unwinds through the finally below, so the metrics directory is removed.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
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
        InferenceServer(app, gunicorn_options(settings, metrics_dir, app)).run()
    except StartupRefusal as exc:
        return _refuse(logger, exc, settings)
    finally:
        # gunicorn workers unwind through here too when they exit: only the master cleans up.
        if owned and os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return EXIT_OK


def check(settings: Settings, logger: logging.Logger) -> int:
    from inference.loader import load_model

    try:
        model = load_model(settings)
    except StartupRefusal as exc:
        return _refuse(logger, exc, settings)
    log_event(logger, logging.INFO, "model_verified", model_source=model.source, **model.summary())
    return EXIT_OK


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
