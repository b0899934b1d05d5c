"""The promotion gates that need no server: pure functions of manifests, references and policy.

Each gate returns a ``Gate``: its name, whether it passed, one line for a human and the figures
it judged (recorded in the promotion history). The contract smoke gate lives in smoke.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artifact_contract import ContractError, Manifest, Reference, sha256_file, verify_run_dir

# PromotionPolicy is re-exported: `trainer retrain` loads it from here.
from trainer.policy import PromotionPolicy as PromotionPolicy
from trainer.policy import QualityRule


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def integrity(run_dir: Path, expected_manifest_sha256: str | None = None) -> Gate:
    """Gate 1: the run directory exists, its manifest is valid and every file's digest verifies
    (and, for a reference, the manifest's own digest is the one recorded)."""
    if not run_dir.is_dir():
        return Gate("integrity", False, f"no run directory {run_dir}", {"run_dir": str(run_dir)})
    try:
        manifest = verify_run_dir(run_dir, expected_manifest_sha256)
    except ContractError as exc:
        return Gate("integrity", False, str(exc), {"run_dir": str(run_dir)})
    digest = sha256_file(run_dir / "manifest.json")
    return Gate(
        "integrity",
        True,
        f"{manifest.model_version}: manifest and {len(manifest.files)} file digests verify",
        {"run_dir": str(run_dir), "manifest_sha256": digest, "files": len(manifest.files)},
    )


def quality(
    manifest: Manifest,
    policy: PromotionPolicy,
    production: Manifest | None = None,
    model_name: str | None = None,
) -> Gate:
    """Gate 2: the run passed its own training gate; its holdout metric beats the run's own
    baseline by the policy's skill; absolute limits (a registered model's table) hold; and, when
    ``production`` is given, its skill is not below production's beyond the tolerance."""
    version = manifest.model_version
    task = manifest.task
    figures: dict[str, Any] = {"training_gate_passed": manifest.quality_gate.passed, "task": task}
    if not manifest.quality_gate.passed:
        rules = ", ".join(
            str(check.get("rule", check.get("name", "?")))
            for check in manifest.quality_gate.checks
            if not check.get("passed", False)
        )
        return Gate("quality", False, f"{version} failed its training gate ({rules})", figures)
    if task not in policy.rules:
        return Gate("quality", False, f"{version}: the policy has no rule for task {task}", figures)
    rule = policy.rule(task, model_name)
    figures.update(
        policy=rule.source,
        metric=rule.metric,
        direction=rule.direction,
        baseline_metric=rule.baseline,
        min_skill=rule.min_skill,
    )
    found = _metric_pair(manifest, rule, f"{version}: the manifest")
    if isinstance(found, str):
        return Gate("quality", False, found, figures)
    value, baseline = found
    skill = rule.skill(value, baseline)
    figures.update({rule.metric: value, rule.baseline: baseline, "skill": skill})
    name = rule.metric
    if skill < rule.min_skill:
        return Gate(
            "quality",
            False,
            f"{version}: holdout {name} {value:.6g} has skill {skill:.3f} over {rule.baseline} "
            f"{baseline:.6g}, below the policy's min_skill {rule.min_skill:g} ({rule.source})",
            figures,
        )
    detail = f"{version}: {name} {value:.6g}, skill {skill:.3f} over {rule.baseline} >= "
    detail += f"{rule.min_skill:g}"
    limits = [(m, v, "min") for m, v in rule.minimum.items()]
    limits += [(m, v, "max") for m, v in rule.maximum.items()]
    for metric, limit, bound in limits:
        actual = manifest.metrics.get(metric)
        figures[f"{bound}.{metric}"] = limit
        figures.setdefault(metric, actual)
        if actual is None:
            return Gate(
                "quality",
                False,
                f"{version}: the manifest has no {metric} metric (policy {bound}.{metric})",
                figures,
            )
        relation = ">=" if bound == "min" else "<="
        if (actual < limit) if bound == "min" else (actual > limit):
            return Gate(
                "quality",
                False,
                f"{version}: holdout {metric} {actual:.6g} is not {relation} the policy's "
                f"{bound}.{metric} {limit:g} ({rule.source})",
                figures,
            )
        detail += f", {metric} {actual:.6g} {relation} {limit:g}"
    if production is not None:
        refusal = _against_production(version, production, rule, value, skill, figures)
        if refusal is not None:
            return Gate("quality", False, refusal, figures)
        detail += (
            f", skill {skill - figures['production_skill']:+.3f} vs production "
            f"{production.model_version}"
        )
    return Gate("quality", True, detail, figures)


def _metric_pair(manifest: Manifest, rule: QualityRule, whose: str) -> tuple[float, float] | str:
    """(metric, baseline) from the manifest's metrics, or the line saying what is wrong."""
    value = manifest.metrics.get(rule.metric)
    baseline = manifest.metrics.get(rule.baseline)
    if value is None or baseline is None:
        missing = rule.metric if value is None else rule.baseline
        return f"{whose} has no {missing} metric (policy {rule.source})"
    if baseline == rule.best:
        return f"{whose}'s {rule.baseline} is already perfect ({baseline:g}): no skill to measure"
    return value, baseline


def _against_production(
    version: str,
    production: Manifest,
    rule: QualityRule,
    value: float,
    skill: float,
    figures: dict[str, Any],
) -> str | None:
    """The refusal line when the candidate is worse than production beyond the tolerance."""
    other = production.model_version
    figures.update(production_version=other, max_skill_drop=rule.max_skill_drop)
    if production.task != figures["task"]:
        return (
            f"{version} is a {figures['task']} model, production {other} a "
            f"{production.task} model: one registered model serves one task"
        )
    found = _metric_pair(production, rule, f"production {other}")
    if isinstance(found, str):
        return found
    production_value, production_baseline = found
    production_skill = rule.skill(production_value, production_baseline)
    figures.update(
        production_metric=production_value,
        production_baseline=production_baseline,
        production_skill=production_skill,
        skill_change=skill - production_skill,
        metric_change=value / production_value - 1 if production_value else None,
    )
    if production_skill - skill > rule.max_skill_drop:
        return (
            f"{version}: skill {skill:.3f} ({rule.metric} {value:.6g}) is "
            f"{production_skill - skill:.3f} below production {other}'s {production_skill:.3f} "
            f"({rule.metric} {production_value:.6g}; tolerance {rule.max_skill_drop:g})"
        )
    return None


def staged_and_approved(
    version: str, manifest_sha256: str, staging: Reference | None, approved_by: str | None
) -> Gate:
    """Gate 4 (production only): the very artifact is in staging now, and an approver is named."""
    figures: dict[str, Any] = {
        "staging_version": staging.model_version if staging else None,
        "staging_manifest_sha256": staging.manifest_sha256 if staging else None,
        "approved_by": approved_by,
    }
    if staging is None:
        return Gate(
            "staging_and_approval",
            False,
            f"{version} is not in staging (nothing is); promote it to staging first",
            figures,
        )
    if staging.manifest_sha256 != manifest_sha256:
        return Gate(
            "staging_and_approval",
            False,
            f"{version} is not in staging (staging holds {staging.model_version}); "
            f"promote it to staging first",
            figures,
        )
    if not approved_by or not approved_by.strip():
        return Gate(
            "staging_and_approval",
            False,
            "production needs a recorded approver (--approved-by NAME, make APPROVED_BY=NAME)",
            figures,
        )
    return Gate(
        "staging_and_approval", True, f"{version} is in staging; approved by {approved_by}", figures
    )
