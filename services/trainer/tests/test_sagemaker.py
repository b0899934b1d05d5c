"""The `train` entrypoint under a temporary SAGEMAKER_BASE_DIR, as SageMaker would start it.

The successful run is the real console script in a subprocess (one per session: it fits, writes
and tracks a model); the failure cases fail before fitting, so most run in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from artifact_contract import IntegrityError, read_manifest, verify_run_dir

from trainer.sagemaker import container as sagemaker
from trainer.sagemaker.container import Layout, SageMakerError, hyperparameter_flags
from trainer.settings import Settings
from trainer.training import data

pytestmark = pytest.mark.slow  # the SageMaker entrypoint end to end on an /opt/ml layout

TRAIN = Path(sys.executable).with_name("train")


@dataclass(frozen=True)
class Job:
    base: Path
    code: int
    stdout: str
    stderr: str


def make_layout(base: Path, hyperparameters: dict[str, str], csv: str | None) -> Layout:
    layout = Layout(base)
    layout.hyperparameters.parent.mkdir(parents=True)
    layout.hyperparameters.write_text(json.dumps(hyperparameters))
    channel = layout.channel("train")
    channel.mkdir(parents=True)
    if csv is not None:
        (channel / "data.csv").write_text(csv)
    return layout


def run_train(base: Path, cwd: Path) -> Job:
    """The `train` console script as SageMaker starts it: no arguments, layout from the env."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SAGEMAKER_BASE_DIR", str(base))
        env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{cwd / 'mlflow.db'}")
        env.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        done = subprocess.run(
            [str(TRAIN)], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
        )
    return Job(base, done.returncode, done.stdout, done.stderr)


def synthetic_csv(rows: int = 300) -> str:
    csv: str = data.synthetic(rows, 1).frame.to_csv(index=False)
    return csv


@pytest.fixture(scope="session")
def job(tmp_path_factory: pytest.TempPathFactory) -> Job:
    base = tmp_path_factory.mktemp("opt-ml")
    # All values are strings, as SageMaker writes them; "\"ridge\"" is the SDK's JSON quoting.
    make_layout(base, {"model": '"ridge"', "alpha": "0.5", "seed": "7"}, synthetic_csv())
    return run_train(base, tmp_path_factory.mktemp("cwd"))


def test_train_writes_a_verifiable_run_at_the_root_of_model(job: Job) -> None:
    assert job.code == 0, job.stderr
    model_dir = job.base / "model"
    manifest = verify_run_dir(model_dir)
    assert (model_dir / "manifest.json").is_file()
    assert (model_dir / "model_version.txt").read_text().strip() == manifest.model_version
    assert not (job.base / "output" / "failure").exists()


def test_hyperparameters_reach_the_training_as_flags(job: Job) -> None:
    manifest = read_manifest(job.base / "model")
    assert manifest.params["alpha"] == 0.5
    assert manifest.params["seed"] == 7
    assert manifest.params["model"] == "ridge"
    assert manifest.data.rows == 300
    assert manifest.data.source.endswith("input/data/train/data.csv")


def test_model_tar_gz_of_model_dir_is_a_valid_artifact(job: Job, tmp_path: Path) -> None:
    # What SageMaker uploads: model/ tarred with its contents at the archive's root.
    tarball = tmp_path / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for path in sorted((job.base / "model").iterdir()):
            archive.add(path, arcname=path.name)
    with tarfile.open(tarball) as archive:
        assert "manifest.json" in archive.getnames()
        extracted = tmp_path / "extracted"
        archive.extractall(extracted, filter="data")  # no traversal, links or devices
    manifest = verify_run_dir(extracted)
    assert manifest.sha256 == read_manifest(job.base / "model").sha256

    (extracted / "model.skops").write_bytes(b"tampered")
    with pytest.raises(IntegrityError):
        verify_run_dir(extracted)


def test_bad_data_leaves_a_readable_failure_and_no_model(tmp_path: Path) -> None:
    lines = synthetic_csv(50).splitlines()
    lines[3] = "forty," + lines[3].split(",", 1)[1]  # a word in the numeric `age` column
    csv = "\n".join(lines) + "\n"
    base = tmp_path / "opt-ml"
    make_layout(base, {}, csv)

    job = run_train(base, tmp_path)

    assert job.code != 0
    failure = (base / "output" / "failure").read_text()
    assert "age" in failure
    assert len(failure.strip().splitlines()) == 1
    assert "Traceback" not in job.stderr
    assert job.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (base / "model").exists() or not any((base / "model").iterdir())


def settings_for(base: Path, tmp_path: Path) -> Settings:
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    return replace(Settings.from_env(env, cwd=tmp_path), sagemaker_base_dir=base)


@pytest.mark.parametrize(
    ("hyperparameters", "files", "expected"),
    [
        ({"alpha": "lots"}, 1, "invalid hyper-parameters: argument --alpha: invalid float"),
        ({"no_such_flag": "1"}, 1, "unrecognized arguments: --no-such-flag"),
        ({"output_dir": "/tmp/x"}, 1, "set by the container layout"),
        ({}, 0, "no .csv or .parquet file"),
        ({}, 2, "2 data files"),
    ],
)
def test_contract_violations_fail_with_a_reason(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    hyperparameters: dict[str, str],
    files: int,
    expected: str,
) -> None:
    base = tmp_path / "opt-ml"
    layout = make_layout(base, hyperparameters, None)
    for index in range(files):
        (layout.channel("train") / f"part-{index}.csv").write_text(synthetic_csv(30))

    code = sagemaker.main([], settings_for(base, tmp_path))

    assert code != 0
    assert expected in layout.failure.read_text()
    assert capsys.readouterr().err.splitlines()[-1].startswith("error: ")
    assert not layout.model_dir.exists() or not any(layout.model_dir.iterdir())


def test_missing_channel_names_the_channel(tmp_path: Path) -> None:
    base = tmp_path / "opt-ml"
    layout = Layout(base)
    assert sagemaker.main([], settings_for(base, tmp_path)) != 0
    assert "'train' channel" in layout.failure.read_text()


def test_hyperparameter_flags_maps_names_and_skips_sdk_keys() -> None:
    flags = hyperparameter_flags(
        {"max_iter": "50", "model": '"hist_gb"', "sagemaker_region": '"eu-west-1"'}
    )
    assert flags == ["--max-iter", "50", "--model", "hist_gb"]
    with pytest.raises(SageMakerError, match="data_uri"):
        hyperparameter_flags({"data_uri": "s3://elsewhere"})


def test_the_trainer_image_runs_this_entrypoint_for_docker_run_image_train() -> None:
    """SageMaker starts the image as `docker run IMAGE train`: with no ENTRYPOINT, `train` is the
    command, i.e. the console script that points here (the image's build itself runs in CI)."""
    package = Path(__file__).resolve().parents[1]
    lines = [line.split(None, 1) for line in (package / "Dockerfile").read_text().splitlines()]
    instructions = [(words[0], words[1]) for words in lines if len(words) == 2]
    assert not [args for keyword, args in instructions if keyword == "ENTRYPOINT"]
    assert [json.loads(args) for keyword, args in instructions if keyword == "CMD"] == [["train"]]
    with (package / "pyproject.toml").open("rb") as handle:
        scripts = tomllib.load(handle)["project"]["scripts"]
    assert scripts["train"] == f"{sagemaker.__name__}:{sagemaker.main.__name__}"
    assert TRAIN.is_file()


def test_your_own_data_trains_through_the_same_function(tmp_path: Path) -> None:
    # target, drop, task and model are hyper-parameters like any other `trainer train` flag.
    base = tmp_path / "opt-ml"
    frame = data.synthetic(200, 3).frame
    labels = frame.assign(
        band=(frame["target"] > frame["target"].median()).map({True: "high", False: "low"})
    )
    layout = make_layout(
        base,
        {"target": "band", "drop": "target", "model": "hist_gb", "max_iter": "20"},
        labels.to_csv(index=False),
    )

    assert sagemaker.main([], settings_for(base, tmp_path)) == 0

    manifest = verify_run_dir(layout.model_dir)
    assert manifest.output == {"name": "band", "task": "classification", "classes": ["high", "low"]}
    assert manifest.params["model"] == "hist_gb" and manifest.params["max_iter"] == 20
