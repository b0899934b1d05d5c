"""The settings object: every variable, its default, and a clear refusal for a bad value."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from inference.errors import ConfigurationError
from inference.settings import DEFAULT_MODEL_DIR, Settings


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({}, sagemaker_model_dir=tmp_path / "absent")
    assert settings.model_artifact_uri is None
    assert settings.model_dir == DEFAULT_MODEL_DIR == Path("runs/artifacts/latest")
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.workers == len(os.sched_getaffinity(0))
    assert settings.max_batch_rows == 10_000
    assert settings.max_body_bytes == 6 * 1024 * 1024
    assert settings.omp_num_threads == "1"
    assert settings.input_range_margin == 10.0
    assert settings.model_name == "mlpipeline-regressor"
    assert settings.model_sha256 is None and settings.metrics_dir is None


def test_every_variable_is_read() -> None:
    env = {
        "MODEL_ARTIFACT_URI": "s3://bucket/model.tar.gz",
        "MODEL_DIR": "/models/run",
        "MODEL_SHA256": "AB" * 32,
        "MODEL_CACHE_DIR": "/var/cache/models",
        "MODEL_MAX_ARCHIVE_BYTES": "1000",
        "MAX_BATCH_ROWS": "5",
        "MAX_BODY_BYTES": "2048",
        "HOST": "0.0.0.0",
        "PORT": "9000",
        "WORKERS": "3",
        "TIMEOUT": "10",
        "GRACEFUL_TIMEOUT": "5",
        "THREADS": "4",
        "KEEPALIVE": "2",
        "LOG_LEVEL": "DEBUG",
        "OMP_NUM_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics",
        "INPUT_RANGE_MARGIN": "2.5",
        "MODEL_NAME": "house-prices",
    }
    settings = Settings.from_env(env)
    assert settings == Settings(
        model_artifact_uri="s3://bucket/model.tar.gz",
        model_dir=Path("/models/run"),
        model_sha256="ab" * 32,
        model_cache_dir=Path("/var/cache/models"),
        max_archive_bytes=1000,
        max_batch_rows=5,
        max_body_bytes=2048,
        host="0.0.0.0",
        port=9000,
        workers=3,
        timeout=10,
        graceful_timeout=5,
        threads=4,
        keepalive=2,
        log_level="debug",
        omp_num_threads="2",
        metrics_dir=Path("/tmp/metrics"),
        input_range_margin=2.5,
        model_name="house-prices",
    )


def test_sagemaker_model_dir_is_used_only_when_nothing_else_names_a_model(tmp_path: Path) -> None:
    assert Settings.from_env({}, sagemaker_model_dir=tmp_path).model_dir == tmp_path
    explicit = Settings.from_env({"MODEL_DIR": "/x"}, sagemaker_model_dir=tmp_path)
    assert explicit.model_dir == Path("/x")
    with_uri = Settings.from_env({"MODEL_ARTIFACT_URI": "/y"}, sagemaker_model_dir=tmp_path)
    assert with_uri.model_dir == DEFAULT_MODEL_DIR


def test_the_cache_dir_is_named_without_probing_for_a_writable_temp_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On a read-only root filesystem no temporary directory is usable: settings must not ask.
    def no_temp_dir() -> str:
        raise FileNotFoundError("No usable temporary directory found")

    monkeypatch.setattr(tempfile, "gettempdir", no_temp_dir)
    assert Settings.from_env({}).model_cache_dir == Path("/tmp/mlpipeline-inference")
    from_tmpdir = Settings.from_env({"TMPDIR": "/scratch"}).model_cache_dir
    assert from_tmpdir == Path("/scratch/mlpipeline-inference")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT must be an integer"),
        ({"PORT": "70000"}, "PORT must be between 0 and 65535"),
        ({"WORKERS": "0"}, "WORKERS must be >= 1"),
        ({"MAX_BATCH_ROWS": "-1"}, "MAX_BATCH_ROWS must be >= 1"),
        ({"MODEL_SHA256": "abc"}, "MODEL_SHA256 must be a 64-character hex"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of"),
        ({"INPUT_RANGE_MARGIN": "-1"}, "INPUT_RANGE_MARGIN must be a finite number >= 0"),
        ({"INPUT_RANGE_MARGIN": "inf"}, "INPUT_RANGE_MARGIN must be a finite number >= 0"),
        ({"INPUT_RANGE_MARGIN": "wide"}, "INPUT_RANGE_MARGIN must be a finite number >= 0"),
        ({"MODEL_NAME": "a/b"}, "MODEL_NAME must be 1-128 letters"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)
