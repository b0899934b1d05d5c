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
    QualityGate,
    Reference,
    ReferenceFormatError,
)
from artifact_contract.testing import manifest_fields

import trainer
from trainer.policy import POLICY_FILE, PolicyError
from trainer.promotion.deployments import DeploymentError, Deployments, run_dir_of
from trainer.promotion.gates import PromotionPolicy, integrity, quality, staged_and_approved

POLICY = POLICY_FILE
SHA_A = "a" * 64
SHA_B = "b" * 64


def manifest(
    version: str = "v002",
    rmse: float = 3000.0,
    r2: float = 0.88,
    baseline_rmse: float = 9000.0,
) -> Manifest:
    """A regression manifest as schema_version 2 wrote it (no task in its output)."""
    return Manifest(
        **manifest_fields(
            version,
            files={"model.skops": SHA_A},
            input_schema=[Feature(name="age", type="integer", min=18, max=69)],
            output={"name": "target"},
            data=DataRef(source="synthetic", sha256=SHA_A, rows=400),
            params={"seed": 1},
            metrics={"rmse": rmse, "mae": rmse * 0.8, "r2": r2, "baseline_rmse": baseline_rmse},
            quality_gate=QualityGate(
                passed=True, checks=[{"rule": "rmse < 0.95 * baseline_rmse", "passed": True}]
            ),
            git=None,
            examples=[Example(input={"age": 40}, prediction=50000.0)],
        )
    )


def classifier(version: str = "v002", accuracy: float = 0.9, baseline: float = 0.6) -> Manifest:
    """A classification manifest's fields as schema_version 3 writes them."""
    metrics = {"accuracy": accuracy, "balanced_accuracy": accuracy, "baseline_accuracy": baseline}
    output = {"name": "label", "task": "classification", "classes": ["no", "yes"]}
    return replace(manifest(version), output=output, metrics=metrics)


def policy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(body)
    return path


def reference(version: str, sha: str) -> Reference:
    return Reference(version, f"file:///runs/{version}", sha, "2026-11-26T10:00:00Z", None)


RULES = """
[promotion.regression]
metric = "rmse"
direction = "lower"
baseline = "baseline_rmse"
min_skill = 0.05
max_skill_drop = 0.05

[promotion.classification]
metric = "accuracy"
direction = "higher"
baseline = "baseline_accuracy"
min_skill = 0.05
max_skill_drop = 0.05
"""


def test_the_checked_in_policy_is_relative_for_both_tasks_with_no_absolute_limits() -> None:
    assert POLICY.parent == Path(trainer.__file__).parent  # package data: in the image too
    loaded = PromotionPolicy.load(POLICY)
    regression, classification = loaded.rule("regression"), loaded.rule("classification")
    assert (regression.metric, regression.direction, regression.baseline) == (
        "rmse",
        "lower",
        "baseline_rmse",
    )
    assert (classification.metric, classification.direction) == ("accuracy", "higher")
    assert classification.baseline == "baseline_accuracy"
    # A new data set is judged on merit: nothing in the shipped file is in a data set's units.
    assert loaded.models == {} and not regression.maximum and not classification.minimum
    assert len(loaded.sha256) == 64


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[drift]\nx = 1\n", "no [promotion] table"),
        (RULES.split("[promotion.classification]")[0], "[promotion] missing classification"),
        (
            "[promotion]\nmax_rmse = 4000\n" + RULES,
            "[promotion] unknown max_rmse (absolute thresholds such as max_rmse now live in a "
            '[promotion.models."NAME"] table',
        ),
        (RULES.replace('direction = "lower"', 'direction = "down"'), "direction must be"),
        (
            RULES.replace(
                "min_skill = 0.05\nmax_skill_drop = 0.05\n\n[promotion.c",
                "min_skill = 1\nmax_skill_drop = 0.05\n\n[promotion.c",
            ),
            "min_skill must be < 1",
        ),
        (
            RULES.replace("max_skill_drop = 0.05\n\n", "max_skill_drop = -0.1\n\n"),
            "max_skill_drop must be >= 0",
        ),
        (
            RULES.replace('metric = "rmse"', "metric = 3"),
            "[promotion.regression] metric must be a str",
        ),
        (RULES + '[promotion.models."m"]\nmax = { rmse = "a" }\n', "max.rmse must be a number"),
        (
            RULES + '[promotion.models."m"]\nmax_rmse = 1\n',
            '[promotion.models."m"] unknown max_rmse',
        ),
    ],
)
def test_a_bad_promotion_table_is_refused_with_one_line(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        PromotionPolicy.load(policy(tmp_path, body))
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{tmp_path / 'policy.toml'}: ")


@pytest.fixture
def rules(tmp_path: Path) -> PromotionPolicy:
    house = '[promotion.models."house-prices"]\nmax = { rmse = 4000 }\nmin = { r2 = 0.8 }\n'
    strict = '[promotion.models."strict"]\nmin_skill = 0.5\nmax_skill_drop = 0.0\n'
    return PromotionPolicy.load(policy(tmp_path, RULES + house + strict))


def test_quality_passes_an_old_regression_manifest_on_skill_and_records_its_figures(
    rules: PromotionPolicy,
) -> None:
    gate = quality(manifest(rmse=3000.0, baseline_rmse=9000.0), rules)
    assert gate.passed, gate.detail
    assert gate.detail == "v002: rmse 3000, skill 0.667 over baseline_rmse >= 0.05"
    figures = gate.figures
    assert (figures["task"], figures["metric"], figures["direction"]) == (
        "regression",
        "rmse",
        "lower",
    )
    assert figures["rmse"] == 3000.0 and figures["baseline_rmse"] == 9000.0
    assert figures["skill"] == pytest.approx(2 / 3)
    assert figures["policy"] == "[promotion.regression]"


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


def test_quality_judges_any_scale_relative_to_the_runs_own_baseline(
    rules: PromotionPolicy,
) -> None:
    # House prices in dollars: an rmse of 40,000 is good when the mean predictor's is 90,000.
    assert quality(manifest(rmse=40_000.0, baseline_rmse=90_000.0), rules).passed
    # ... and 0.3 is bad when the mean predictor's is 0.31 (skill 0.032 < 0.05).
    weak = quality(manifest(rmse=0.3, baseline_rmse=0.31), rules)
    assert not weak.passed
    assert weak.detail == (
        "v002: holdout rmse 0.3 has skill 0.032 over baseline_rmse 0.31, below the policy's "
        "min_skill 0.05 ([promotion.regression])"
    )


def test_quality_judges_a_classifier_on_accuracy_over_its_majority_class(
    rules: PromotionPolicy,
) -> None:
    good = quality(classifier(accuracy=0.9, baseline=0.6), rules)
    assert good.passed and good.figures["skill"] == pytest.approx(0.75)
    assert good.figures["task"] == "classification" and good.figures["metric"] == "accuracy"
    # Imbalanced classes: 96 % accuracy over a 95 % majority class removes a fifth of its errors.
    assert quality(classifier(accuracy=0.96, baseline=0.95), rules).passed
    majority = quality(classifier(accuracy=0.95, baseline=0.95), rules)
    assert not majority.passed
    assert "holdout accuracy 0.95 has skill 0.000 over baseline_accuracy 0.95" in majority.detail
    perfect = quality(classifier(accuracy=1.0, baseline=1.0), rules)
    assert not perfect.passed and "already perfect" in perfect.detail


def test_quality_refuses_a_manifest_without_the_policys_metric(rules: PromotionPolicy) -> None:
    gate = quality(replace(manifest(), metrics={"rmse": 3000.0}), rules)
    assert not gate.passed
    assert gate.detail == (
        "v002: the manifest has no baseline_rmse metric (policy [promotion.regression])"
    )


def test_absolute_limits_apply_to_their_registered_model_only(rules: PromotionPolicy) -> None:
    assert quality(manifest(rmse=4000.5), rules).passed  # no limits for other models
    over = quality(manifest(rmse=4000.5), rules, model_name="house-prices")
    assert not over.passed
    assert over.detail == (
        "v002: holdout rmse 4000.5 is not <= the policy's max.rmse 4000 "
        '([promotion.regression] + [promotion.models."house-prices"])'
    )
    low = quality(manifest(r2=0.79), rules, model_name="house-prices")
    assert not low.passed and "holdout r2 0.79 is not >= the policy's min.r2 0.8" in low.detail
    fine = quality(manifest(rmse=3000.0, r2=0.85), rules, model_name="house-prices")
    assert fine.passed
    assert fine.detail.endswith("r2 0.85 >= 0.8, rmse 3000 <= 4000")
    assert fine.figures["max.rmse"] == 4000.0
    # A model's table also overrides the relative keys.
    assert not quality(manifest(rmse=5000.0), rules, model_name="strict").passed


def test_quality_against_production_allows_the_skill_tolerance_and_no_more(
    rules: PromotionPolicy,
) -> None:
    production = manifest("v001", rmse=3000.0, baseline_rmse=9000.0)  # skill 0.667
    assert quality(manifest(rmse=3400.0), rules, production).passed  # skill 0.622
    better = quality(manifest(rmse=2000.0), rules, production)
    assert better.passed and better.detail.endswith(", skill +0.111 vs production v001")
    worse = quality(manifest(rmse=3500.0), rules, production)  # skill 0.611: 0.056 below
    assert not worse.passed
    assert worse.detail == (
        "v002: skill 0.611 (rmse 3500) is 0.056 below production v001's 0.667 "
        "(rmse 3000; tolerance 0.05)"
    )
    assert worse.figures["production_skill"] == pytest.approx(2 / 3)
    assert worse.figures["metric_change"] == pytest.approx(3500 / 3000 - 1)
    # Skill is relative to each run's own holdout baseline: new data with a harder holdout
    # (higher baseline, higher rmse) is judged on merit, not on the raw rmse.
    harder = manifest(rmse=3600.0, baseline_rmse=10_800.0)
    assert quality(harder, rules, production).passed
    # No tolerance at all for the "strict" model.
    assert not quality(manifest(rmse=3001.0), rules, production, "strict").passed


def test_quality_refuses_to_compare_across_tasks(rules: PromotionPolicy) -> None:
    gate = quality(classifier(), rules, manifest("v001"))
    assert not gate.passed
    assert gate.detail == (
        "v002 is a classification model, production v001 a regression model: one registered "
        "model serves one task"
    )
    gone = quality(manifest(), rules, replace(manifest("v001"), metrics={"rmse": 1.0}))
    assert not gone.passed
    assert gone.detail == (
        "production v001 has no baseline_rmse metric (policy [promotion.regression])"
    )


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
    path = Path(deployments.write("production", reference("v001", SHA_A)))
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
    with pytest.raises(ReferenceFormatError, match="a reference holds exactly"):
        deployments.read("staging")
    with pytest.raises(DeploymentError, match="unknown target 'prod'"):
        deployments.read("prod")
    with pytest.raises(DeploymentError, match=r"only run directories \(file://\) and runs in S3"):
        run_dir_of("gs://bucket/v001")


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
