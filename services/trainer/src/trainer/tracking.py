"""Record a published run in MLflow and register it as a model version.

The same code talks to the embedded SQLite store (the default) and to a remote ``mlflow server``.
SQLite allows one writer at a time and MLflow does not retry "database is locked", so for sqlite
URIs every MLflow call (including creating and migrating the database) happens under an exclusive
``flock`` on a lock file next to the database: concurrent trainings queue for a second instead
of failing.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from artifact_contract import Manifest, exclusive_lock

from trainer.errors import TrackingError

ARTIFACT_PATH = "model"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tracked:
    run_id: str
    experiment_id: str
    registered_name: str
    registered_version: str


def preflight(tracking_uri: str, timeout: float = 10.0) -> None:
    """Fail before training, not after publishing, when a tracking server is not there: MLflow's
    own client retries a refused connection for minutes."""
    if urlparse(tracking_uri).scheme not in ("http", "https"):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise TrackingError(f"MLflow at {tracking_uri}: /health answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(f"MLflow at {tracking_uri} is not reachable ({reason})") from None


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, else None."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    # sqlite:///relative.db and sqlite:////absolute.db (SQLAlchemy's convention)
    return Path(unquote(tracking_uri[len("sqlite:///") :]))


@contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    database = sqlite_path(tracking_uri)
    if database is None:
        yield
        return
    with exclusive_lock(database.with_name(database.name + ".lock")):
        yield


def track(
    *,
    tracking_uri: str,
    experiment_name: str,
    registered_model_name: str,
    run_dir: Path,
    manifest: Manifest,
    manifest_sha256: str,
) -> Tracked:
    from mlflow.exceptions import MlflowException

    try:
        with store_lock(tracking_uri):
            return _track(
                tracking_uri,
                experiment_name,
                registered_model_name,
                run_dir,
                manifest,
                manifest_sha256,
            )
    except MlflowException as exc:
        message = str(exc.message).strip().splitlines()[0]
        raise TrackingError(f"MLflow at {tracking_uri}: {message}") from None
    except OSError as exc:
        raise TrackingError(f"MLflow at {tracking_uri}: {exc}") from None


def provenance_tags(manifest: Manifest, manifest_sha256: str) -> dict[str, str]:
    return {
        "model_version": manifest.model_version,
        "manifest_sha256": manifest_sha256,
        "data_sha256": manifest.data.sha256,
        "data_source": manifest.data.source,
        "git_commit": manifest.git.commit if manifest.git else "unknown",
        "git_dirty": str(manifest.git.dirty).lower() if manifest.git else "unknown",
        "quality_gate_passed": str(manifest.quality_gate.passed).lower(),
    }


def _track(
    tracking_uri: str,
    experiment_name: str,
    registered_model_name: str,
    run_dir: Path,
    manifest: Manifest,
    manifest_sha256: str,
) -> Tracked:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
    from mlflow.tracking import MlflowClient

    already_exists = ErrorCode.Name(RESOURCE_ALREADY_EXISTS)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment_id = _experiment_id(client, experiment_name, tracking_uri)
    tags = provenance_tags(manifest, manifest_sha256)
    run = client.create_run(experiment_id, run_name=manifest.model_version, tags=tags)
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, 0) for key, value in manifest.metrics.items()],
        params=[Param(key, str(value)) for key, value in manifest.params.items()],
        tags=[RunTag("mlflow.source.name", "trainer train")],
    )
    client.log_artifacts(run_id, str(run_dir), artifact_path=ARTIFACT_PATH)
    client.set_terminated(run_id, "FINISHED")
    try:
        client.create_registered_model(registered_model_name)
    except MlflowException as exc:
        if exc.error_code != already_exists:
            raise
    registered = client.create_model_version(
        registered_model_name,
        source=f"{run.info.artifact_uri}/{ARTIFACT_PATH}",
        run_id=run_id,
        tags=tags,
        description=f"{manifest.model_version} (manifest sha256 {manifest_sha256})",
    )
    return Tracked(
        run_id=run_id,
        experiment_id=experiment_id,
        registered_name=registered_model_name,
        registered_version=str(registered.version),
    )


def _experiment_id(client: Any, name: str, tracking_uri: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    database = sqlite_path(tracking_uri)
    # With a local store MLflow would default artifacts to ./mlruns in the current directory;
    # keep them next to the database instead. A server decides for itself.
    location = (database.resolve().parent / "mlartifacts").as_uri() if database else None
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:
        # Another trainer created it between our lookup and our create (server case).
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)
