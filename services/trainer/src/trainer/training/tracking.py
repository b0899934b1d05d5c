"""Record a finished run in MLflow and register it as a model version (before it is published).

The same code talks to the embedded SQLite store (the default) and to a remote ``mlflow server``.
SQLite allows one writer at a time and MLflow does not retry "database is locked", so for sqlite
URIs every MLflow call (including creating and migrating the database) happens under an exclusive
``flock`` on a lock file next to the database: concurrent trainings queue for a second instead
of failing.

A run records: params (seed, model hyper-parameters, task, target), metrics (linked to the
logged model and the dataset), provenance and schema tags, the training data as a dataset input
(digest = the start of the data's sha256, the full one in a tag), and the run directory as an
MLflow 3 logged model (its MLmodel carries the signature and input example). The registered
model version points at that logged model's location, and the logged model lists it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
from artifact_contract import Manifest, exclusive_lock
from artifact_contract.errors import first_line

from trainer.errors import TrackingError

ARTIFACT_PATH = "model"
# MLflow stores a dataset digest in a 36-character column.
DATASET_DIGEST_CHARS = 32
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tracked:
    run_id: str
    experiment_id: str
    registered_name: str
    registered_version: str
    model_id: str


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


@contextmanager
def _tracking_errors(tracking_uri: str) -> Iterator[None]:
    """MLflow's, the SQL driver's and the file system's failures as one TrackingError line."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except MlflowException as exc:
        raise TrackingError(_tracking_failed(tracking_uri, str(exc.message))) from None
    except SQLAlchemyError as exc:
        # A locked or corrupt SQLite store (MLflow lets the driver's error through).
        reason = str(getattr(exc, "orig", None) or exc)
        raise TrackingError(_tracking_failed(tracking_uri, reason)) from None
    except OSError as exc:
        raise TrackingError(_tracking_failed(tracking_uri, str(exc))) from None


def once_more_if_raced(call: Any, *args: Any, **kwargs: Any) -> None:
    """MLflow's SQL store inserts a dataset (digest) after checking it is not there; two runs on
    the same data logged at once through an `mlflow server` can both pass the check, and one
    gets a unique-key violation. The row exists then, so the same call once more succeeds."""
    from mlflow.exceptions import MlflowException

    try:
        call(*args, **kwargs)
    except MlflowException as exc:
        text = str(exc)
        if not any(s in text for s in ("UniqueViolation", "duplicate key", "UNIQUE constraint")):
            raise
        _log.info("another run logged the same dataset at the same moment; retrying once")
        time.sleep(0.5)
        call(*args, **kwargs)


def _tracking_failed(tracking_uri: str, reason: str) -> str:
    first = first_line(reason, default="unknown error")
    # SQLAlchemy prefixes the driver's message with its class: "(sqlite3.OperationalError) ...".
    first = re.sub(r"^\([\w.]+\) ", "", first)
    return (
        f"MLflow at {tracking_uri}: {first}; the run was not registered, "
        "so nothing was published and latest did not move"
    )


def provenance_tags(manifest: Manifest, manifest_sha256: str) -> dict[str, str]:
    return {
        "model_version": manifest.model_version,
        "manifest_sha256": manifest_sha256,
        "data_sha256": manifest.data.sha256,
        "data_source": manifest.data.source,
        "git_commit": manifest.git.commit if manifest.git else "unknown",
        "git_dirty": str(manifest.git.dirty).lower() if manifest.git else "unknown",
        "quality_gate_passed": str(manifest.quality_gate.passed).lower(),
        "task": manifest.task,
        "target": str(manifest.output["name"]),
    }


def schema_tags(manifest: Manifest) -> dict[str, str]:
    """The feature types (``name:type`` in model order), and the class labels if any."""
    tags = {
        "feature_types": ",".join(f"{f.name}:{f.type}" for f in manifest.input_schema),
        "nullable_features": ",".join(f.name for f in manifest.input_schema if f.nullable),
    }
    if manifest.task == "classification":
        tags["classes"] = json.dumps(manifest.classes)
    return tags


def track(
    *,
    tracking_uri: str,
    experiment_name: str,
    registered_model_name: str,
    run_dir: Path,
    manifest: Manifest,
    manifest_sha256: str,
    training_data: pd.DataFrame,
) -> Tracked:
    from mlflow.entities import DatasetInput, InputTag, LoggedModelOutput, Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
    from mlflow.tracking import MlflowClient

    with _tracking_errors(tracking_uri), store_lock(tracking_uri):
        already_exists = ErrorCode.Name(RESOURCE_ALREADY_EXISTS)
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        experiment_id = _experiment_id(client, experiment_name, tracking_uri)
        tags = provenance_tags(manifest, manifest_sha256)
        run = client.create_run(
            experiment_id, run_name=manifest.model_version, tags={**tags, **schema_tags(manifest)}
        )
        run_id = run.info.run_id
        finished = False
        try:
            params = {
                **manifest.params,
                "task": manifest.task,
                "target": manifest.output["name"],
            }
            model = client.create_logged_model(
                experiment_id,
                name=ARTIFACT_PATH,
                source_run_id=run_id,
                tags=tags,
                params={key: str(value) for key, value in params.items()},
                model_type=manifest.task,
            )
            dataset = _dataset(manifest, training_data)
            dataset_entity = dataset.entity
            now = int(time.time() * 1000)
            once_more_if_raced(
                client.log_batch,
                run_id,
                metrics=[
                    Metric(key, value, now, 0, model.model_id, dataset.name, dataset.digest, run_id)
                    for key, value in manifest.metrics.items()
                ],
                params=[Param(key, str(value)) for key, value in params.items()],
                tags=[RunTag("mlflow.source.name", "trainer train")],
            )
            context = [
                InputTag("mlflow.data.context", "training"),
                InputTag("sha256", manifest.data.sha256),
            ]
            once_more_if_raced(
                client.log_inputs, run_id, datasets=[DatasetInput(dataset_entity, context)]
            )
            client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
            client.log_model_artifacts(model.model_id, str(run_dir))
            client.finalize_logged_model(model.model_id, "READY")
            try:
                client.create_registered_model(registered_model_name)
            except MlflowException as exc:
                if exc.error_code != already_exists:
                    raise
            registered = client.create_model_version(
                registered_model_name,
                # The logged model's location: MLflow's SQL registry would resolve a models:/<id>
                # source through the process-wide tracking URI, not this client's.
                source=model.artifact_location,
                run_id=run_id,
                tags=tags,
                description=f"{manifest.model_version} (manifest sha256 {manifest_sha256})",
                model_id=model.model_id,
            )
            # What mlflow.register_model records: the logged model lists its registered versions.
            link = [{"name": registered_model_name, "version": str(registered.version)}]
            client.set_logged_model_tags(model.model_id, {MODEL_VERSIONS_TAG: json.dumps(link)})
            client.set_terminated(run_id, "FINISHED")
            finished = True
        finally:
            if not finished:
                _mark_failed(client, run_id)
        return Tracked(
            run_id=run_id,
            experiment_id=experiment_id,
            registered_name=registered_model_name,
            registered_version=str(registered.version),
            model_id=model.model_id,
        )


@dataclass(frozen=True)
class _Dataset:
    name: str
    digest: str
    entity: Any  # mlflow.entities.Dataset


def _dataset(manifest: Manifest, frame: pd.DataFrame) -> _Dataset:
    """The training data as an MLflow dataset, named after its file, with the data's digest."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.exceptions import MlflowException

    source = manifest.data.source
    name = Path(urlparse(source).path).name or "synthetic"
    digest = manifest.data.sha256[:DATASET_DIGEST_CHARS]
    target = str(manifest.output["name"])
    with warnings.catch_warnings():
        # MLflow's hint about integer columns and missing values concerns its own schema
        # inference of the dataset; the model's signature is built from our schema.
        warnings.simplefilter("ignore", UserWarning)
        try:
            dataset = from_pandas(frame, source=source, targets=target, name=name, digest=digest)
        except MlflowException:
            # A source MLflow has no resolver for (the synthetic set): say where it came from.
            origin = CodeDatasetSource({"mlflow.source.name": source})
            dataset = from_pandas(
                frame, source=origin, targets=target, name="synthetic", digest=digest
            )
        # The schema and profile are computed here, inside the filter.
        return _Dataset(
            name=dataset.name, digest=dataset.digest, entity=dataset._to_mlflow_entity()
        )


def _mark_failed(client: Any, run_id: str) -> None:
    # Best effort: the store may be what failed.
    with contextlib.suppress(Exception):
        client.set_terminated(run_id, "FAILED")


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
