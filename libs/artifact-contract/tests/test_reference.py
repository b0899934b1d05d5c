from __future__ import annotations

from pathlib import Path

import pytest

from artifact_contract import (
    Reference,
    ReferenceFormatError,
    parse_reference,
    read_reference,
    serialize_reference,
)

SHA = "a" * 64
REFERENCE = Reference("v007", "s3://team/runs/v007/", SHA, "2026-11-30T07:00:00+00:00", None)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "production.json"
    path.write_bytes(serialize_reference(REFERENCE))
    assert read_reference(path) == REFERENCE
    assert parse_reference(path.read_text(), "p") == REFERENCE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "p: not valid JSON"),
        ('{"model_version": "v1"}', "p: a reference holds exactly model_version"),
        (
            serialize_reference(REFERENCE).decode().replace('"v007"', '"7"'),
            "p: model_version must look like v001",
        ),
        (
            serialize_reference(REFERENCE).decode().replace(SHA, "b" * 63),
            "p: manifest_sha256 must be a sha256 hex digest",
        ),
        (
            serialize_reference(REFERENCE).decode().replace('"s3://team/runs/v007/"', '""'),
            "p: artifact_uri must be a non-empty string",
        ),
    ],
)
def test_a_malformed_reference_is_one_line(text: str, message: str) -> None:
    with pytest.raises(ReferenceFormatError) as raised:
        parse_reference(text, "p")
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_a_missing_reference_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ReferenceFormatError, match=r"staging.json: cannot read \(No such file"):
        read_reference(tmp_path / "staging.json")
