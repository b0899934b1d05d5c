"""Issue 5's "done when", end to end: real trainings into a real SQLite MLflow store, real
`trainer promote` / `rollback` / `retrain` commands, and the real inference service started as a
gunicorn process by the smoke gate (and by the tests, from a deployment reference).

The trainings are the slow part: they are made once per session (``trained_template``), and each
test copies them into its own world and builds the state it needs (``in_production``), so a test
runs alone, under ``-k``, or in any order.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from artifact_contract import read_manifest, sha256_file, write_manifest
from artifact_contract.startup import parse_refusal

from tests.servers import healthy_server
from trainer.cli import main
from trainer.policy import POLICY_FILE
from trainer.processes import free_port
from trainer.promotion.smoke import smoke
from trainer.settings import Settings, find_repo_root
from trainer.training import data

REPO_ROOT = find_repo_root(Path(__file__))
POLICY = POLICY_FILE
INFERENCE_BIN = REPO_ROOT / "services" / "inference" / ".venv" / "bin" / "inference"
SAMPLES = "400"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not INFERENCE_BIN.is_file(),
        reason="the inference service's venv is not set up (make setup)",
    ),
]


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def record(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.stdout)
        return parsed


def trainer(settings: Settings, *argv: str) -> Result:
    """``trainer ...`` in this process, capturing what a user would see."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv), settings=settings)
    return Result(code, out.getvalue(), err.getvalue())


def promote(settings: Settings, version: str, target: str, *extra: str) -> Result:
    return trainer(
        settings,
        "promote",
        "--version",
        version,
        "--target",
        target,
        "--policy",
        str(POLICY),
        *extra,
    )


@dataclass(frozen=True)
class World:
    settings: Settings
    tmp: Path

    @property
    def deployments(self) -> Path:
        return self.settings.deployments_dir

    def run_dir(self, version: str) -> Path:
        return self.settings.artifact_root / "runs" / version

    def reference(self, target: str) -> dict[str, Any] | None:
        path = self.deployments / f"{target}.json"
        if not path.exists():
            return None
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded

    def history(self) -> list[dict[str, Any]]:
        path = self.deployments / "history.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def alias(self, alias: str) -> str | None:
        """The ``model_version`` tag of the registered version the alias points at."""
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        uri = self.settings.tracking_uri
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        try:
            found = client.get_model_version_by_alias(self.settings.registered_model_name, alias)
        except MlflowException:
            return None
        return str(found.tags["model_version"])

    def tags(self, model_version: str) -> dict[str, str]:
        """The promotion tags on the registered version of ``model_version``."""
        from mlflow.tracking import MlflowClient

        uri = self.settings.tracking_uri
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        name = self.settings.registered_model_name
        (found,) = client.search_model_versions(
            f"name = '{name}' and tags.model_version = '{model_version}'"
        )
        return {
            key: value
            for key, value in found.tags.items()
            if key == "promoted_to" or key.startswith(("staging.", "production."))
        }

    def state(self) -> tuple[Any, ...]:
        return (
            self.reference("staging"),
            self.reference("production"),
            self.alias("staging"),
            self.alias("production"),
            len(self.history()),
        )


def world_settings(tmp: Path) -> Settings:
    return replace(
        Settings.from_env({}, cwd=REPO_ROOT),
        tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}",
        experiment_name="promote-tests",
        registered_model_name="promote-tests",
        artifact_root=tmp / "artifacts",
        deployments_dir=tmp / "deployments",
        inference_bin=INFERENCE_BIN,
    )


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v001, v002: good runs (different seeds). v003: fails its training gate. v004: passes the
    policy's absolute thresholds but is ~18 % worse than v001 on the same data (tolerance 10 %).
    Nothing is promoted. Tests copy it (``world``) and never change it."""
    tmp = tmp_path_factory.mktemp("promote-template")
    settings = world_settings(tmp)
    trainings = [
        (["--seed", "1"], 0),
        (["--seed", "2"], 0),
        (["--seed", "3", "--alpha", "1000000"], 3),
        (["--seed", "1", "--alpha", "60"], 0),
    ]
    for flags, expected in trainings:
        result = trainer(settings, "train", "--samples", SAMPLES, *flags)
        assert result.code == expected, result.stderr
    return tmp


@pytest.fixture
def world(trained_template: Path, tmp_path: Path) -> World:
    """A private copy of the trained template: its own store, run directories and deployments.
    (MLflow's artifact location stays the template's: a retrain logs a new run-id directory
    there, which no other test reads.)"""
    tmp = tmp_path / "world"
    shutil.copytree(trained_template, tmp, symlinks=True)
    return World(world_settings(tmp), tmp)


def in_production(world: World, version: str = "v001", approver: str = "alice") -> None:
    """Promote ``version`` to staging, then production, through every gate."""
    staged = promote(world.settings, version, "staging")
    assert staged.code == 0, staged.stderr
    produced = promote(world.settings, version, "production", "--approved-by", approver)
    assert produced.code == 0, produced.stderr


def test_promote_v001_to_staging_then_production(world: World) -> None:
    staged = promote(world.settings, "v001", "staging")
    assert staged.code == 0, staged.stderr
    assert [gate["name"] for gate in staged.record["gates"]] == ["integrity", "quality", "smoke"]
    produced = promote(world.settings, "v001", "production", "--approved-by", "alice")
    assert produced.code == 0, produced.stderr
    assert "gate 3 staging_and_approval: passed" in produced.stderr
    assert [gate["name"] for gate in produced.record["gates"]] == [
        "integrity",
        "quality",
        "staging_and_approval",
        "smoke",
    ]

    reference = world.reference("production")
    assert reference is not None
    assert reference["manifest_sha256"] == sha256_file(world.run_dir("v001") / "manifest.json")
    assert reference["model_version"] == "v001"
    assert reference["approved_by"] == "alice"
    assert Path(reference["artifact_uri"].removeprefix("file://")) == world.run_dir("v001")
    assert world.alias("production") == "v001"
    assert world.alias("staging") == "v001"
    tags = world.tags("v001")
    assert tags["promoted_to"] == "staging,production"
    assert tags["production.approved_by"] == "alice"
    assert tags["production.policy_sha256"] == sha256_file(POLICY)
    assert tags["production.promoted_at"] == reference["promoted_at"]

    last = world.history()[-1]
    assert (last["event"], last["target"], last["from_version"], last["to_version"]) == (
        "promote",
        "production",
        None,
        "v001",
    )
    smoke = next(gate for gate in last["gates"] if gate["name"] == "smoke")
    assert smoke["passed"] and smoke["figures"]["examples"] == 5
    assert last["policy"]["sha256"] == sha256_file(POLICY)


def test_refusals_leave_references_and_aliases_unchanged(world: World) -> None:
    in_production(world)
    before = world.state()

    straight = promote(world.settings, "v002", "production", "--approved-by", "alice")
    assert straight.code == 3
    assert straight.stderr.strip().splitlines()[-1] == (
        "error: promotion of v002 to production refused at gate 3 (staging_and_approval): "
        "v002 is not in staging (staging holds v001); promote it to staging first"
    )
    # The instant gates run first: a refusal there never starts the inference service.
    assert [gate["name"] for gate in straight.record["gates"]] == [
        "integrity",
        "quality",
        "staging_and_approval",
    ]

    failed = promote(world.settings, "v003", "staging")
    assert failed.code == 3
    assert "refused at gate 2 (quality): v003 failed its training gate" in failed.stderr
    assert failed.record["refused_at"] == "quality"

    worse = promote(world.settings, "v004", "production", "--approved-by", "alice")
    assert worse.code == 3
    last_line = worse.stderr.strip().splitlines()[-1]
    assert "refused at gate 2 (quality)" in last_line
    assert "below production v001's" in last_line and "tolerance 0.05" in last_line
    quality = worse.record["gates"][-1]["figures"]
    assert quality["skill_change"] < -0.05 and quality["production_version"] == "v001"
    assert quality["metric_change"] > 0.1  # rmse more than 10 % worse

    missing = promote(world.settings, "v009", "staging")
    assert missing.code == 3
    assert "refused at gate 1 (integrity): no run directory" in missing.stderr

    assert world.state() == before


def test_v002_through_staging_to_production_then_rollback(world: World) -> None:
    in_production(world)
    assert promote(world.settings, "v002", "staging").code == 0
    produced = promote(world.settings, "v002", "production", "--approved-by", "bob")
    assert produced.code == 0, produced.stderr
    assert world.alias("production") == "v002"
    assert produced.record["from_version"] == "v001"

    rolled = trainer(world.settings, "rollback", "--target", "production", "--approved-by", "carol")
    assert rolled.code == 0, rolled.stderr
    reference = world.reference("production")
    assert reference is not None
    assert reference["model_version"] == "v001"
    assert reference["manifest_sha256"] == sha256_file(world.run_dir("v001") / "manifest.json")
    assert reference["approved_by"] == "alice"  # the artifact's own approval
    assert world.alias("production") == "v001"
    # Only v001 claims production in MLflow now; v002 keeps what it still holds (staging).
    assert world.tags("v001")["promoted_to"] == "production"
    assert world.tags("v001")["production.approved_by"] == "alice"
    demoted = world.tags("v002")
    assert demoted["promoted_to"] == "staging"
    assert not [key for key in demoted if key.startswith("production.")], demoted
    assert demoted["staging.approved_by"] == ""
    last = world.history()[-1]
    assert (last["event"], last["from_version"], last["to_version"]) == ("rollback", "v002", "v001")
    assert last["approved_by"] == "carol"
    assert [gate["name"] for gate in last["gates"]] == ["integrity", "smoke"]

    # Nothing earlier than v001: a second rollback says so and changes nothing.
    before = world.state()
    again = trainer(world.settings, "rollback", "--target", "production")
    assert again.code == 1
    assert "nothing to roll back to: v001 is the first production reference" in again.stderr
    assert world.state() == before

    # `make serve TARGET=production` serves v001.
    with serving_with_make(world, "production") as (process, url):
        health = json.loads(_get(url + "/health"))
        assert process.poll() is None
        assert health["model_version"] == "v001"
        assert health["manifest_sha256"] == reference["manifest_sha256"]


def test_retrain_promotes_a_good_candidate_to_staging_and_prints_the_comparison(
    world: World,
) -> None:
    in_production(world)
    frame = data.synthetic(400, 5).frame
    csv = world.tmp / "new-data.csv"
    frame.to_csv(csv, index=False)
    common = ["retrain", "--data-uri", str(csv), "--policy", str(POLICY)]

    good = trainer(world.settings, *common)
    assert good.code == 0, good.stderr
    assert "retrain: candidate v005 vs production v001" in good.stderr
    assert good.record["outcome"] == "v005 promoted to staging"
    assert good.record["production"]["model_version"] == "v001"
    assert world.reference("staging") == good.record["promotion"]["to"]
    assert world.alias("staging") == "v005"

    before = world.state()
    bad = trainer(world.settings, *common, "--train-args", "--alpha 200")
    assert bad.code == 3
    assert "retrain: candidate v006 vs production v001" in bad.stderr
    assert "v006 not promoted" in bad.record["outcome"]
    assert "refused at gate 2 (quality)" in bad.stderr.strip().splitlines()[-1]
    assert world.state() == before


def test_the_smoke_gate_fails_when_the_server_refuses_or_predicts_otherwise(
    world: World, tmp_path: Path
) -> None:
    source = world.run_dir("v002")
    manifest = read_manifest(source)

    refused = smoke(INFERENCE_BIN, source, manifest, "0" * 64)
    assert not refused.passed
    assert "exited with status 2 before it was ready" in refused.detail
    assert "MODEL_SHA256" in refused.detail  # the service's own refusal line

    # A consistent artifact (digests verify) whose recorded example is not what the model says.
    altered = tmp_path / "v002"
    shutil.copytree(source, altered)
    wrong = float(manifest.examples[0].prediction or 0.0) + 1.0
    examples = [replace(manifest.examples[0], prediction=wrong), *manifest.examples[1:]]
    digest = write_manifest(altered, replace(manifest, examples=examples))
    mismatch = smoke(INFERENCE_BIN, altered, read_manifest(altered), digest)
    # The service checks its examples at start-up too; either way the gate names the example.
    assert not mismatch.passed
    assert str(wrong) in mismatch.detail


def test_a_changed_artifact_cannot_be_served_under_its_promoted_name(world: World) -> None:
    in_production(world)
    reference = world.reference("production")
    assert reference is not None
    model_file = world.run_dir(reference["model_version"]) / "model.skops"
    content = bytearray(model_file.read_bytes())
    content[len(content) // 2] ^= 0x01
    model_file.write_bytes(bytes(content))

    process = subprocess.run(
        make_serve(world, "production", port=free_port()),
        env=make_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode != 0
    lines = (process.stdout + process.stderr).splitlines()
    refusals = [refusal for line in lines if (refusal := parse_refusal(line)) is not None]
    assert len(refusals) == 1, process.stdout + process.stderr
    assert "model.skops" in refusals[0].message

    # A new promotion of it refuses at the integrity gate too.
    promoted = promote(world.settings, reference["model_version"], "staging")
    assert promoted.code == 3
    assert "refused at gate 1 (integrity)" in promoted.stderr


def test_make_serve_without_a_reference_stops_with_one_line(tmp_path: Path) -> None:
    process = subprocess.run(
        [*make_serve_in(tmp_path, "staging", port=free_port())],
        env=make_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode != 0
    refusals = [
        json.loads(line) for line in process.stdout.splitlines() if "startup_refused" in line
    ]
    assert len(refusals) == 1, process.stdout + process.stderr
    assert refusals[0]["message"] == (
        f"MODEL_REFERENCE {tmp_path}/staging.json: cannot read (No such file or directory)"
    )


# --- `make serve TARGET=...`: the inference service started from a deployment reference ------


def make_serve_in(deployments: Path, target: str, port: int) -> list[str]:
    return [
        "make",
        "--no-print-directory",
        "-C",
        str(REPO_ROOT / "services" / "inference"),
        "serve",
        f"TARGET={target}",
        f"DEPLOYMENTS={deployments}",
        "HOST=127.0.0.1",
        f"PORT={port}",
        "WORKERS=1",
    ]


def make_serve(world: World, target: str, port: int) -> list[str]:
    return make_serve_in(world.deployments, target, port)


def make_environment() -> dict[str, str]:
    """The caller's environment without what an enclosing `make test` or a shell's MODEL_*
    settings would add: the target must get the model from the reference alone."""
    dropped = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
    return {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith("MODEL_")
    }


@contextlib.contextmanager
def serving_with_make(world: World, target: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with healthy_server(make_serve(world, target, port), make_environment(), url) as process:
        yield process, url


def _get(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return str(response.read().decode())
