"""The version scheme: ``v001``, ``v002``, ... unique and increasing within one artifact root.

Three digits at least; a version past 999 simply grows (``v1000``), and parsing accepts that.
"""

import re

from artifact_contract.errors import VersionError

_VERSION = re.compile(r"v(\d{3,})")


def parse_version(text: str) -> int:
    """``"v007"`` -> ``7``. Raises VersionError for anything else."""
    match = _VERSION.fullmatch(text)
    if match is None or int(match.group(1)) < 1:
        raise VersionError(f"not a model version: {text!r} (expected v001, v002, ...)")
    return int(match.group(1))


def format_version(number: int) -> str:
    """``7`` -> ``"v007"``."""
    if number < 1:
        raise VersionError(f"model versions start at 1, got {number}")
    return f"v{number:03d}"


def is_version(text: str) -> bool:
    try:
        parse_version(text)
    except VersionError:
        return False
    return True


def next_version(existing: list[str] | tuple[str, ...] | set[str]) -> str:
    """The version after the highest in ``existing``; names that are not versions are ignored."""
    numbers = [parse_version(name) for name in existing if is_version(name)]
    return format_version(max(numbers, default=0) + 1)
