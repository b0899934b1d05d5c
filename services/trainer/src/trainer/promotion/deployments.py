"""Deployment references and their history, under ``runs/deployments/``.

    <target>.json      the reference a server for that target is started with:
                       {"model_version", "artifact_uri", "manifest_sha256", "promoted_at",
                        "approved_by"}; replaced atomically (temp file + os.replace)
    history.jsonl      one JSON record per promotion or rollback, appended, never rewritten
    .lock              flock held by a promotion or rollback from its first gate to its last write

A reference names an immutable run directory *and* its manifest digest, so a server started from
it refuses an artifact that changed after promotion. The format is the contract library's
(artifact_contract/reference.py); the same store in S3 is s3deployments.py.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from artifact_contract import Reference, exclusive_lock, parse_reference, serialize_reference
from artifact_contract.files import atomic_write, fsync_directory
from artifact_contract.reference import TARGETS as TARGETS  # re-exported: the CLI choices
from artifact_contract.uris import UnsupportedURI, parse_location

from trainer import s3store
from trainer.errors import TrainerError
from trainer.s3store import download_prefix, is_s3

HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lock"
# References and history hold no secret, and a server running as another user (the image's
# uid 10001) reads the reference: world-readable whatever the umask.
PUBLIC_MODE = 0o644  # references and history hold no secret; a server as another user reads them
_TORN_LINE = "torn record (an append that never completed) ignored"
_TORN_TAIL = "ends in a torn record; it stays, and this record starts on a fresh line"
_log = logging.getLogger("trainer")


class DeploymentError(TrainerError):
    """A deployment reference or the history is missing, unreadable or inconsistent."""


def artifact_uri_of(run_dir: Path) -> str:
    """The immutable run directory as a file:// URI (resolved: never through ``latest``)."""
    return run_dir.resolve().as_uri()


def run_dir_of(artifact_uri: str) -> Path:
    """A local run directory's path (an ``s3://`` run goes through ``open_run``)."""
    try:
        where = parse_location(artifact_uri)
    except UnsupportedURI:
        where = None
    if isinstance(where, Path):
        return where
    raise DeploymentError(
        f"artifact_uri {artifact_uri!r}: only run directories (file://) and runs in S3 (s3://) "
        "can be promoted"
    )


@contextmanager
def open_run(artifact_uri: str, work: Path) -> Iterator[Path]:
    """The run an ``artifact_uri`` names, as a local directory: itself (file://), or a fresh
    download under ``work`` (s3://), removed afterwards. Callers verify every digest."""
    if is_s3(artifact_uri):
        with download_prefix(s3store.client(), artifact_uri, work) as run_dir:
            yield run_dir
    else:
        yield run_dir_of(artifact_uri)


class DeploymentStore:
    """Where references and history live: a local directory (``Deployments``) or an S3 prefix
    (``S3Deployments`` in s3deployments.py). Promotion and rollback see only this interface."""

    def reference_location(self, target: str) -> str:
        raise NotImplementedError

    @property
    def history_location(self) -> str:
        raise NotImplementedError

    def lock(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def read(self, target: str) -> Reference | None:
        raise NotImplementedError

    def write(self, target: str, reference: Reference) -> str:
        raise NotImplementedError

    def append_history(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def history(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def lineage(self, target: str) -> list[Reference]:
        """The references ``target`` has stood on, replayed from the history as a stack: a
        promotion pushes its reference, a rollback pops back to the one before. The last item is
        the current reference; the one before it is what a rollback restores."""
        stack: list[Reference] = []
        for record in self.history():
            if record.get("target") != target:
                continue
            if record.get("event") == "promote":
                stack.append(Reference.from_dict(record["to"], self.history_location))
            elif record.get("event") == "rollback" and stack:
                stack.pop()
        return stack


class Deployments(DeploymentStore):
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def reference_location(self, target: str) -> str:
        return str(self.reference_path(target))

    @property
    def history_location(self) -> str:
        return str(self.history_path)

    def reference_path(self, target: str) -> Path:
        if target not in TARGETS:
            raise DeploymentError(f"unknown target {target!r} (expected {' or '.join(TARGETS)})")
        return self.directory / f"{target}.json"

    @property
    def history_path(self) -> Path:
        return self.directory / HISTORY_FILE

    def lock(self) -> AbstractContextManager[None]:
        """One promotion or rollback at a time, across processes."""
        return exclusive_lock(self.directory / LOCK_FILE)

    def read(self, target: str) -> Reference | None:
        """The current reference of ``target``, or None when nothing was promoted there yet."""
        path = self.reference_path(target)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DeploymentError(f"{path}: cannot read ({exc.strerror})") from None
        return parse_reference(data, str(path))

    def write(self, target: str, reference: Reference) -> str:
        path = self.reference_path(target)
        atomic_write(path, serialize_reference(reference))
        return str(path)

    def append_history(self, record: dict[str, Any]) -> None:
        """Append one record, on a line of its own, durably (the file, and the directory when it
        gains the file). A tail left torn by an interrupted append stays as it is (history is
        never rewritten): the record starts on a fresh line after it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            descriptor = os.open(self.history_path, flags | os.O_CREAT | os.O_EXCL, PUBLIC_MODE)
            os.fchmod(descriptor, PUBLIC_MODE)  # whatever the umask
            created = True
        except FileExistsError:
            descriptor = os.open(self.history_path, flags)
            created = False
        try:
            size = os.fstat(descriptor).st_size
            if size and os.pread(descriptor, 1, size - 1) != b"\n":
                _log.warning("%s: %s", self.history_path, _TORN_TAIL)
                line = b"\n" + line
            # One write of one line in append mode: a reader sees whole records only.
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if created:
            fsync_directory(self.directory)

    def history(self) -> list[dict[str, Any]]:
        try:
            text = self.history_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        return parse_history(text, str(self.history_path))


def parse_history(text: str, source: str) -> list[dict[str, Any]]:
    """The records of a history.jsonl (a torn line is reported and skipped)."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            # An append cut short (a crash, a full disk): that promotion or rollback never
            # completed its record. Reported, not fatal, so one torn line cannot end rollback.
            _log.warning("%s:%d: %s", source, number, _TORN_LINE)
            continue
        if not isinstance(record, dict):
            raise DeploymentError(f"{source}:{number}: not a JSON object")
        records.append(record)
    return records
