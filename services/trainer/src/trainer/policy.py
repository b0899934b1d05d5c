"""The checked-in policy file (services/trainer/policy.toml): one TOML table per decision.

Each consumer reads its own table (``[drift]`` here; promotion gates add theirs) through
``read_table``, which refuses a missing file, invalid TOML, a missing table, and missing or
unknown keys, with one line that names the file and the key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from trainer.errors import TrainerError

POLICY_FILE = Path("services") / "trainer" / "policy.toml"


class PolicyError(TrainerError):
    """The policy file is missing, unreadable or does not hold what a command needs."""


def read_table(path: Path, table: str, keys: dict[str, type]) -> dict[str, Any]:
    """``[table]`` of the TOML file at ``path``, with exactly ``keys`` of the given types."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    section = document.get(table)
    if not isinstance(section, dict):
        raise PolicyError(f"{path}: no [{table}] table")
    missing = sorted(set(keys) - set(section))
    unknown = sorted(set(section) - set(keys))
    if missing or unknown:
        problem = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(unknown)}" if unknown else "",
            )
            if part
        )
        raise PolicyError(f"{path}: [{table}] {problem}")
    for key, kind in keys.items():
        value = section[key]
        # int is accepted where a float is expected (TOML `0` vs `0.0`); a bool never is.
        accepted = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise PolicyError(f"{path}: [{table}] {key} must be a {kind.__name__}")
    return dict(section)
