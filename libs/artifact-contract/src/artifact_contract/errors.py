"""Errors raised by the contract library. Each carries a message meant for a human, in one line."""


class ContractError(Exception):
    """Base class: anything that breaks the artifact contract."""


class ManifestError(ContractError):
    """manifest.json is missing, unreadable or does not follow the schema."""


class IntegrityError(ContractError):
    """A file's digest, or the manifest's own digest, is not what was recorded."""


class VersionError(ContractError):
    """A model version string is not of the form vNNN."""


def first_line(error: BaseException | str, default: str | None = None, limit: int = 0) -> str:
    """The first non-blank line of an error's message (an exception's ``message`` attribute,
    as boto and MLflow carry it, else ``str(exc)``), for a one-line report.

    ``default`` stands in for an empty message (else the exception's class name); ``limit``
    truncates to that many characters when it is positive.
    """
    text = error if isinstance(error, str) else str(getattr(error, "message", None) or error)
    lines = text.strip().splitlines()
    if lines:
        line = lines[0].strip()
    elif default is not None:
        line = default
    else:
        line = "" if isinstance(error, str) else type(error).__name__
    return line[:limit] if limit > 0 else line
