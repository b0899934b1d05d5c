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
from artifact_contract.layout import LATEST, RUNS_DIR, ArtifactRoot, exclusive_lock
from artifact_contract.manifest import (
    FEATURE_TYPES,
    REQUIRED_LIBRARIES,
    SCHEMA_VERSION,
    DataRef,
    Example,
    Feature,
    GitInfo,
    Manifest,
    ModelRef,
    QualityGate,
    read_manifest,
    write_manifest,
)
from artifact_contract.profile import Histogram, Profile
from artifact_contract.verify import VERSION_FILE, verify_run_dir
from artifact_contract.versions import format_version, is_version, next_version, parse_version

__all__ = [
    "FEATURE_TYPES",
    "LATEST",
    "MANIFEST_FILE",
    "REQUIRED_LIBRARIES",
    "RUNS_DIR",
    "SCHEMA_VERSION",
    "VERSION_FILE",
    "ArtifactRoot",
    "ContractError",
    "DataRef",
    "Example",
    "Feature",
    "GitInfo",
    "Histogram",
    "IntegrityError",
    "Manifest",
    "ManifestError",
    "ModelRef",
    "Profile",
    "QualityGate",
    "VersionError",
    "exclusive_lock",
    "file_digests",
    "format_version",
    "is_version",
    "list_run_files",
    "manifest_sha256",
    "next_version",
    "parse_version",
    "read_manifest",
    "sha256_bytes",
    "sha256_file",
    "verify_run_dir",
    "write_manifest",
]
