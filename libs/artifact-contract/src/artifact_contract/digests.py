"""SHA-256 digests of files, of a run directory's contents, and of the manifest itself."""

import hashlib
from pathlib import Path

MANIFEST_FILE = "manifest.json"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def list_run_files(run_dir: Path) -> list[str]:
    """Every regular file under ``run_dir`` except the manifest, as sorted POSIX relative paths."""
    files = []
    for path in run_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            relative = path.relative_to(run_dir).as_posix()
            if relative != MANIFEST_FILE:
                files.append(relative)
    return sorted(files)


def file_digests(run_dir: Path) -> dict[str, str]:
    """``{relative path: sha256}`` for every file of the run directory except manifest.json."""
    return {name: sha256_file(run_dir / name) for name in list_run_files(run_dir)}


def manifest_sha256(run_dir: Path) -> str:
    """The artifact's identity: the digest of its manifest.json bytes."""
    return sha256_file(run_dir / MANIFEST_FILE)
