"""The service's one settings object, built from the environment here and nowhere else."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inference.errors import ConfigurationError

DEFAULT_MODEL_DIR = Path("runs/artifacts/latest")
# SageMaker unpacks ModelDataUrl here; used when nothing else names a model.
SAGEMAKER_MODEL_DIR = Path("/opt/ml/model")
# A tmpfs in every container, even on a read-only root filesystem; scratch files go here when
# it exists (gunicorn's worker heartbeats, prometheus_client's multiprocess files).
SHM = Path("/dev/shm")
MIB = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_LOG_LEVELS = ("debug", "info", "warning", "error")
# The model's name on the Open Inference Protocol routes (/v2/models/NAME): by default the
# trainer's registered model name (MLFLOW_REGISTERED_MODEL_NAME's default).
DEFAULT_MODEL_NAME = "mlpipeline-regressor"
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class Settings:
    model_artifact_uri: str | None = None
    model_dir: Path = DEFAULT_MODEL_DIR
    model_sha256: str | None = None
    # MODEL_REFERENCE: a deployment reference (path, file:// or s3://) naming the model and its
    # digest (inference/reference.py); followed every reference_poll_seconds and on SIGHUP.
    model_reference_uri: str | None = None
    reference_poll_seconds: int = 30
    # Named, not probed (tempfile.gettempdir() fails where no temporary directory is writable,
    # as on a read-only root filesystem): only a MODEL_ARTIFACT_URI fetch creates it.
    model_cache_dir: Path = Path("/tmp/mlpipeline-inference")
    max_archive_bytes: int = 2048 * MIB
    max_inflated_bytes: int = 1024 * MIB  # what model.skops's members may inflate to
    max_batch_rows: int = 10_000
    max_body_bytes: int = 6 * MIB
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    timeout: int = 30
    graceful_timeout: int = 30
    threads: int = 4
    keepalive: int = 5
    client_header_timeout: int = 10  # seconds to send the request line and headers
    client_body_timeout: int = 30  # seconds to send the body (and to take the answer)
    log_level: str = "info"
    omp_num_threads: str = "1"
    metrics_dir: Path | None = None
    # Prediction sampling for drift checks (inference/sampling.py): off unless both are set.
    prediction_log: str | None = None
    prediction_sample_rate: float = 0.0
    # Numbers are accepted within this many training spans around the training range (schema.py).
    input_range_margin: float = 10.0
    model_name: str = DEFAULT_MODEL_NAME

    @property
    def model_reference(self) -> str:
        """What the operator asked for, for logs: the reference, the URI, else the directory."""
        return self.model_reference_uri or self.model_artifact_uri or str(self.model_dir)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        sagemaker_model_dir: Path = SAGEMAKER_MODEL_DIR,
    ) -> Settings:
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        uri = text("MODEL_ARTIFACT_URI")
        model_dir_text = text("MODEL_DIR")
        if model_dir_text is not None:
            model_dir = Path(model_dir_text)
        elif uri is None and sagemaker_model_dir.is_dir():
            model_dir = sagemaker_model_dir
        else:
            model_dir = DEFAULT_MODEL_DIR

        sha256 = text("MODEL_SHA256")
        if sha256 is not None and not _SHA256.fullmatch(sha256):
            raise ConfigurationError("MODEL_SHA256 must be a 64-character hex sha256 digest")

        log_level = (text("LOG_LEVEL") or "info").lower()
        if log_level not in _LOG_LEVELS:
            raise ConfigurationError(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}")

        model_name = text("MODEL_NAME") or DEFAULT_MODEL_NAME
        if not _MODEL_NAME.fullmatch(model_name):
            raise ConfigurationError(
                "MODEL_NAME must be 1-128 letters, digits, '.', '_' or '-' (a URL path segment)"
            )

        defaults = cls()
        cache_dir = text("MODEL_CACHE_DIR")
        metrics_dir = text("PROMETHEUS_MULTIPROC_DIR")
        return cls(
            model_artifact_uri=uri,
            model_dir=model_dir,
            model_sha256=None if sha256 is None else sha256.lower(),
            model_reference_uri=text("MODEL_REFERENCE"),
            reference_poll_seconds=_integer(
                env, "REFERENCE_POLL_SECONDS", defaults.reference_poll_seconds
            ),
            model_cache_dir=Path(
                cache_dir or Path(text("TMPDIR") or "/tmp") / defaults.model_cache_dir.name
            ),
            max_archive_bytes=_integer(env, "MODEL_MAX_ARCHIVE_BYTES", defaults.max_archive_bytes),
            max_inflated_bytes=_integer(
                env, "MODEL_MAX_INFLATED_BYTES", defaults.max_inflated_bytes
            ),
            max_batch_rows=_integer(env, "MAX_BATCH_ROWS", defaults.max_batch_rows),
            max_body_bytes=_integer(env, "MAX_BODY_BYTES", defaults.max_body_bytes),
            host=text("HOST") or defaults.host,
            port=_integer(env, "PORT", defaults.port, minimum=0, maximum=65535),
            workers=_integer(env, "WORKERS", usable_cpus()),
            timeout=_integer(env, "TIMEOUT", defaults.timeout),
            graceful_timeout=_integer(env, "GRACEFUL_TIMEOUT", defaults.graceful_timeout),
            threads=_integer(env, "THREADS", defaults.threads),
            keepalive=_integer(env, "KEEPALIVE", defaults.keepalive, minimum=0),
            client_header_timeout=_integer(
                env, "CLIENT_HEADER_TIMEOUT", defaults.client_header_timeout
            ),
            client_body_timeout=_integer(env, "CLIENT_BODY_TIMEOUT", defaults.client_body_timeout),
            log_level=log_level,
            omp_num_threads=text("OMP_NUM_THREADS") or defaults.omp_num_threads,
            metrics_dir=Path(metrics_dir) if metrics_dir else None,
            prediction_log=text("PREDICTION_LOG"),
            prediction_sample_rate=_sample_rate(env, text("PREDICTION_LOG")),
            input_range_margin=_margin(env, defaults.input_range_margin),
            model_name=model_name,
        )


def _sample_rate(env: Mapping[str, str], destination: str | None) -> float:
    raw = env.get("PREDICTION_SAMPLE_RATE", "").strip()
    if not raw:
        return 0.0
    try:
        rate = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"PREDICTION_SAMPLE_RATE must be a number between 0 and 1, got {raw[:32]!r}"
        ) from None
    if not 0.0 <= rate <= 1.0:  # also refuses nan
        raise ConfigurationError(f"PREDICTION_SAMPLE_RATE must be between 0 and 1, got {raw[:32]}")
    if rate > 0.0 and destination is None:
        raise ConfigurationError(
            "PREDICTION_SAMPLE_RATE > 0 needs PREDICTION_LOG (a file path, or stdout)"
        )
    return rate


def _margin(env: Mapping[str, str], default: float) -> float:
    raw = env.get("INPUT_RANGE_MARGIN", "").strip()
    if not raw:
        return default
    try:
        margin = float(raw)
    except ValueError:
        margin = math.nan
    if not 0.0 <= margin < math.inf:  # also refuses nan
        raise ConfigurationError(
            f"INPUT_RANGE_MARGIN must be a finite number >= 0, got {raw[:32]!r}"
        )
    return margin


def usable_cpus() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS has no sched_getaffinity
        return os.cpu_count() or 1


def _integer(
    env: Mapping[str, str], name: str, default: int, minimum: int = 1, maximum: int | None = None
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw[:32]!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigurationError(f"{name} must be {bound}, got {value}")
    return value


def apply_process_environment(settings: Settings, metrics_dir: Path) -> None:
    """Export what native libraries and prometheus_client read from the environment themselves.

    Must run before numpy, scikit-learn or prometheus_client are imported: OpenMP sizes its
    thread pool, and prometheus_client picks its multiprocess value class, at import time.
    """
    os.environ["OMP_NUM_THREADS"] = settings.omp_num_threads
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
