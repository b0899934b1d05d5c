"""Promotion of schema-3 runs (classification, categorical features) through the CLI, and the
smoke gate's comparison of the service's answer with the manifest's examples, by task.

The run directories are real (a manifest the contract validates, real digests) but their model
file is a placeholder: every gate before smoke reads only the manifest, and the smoke gate is
pointed at a service that does not exist, so reaching it shows that the instant gates passed.
Serving a real v3 model end to end is covered where the inference service can load one."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from artifact_contract import (
    CategoryShares,
    DataRef,
    Example,
    Feature,
    Histogram,
    JSONScalar,
    Manifest,
    ModelRef,
    Profile,
    QualityGate,
)
from artifact_contract.testing import publish_run

from tests.conftest import make_settings, run_cli
from trainer.policy import POLICY_FILE
from trainer.promotion.smoke import SmokeFailure, compare
from trainer.settings import Settings

POLICY = POLICY_FILE
RECORD: dict[str, JSONScalar] = {"plan": "pro", "seats": 3, "trial": None}


def classifier(version: str = "v001", accuracy: float = 0.9, **overrides: Any) -> Manifest:
    metrics = {
        "accuracy": accuracy,
        "balanced_accuracy": accuracy,
        "f1_macro": accuracy,
        "log_loss": 0.3,
        "roc_auc": 0.9,
        "baseline_accuracy": 0.6,
        "baseline_log_loss": 0.67,
    }
    shares = CategoryShares(categories=["no", "yes"], proportions=[0.6, 0.4], unseen=0.0, rows=40)
    fields: dict[str, Any] = {
        "model_version": version,
        "created_at": "2026-11-26T10:00:00.000Z",
        "model": ModelRef(flavor="sklearn", path="model.skops", format="skops"),
        "files": {"model.skops": "a" * 64},
        "input_schema": [
            Feature(name="plan", type="categorical", categories=("basic", "pro")),
            Feature(name="seats", type="integer", min=1, max=50),
            Feature(name="trial", type="boolean", nullable=True),
        ],
        "output": {"name": "churned", "task": "classification", "classes": ["no", "yes"]},
        "data": DataRef(source="churn.csv", sha256="b" * 64, rows=200),
        "params": {"seed": 1},
        "metrics": metrics,
        "quality_gate": QualityGate(passed=True),
        "libraries": {
            "python": "3.11",
            "scikit-learn": "1",
            "numpy": "2",
            "skops": "0",
            "mlflow": "3",
        },
        "git": None,
        "examples": [
            Example(input=RECORD, prediction="yes", probabilities={"no": 0.25, "yes": 0.75}),
            Example(input={**RECORD, "plan": "basic"}, prediction="no"),
        ],
        "profile": Profile(
            bins=4,
            features={
                "plan": CategoryShares(
                    categories=["basic", "pro"], proportions=[0.5, 0.5], unseen=0.0, rows=160
                ),
                "seats": Histogram(edges=[1.0, 5.0, 50.0], proportions=[0.5, 0.5], rows=160),
                "trial": CategoryShares(
                    categories=["false", "true"], proportions=[0.5, 0.5], unseen=0.0, rows=150
                ),
            },
            prediction=shares,
        ),
    }
    fields.update(overrides)
    return Manifest(**fields)


def publish(root_dir: Path, manifest: Manifest) -> str:
    fields = {f.name: getattr(manifest, f.name) for f in dataclasses.fields(manifest)}
    for computed in ("model_version", "files"):
        fields.pop(computed)
    return publish_run(root_dir, **fields).name


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(
        make_settings(tmp_path),
        deployments_dir=tmp_path / "deployments",
        inference_bin=tmp_path / "no-inference-here",
    )


def promote(settings: Settings, version: str, target: str, *extra: str) -> Any:
    """``trainer promote`` without --policy: the policy shipped in the package."""
    argv = ["promote", "--version", version, "--target", target]
    return run_cli([*argv, *extra], settings)


def test_a_classifier_is_judged_on_skill_and_the_instant_gates_run_before_smoke(
    settings: Settings,
) -> None:
    good = publish(settings.artifact_root, classifier(accuracy=0.9))  # skill 0.75
    weak = publish(settings.artifact_root, classifier(accuracy=0.61))  # skill 0.025

    refused = promote(settings, weak, "staging")
    assert refused.code == 3
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: promotion of {weak} to staging refused at gate 2 (quality): {weak}: holdout "
        "accuracy 0.61 has skill 0.025 over baseline_accuracy 0.6, below the policy's min_skill "
        "0.05 ([promotion.classification])"
    )

    # Production without staging: refused at gate 3, and the smoke gate never started.
    straight = promote(settings, good, "production", "--approved-by", "alice")
    assert straight.code == 3
    assert [gate["name"] for gate in straight.summary["gates"]] == [
        "integrity",
        "quality",
        "staging_and_approval",
    ]

    # Staging: integrity and quality pass; the smoke gate is reached (and fails here, with the
    # one line saying why: no service to start).
    staged = promote(settings, good, "staging")
    assert staged.code == 3
    gates = staged.summary["gates"]
    assert [(gate["name"], gate["passed"]) for gate in gates] == [
        ("integrity", True),
        ("quality", True),
        ("smoke", False),
    ]
    assert staged.summary["policy"]["path"] == str(POLICY)
    assert gates[1]["figures"]["task"] == "classification"
    assert gates[1]["figures"]["skill"] == pytest.approx(0.75)
    assert "no inference service at" in gates[2]["detail"]
    assert not settings.deployments_dir.joinpath("staging.json").exists()


ANSWER = {
    "predictions": ["yes", "no"],
    "probabilities": [{"no": 0.25, "yes": 0.75}, {"no": 0.9, "yes": 0.1}],
}


def test_smoke_compares_classifier_examples_by_label_and_recorded_probabilities() -> None:
    manifest = classifier()
    figures = compare(manifest, ANSWER)
    assert figures == {"labels_equal": 2, "max_abs_probability_diff": 0.0}

    wrong_label = {**ANSWER, "predictions": ["yes", "yes"]}
    with pytest.raises(
        SmokeFailure, match='gave class "yes" for example 1, the manifest says "no"'
    ):
        compare(manifest, wrong_label)

    off = {**ANSWER, "probabilities": [{"no": 0.3, "yes": 0.7}, {"no": 0.9, "yes": 0.1}]}
    with pytest.raises(
        SmokeFailure, match=r"gave p\(no\)=0.3 for example 0, the manifest says 0.25"
    ):
        compare(manifest, off)


def test_smoke_labels_must_be_the_same_json_value() -> None:
    numbered = classifier(
        output={"name": "churned", "task": "classification", "classes": [0, 1]},
        examples=[Example(input=RECORD, prediction=1)],
        profile=replace(
            classifier().profile,  # type: ignore[type-var]
            prediction=CategoryShares(
                categories=["0", "1"], proportions=[0.5, 0.5], unseen=0.0, rows=40
            ),
        ),
    )
    assert compare(numbered, {"predictions": [1]})["labels_equal"] == 1
    for lookalike in ("1", True, 1.0):
        with pytest.raises(SmokeFailure, match="for example 0, the manifest says 1"):
            compare(numbered, {"predictions": [lookalike]})


def test_smoke_compares_regression_examples_within_the_tolerance() -> None:
    manifest = classifier(
        output={"name": "price", "task": "regression"},
        metrics={"rmse": 1.0, "mae": 1.0, "r2": 0.9, "baseline_rmse": 3.0},
        examples=[Example(input=RECORD, prediction=250000.5)],
    )
    assert compare(manifest, {"predictions": [250000.5 + 1e-7]})["max_abs_diff"] < 1e-6
    with pytest.raises(
        SmokeFailure, match=r"gave 250001\.5 for example 0, the manifest says 250000\.5"
    ):
        compare(manifest, {"predictions": [250001.5]})
    with pytest.raises(SmokeFailure, match="non-numeric predictions"):
        compare(manifest, {"predictions": ["250000.5"]})
    with pytest.raises(SmokeFailure, match="for 1 rows"):
        compare(manifest, {"predictions": []})
