"""`trainer train` end to end: what a user sees after two trainings into one artifact root."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from artifact_contract import ArtifactRoot, read_manifest, sha256_file, verify_run_dir
from mlflow.tracking import MlflowClient

from tests.conftest import TrainedRoot, run_cli

EXPECTED_FILES = {
    "MLmodel",
    "model.skops",
    "conda.yaml",
    "python_env.yaml",
    "requirements.txt",
    "metrics.json",
    "model_version.txt",
}


def test_two_trainings_give_v001_v002_and_latest_v002(two_trainings: TrainedRoot) -> None:
    root = ArtifactRoot(two_trainings.root)
    assert root.versions() == ["v001", "v002"]
    assert root.latest_version() == "v002"
    for version in ("v001", "v002"):
        manifest = verify_run_dir(root.run_dir(version))
        assert manifest.model_version == version
        assert set(manifest.files) == EXPECTED_FILES
        assert (root.run_dir(version) / "model_version.txt").read_text() == version + "\n"
    # Nothing but the runs, the alias and the publish lock is left behind (no staging dirs).
    assert sorted(p.name for p in root.runs_dir.iterdir()) == [".publish.lock", "v001", "v002"]


def test_stdout_is_a_json_summary_and_stderr_tells_progress(two_trainings: TrainedRoot) -> None:
    result = two_trainings.results[1]
    summary = result.summary
    run_dir = Path(summary["run_dir"])
    assert summary["model_version"] == "v002"
    assert run_dir == two_trainings.root / "runs" / "v002"
    assert summary["manifest_sha256"] == sha256_file(run_dir / "manifest.json")
    assert summary["latest"] is True
    assert summary["quality_gate"]["passed"] is True
    assert set(summary["metrics"]) == {"rmse", "mae", "r2", "baseline_rmse"}
    assert summary["mlflow"]["registered_version"] == "2"
    lines = result.stderr.splitlines()
    assert any(line.startswith("trainer: data: 300 rows") for line in lines)
    assert any("published v002" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_latest_model_predicts_the_manifest_examples_exactly(two_trainings: TrainedRoot) -> None:
    import mlflow.pyfunc

    latest = two_trainings.root / "latest"
    manifest = read_manifest(latest)
    assert len(manifest.examples) == 5
    frame = pd.DataFrame([example.input for example in manifest.examples])
    predictions = mlflow.pyfunc.load_model(str(latest)).predict(frame)
    assert [float(value) for value in predictions] == [e.prediction for e in manifest.examples]


def test_manifest_describes_the_run(two_trainings: TrainedRoot) -> None:
    manifest = read_manifest(two_trainings.root / "runs" / "v001")
    assert manifest.feature_names == ["age", "income_k", "tenure_years"]
    assert [f.type for f in manifest.input_schema] == ["integer", "number", "integer"]
    age = manifest.input_schema[0]
    assert age.min is not None and age.max is not None
    assert 18 <= age.min < age.max <= 69
    assert manifest.output == {"name": "target"}
    assert manifest.data.source == "synthetic:seed=7,samples=300"
    assert manifest.data.rows == 300
    assert manifest.params["seed"] == 7
    assert manifest.params["model"] == "ridge"
    assert manifest.model.path == "model.skops"
    assert manifest.model.format == "skops"
    assert manifest.quality_gate.passed is True
    assert set(manifest.libraries) >= {"python", "scikit-learn", "numpy", "skops", "mlflow"}
    assert manifest.git is not None and len(manifest.git.commit) == 40
    assert manifest.profile is not None
    metrics = json.loads((two_trainings.root / "runs" / "v001" / "metrics.json").read_text())
    assert metrics["metrics"] == manifest.metrics
    assert metrics["metrics"]["rmse"] < 0.95 * metrics["metrics"]["baseline_rmse"]


def test_sqlite_store_holds_both_runs_and_both_registered_versions(
    two_trainings: TrainedRoot,
) -> None:
    settings = two_trainings.settings
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.experiment_name)
    assert experiment is not None
    # Artifacts live next to the database, not in the current directory.
    assert experiment.artifact_location.startswith(Path(settings.tracking_uri[10:]).parent.as_uri())
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert [run.data.tags["model_version"] for run in runs] == ["v001", "v002"]
    versions = client.search_model_versions(f"name='{settings.registered_model_name}'")
    by_number = {int(v.version): v for v in versions}
    assert sorted(by_number) == [1, 2]
    for number, summary in zip((1, 2), (r.summary for r in two_trainings.results), strict=True):
        tags = by_number[number].tags
        run_dir = Path(summary["run_dir"])
        manifest = read_manifest(run_dir)
        assert tags["model_version"] == manifest.model_version
        assert tags["manifest_sha256"] == summary["manifest_sha256"]
        assert tags["data_sha256"] == manifest.data.sha256
        assert manifest.git is not None and tags["git_commit"] == manifest.git.commit
        assert by_number[number].run_id == summary["mlflow"]["run_id"]
        run = client.get_run(summary["mlflow"]["run_id"])
        assert run.data.metrics["rmse"] == manifest.metrics["rmse"]
        assert run.data.params["seed"] == "7"
        logged = {item.path for item in client.list_artifacts(run.info.run_id, "model")}
        assert "model/manifest.json" in logged and "model/model.skops" in logged


def test_an_output_dir_that_cannot_be_written_is_one_line(
    tmp_path: Path, two_trainings: TrainedRoot
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(
        ["train", "--samples", "100", "--output-dir", str(blocker)], two_trainings.settings
    )
    assert result.code == 1
    assert result.stderr.splitlines()[-1].startswith(f"error: {blocker}")
    assert "cannot write the run" in result.stderr
    assert "Traceback" not in result.stderr
