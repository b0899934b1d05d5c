"""Read a run directory once, verify it, and keep the verified model bytes for deserialization.

Whoever can write the run directory must not be able to swap a file between its check and its
use: the manifest is hashed and parsed from the same bytes, and ``model.skops`` is read once,
hashed, and later deserialized from those bytes in memory (``skops.io.loads``), never read from
disk again. Only regular files are read: each is opened without following a symbolic link and
without blocking, and refused unless ``fstat`` says it is a regular file, so a FIFO or a link to
``/dev/zero`` in place of ``manifest.json`` is an error, not a hang.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from artifact_contract import (
    MANIFEST_FILE,
    VERSION_FILE,
    ContractError,
    Manifest,
    list_run_files,
)

from inference.errors import ArtifactIntegrityError, UnsafeArchiveError

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class VerifiedRun:
    manifest: Manifest
    manifest_sha256: str
    model_bytes: bytes  # exactly the bytes whose digest matched the manifest


def read_verified(run_dir: Path, expected_sha256: str | None, max_bytes: int) -> VerifiedRun:
    """Check the manifest (its digest against ``MODEL_SHA256`` when set, its schema) and that
    the directory holds exactly its files with their digests; keep the model's bytes."""
    data = read_regular(run_dir / MANIFEST_FILE, MAX_MANIFEST_BYTES)
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise ArtifactIntegrityError(
            f"manifest digest is {digest}, expected {expected_sha256} (MODEL_SHA256)"
        )
    try:
        manifest = Manifest.from_json(data, source=str(run_dir / MANIFEST_FILE))
    except ContractError as exc:
        raise ArtifactIntegrityError(str(exc), code="manifest_error") from None

    present = set(list_run_files(run_dir))
    listed = set(manifest.files)
    if missing := sorted(listed - present):
        raise ArtifactIntegrityError(
            f"{run_dir}: file listed in the manifest is missing: {missing[0]}"
        )
    if extra := sorted(present - listed):
        raise ArtifactIntegrityError(f"{run_dir}: file not listed in the manifest: {extra[0]}")
    kept: dict[str, bytes] = {}
    for name in sorted(listed):
        content = read_regular(run_dir / name, max_bytes)
        actual = hashlib.sha256(content).hexdigest()
        if actual != manifest.files[name]:
            raise ArtifactIntegrityError(
                f"{run_dir}: {name} has sha256 {actual}, the manifest says {manifest.files[name]}"
            )
        if name in (manifest.model.path, VERSION_FILE):
            kept[name] = content
    if manifest.model.path not in kept:
        raise ArtifactIntegrityError(
            f"{run_dir}: the model file {manifest.model.path} is not listed in the manifest",
            code="manifest_error",
        )
    if VERSION_FILE in kept:
        recorded = kept[VERSION_FILE].decode("utf-8", "replace").strip()
        if recorded != manifest.model_version:
            raise ArtifactIntegrityError(
                f"{run_dir}: {VERSION_FILE} says {recorded[:20]}, manifest says "
                f"{manifest.model_version}"
            )
    return VerifiedRun(manifest, digest, kept[manifest.model.path])


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The contents of ``path`` if it is a regular file (not a link, FIFO or device) of at most
    ``max_bytes`` bytes."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise ArtifactIntegrityError(
            f"{path.parent}: no {path.name} (not a run directory?)", code="manifest_error"
        ) from None
    except OSError as exc:
        if path.is_symlink():
            raise ArtifactIntegrityError(
                f"{path} is a symbolic link; a run directory holds regular files only"
            ) from None
        raise ArtifactIntegrityError(f"{path}: cannot read ({exc.strerror})") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactIntegrityError(
                f"{path} is not a regular file (a FIFO, device or directory); "
                "a run directory holds regular files only"
            )
        if info.st_size > max_bytes:
            raise ArtifactIntegrityError(f"{path} is larger than {max_bytes} bytes")
        os.set_blocking(descriptor, True)
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew after fstat
        raise ArtifactIntegrityError(f"{path} is larger than {max_bytes} bytes")
    return data


def check_inflated_size(name: str, data: bytes, max_bytes: int) -> None:
    """Refuse a model archive (skops files are zip archives) whose members inflate to more than
    ``max_bytes`` together, by inflating them in bounded pieces: a zip member's declared size
    cannot be trusted, and skops would inflate each member whole, in one allocation."""
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.infolist():
                with archive.open(member) as stream:
                    while piece := stream.read(_CHUNK):
                        total += len(piece)
                        if total > max_bytes:
                            raise UnsafeArchiveError(
                                f"{name} inflates to more than {max_bytes} bytes "
                                f"(MODEL_MAX_INFLATED_BYTES); member {member.filename[:100]!r} "
                                f"declares {member.file_size}"
                            )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise ArtifactIntegrityError(
            f"{name}: not a readable skops (zip) archive ({exc})"
        ) from None
