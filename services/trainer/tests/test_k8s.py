"""`trainer render-k8s`: the infra/k8s templates filled in from a deployment reference, read back
as YAML and validated against the Kubernetes schemas that kubernetes-validate ships (offline)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from artifact_contract import Reference
from kubernetes_validate.utils import ValidationError, resources_from_file, validate

from tests.conftest import CliResult, make_settings, run_cli
from trainer.promotion.deployments import Deployments
from trainer.settings import Settings

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlpipeline-inference:abc1234"
SHA = "0123456789abcdef" * 4
ARTIFACT = "s3://team-models/runs/v004.tar.gz"
# The oldest and newest Kubernetes versions infra/tools' `make lint-infra` checks.
K8S_VERSIONS = ("1.30.0", "1.37.0")


def settings_for(tmp_path: Path) -> Settings:
    return replace(make_settings(tmp_path), deployments_dir=tmp_path / "deployments")


def render(tmp_path: Path, *extra: str, artifact_uri: str = ARTIFACT) -> tuple[CliResult, Path]:
    """Promote a reference to `production` (written by the promotion code), then render it."""
    settings = settings_for(tmp_path)
    reference = Reference("v004", artifact_uri, SHA, "2026-11-30T07:00:00+00:00", "ana")
    Deployments(settings.deployments_dir).write("production", reference)
    out = tmp_path / "k8s"
    argv = ["render-k8s", "--target", "production", "--image", IMAGE, "--out", str(out), *extra]
    return run_cli(argv, settings), out


def by_kind(out: Path) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = {}
    for path in sorted(out.glob("*.yaml")):
        for resource in resources_from_file(str(path)):
            resources[resource["kind"]] = resource
    return resources


def test_rendered_manifests_carry_the_reference_and_pass_the_kubernetes_schemas(
    tmp_path: Path,
) -> None:
    result, out = render(tmp_path)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["manifest_sha256"] == SHA

    resources = by_kind(out)
    assert set(resources) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceAccount",
    }
    for resource in resources.values():
        for version in K8S_VERSIONS:
            validate(resource, version, strict=True)  # raises on any schema violation
        assert resource["metadata"]["name"] == "mlpipeline-inference-production"

    pod = resources["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert container["image"] == IMAGE
    assert env["MODEL_ARTIFACT_URI"] == ARTIFACT
    assert env["MODEL_SHA256"] == SHA
    assert container["readinessProbe"]["httpGet"]["path"] == "/ping"
    assert "livenessProbe" in container
    assert container["resources"]["requests"]["cpu"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    [mount] = container["volumeMounts"]
    assert mount["mountPath"] == "/tmp"
    assert {"name": mount["name"], "emptyDir": {"sizeLimit": "2Gi"}} in pod["volumes"]

    selector = resources["Service"]["spec"]["selector"]
    assert (
        selector.items()
        <= resources["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    )
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "mlpipeline-inference-production")


def test_a_value_with_yaml_syntax_stays_one_string(tmp_path: Path) -> None:
    # Values are written as JSON strings: quotes, colons and newlines cannot add YAML keys.
    tricky = 's3://team-models/runs/v004/"x": 1\n  privileged: true #'
    result, out = render(tmp_path, artifact_uri=tricky)
    assert result.code == 0, result.stderr
    [container] = by_kind(out)["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["MODEL_ARTIFACT_URI"] == tricky
    assert "privileged" not in container


def test_the_schema_check_catches_a_broken_manifest(tmp_path: Path) -> None:
    # Guards the guard: the same validation refuses what a cluster would refuse.
    result, out = render(tmp_path)
    assert result.code == 0, result.stderr
    deployment = by_kind(out)["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] = (
        True
    )
    with pytest.raises(ValidationError, match="readOnlyRootFs"):
        validate(deployment, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize(
    ("artifact_uri", "extra", "message"),
    [
        ("file:///home/ana/runs/v004", (), "is not in S3"),
        (ARTIFACT, ("--name", "Has_Caps"), "--name 'Has_Caps'"),
        (ARTIFACT, ("--templates", "/nonexistent"), "no *.yaml templates"),
        (ARTIFACT, ("--reference", "/nonexistent/production.json"), "cannot read"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(
    tmp_path: Path, artifact_uri: str, extra: tuple[str, ...], message: str
) -> None:
    result, out = render(tmp_path, *extra, artifact_uri=artifact_uri)
    assert result.code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not out.exists()


def test_without_a_promotion_there_is_nothing_to_render(tmp_path: Path) -> None:
    argv = ["render-k8s", "--target", "staging", "--image", IMAGE, "--out", str(tmp_path / "k")]
    result = run_cli(argv, settings_for(tmp_path))
    assert result.code == 1
    assert "nothing promoted to staging yet" in result.stderr
