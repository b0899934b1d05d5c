"""Safe extraction of a model archive (``.tar.gz``) into a directory we own.

Only regular files and directories are extracted, every one inside the target; absolute paths,
``..``, symbolic and hard links, devices and FIFOs are refused, as are archives whose members add
up to more than a size bound (a decompression bomb is refused at the header of the member that
crosses the bound, before its data is inflated). Extended headers (GNU long names, PAX records)
are bounded before tarfile reads them into memory, and GNU sparse members are refused: tarfile
would otherwise read a header that claims a gigabyte whole, before we see any member.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from inference.errors import ModelSourceError, UnsafeArchiveError

TARBALL_SUFFIXES = (".tar.gz", ".tgz", ".tar")
MAX_MEMBERS = 10_000
# All the extended headers of one archive together (each counted with its 512-byte block): a
# long path needs a few KiB; this also bounds chains of headers (each one is a recursion).
MAX_HEADER_BYTES = 256 * 1024
_EXTENDED = frozenset(
    {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE}
    | {tarfile.SOLARIS_XHDTYPE}
)


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


def _bounded_tarinfo(archive: str) -> type[tarfile.TarInfo]:
    """A TarInfo that checks each header before tarfile processes it (the subclass hook
    tarfile documents at ``_proc_member``), with a budget for this one archive."""
    budget = [MAX_HEADER_BYTES]

    class BoundedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
            if self.type == tarfile.GNUTYPE_SPARSE:
                _refuse_sparse(archive)
            if self.type in _EXTENDED:
                budget[0] -= tarfile.BLOCKSIZE + self.size
                if budget[0] < 0:
                    raise UnsafeArchiveError(
                        f"archive {archive} has long-name or PAX headers of more than "
                        f"{MAX_HEADER_BYTES} bytes (one claims {self.size})"
                    )
            return super()._proc_member(tar)  # type: ignore[misc,no-any-return]

        def _proc_gnusparse_00(self, *_: object) -> None:
            _refuse_sparse(archive)

        def _proc_gnusparse_01(self, *_: object) -> None:
            _refuse_sparse(archive)

        def _proc_gnusparse_10(self, *_: object) -> None:
            _refuse_sparse(archive)

    return BoundedTarInfo


def _refuse_sparse(archive: str) -> None:
    raise UnsafeArchiveError(f"archive {archive} holds a sparse file; model archives have none")


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
        with tarfile.open(archive, "r:*", tarinfo=_bounded_tarinfo(archive.name)) as tar:
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
