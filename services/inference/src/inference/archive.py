"""Safe extraction of a model archive (``.tar.gz``) into a directory we own.

Only regular files and directories are extracted, every one inside the target; absolute paths,
``..``, symbolic and hard links, devices and FIFOs are refused, as are archives whose members add
up to more than a size bound (a decompression bomb is refused at the header of the member that
crosses the bound, before its data is inflated).
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from inference.errors import ModelSourceError, UnsafeArchiveError

TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar")
MAX_MEMBERS = 10_000


def is_tarball(name: str) -> bool:
    return name.lower().endswith(TARBALL_SUFFIXES)


def safe_relative_path(name: str, where: str) -> PurePosixPath:
    """``name`` as a relative path that cannot leave the directory it is joined to."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or name.startswith("\\"):
        raise UnsafeArchiveError(f"{where} {name[:100]!r} is an absolute or empty path")
    if ".." in path.parts or "\\" in name:
        raise UnsafeArchiveError(f"{where} {name[:100]!r} points outside the model directory")
    return path


def _check_member(member: tarfile.TarInfo) -> None:
    where = "archive member"
    safe_relative_path(member.name, where)
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(
            f"{where} {member.name[:100]!r} is a link; only regular files and directories "
            "are allowed"
        )
    if not (member.isreg() or member.isdir()):
        raise UnsafeArchiveError(
            f"{where} {member.name[:100]!r} is a device, FIFO or other special file; only "
            "regular files and directories are allowed"
        )


def extract_tarball(archive: Path, target: Path, max_bytes: int) -> None:
    """Extract ``archive`` into ``target`` (which must exist), or raise UnsafeArchiveError."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members: list[tarfile.TarInfo] = []
            total = 0
            for member in tar:
                _check_member(member)
                total += member.size
                if total > max_bytes:
                    raise UnsafeArchiveError(
                        f"archive {archive.name} unpacks to more than {max_bytes} bytes "
                        "(MODEL_MAX_ARCHIVE_BYTES)"
                    )
                members.append(member)
                if len(members) > MAX_MEMBERS:
                    raise UnsafeArchiveError(
                        f"archive {archive.name} has more than {MAX_MEMBERS} members"
                    )
            # The "data" filter re-checks what we checked above; belt and braces. It exists from
            # Python 3.11.4 (PEP 706): Debian 12's python3.11 (3.11.2) extracts without it.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(target, members=members, filter="data")
            else:
                tar.extractall(target, members=members)
    except tarfile.TarError as exc:
        raise UnsafeArchiveError(
            f"archive {archive.name} is not a readable tar archive ({exc})"
        ) from None
    except (OSError, EOFError) as exc:
        raise ModelSourceError(f"cannot extract archive {archive.name} ({exc})") from None
