"""The promotion pieces that need no server or store: the [promotion] policy, the quality and
staging gates as pure functions, deployment references and the history replayed for rollback."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from artifact_contract import (
    DataRef,
    Example,
    Feature,
    Manifest,
    ModelRef,
    QualityGate,
)

from trainer.deployments import DeploymentError, Deployments, Reference, run_dir_of
from trainer.gates import PromotionPolicy, integrity, quality, staged_and_approved
from trainer.policy import PolicyError

POLICY = Path(__file__).resolve().parents[1] / "policy.toml"
SHA_A = "a" * 64
SHA_B = "b" * 64


def manifest(version: str = "v002", rmse: float = 3000.0, r2: float = 0.88) -> Manifest:
    return Manifest(
        model_version=version,
        created_at="2026-11-26T10:00:00.000Z",
        model=ModelRef(flavor="sklearn", path="model.skops", format="skops"),
        files={"model.skops": SHA_A},
        input_schema=[Feature(name="age", type="integer", min=18, max=69)],
        output={"name": "target"},
        data=DataRef(source="synthetic", sha256=SHA_A, rows=400),
        params={"seed": 1},
        metrics={"rmse": rmse, "mae": rmse * 0.8, "r2": r2, "baseline_rmse": 9000.0},
        quality_gate=QualityGate(
            passed=True, checks=[{"rule": "rmse < 0.95 * baseline_rmse", "passed": True}]
        ),
        libraries={
            "python": "3.11",
            "scikit-learn": "1",
            "numpy": "2",
            "skops": "0",
            "mlflow": "3",
        },
        git=None,
        examples=[Example(input={"age": 40}, prediction=50000.0)],
    )


def policy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(body)
    return path


def reference(version: str, sha: str) -> Reference:
    return Reference(version, f"file:///runs/{version}", sha, "2026-11-26T10:00:00Z", None)


def test_the_checked_in_policy_has_a_valid_promotion_table() -> None:
    loaded = PromotionPolicy.load(POLICY)
    assert loaded.max_rmse > 0 and 0 < loaded.min_r2 < 1 and loaded.max_rmse_increase >= 0
    assert len(loaded.sha256) == 64


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[drift]\nx = 1\n", "no [promotion] table"),
        ("[promotion]\nmax_rmse = 1\nmin_r2 = 0.5\n", "[promotion] missing max_rmse_increase"),
        (
            "[promotion]\nmax_rmse = 1\nmin_r2 = 0.5\nmax_rmse_increase = 0.1\nmax_mae = 3\n",
            "[promotion] unknown max_mae",
        ),
        ("[promotion]\nmax_rmse = 'a'\nmin_r2 = 0.5\nmax_rmse_increase = 0.1\n", "max_rmse must"),
        ("[promotion]\nmax_rmse = 1\nmin_r2 = 0.5\nmax_rmse_increase = -1\n", "must be >= 0"),
    ],
)
def test_a_bad_promotion_table_is_refused_with_one_line(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        PromotionPolicy.load(policy(tmp_path, body))


@pytest.fixture
def rules(tmp_path: Path) -> PromotionPolicy:
    return PromotionPolicy.load(
        policy(tmp_path, "[promotion]\nmax_rmse = 4000\nmin_r2 = 0.8\nmax_rmse_increase = 0.1\n")
    )


def test_quality_passes_a_good_run_and_records_its_figures(rules: PromotionPolicy) -> None:
    gate = quality(manifest(), rules)
    assert gate.passed
    assert gate.figures["rmse"] == 3000.0 and gate.figures["max_rmse"] == 4000.0


def test_quality_refuses_a_run_that_failed_its_training_gate(rules: PromotionPolicy) -> None:
    failed = replace(
        manifest(),
        quality_gate=QualityGate(
            passed=False, checks=[{"rule": "rmse < 0.95 * baseline_rmse", "passed": False}]
        ),
    )
    gate = quality(failed, rules)
    assert not gate.passed
    assert gate.detail == "v002 failed its training gate (rmse < 0.95 * baseline_rmse)"


def test_quality_refuses_past_the_absolute_thresholds(rules: PromotionPolicy) -> None:
    assert "exceeds the policy's max_rmse 4000" in quality(manifest(rmse=4000.5), rules).detail
    assert "below the policy's min_r2 0.8" in quality(manifest(r2=0.79), rules).detail


def test_quality_against_production_allows_the_tolerance_and_no_more(
    rules: PromotionPolicy,
) -> None:
    production = manifest("v001", rmse=3000.0)
    assert quality(manifest(rmse=3299.0), rules, production).passed
    assert quality(manifest(rmse=2000.0), rules, production).passed
    worse = quality(manifest(rmse=3301.0), rules, production)
    assert not worse.passed
    assert worse.detail == (
        "v002: holdout rmse 3301.0 is +10.0% vs production v001's 3000.0 (tolerance +10%)"
    )
    assert worse.figures["production_rmse"] == 3000.0


def test_production_needs_the_same_artifact_in_staging_and_an_approver() -> None:
    assert "nothing is" in staged_and_approved("v002", SHA_B, None, "alice").detail
    other = staged_and_approved("v002", SHA_B, reference("v001", SHA_A), "alice")
    assert not other.passed and "staging holds v001" in other.detail
    for nobody in (None, "", "  "):
        gate = staged_and_approved("v002", SHA_B, reference("v002", SHA_B), nobody)
        assert not gate.passed and "recorded approver" in gate.detail
    assert staged_and_approved("v002", SHA_B, reference("v002", SHA_B), "alice").passed


def test_integrity_gate_reports_a_missing_run_directory(tmp_path: Path) -> None:
    gate = integrity(tmp_path / "v007")
    assert not gate.passed and gate.detail == f"no run directory {tmp_path / 'v007'}"


def test_references_are_written_atomically_and_read_back(tmp_path: Path) -> None:
    deployments = Deployments(tmp_path / "deployments")
    assert deployments.read("production") is None
    path = deployments.write("production", reference("v001", SHA_A))
    assert json.loads(path.read_text()) == {
        "model_version": "v001",
        "artifact_uri": "file:///runs/v001",
        "manifest_sha256": SHA_A,
        "promoted_at": "2026-11-26T10:00:00Z",
        "approved_by": None,
    }
    assert deployments.read("production") == reference("v001", SHA_A)
    assert sorted(p.name for p in path.parent.iterdir()) == ["production.json"]  # no temp left


def test_a_damaged_reference_or_unknown_target_is_a_clear_error(tmp_path: Path) -> None:
    deployments = Deployments(tmp_path)
    (tmp_path / "staging.json").write_text('{"model_version": "v001"}')
    with pytest.raises(DeploymentError, match="a reference holds exactly"):
        deployments.read("staging")
    with pytest.raises(DeploymentError, match="unknown target 'prod'"):
        deployments.read("prod")
    with pytest.raises(DeploymentError, match="only local run directories"):
        run_dir_of("s3://bucket/v001")


def test_lineage_replays_promotions_as_pushes_and_rollbacks_as_pops(tmp_path: Path) -> None:
    deployments = Deployments(tmp_path)
    one, two, three = (reference(f"v00{n}", c * 64) for n, c in ((1, "1"), (2, "2"), (3, "3")))
    events = [
        ("promote", "production", one),
        ("promote", "staging", three),
        ("promote", "production", two),
        ("promote", "production", three),
        ("rollback", "production", two),
    ]
    for event, target, ref in events:
        deployments.append_history({"event": event, "target": target, "to": ref.to_dict()})
    assert deployments.lineage("production") == [one, two]
    assert deployments.lineage("staging") == [three]
    assert len(deployments.history()) == 5
