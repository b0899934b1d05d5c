"""Safe extraction: only regular files and directories, inside the target, within a bound."""

from __future__ import annotations

import io
import tarfile
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
