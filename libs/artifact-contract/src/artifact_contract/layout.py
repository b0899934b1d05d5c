"""The run layout under an artifact root, and race-free publishing of runs.

    <root>/runs/vNNN/       one immutable run directory per version
    <root>/latest           symlink to runs/vNNN: the newest run that passed its quality gate

A run is assembled in a hidden staging directory next to ``runs/vNNN`` (same file system) and
appears under its final name with one ``rename``. Allocating the version, writing the files that
carry it, the rename and the move of ``latest`` happen under an exclusive ``flock`` on
``runs/.publish.lock``, so concurrent publishers (threads or processes) never share a version, and
the lock is released by the kernel if a publisher dies. ``latest`` is replaced with
``os.replace`` of a fresh symlink, so a reader sees the old target or the new one, never neither.
Readers should resolve ``latest`` once and then read from the resolved directory.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from artifact_contract.errors import ContractError
from artifact_contract.files import fsync_directory
from artifact_contract.versions import is_version, next_version, parse_version

RUNS_DIR = "runs"
LATEST = "latest"
STAGING_PREFIX = ".staging-"
LOCK_FILE = ".publish.lock"


class ArtifactRoot:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

    @property
    def latest(self) -> Path:
        return self.root / LATEST

    def run_dir(self, version: str) -> Path:
        parse_version(version)
        return self.runs_dir / version

    def versions(self) -> list[str]:
        """Published versions, oldest first."""
        if not self.runs_dir.is_dir():
            return []
        names = [entry.name for entry in self.runs_dir.iterdir() if is_version(entry.name)]
        return sorted(names, key=parse_version)

    def latest_version(self) -> str | None:
        """The version ``latest`` points at, or None when there is no alias yet."""
        try:
            target = os.readlink(self.latest)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ContractError(
                f"{self.latest} is not a symlink to a run ({exc.strerror})"
            ) from None
        name = Path(target).name
        if not is_version(name):
            raise ContractError(f"{self.latest} points at {target!r}, which is not a run")
        return name

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh staging directory, removed again unless it was published."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        path = self.runs_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        path.mkdir()
        try:
            yield path
        finally:
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)

    def _lock(self) -> AbstractContextManager[None]:
        return exclusive_lock(self.runs_dir / LOCK_FILE)

    def publish(
        self,
        staging_dir: Path,
        finalize: Callable[[Path, str], None],
        *,
        move_latest: bool,
    ) -> str:
        """Allocate the next version, let ``finalize(staging_dir, version)`` write the files that
        carry it (manifest, model_version.txt), then rename the staging directory into place.

        Returns the version. ``latest`` moves only when ``move_latest`` and the new version is
        newer than the one it points at now.
        """
        if staging_dir.parent.resolve() != self.runs_dir.resolve():
            raise ContractError(f"{staging_dir} is not a staging directory of {self.runs_dir}")
        with self._lock():
            version = next_version(self.versions())
            finalize(staging_dir, version)
            target = self.runs_dir / version
            # rename(2) refuses a non-empty target, so even a publisher that ignored the lock
            # could not overwrite a published run.
            os.rename(staging_dir, target)
            fsync_directory(self.runs_dir)
            if move_latest:
                current = self.latest_version()
                if current is None or parse_version(version) > parse_version(current):
                    self._point_latest(version)
        return version

    def set_latest(self, version: str) -> None:
        """Point ``latest`` at an existing published version."""
        if not self.run_dir(version).is_dir():
            raise ContractError(f"no published run {version} under {self.runs_dir}")
        with self._lock():
            self._point_latest(version)

    def _point_latest(self, version: str) -> None:
        temporary = self.root / f".{LATEST}.{uuid.uuid4().hex}"
        os.symlink(f"{RUNS_DIR}/{version}", temporary)
        os.replace(temporary, self.latest)
        fsync_directory(self.root)


@contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (created with its parent directory when
    missing). Processes and threads on one host take turns; the kernel releases the lock when
    its holder dies, so a crash never leaves it stuck."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
