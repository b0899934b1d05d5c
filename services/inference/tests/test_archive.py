"""Safe extraction: only regular files and directories, inside the target, within a bound."""

from __future__ import annotations

import io
import json
import resource
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from inference.archive import extract_tarball
from inference.errors import UnsafeArchiveError


def make_tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            if member.isreg():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return path


def info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = link
    return member


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (info("../escape.txt"), "points outside"),
        (info("run/../../escape.txt"), "points outside"),
        (info("/tmp/escape.txt"), "absolute"),
        (info("run/link", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (info("run/hard", tarfile.LNKTYPE, "run/manifest.json"), "is a link"),
        (info("run/fifo", tarfile.FIFOTYPE), "device, FIFO"),
        (info("run/dev", tarfile.CHRTYPE), "device, FIFO"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "fifo", "chardev"],
)
def test_unsafe_members_refuse_the_whole_archive_and_write_nothing(
    member: tarfile.TarInfo, message: str, tmp_path: Path
) -> None:
    archive = make_tar(tmp_path / "model.tar.gz", [info("run/manifest.json"), member])
    target = tmp_path / "cache" / "work"
    target.mkdir(parents=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UnsafeArchiveError, match=message):
        extract_tarball(archive, target, max_bytes=1 << 20)
    assert list(target.iterdir()) == []  # refused before anything is extracted
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (
        not (tmp_path / "escape.txt").exists() and not (tmp_path / "cache" / "escape.txt").exists()
    )


def test_total_size_is_bounded_before_inflating(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "bomb.tar.gz", [info("a"), info("b")], data=b"\0" * 600)
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(UnsafeArchiveError, match="more than 1000 bytes"):
        extract_tarball(archive, target, max_bytes=1000)
    assert list(target.iterdir()) == []


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"this is not gzip")
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(UnsafeArchiveError, match="not a readable tar archive"):
        extract_tarball(archive, target, max_bytes=1000)


def test_regular_files_and_directories_are_extracted(tmp_path: Path) -> None:
    directory = info("run", tarfile.DIRTYPE)
    archive = make_tar(tmp_path / "ok.tar.gz", [directory, info("run/a.txt")], data=b"hello")
    target = tmp_path / "out"
    target.mkdir()
    extract_tarball(archive, target, max_bytes=1000)
    assert (target / "run" / "a.txt").read_bytes() == b"hello"


# --- headers that claim a gigabyte: bounded before tarfile reads them ----------------------

GIB = 1024**3
EXTRACT_IN_CHILD = """
import json, sys
from pathlib import Path
from inference.archive import extract_tarball
try:
    extract_tarball(Path(sys.argv[1]), Path(sys.argv[2]), 2**40)
    outcome = {"extracted": True}
except Exception as exc:
    outcome = {"error": type(exc).__name__, "message": str(exc)}
# VmHWM: this process image's peak RSS (ru_maxrss would include the parent's, from before exec)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
outcome["peak_mib"] = int(hwm.split()[1]) // 1024
print(json.dumps(outcome))
"""


def gzip_of_repeats(prefix: bytes, unit: bytes, repeats: int, suffix: bytes) -> bytes:
    """gzip of prefix + unit * repeats + suffix, made without compressing the repeats one by
    one: after a full flush deflate starts afresh, so one compressed unit can be repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    unit_deflated = compressor.compress(unit) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(suffix) + compressor.flush()
    crc = zlib.crc32(prefix)
    for _ in range(repeats):
        crc = zlib.crc32(unit, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + len(unit) * repeats + len(suffix)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + head + unit_deflated * repeats + tail + trailer


def header_bomb(path: Path, kind: bytes) -> Path:
    """A ~1 MB .tar.gz whose first header (GNU long name or PAX) carries 1 GiB."""
    bomb = tarfile.TarInfo("././@LongLink" if kind == tarfile.GNUTYPE_LONGNAME else "pax")
    bomb.type = kind
    bomb.size = GIB
    member = tarfile.TarInfo("manifest.json")
    member.size = 2
    end = member.tobuf(tarfile.GNU_FORMAT) + b"{}".ljust(512, b"\0") + bytes(1024)
    unit = b"a" * (1024 * 1024)
    path.write_bytes(gzip_of_repeats(bomb.tobuf(tarfile.GNU_FORMAT), unit, GIB // len(unit), end))
    return path


@pytest.mark.parametrize(
    "kind", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE], ids=["gnu-long-name", "pax"]
)
def test_a_gigabyte_header_is_refused_before_it_is_read(kind: bytes, tmp_path: Path) -> None:
    """Issue 11: a 1 MB tarball whose long-name or PAX header carries 1 GiB drove the loader to
    8.5 GB RSS. In a child capped at 512 MiB of address space."""
    archive = header_bomb(tmp_path / "model.tar.gz", kind)
    assert archive.stat().st_size < 2 * 1024 * 1024
    (tmp_path / "out").mkdir()
    result = subprocess.run(
        [sys.executable, "-c", EXTRACT_IN_CHILD, str(archive), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (512 * 1024**2,) * 2),
        check=False,
    )
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["error"] == "UnsafeArchiveError", outcome
    assert "long-name or PAX headers of more than" in outcome["message"]
    assert outcome["peak_mib"] < 100
    assert list((tmp_path / "out").iterdir()) == []


def test_sparse_members_are_refused(tmp_path: Path) -> None:
    sparse = tarfile.TarInfo("model.skops")
    sparse.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}
    sparse.size = 4
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(sparse, io.BytesIO(b"1\n0\n"))
    with pytest.raises(UnsafeArchiveError, match="sparse"):
        extract_tarball(tmp_path / "model.tar.gz", tmp_path, 10**6)
