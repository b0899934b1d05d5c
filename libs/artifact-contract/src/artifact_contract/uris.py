"""Where a model or a data file lives: one parser for the URIs both services accept.

A plain path, ``file:///abs/path`` (host empty or ``localhost``; percent-escapes decoded) or
``s3://bucket/key``. Any other scheme, or a ``file://`` URI naming another host, is refused with
a ``ContractError`` whose message names what was given; callers add what they accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from artifact_contract.errors import ContractError


class UnsupportedURI(ContractError):
    """A URI whose scheme (or host) no service reads."""


@dataclass(frozen=True)
class S3Location:
    bucket: str  # may be empty: the caller says what it needs (a bucket and a key, a prefix)
    key: str  # without the leading slash; may be empty or end in "/" (a prefix)


def parse_location(uri: str) -> Path | S3Location:
    """A local path or an S3 bucket and key for ``uri``."""
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        return S3Location(parts.netloc, parts.path.lstrip("/"))
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedURI(f"{uri}: a file:// URI with a remote host is not supported")
        return Path(unquote(parts.path))
    if parts.scheme == "":
        return Path(uri)
    raise UnsupportedURI(f"{uri}: URI scheme {parts.scheme!r} is not supported")
