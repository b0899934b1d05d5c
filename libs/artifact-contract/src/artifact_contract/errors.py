"""Errors raised by the contract library. Each carries a message meant for a human, in one line."""


class ContractError(Exception):
    """Base class: anything that breaks the artifact contract."""


class ManifestError(ContractError):
    """manifest.json is missing, unreadable or does not follow the schema."""


class IntegrityError(ContractError):
    """A file's digest, or the manifest's own digest, is not what was recorded."""


class VersionError(ContractError):
    """A model version string is not of the form vNNN."""
