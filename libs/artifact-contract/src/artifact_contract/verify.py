"""Verify a run directory before anything in it is deserialized."""

from __future__ import annotations

from pathlib import Path

from artifact_contract.digests import MANIFEST_FILE, list_run_files, sha256_bytes, sha256_file
from artifact_contract.errors import IntegrityError, ManifestError
from artifact_contract.manifest import Manifest

VERSION_FILE = "model_version.txt"


def verify_run_dir(run_dir: Path, expected_manifest_sha256: str | None = None) -> Manifest:
    """Check the manifest's own digest (when one is expected), its schema, and that the directory
    holds exactly the files it lists with exactly those digests. Returns the manifest.
    """
    path = run_dir / MANIFEST_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{run_dir}: no {MANIFEST_FILE} (not a run directory?)") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from None
    actual = sha256_bytes(data)
    if expected_manifest_sha256 is not None and actual != expected_manifest_sha256.lower():
        raise IntegrityError(
            f"manifest digest is {actual}, expected {expected_manifest_sha256} (MODEL_SHA256)"
        )
    manifest = Manifest.from_json(data, source=str(path))

    present = set(list_run_files(run_dir))
    listed = set(manifest.files)
    if missing := sorted(listed - present):
        raise IntegrityError(f"{run_dir}: file listed in the manifest is missing: {missing[0]}")
    if extra := sorted(present - listed):
        raise IntegrityError(f"{run_dir}: file not listed in the manifest: {extra[0]}")
    for name in sorted(listed):
        digest = sha256_file(run_dir / name)
        if digest != manifest.files[name]:
            raise IntegrityError(
                f"{run_dir}: {name} has sha256 {digest}, the manifest says {manifest.files[name]}"
            )
    version_file = run_dir / VERSION_FILE
    if version_file.is_file():
        recorded = version_file.read_text().strip()
        if recorded != manifest.model_version:
            raise IntegrityError(
                f"{run_dir}: {VERSION_FILE} says {recorded}, manifest says {manifest.model_version}"
            )
    return manifest
