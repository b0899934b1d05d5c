from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from artifact_contract.errors import first_line
from artifact_contract.files import atomic_write, write_json_atomically


def test_atomic_write_replaces_the_file_readable_by_others_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "deep" / "report.json"
    write_json_atomically(target, {"a": 1})
    write_json_atomically(target, {"b": 2}, sort_keys=True)
    assert json.loads(target.read_text()) == {"b": 2}
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    atomic_write(target, b"old")
    with pytest.raises(ValueError, match="Out of range float"):
        write_json_atomically(target, {"x": float("nan")})
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_first_line_of_an_error() -> None:
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(ValueError("  "), default="unknown error") == "unknown error"
    assert first_line("\n  abc  \nx", limit=2) == "ab"

    class Boto(Exception):
        message = "from the service\ndetail"

    assert first_line(Boto("ignored")) == "from the service"
