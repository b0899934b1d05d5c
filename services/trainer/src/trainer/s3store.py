"""The shared artifact store: runs published to S3 as immutable versions.

    <prefix>/claims/vNNN         one small object per allocated version (who, when)
    <prefix>/runs/vNNN/...       the run directory's files; manifest.json is written last
    <prefix>/latest              "vNNN": the newest run that passed its quality gate

Versions are allocated with S3 conditional writes: a trainer claims ``claims/vNNN`` with
``PutObject(IfNoneMatch="*")``, which S3 grants to exactly one writer; a loser (HTTP 412) tries the
next number. Every file of a run is written with ``IfNoneMatch="*"`` too, so nothing published is
ever overwritten, and ``manifest.json`` goes last: a run whose manifest is there is complete
(a reader that lists ``runs/`` ignores a version without one). ``latest`` moves with a
compare-and-swap on its ETag (``IfMatch``). A claim whose trainer died leaves a gap in the
numbers, never a reused version.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from artifact_contract import MANIFEST_FILE, is_version, next_version, parse_version

from trainer.errors import TrainerError
from trainer.training import provenance

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CLAIMS = "claims"
RUNS = "runs"
LATEST = "latest"
_MAX_CLAIM_ATTEMPTS = 1000


class StoreError(TrainerError):
    """The shared store (S3) refused or could not be reached."""


def is_s3(uri: str | os.PathLike[str] | None) -> bool:
    return uri is not None and str(uri).startswith("s3://")


@dataclass(frozen=True)
class S3Prefix:
    bucket: str
    prefix: str  # no leading or trailing slash; may be empty

    @classmethod
    def parse(cls, uri: str) -> S3Prefix:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StoreError(f"{uri}: expected s3://bucket/prefix")
        return cls(parsed.netloc, parsed.path.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, *parts) if part)

    def uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.key(*parts)}"


def client() -> S3Client:
    # boto3 honours AWS_ENDPOINT_URL(_S3), the region and the credential chain itself.
    import boto3

    return boto3.client("s3")


def error_code(exc: BaseException) -> str:
    response: dict[str, Any] = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", "") or type(exc).__name__)


def precondition_failed(exc: BaseException) -> bool:
    # 412 when the object exists; 409 when another conditional write to it is in flight.
    return error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


@contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """A botocore error or an unreachable endpoint becomes one StoreError line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        raise StoreError(f"{what}: {error_code(exc)}") from None
    except BotoCoreError as exc:
        raise StoreError(f"{what}: {exc}") from None


def get_text(s3: S3Client, bucket: str, key: str) -> tuple[str, str] | None:
    """(body, etag) of an object, or None when there is none."""
    from botocore.exceptions import ClientError

    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    return response["Body"].read().decode("utf-8"), response["ETag"]


def put_new(s3: S3Client, bucket: str, key: str, body: bytes) -> bool:
    """Create ``key`` only if it does not exist; False when it does (or a rival write won)."""
    from botocore.exceptions import ClientError

    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except ClientError as exc:
        if precondition_failed(exc):
            return False
        raise
    return True


def list_keys(s3: S3Client, bucket: str, prefix: str) -> Iterator[str]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


class S3ArtifactRoot:
    """``ArtifactRoot``'s publishing, for an ``s3://bucket/prefix`` artifact root."""

    def __init__(self, uri: str, s3: S3Client | None = None) -> None:
        self.location = S3Prefix.parse(uri)
        self.root = self.location.uri()
        self._s3 = s3

    @property
    def s3(self) -> S3Client:
        if self._s3 is None:
            self._s3 = client()
        return self._s3

    def run_uri(self, version: str) -> str:
        parse_version(version)
        return self.location.uri(RUNS, version) + "/"

    def versions(self) -> list[str]:
        """Complete (manifest written) versions, oldest first."""
        names = set()
        with s3_errors(f"{self.root}: cannot list runs"):
            for key in list_keys(self.s3, self.location.bucket, self.location.key(RUNS) + "/"):
                parts = key.rsplit("/", 2)
                if len(parts) == 3 and parts[2] == MANIFEST_FILE and is_version(parts[1]):
                    names.add(parts[1])
        return sorted(names, key=parse_version)

    def claimed(self) -> list[str]:
        prefix = self.location.key(CLAIMS) + "/"
        keys = list_keys(self.s3, self.location.bucket, prefix)
        return [key[len(prefix) :] for key in keys if is_version(key[len(prefix) :])]

    def allocate(self) -> str:
        """Claim the next free version with a conditional write (one winner per number)."""
        owner = json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "at": provenance.utc_now()}
        ).encode()
        with s3_errors(f"{self.root}: cannot allocate a version"):
            version = next_version(self.claimed())
            for _ in range(_MAX_CLAIM_ATTEMPTS):
                key = self.location.key(CLAIMS, version)
                if put_new(self.s3, self.location.bucket, key, owner):
                    return version
                version = next_version([version])
        raise StoreError(f"{self.root}: no free version after {_MAX_CLAIM_ATTEMPTS} attempts")

    def publish(
        self,
        staging_dir: Path,
        finalize: Callable[[Path, str], None],
        *,
        move_latest: bool,
    ) -> str:
        """Claim a version, ``finalize(staging_dir, version)``, upload (manifest last), move
        ``latest``. Same contract as ``ArtifactRoot.publish``."""
        version = self.allocate()
        finalize(staging_dir, version)
        self.upload(staging_dir, version)
        if move_latest:
            self.move_latest(version)
        return version

    def upload(self, run_dir: Path, version: str) -> None:
        files = sorted(p for p in run_dir.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.name == MANIFEST_FILE and p.parent == run_dir)
        for path in files:
            relative = path.relative_to(run_dir).as_posix()
            key = self.location.key(RUNS, version, relative)
            with s3_errors(f"{self.location.uri(RUNS, version, relative)}: cannot upload"):
                if not put_new(self.s3, self.location.bucket, key, path.read_bytes()):
                    raise StoreError(
                        f"s3://{self.location.bucket}/{key} exists already: published runs are "
                        "never overwritten"
                    )

    def latest_version(self) -> str | None:
        with s3_errors(f"{self.root}: cannot read latest"):
            found = get_text(self.s3, self.location.bucket, self.location.key(LATEST))
        return None if found is None else found[0].strip()

    def move_latest(self, version: str) -> None:
        """Point ``latest`` at ``version`` unless it already points at a newer one (CAS loop)."""
        from botocore.exceptions import ClientError

        key = self.location.key(LATEST)
        body = (version + "\n").encode()
        with s3_errors(f"{self.root}: cannot move latest"):
            while True:
                found = get_text(self.s3, self.location.bucket, key)
                if found is None:
                    if put_new(self.s3, self.location.bucket, key, body):
                        return
                    continue
                current, etag = found
                if is_version(current.strip()) and parse_version(current.strip()) >= (
                    parse_version(version)
                ):
                    return
                try:
                    self.s3.put_object(
                        Bucket=self.location.bucket, Key=key, Body=body, IfMatch=etag
                    )
                    return
                except ClientError as exc:
                    if not precondition_failed(exc):
                        raise

    @contextmanager
    def downloaded(self, version: str, cache: Path) -> Iterator[Path]:
        """The run's files in a fresh local directory (removed afterwards). Nothing is trusted
        from a previous download: the caller verifies every digest of what it got."""
        with s3_errors(f"{self.run_uri(version)}: cannot download"):
            if version not in self.versions():
                raise StoreError(f"no published run {version} under {self.root}/{RUNS}")
        with download_prefix(self.s3, self.run_uri(version), cache) as local:
            yield local


@contextmanager
def download_prefix(s3: S3Client, uri: str, cache: Path) -> Iterator[Path]:
    """Every object under the ``s3://`` prefix ``uri`` into a fresh temporary directory."""
    location = S3Prefix.parse(uri)
    prefix = location.key() + "/"
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    try:
        run_dir = work / Path(location.prefix).name
        run_dir.mkdir()
        with s3_errors(f"{uri}: cannot download"):
            keys = list(list_keys(s3, location.bucket, prefix))
            if not keys:
                raise StoreError(f"{uri}: no such run in S3")
            for key in keys:
                relative = key[len(prefix) :]
                target = (run_dir / relative).resolve()
                if not relative or not target.is_relative_to(run_dir.resolve()):
                    raise StoreError(f"s3://{location.bucket}/{key}: not a file of the run")
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(location.bucket, key, str(target))
        yield run_dir
    finally:
        shutil.rmtree(work, ignore_errors=True)
