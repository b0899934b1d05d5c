"""Resolve where the model comes from and bring it to a local run directory.

``MODEL_ARTIFACT_URI`` may name a run directory, ``file://…``, a local ``.tar.gz``, an
``s3://bucket/key.tar.gz`` or an ``s3://bucket/prefix/`` holding a run directory; without it,
``MODEL_DIR`` is used. Anything downloaded or extracted goes to a fresh workspace inside
``MODEL_CACHE_DIR`` and nowhere else; the workspace is removed once the model is in memory.
This runs once, in the gunicorn master before it forks, so workers never race on it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from artifact_contract import MANIFEST_FILE
from artifact_contract.uris import S3Location, UnsupportedURI, parse_location

from inference.archive import extract_tarball, is_tarball, safe_relative_path
from inference.errors import ModelSourceError, UnsafeArchiveError
from inference.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_OBJECTS = 10_000


@dataclass(frozen=True)
class FetchedModel:
    run_dir: Path
    source: str


@contextmanager
def fetch_model(settings: Settings) -> Iterator[FetchedModel]:
    """Yield a local run directory for the configured model; clean up what was fetched."""
    uri = settings.model_artifact_uri
    if uri is None:
        yield FetchedModel(_local_dir(settings.model_dir, "MODEL_DIR"), str(settings.model_dir))
        return
    try:
        path = parse_location(uri)
    except UnsupportedURI as exc:
        raise ModelSourceError(
            f"MODEL_ARTIFACT_URI {exc} (use a directory, file://, a .tar.gz or s3://)"
        ) from None
    if isinstance(path, S3Location):
        with _workspace(settings.model_cache_dir) as work:
            yield FetchedModel(_fetch_s3(path.bucket, path.key, work, settings), uri)
        return
    if path.is_file() and is_tarball(path.name):
        with _workspace(settings.model_cache_dir) as work:
            target = work / "model"
            target.mkdir()
            extract_tarball(path, target, settings.max_archive_bytes)
            yield FetchedModel(_find_run_dir(target, uri), uri)
        return
    if path.exists() and not path.is_dir():
        raise ModelSourceError(f"{uri} is neither a run directory nor a .tar.gz archive")
    yield FetchedModel(_local_dir(path, "MODEL_ARTIFACT_URI"), uri)


def _local_dir(path: Path, variable: str) -> Path:
    # Resolve once (``latest`` is a symlink that may move while we read): every later read
    # then comes from one run directory.
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise ModelSourceError(
            f"model directory {path} does not exist (train one with `make train`, "
            f"or set {variable})"
        ) from None
    if not resolved.is_dir():
        raise ModelSourceError(f"{path} is not a directory ({variable})")
    if not (resolved / MANIFEST_FILE).is_file():
        # SageMaker unpacks a model.tar.gz made of one directory (tar czf m.tgz v003) into
        # /opt/ml/model/v003: accept the one top-level directory, as for archives.
        entries = list(resolved.iterdir())
        if len(entries) == 1 and entries[0].is_dir() and (entries[0] / MANIFEST_FILE).is_file():
            return entries[0]
    return resolved


@contextmanager
def _workspace(cache_dir: Path) -> Iterator[Path]:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_private(cache_dir)
        work = Path(tempfile.mkdtemp(prefix="fetch-", dir=cache_dir))
    except OSError as exc:
        raise ModelSourceError(
            f"cannot create a workspace in MODEL_CACHE_DIR {cache_dir} ({exc.strerror})"
        ) from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_private(cache_dir: Path) -> None:
    """Whoever owns the cache directory, or may write to it, can replace what we extract
    there between its verification and its use: on a shared host the default under /tmp may
    have been created by someone else first."""
    info = os.lstat(cache_dir)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ModelSourceError(f"MODEL_CACHE_DIR {cache_dir} is not a directory (a link?)")
    if info.st_uid != os.geteuid():
        raise ModelSourceError(
            f"MODEL_CACHE_DIR {cache_dir} belongs to uid {info.st_uid}, not to this process "
            f"(uid {os.geteuid()}): remove it or choose another MODEL_CACHE_DIR"
        )
    if info.st_mode & 0o022:
        raise ModelSourceError(
            f"MODEL_CACHE_DIR {cache_dir} is writable by group or others (mode "
            f"{stat.S_IMODE(info.st_mode):o}): chmod 700 it or choose another MODEL_CACHE_DIR"
        )


def _find_run_dir(root: Path, uri: str) -> Path:
    """The run directory is the archive's top level, or its one top-level directory."""
    if (root / MANIFEST_FILE).is_file():
        return root
    entries = list(root.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / MANIFEST_FILE).is_file():
        return entries[0]
    raise ModelSourceError(
        f"{uri}: no {MANIFEST_FILE} at the top of the model or in its one top-level directory"
    )


def _s3_client() -> S3Client:
    import boto3  # imported here: only s3:// sources pay for it

    # boto3's default chain: env, shared config, instance/task role; AWS_ENDPOINT_URL honoured.
    return boto3.client("s3")


def _fetch_s3(bucket: str, key: str, work: Path, settings: Settings) -> Path:
    from botocore.exceptions import BotoCoreError, ClientError

    uri = f"s3://{bucket}/{key}"
    if not bucket:
        raise ModelSourceError(f"MODEL_ARTIFACT_URI {uri} names no bucket")
    target = work / "model"
    target.mkdir()
    try:
        client = _s3_client()
        if is_tarball(key):
            size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
            if size > settings.max_archive_bytes:
                raise UnsafeArchiveError(
                    f"{uri} is {size} bytes, more than MODEL_MAX_ARCHIVE_BYTES "
                    f"({settings.max_archive_bytes})"
                )
            archive = work / "model.tar.gz"
            client.download_file(bucket, key, str(archive))
            extract_tarball(archive, target, settings.max_archive_bytes)
            archive.unlink()
            return _find_run_dir(target, uri)
        prefix = key if key.endswith("/") or not key else key + "/"
        objects = _list_prefix(client, bucket, prefix, settings.max_archive_bytes)
        if not objects:
            raise ModelSourceError(f"no objects under s3://{bucket}/{prefix}")
        for object_key, relative in objects:
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, object_key, str(destination))
        return _find_run_dir(target, uri)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        raise ModelSourceError(
            f"cannot fetch {uri}: S3 said {code} ({error.get('Message', 'no message')})"
        ) from None
    except BotoCoreError as exc:
        raise ModelSourceError(f"cannot fetch {uri}: {exc}") from None


def _list_prefix(
    client: S3Client, bucket: str, prefix: str, max_bytes: int
) -> list[tuple[str, Path]]:
    objects: list[tuple[str, Path]] = []
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            relative = key[len(prefix) :]
            if not relative or relative.endswith("/"):
                continue  # the prefix itself or a "folder" marker
            path = safe_relative_path(relative, "S3 object")
            total += item.get("Size", 0)
            if total > max_bytes:
                raise UnsafeArchiveError(
                    f"s3://{bucket}/{prefix} holds more than MODEL_MAX_ARCHIVE_BYTES "
                    f"({max_bytes}) bytes"
                )
            objects.append((key, Path(*path.parts)))
            if len(objects) > MAX_OBJECTS:
                raise UnsafeArchiveError(f"s3://{bucket}/{prefix} holds more than {MAX_OBJECTS}")
    files = {local for _, local in objects}
    for _, local in objects:
        if clash := next((p for p in local.parents if p in files), None):
            raise ModelSourceError(
                f"s3://{bucket}/{prefix} holds both {prefix}{clash.as_posix()} and "
                f"{prefix}{local.as_posix()}: a key cannot be a file and a folder in a run "
                "directory"
            )
    return objects
