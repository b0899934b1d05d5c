from __future__ import annotations

from pathlib import Path

import pytest

from artifact_contract.uris import S3Location, UnsupportedURI, parse_location


@pytest.mark.parametrize(
    ("uri", "location"),
    [
        ("runs/artifacts/latest", Path("runs/artifacts/latest")),
        ("/data/a b.csv", Path("/data/a b.csv")),
        ("file:///data/a%20b.csv", Path("/data/a b.csv")),
        ("file://localhost/data/x.csv", Path("/data/x.csv")),
        ("s3://bucket/prefix/model.tar.gz", S3Location("bucket", "prefix/model.tar.gz")),
        ("s3://bucket/prefix/", S3Location("bucket", "prefix/")),
        ("s3:///key", S3Location("", "key")),
    ],
)
def test_paths_file_and_s3_uris_are_located(uri: str, location: Path | S3Location) -> None:
    assert parse_location(uri) == location


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://example/x.csv", "URI scheme 'http' is not supported"),
        ("file://otherhost/x.csv", "remote host is not supported"),
    ],
)
def test_other_uris_are_refused_naming_them(uri: str, message: str) -> None:
    with pytest.raises(UnsupportedURI, match=message):
        parse_location(uri)
