"""Deployment references and their history in the shared store (``MLPIPELINE_DEPLOYMENTS_DIR=
s3://bucket/prefix``), for teams whose promotions and servers run on different machines.

    <prefix>/<target>.json            the reference; one PutObject replaces it whole, so a
                                      reader gets the old object or the new one, never a mix
    <prefix>/history/00000001.json    one object per promotion or rollback, created with
                                      IfNoneMatch="*": never overwritten, never lost to a race
    <prefix>/.lock                    a lease (IfNoneMatch="*") held from the first gate to the
                                      last write; one older than LEASE_SECONDS is taken over
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from artifact_contract import Reference, parse_reference, serialize_reference

from trainer import s3store
from trainer.promotion.deployments import TARGETS, DeploymentError, Deployments, DeploymentStore
from trainer.s3store import S3Prefix, get_text, list_keys, put_new, s3_errors
from trainer.settings import Settings

HISTORY_DIR = "history"
LOCK_KEY = ".lock"
LEASE_SECONDS = 900.0
WAIT_SECONDS = 120.0


def open_deployments(settings: Settings) -> DeploymentStore:
    """The store promotion, rollback and deploy read and write: S3 in shared store mode."""
    if settings.deployments_store is not None:
        return S3Deployments(settings.deployments_store)
    return Deployments(settings.deployments_dir)


class S3Deployments(DeploymentStore):
    def __init__(self, uri: str, wait_seconds: float = WAIT_SECONDS) -> None:
        self.location = S3Prefix.parse(uri)
        self.wait_seconds = wait_seconds
        self._s3 = s3store.client()

    def _key(self, target: str) -> str:
        if target not in TARGETS:
            raise DeploymentError(f"unknown target {target!r} (expected {' or '.join(TARGETS)})")
        return self.location.key(f"{target}.json")

    def reference_location(self, target: str) -> str:
        return f"s3://{self.location.bucket}/{self._key(target)}"

    @property
    def history_location(self) -> str:
        return self.location.uri(HISTORY_DIR) + "/"

    def read(self, target: str) -> Reference | None:
        where = self.reference_location(target)
        with s3_errors(f"{where}: cannot read"):
            found = get_text(self._s3, self.location.bucket, self._key(target))
        return None if found is None else parse_reference(found[0], where)

    def write(self, target: str, reference: Reference) -> str:
        where = self.reference_location(target)
        with s3_errors(f"{where}: cannot write"):
            self._s3.put_object(
                Bucket=self.location.bucket,
                Key=self._key(target),
                Body=serialize_reference(reference),
                ContentType="application/json",
            )
        return where

    def _history_keys(self) -> list[str]:
        prefix = self.location.key(HISTORY_DIR) + "/"
        keys = list_keys(self._s3, self.location.bucket, prefix)
        return sorted(key for key in keys if key[len(prefix) :].removesuffix(".json").isdigit())

    def append_history(self, record: dict[str, Any]) -> None:
        body = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
        with s3_errors(f"{self.history_location}: cannot append"):
            number = len(self._history_keys()) + 1
            while not put_new(
                self._s3,
                self.location.bucket,
                self.location.key(HISTORY_DIR, f"{number:08d}.json"),
                body,
            ):
                number += 1  # a record landed since the listing: take the next number

    def history(self) -> list[dict[str, Any]]:
        records = []
        with s3_errors(f"{self.history_location}: cannot read"):
            for key in self._history_keys():
                found = get_text(self._s3, self.location.bucket, key)
                if found is None:
                    continue
                try:
                    record = json.loads(found[0])
                except ValueError:
                    raise DeploymentError(f"s3://{self.location.bucket}/{key}: not JSON") from None
                if not isinstance(record, dict):
                    raise DeploymentError(f"s3://{self.location.bucket}/{key}: not an object")
                records.append(record)
        return records

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One promotion or rollback at a time, across machines: a lease object."""
        from botocore.exceptions import ClientError

        key = self.location.key(LOCK_KEY)
        where = f"s3://{self.location.bucket}/{key}"
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        deadline = time.monotonic() + self.wait_seconds
        with s3_errors(f"{where}: cannot take the lock"):
            while not put_new(self._s3, self.location.bucket, key, json.dumps(owner).encode()):
                found = get_text(self._s3, self.location.bucket, key)
                if found is None:
                    continue
                holder = _holder(found[0])
                if time.time() - float(holder.get("since", 0)) > LEASE_SECONDS:
                    # A holder that died: take the lease over unless it changed meanwhile.
                    try:
                        self._s3.delete_object(
                            Bucket=self.location.bucket, Key=key, IfMatch=found[1]
                        )
                    except ClientError as exc:
                        if not s3store.precondition_failed(exc):
                            raise
                    continue
                if time.monotonic() > deadline:
                    raise DeploymentError(
                        f"{where}: held by {holder.get('host')} pid {holder.get('pid')} for "
                        f"{time.time() - float(holder.get('since', 0)):.0f} s (another promotion "
                        f"or rollback); try again, or delete the object if its holder died"
                    )
                time.sleep(0.5)
        try:
            yield
        finally:
            with s3_errors(f"{where}: cannot release the lock"):
                self._s3.delete_object(Bucket=self.location.bucket, Key=key)


def _holder(text: str) -> dict[str, Any]:
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}
