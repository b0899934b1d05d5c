"""The deployment reference: which immutable artifact a target (staging, production) serves.

    {"model_version": "v007", "artifact_uri": "s3://team/runs/v007/" | "file:///.../v007",
     "manifest_sha256": "<64 hex>", "promoted_at": "<UTC ISO 8601>", "approved_by": "ana" | null}

The trainer writes it (``trainer promote`` / ``rollback``) as ``<target>.json``; the inference
service reads it (``MODEL_REFERENCE``) and serves ``artifact_uri`` only if its manifest digest is
``manifest_sha256``. Both parse and serialize it here, so neither can drift from the other.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from artifact_contract.errors import ContractError
from artifact_contract.versions import is_version

TARGETS = ("staging", "production")
FIELDS = ("model_version", "artifact_uri", "manifest_sha256", "promoted_at", "approved_by")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ReferenceFormatError(ContractError):
    """A deployment reference is unreadable or does not follow the format."""


@dataclass(frozen=True)
class Reference:
    model_version: str
    artifact_uri: str
    manifest_sha256: str
    promoted_at: str
    approved_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, source: str) -> Reference:
        if not isinstance(raw, dict) or sorted(raw) != sorted(FIELDS):
            raise ReferenceFormatError(f"{source}: a reference holds exactly {', '.join(FIELDS)}")
        if not isinstance(raw["model_version"], str) or not is_version(raw["model_version"]):
            raise ReferenceFormatError(f"{source}: model_version must look like v001")
        if not isinstance(raw["manifest_sha256"], str) or not _SHA256.fullmatch(
            raw["manifest_sha256"]
        ):
            raise ReferenceFormatError(f"{source}: manifest_sha256 must be a sha256 hex digest")
        for key in ("artifact_uri", "promoted_at"):
            if not isinstance(raw[key], str) or not raw[key]:
                raise ReferenceFormatError(f"{source}: {key} must be a non-empty string")
        if raw["approved_by"] is not None and not isinstance(raw["approved_by"], str):
            raise ReferenceFormatError(f"{source}: approved_by must be a string or null")
        return cls(**raw)


def parse_reference(data: str | bytes, source: str) -> Reference:
    """A reference from the bytes of ``<target>.json``; ``source`` names it in errors."""
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ReferenceFormatError(f"{source}: not valid JSON ({exc})") from None
    return Reference.from_dict(raw, source)


def serialize_reference(reference: Reference) -> bytes:
    """The bytes of ``<target>.json`` (validated: what is written can be read back)."""
    document = reference.to_dict()
    Reference.from_dict(document, "reference")
    return (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()


def read_reference(path: Path) -> Reference:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReferenceFormatError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_reference(data, str(path))
