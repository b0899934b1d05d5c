"""The promotion gates that need no server: pure functions of manifests, references and policy.

Each gate returns a ``Gate``: its name, whether it passed, one line for a human and the figures
it judged (recorded in the promotion history). The contract smoke gate lives in smoke.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artifact_contract import ContractError, Manifest, sha256_file, verify_run_dir

from trainer.deployments import Reference
from trainer.policy import PolicyError, read_table


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PromotionPolicy:
    max_rmse: float
    min_r2: float
    max_rmse_increase: float  # relative to production's rmse: 0.1 = at most 10 % worse
    path: Path
    sha256: str

    @classmethod
    def load(cls, path: Path) -> PromotionPolicy:
        keys: dict[str, type] = {"max_rmse": float, "min_r2": float, "max_rmse_increase": float}
        table = read_table(path, "promotion", keys)
        if table["max_rmse_increase"] < 0:
            raise PolicyError(f"{path}: [promotion] max_rmse_increase must be >= 0")
        return cls(
            max_rmse=float(table["max_rmse"]),
            min_r2=float(table["min_r2"]),
            max_rmse_increase=float(table["max_rmse_increase"]),
            path=path,
            sha256=sha256_file(path),
        )


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
) -> Gate:
    """Gate 2: the run passed its own training gate, its holdout metrics meet the policy, and,
    when ``production`` is given, its rmse is not worse than production's beyond the tolerance."""
    version = manifest.model_version
    metrics = manifest.metrics
    rmse, r2 = metrics.get("rmse"), metrics.get("r2")
    figures: dict[str, Any] = {
        "training_gate_passed": manifest.quality_gate.passed,
        "rmse": rmse,
        "r2": r2,
        "max_rmse": policy.max_rmse,
        "min_r2": policy.min_r2,
    }
    if not manifest.quality_gate.passed:
        rules = ", ".join(
            str(check.get("rule", check.get("name", "?")))
            for check in manifest.quality_gate.checks
            if not check.get("passed", False)
        )
        return Gate("quality", False, f"{version} failed its training gate ({rules})", figures)
    if rmse is None or r2 is None:
        return Gate("quality", False, f"{version}: the manifest has no rmse/r2 metrics", figures)
    if rmse > policy.max_rmse:
        return Gate(
            "quality",
            False,
            f"{version}: holdout rmse {rmse:.1f} exceeds the policy's max_rmse {policy.max_rmse:g}",
            figures,
        )
    if r2 < policy.min_r2:
        return Gate(
            "quality",
            False,
            f"{version}: holdout r2 {r2:.3f} is below the policy's min_r2 {policy.min_r2:g}",
            figures,
        )
    detail = f"{version}: rmse {rmse:.1f} <= {policy.max_rmse:g}, r2 {r2:.3f} >= {policy.min_r2:g}"
    if production is not None:
        production_rmse = production.metrics.get("rmse")
        if production_rmse is None:
            return Gate(
                "quality", False, f"production {production.model_version} has no rmse", figures
            )
        limit = production_rmse * (1 + policy.max_rmse_increase)
        change = rmse / production_rmse - 1 if production_rmse else 0.0
        figures.update(
            production_version=production.model_version,
            production_rmse=production_rmse,
            production_r2=production.metrics.get("r2"),
            rmse_change=change,
            max_rmse_increase=policy.max_rmse_increase,
        )
        if rmse > limit:
            return Gate(
                "quality",
                False,
                f"{version}: holdout rmse {rmse:.1f} is {change:+.1%} vs production "
                f"{production.model_version}'s {production_rmse:.1f} (tolerance "
                f"+{policy.max_rmse_increase:.0%})",
                figures,
            )
        detail += f", {change:+.1%} rmse vs production {production.model_version}"
    return Gate("quality", True, detail, figures)


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
