"""The policy file: one TOML table per decision. The checked-in one,
services/trainer/src/trainer/policy.toml, ships inside the package (the trainer image has it
too), so every command finds its default without --policy and without a checkout.

Each consumer reads its own table (``[drift]``, ``[promotion]``) through ``read_table`` or
``read_document`` + ``check_keys``, which refuse a missing file, invalid TOML, a missing table,
and missing or unknown keys, with one line that names the file and the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifact_contract import sha256_file

from trainer.errors import TrainerError

POLICY_FILE = Path(__file__).parent / "policy.toml"


class PolicyError(TrainerError):
    """The policy file is missing, unreadable or does not hold what a command needs."""


def read_document(path: Path) -> dict[str, Any]:
    """The whole TOML document at ``path``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None


def read_table(path: Path, table: str, keys: dict[str, type]) -> dict[str, Any]:
    """``[table]`` of the TOML file at ``path``, with exactly ``keys`` of the given types."""
    section = read_document(path).get(table)
    if not isinstance(section, dict):
        raise PolicyError(f"{path}: no [{table}] table")
    return check_keys(path, table, section, keys)


def check_keys(
    path: Path,
    where: str,
    section: dict[str, Any],
    required: dict[str, type],
    optional: dict[str, type] | None = None,
    hint: str = "",
) -> dict[str, Any]:
    """``section`` (the table ``[where]``) holds every ``required`` key, only ``required`` and
    ``optional`` keys, each of its type (``float`` accepts a TOML integer, never a bool)."""
    allowed = {**required, **(optional or {})}
    missing = sorted(set(required) - set(section))
    unknown = sorted(set(section) - set(allowed))
    if missing or unknown:
        problem = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(unknown)}" if unknown else "",
            )
            if part
        )
        raise PolicyError(f"{path}: [{where}] {problem}{hint if unknown else ''}")
    for key, value in section.items():
        kind = allowed[key]
        accepted = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) is not (kind is bool) or not isinstance(value, accepted):
            raise PolicyError(f"{path}: [{where}] {key} must be a {kind.__name__}")
    return dict(section)


# --- [promotion]: what gate 2 (quality) judges -------------------------------------------

TASKS = ("regression", "classification")
DIRECTIONS = ("lower", "higher")
_RULE_KEYS: dict[str, type] = {
    "metric": str,
    "direction": str,
    "baseline": str,
    "min_skill": float,
    "max_skill_drop": float,
}
_LIMIT_KEYS: dict[str, type] = {"min": dict, "max": dict}
_OLD_KEYS_HINT = (
    ' (absolute thresholds such as max_rmse now live in a [promotion.models."NAME"] table: '
    "max = { rmse = 4000.0 }; see docs/06_promotion.md)"
)


@dataclass(frozen=True)
class QualityRule:
    """What gate 2 judges for one task (and, with a model table, one registered model)."""

    metric: str
    direction: str  # "lower" or "higher" is better
    baseline: str  # the metric of the run's own baseline predictor, in the same units
    min_skill: float
    max_skill_drop: float
    minimum: dict[str, float] = field(default_factory=dict)  # absolute: metric >= value
    maximum: dict[str, float] = field(default_factory=dict)  # absolute: metric <= value
    source: str = ""  # the policy tables it came from, for the record

    @property
    def best(self) -> float:
        """The metric's perfect value: 0 for a loss, 1 for a score (accuracy, r2, f1...)."""
        return 0.0 if self.direction == "lower" else 1.0

    def skill(self, value: float, baseline: float) -> float:
        """The share of the way from the baseline to a perfect model that ``value`` covers:
        1 - rmse / baseline_rmse for a loss, (acc - base) / (1 - base) for a score."""
        return (value - baseline) / (self.best - baseline)


@dataclass(frozen=True)
class PromotionPolicy:
    rules: dict[str, QualityRule]  # per task
    models: dict[str, dict[str, QualityRule]]  # per registered model name, per task
    path: Path
    sha256: str

    @classmethod
    def load(cls, path: Path) -> PromotionPolicy:
        section = read_document(path).get("promotion")
        if not isinstance(section, dict):
            raise PolicyError(f"{path}: no [promotion] table")
        tables: dict[str, type] = dict.fromkeys(TASKS, dict)
        check_keys(path, "promotion", section, tables, {"models": dict}, _OLD_KEYS_HINT)
        tasks = {
            task: check_keys(path, f"promotion.{task}", section[task], _RULE_KEYS, _LIMIT_KEYS)
            for task in TASKS
        }
        rules = {task: _rule(path, f"[promotion.{task}]", table) for task, table in tasks.items()}
        models: dict[str, dict[str, QualityRule]] = {}
        for name, table in section.get("models", {}).items():
            where = f'promotion.models."{name}"'
            if not isinstance(table, dict):
                raise PolicyError(f"{path}: [{where}] must be a table")
            check_keys(path, where, table, {}, {**_RULE_KEYS, **_LIMIT_KEYS})
            models[name] = {
                task: _rule(path, f"[promotion.{task}] + [{where}]", _overlay(base, table))
                for task, base in tasks.items()
            }
        return cls(rules=rules, models=models, path=path, sha256=sha256_file(path))

    def rule(self, task: str, model_name: str | None = None) -> QualityRule:
        """The task's rule, with the registered model's table (if any) laid over it."""
        return self.models.get(model_name or "", self.rules)[task]


def _overlay(base: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    """A model's table over its task's: its keys win, its min/max add to the task's."""
    merged = {**base, **table}
    for bound in ("min", "max"):
        merged[bound] = {**base.get(bound, {}), **table.get(bound, {})}
    return merged


def _rule(path: Path, where: str, table: dict[str, Any]) -> QualityRule:
    """The rule a checked table describes; ``where`` names its table(s) in errors and records."""
    if table["direction"] not in DIRECTIONS:
        raise PolicyError(f'{path}: {where} direction must be "lower" or "higher"')
    if not table["min_skill"] < 1:
        raise PolicyError(f"{path}: {where} min_skill must be < 1 (1 is a perfect model)")
    if table["max_skill_drop"] < 0:
        raise PolicyError(f"{path}: {where} max_skill_drop must be >= 0")
    limits: dict[str, dict[str, float]] = {}
    for bound in ("min", "max"):
        values = table.get(bound, {})
        for metric, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PolicyError(f"{path}: {where} {bound}.{metric} must be a number")
        limits[bound] = {metric: float(value) for metric, value in values.items()}
    return QualityRule(
        metric=table["metric"],
        direction=table["direction"],
        baseline=table["baseline"],
        min_skill=float(table["min_skill"]),
        max_skill_drop=float(table["max_skill_drop"]),
        minimum=limits["min"],
        maximum=limits["max"],
        source=where,
    )
