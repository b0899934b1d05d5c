"""mlpipeline artifact contract: layout, manifest schema, version scheme (stdlib only)."""

from artifact_contract.digests import (
    MANIFEST_FILE,
    file_digests,
    list_run_files,
    manifest_sha256,
    sha256_bytes,
    sha256_file,
)
from artifact_contract.errors import ContractError, IntegrityError, ManifestError, VersionError
from artifact_contract.interface import (
    FEATURE_TYPES,
    NUMERIC_TYPES,
    TASKS,
    Feature,
    JSONScalar,
    Label,
    label_key,
)
from artifact_contract.layout import LATEST, RUNS_DIR, ArtifactRoot, exclusive_lock
from artifact_contract.manifest import (
    REQUIRED_LIBRARIES,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    DataRef,
    Example,
    GitInfo,
    Manifest,
    ModelRef,
    QualityGate,
    read_manifest,
    write_manifest,
)
from artifact_contract.profile import CategoryShares, Histogram, Profile
from artifact_contract.reference import (
    Reference,
    ReferenceFormatError,
    parse_reference,
    read_reference,
    serialize_reference,
)
from artifact_contract.schema import MANIFEST_SCHEMA_FILE, manifest_json_schema
from artifact_contract.trust import TRUSTED_TYPES
from artifact_contract.verify import VERSION_FILE, verify_run_dir
from artifact_contract.versions import format_version, is_version, next_version, parse_version

__all__ = [
    "FEATURE_TYPES",
    "LATEST",
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA_FILE",
    "NUMERIC_TYPES",
    "REQUIRED_LIBRARIES",
    "RUNS_DIR",
    "SCHEMA_VERSION",
    "SUPPORTED_SCHEMA_VERSIONS",
    "TASKS",
    "TRUSTED_TYPES",
    "VERSION_FILE",
    "ArtifactRoot",
    "CategoryShares",
    "ContractError",
    "DataRef",
    "Example",
    "Feature",
    "GitInfo",
    "Histogram",
    "IntegrityError",
    "JSONScalar",
    "Label",
    "Manifest",
    "ManifestError",
    "ModelRef",
    "Profile",
    "QualityGate",
    "Reference",
    "ReferenceFormatError",
    "VersionError",
    "exclusive_lock",
    "file_digests",
    "format_version",
    "is_version",
    "label_key",
    "list_run_files",
    "manifest_json_schema",
    "manifest_sha256",
    "next_version",
    "parse_reference",
    "parse_version",
    "read_manifest",
    "read_reference",
    "serialize_reference",
    "sha256_bytes",
    "sha256_file",
    "verify_run_dir",
    "write_manifest",
]
