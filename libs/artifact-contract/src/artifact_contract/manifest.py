"""The manifest: what a run directory contains, how it was made, and how to call it.

``manifest.json`` is validated when it is written and when it is read; any problem raises
ManifestError naming the offending field. The key names are the contract (other repositories'
tests read them), so they change only with ``schema_version``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artifact_contract.digests import MANIFEST_FILE, sha256_bytes
from artifact_contract.errors import ManifestError, VersionError
from artifact_contract.interface import (
    Feature,
    JSONScalar,
    Label,
    fail,
    output_task,
    require_object,
    require_str,
    validate_examples,
    validate_input_schema,
    validate_metrics,
    validate_output,
)
from artifact_contract.profile import Profile, validate_profile
from artifact_contract.versions import parse_version

# 2 adds ``profile`` (required from 2 on, absent in 1). 3 adds boolean and categorical features,
# nullable features and classification outputs (see interface.py). Versions 1 and 2 still load,
# and serialise to the very bytes they were read from.
SCHEMA_VERSION = 3
SUPPORTED_SCHEMA_VERSIONS = (1, 2, 3)
REQUIRED_LIBRARIES = ("python", "scikit-learn", "numpy", "skops", "mlflow")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


@dataclass(frozen=True)
class ModelRef:
    flavor: str
    path: str
    format: str


@dataclass(frozen=True)
class DataRef:
    source: str
    sha256: str
    rows: int


@dataclass(frozen=True)
class GitInfo:
    commit: str
    dirty: bool


@dataclass(frozen=True)
class Example:
    input: dict[str, JSONScalar]
    prediction: JSONScalar
    # Classification only (optional): probability per class, keyed by label_key(label).
    probabilities: dict[str, float] | None = None


@dataclass(frozen=True)
class QualityGate:
    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Manifest:
    model_version: str
    created_at: str
    model: ModelRef
    files: dict[str, str]
    input_schema: list[Feature]
    output: dict[str, Any]
    data: DataRef
    params: dict[str, JSONScalar]
    metrics: dict[str, float]
    quality_gate: QualityGate
    libraries: dict[str, str]
    git: GitInfo | None
    examples: list[Example]
    # 0 means "follow the content": 1 without a profile, 3 when the output names its task,
    # else 2 (so callers that predate profiles keep writing valid version-1 manifests).
    schema_version: int = 0
    profile: Profile | None = None

    def __post_init__(self) -> None:
        if self.schema_version == 0:
            if self.profile is None:
                version = 1
            else:
                version = 3 if "task" in self.output else 2
            object.__setattr__(self, "schema_version", version)

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.input_schema]

    @property
    def task(self) -> str:
        """``regression`` or ``classification`` (versions 1 and 2 are regression)."""
        return output_task(self.output)

    @property
    def classes(self) -> list[Label]:
        """The class labels in the model's order (empty for regression)."""
        return list(self.output.get("classes", []))

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["input_schema"] = [
            feature.to_dict(self.schema_version) for feature in self.input_schema
        ]
        for example in body["examples"]:
            if example["probabilities"] is None:
                del example["probabilities"]
        if body["profile"] is None:
            # Version 1 has no such key: its bytes (and so its digest) stay what they were.
            del body["profile"]
        # schema_version first: a reader should learn how to read the rest before reading it.
        return {"schema_version": body.pop("schema_version"), **body}

    def to_json(self) -> bytes:
        """Canonical bytes: the same manifest always serialises to the same bytes."""
        validate(self.to_dict())
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False)
        return (text + "\n").encode()

    @property
    def sha256(self) -> str:
        return sha256_bytes(self.to_json())

    @classmethod
    def from_dict(cls, raw: Any) -> Manifest:
        validate(raw)
        git = raw["git"]
        return cls(
            schema_version=raw["schema_version"],
            model_version=raw["model_version"],
            created_at=raw["created_at"],
            model=ModelRef(**raw["model"]),
            files=dict(raw["files"]),
            input_schema=[Feature.from_dict(feature) for feature in raw["input_schema"]],
            output=dict(raw["output"]),
            data=DataRef(**raw["data"]),
            params=dict(raw["params"]),
            metrics={key: float(value) for key, value in raw["metrics"].items()},
            quality_gate=QualityGate(**raw["quality_gate"]),
            libraries=dict(raw["libraries"]),
            git=None if git is None else GitInfo(**git),
            examples=[Example(**example) for example in raw["examples"]],
            profile=Profile.from_dict(raw["profile"]) if "profile" in raw else None,
        )

    @classmethod
    def from_json(cls, data: bytes, source: str = MANIFEST_FILE) -> Manifest:
        try:
            raw = json.loads(data, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{source}: not valid JSON ({exc})") from None
        try:
            return cls.from_dict(raw)
        except ManifestError as exc:
            raise ManifestError(f"{source}: {exc}") from None


def read_manifest(run_dir: Path) -> Manifest:
    path = run_dir / MANIFEST_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{path}: no manifest.json in the run directory") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from None
    return Manifest.from_json(data, source=str(path))


def write_manifest(run_dir: Path, manifest: Manifest) -> str:
    """Write manifest.json (validated) and return its sha256, the artifact's identity."""
    data = manifest.to_json()
    (run_dir / MANIFEST_FILE).write_bytes(data)
    return sha256_bytes(data)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed in a manifest")


# --- validation ---------------------------------------------------------------------------


def _require_sha256(value: Any, where: str) -> None:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise fail(where, "must be a lowercase sha256 hex digest")


_TOP_LEVEL = (
    "schema_version",
    "model_version",
    "created_at",
    "model",
    "files",
    "input_schema",
    "output",
    "data",
    "params",
    "metrics",
    "quality_gate",
    "libraries",
    "git",
    "examples",
)
_OPTIONAL = ("profile",)


def validate(raw: Any) -> None:
    """Raise ManifestError on the first problem found; return quietly for a valid manifest."""
    if not isinstance(raw, dict):
        raise ManifestError("manifest must be a JSON object")
    missing = [key for key in _TOP_LEVEL if key not in raw]
    if missing:
        raise ManifestError(f"manifest is missing {', '.join(missing)}")
    unknown = sorted(set(raw) - set(_TOP_LEVEL) - set(_OPTIONAL))
    if unknown:
        raise ManifestError(f"manifest has unknown fields {', '.join(unknown)}")

    schema_version = raw["schema_version"]
    if schema_version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(schema_version, bool):
        raise fail(
            "schema_version", f"is {schema_version!r}; supported: {SUPPORTED_SCHEMA_VERSIONS}"
        )
    try:
        parse_version(raw["model_version"] if isinstance(raw["model_version"], str) else "")
    except VersionError:
        raise fail("model_version", "must look like v001") from None
    if not isinstance(raw["created_at"], str) or not _TIMESTAMP.fullmatch(raw["created_at"]):
        raise fail("created_at", "must be an ISO-8601 UTC time ending in Z")

    model = require_object(raw["model"], "model", ("flavor", "path", "format"))
    for key in ("flavor", "path", "format"):
        require_str(model[key], f"model.{key}")
    if set(model) != {"flavor", "path", "format"}:
        raise fail("model", "must hold exactly flavor, path and format")

    files = raw["files"]
    if not isinstance(files, dict) or not files:
        raise fail("files", "must be a non-empty object of path -> sha256")
    for name, digest in files.items():
        if name == MANIFEST_FILE or name.startswith("/") or ".." in name.split("/"):
            raise fail(f"files.{name}", "is not a relative path inside the run directory")
        _require_sha256(digest, f"files.{name}")
    if model["path"] not in files:
        raise fail("model.path", f"names {model['path']!r}, which is not listed in files")

    validate_input_schema(raw["input_schema"], schema_version)
    validate_output(raw["output"], schema_version)

    data = require_object(raw["data"], "data", ("source", "sha256", "rows"))
    if set(data) != {"source", "sha256", "rows"}:
        raise fail("data", "must hold exactly source, sha256 and rows")
    require_str(data["source"], "data.source")
    _require_sha256(data["sha256"], "data.sha256")
    if isinstance(data["rows"], bool) or not isinstance(data["rows"], int) or data["rows"] < 1:
        raise fail("data.rows", "must be a positive integer")

    if not isinstance(raw["params"], dict) or "seed" not in raw["params"]:
        raise fail("params", "must be an object that records the seed")
    validate_metrics(raw["metrics"], raw["output"], schema_version)
    gate = require_object(raw["quality_gate"], "quality_gate", ("passed", "checks"))
    if (
        set(gate) != {"passed", "checks"}
        or not isinstance(gate["passed"], bool)
        or not isinstance(gate["checks"], list)
    ):
        raise fail("quality_gate", "must hold passed (bool) and checks (list)")

    libraries = raw["libraries"]
    if not isinstance(libraries, dict):
        raise fail("libraries", "must be an object of name -> version")
    for name in REQUIRED_LIBRARIES:
        require_str(libraries.get(name), f"libraries.{name}")

    git = raw["git"]
    if git is not None:
        git = require_object(git, "git", ("commit", "dirty"))
        if set(git) != {"commit", "dirty"}:
            raise fail("git", "must hold exactly commit and dirty")
        require_str(git["commit"], "git.commit")
        if not isinstance(git["dirty"], bool):
            raise fail("git.dirty", "must be true or false")

    validate_examples(raw["examples"], raw["input_schema"], raw["output"], schema_version)
    if schema_version == 1 and "profile" in raw:
        raise fail("profile", "needs schema_version 2 (version 1 has no profile)")
    if schema_version >= 2:
        if "profile" not in raw:
            raise ManifestError(
                f"manifest is missing profile (required by schema_version {schema_version})"
            )
        validate_profile(raw["profile"], raw["input_schema"], raw["output"], schema_version)
