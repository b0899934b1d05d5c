"""`trainer drift` end to end on real files.

A real reference for the drift tests without a full training run: the seed's synthetic data,
a real fitted ridge model, its real profile, published as a schema-2 run directory (the model
file itself is a placeholder: drift reads only the manifest)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from artifact_contract import (
    DataRef,
    Feature,
    sha256_file,
)
from artifact_contract.prediction_log import format_record
from artifact_contract.testing import publish_run
from PIL import Image

from tests.conftest import fit_synthetic
from trainer.cli import main
from trainer.policy import POLICY_FILE
from trainer.settings import Settings
from trainer.training import data
from trainer.training.profile import reference_profile

POLICY = POLICY_FILE


@dataclass(frozen=True)
class Reference:
    root: Path
    estimator: Any
    version: str


def publish_reference(root_dir: Path, with_profile: bool = True) -> Reference:
    dataset = data.synthetic(2000, 42)
    fitted = fit_synthetic(2000, 42)
    estimator = fitted.estimator
    profile = reference_profile(estimator, fitted.split, fitted.schema) if with_profile else None
    run_dir = publish_run(
        root_dir,
        input_schema=[
            Feature(name=name, type=kind, min=0.0, max=200.0) for name, kind in data.FEATURES
        ],
        output={"name": data.TARGET},
        data=DataRef(source=dataset.source, sha256=dataset.sha256, rows=dataset.rows),
        metrics={},
        git=None,
        examples=[],
        profile=profile,
    )
    version = run_dir.name
    return Reference(root=root_dir, estimator=estimator, version=version)


def served_rows(samples: int, seed: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    """Rows drawn like the training data (another seed), optionally shifted per feature."""
    frame = data.synthetic(samples, seed).frame[list(data.FEATURE_NAMES)].copy()
    for name, delta in (shift or {}).items():
        frame[name] = frame[name] + delta
    return frame


def write_log(path: Path, rows: pd.DataFrame, estimator: Any, version: str) -> Path:
    """A prediction log as the inference service writes it to stdout: prediction records
    interleaved with request-log lines and a non-JSON line."""
    predictions = np.asarray(estimator.predict(rows), dtype="float64")
    types = dict(data.FEATURES)
    with path.open("a", encoding="utf-8") as log:
        log.write("[2026-11-26 10:00:00 +0000] [1] [INFO] Booting worker with pid: 1\n")
        for index, (record, prediction) in enumerate(
            zip(rows.to_dict("records"), predictions, strict=True)
        ):
            features = {
                str(name): int(value) if types[str(name)] == "integer" else float(value)
                for name, value in record.items()
            }
            log.write(
                format_record(
                    "2026-11-26T10:00:00.000Z", f"r{index}", version, features, float(prediction)
                )
            )
            log.write(json.dumps({"event": "request", "status": 200, "path": "/predict"}) + "\n")
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return publish_reference(tmp_path_factory.mktemp("artifacts"))


def drift(tmp_path: Path, reference: Reference, log: Path, *extra: str) -> tuple[int, Path]:
    settings = Settings.from_env(environ={}, cwd=tmp_path)
    out = tmp_path / "report"
    argv = ["drift", "--log", str(log), "--artifact-root", str(reference.root)]
    argv += ["--policy", str(POLICY), "--out", str(out), *extra]
    return main(argv, settings=settings), out


def test_no_drift_on_rows_drawn_like_the_training_data(
    tmp_path: Path, reference: Reference, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "p.jsonl", served_rows(400, seed=7), reference.estimator, "v001")
    code, out = drift(tmp_path, reference, log)
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((out / "report.json").read_text())
    assert report["drifted"] == []
    assert report["model_version"] == "v001"
    manifest_file = reference.root / "runs" / "v001" / "manifest.json"
    assert report["manifest_sha256"] == sha256_file(manifest_file)
    assert report["rows"]["used"] == 400
    assert set(report["scores"]) == {"age", "income_k", "tenure_years", "prediction"}
    assert all(score["psi"] < 0.1 for score in report["scores"].values())
    assert "DRIFT" not in printed
    assert re.search(r"^income_k\s+\d\.\d{4}\s+0\.25\s+ok$", printed, re.MULTILINE)


def test_a_shifted_feature_is_named_and_fails_the_check(
    tmp_path: Path, reference: Reference, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = served_rows(400, seed=7, shift={"income_k": 25.0})
    log = write_log(tmp_path / "p.jsonl", rows, reference.estimator, "v001")
    code, out = drift(tmp_path, reference, log, "--prom-file", str(tmp_path / "drift.prom"))
    printed = capsys.readouterr().out
    assert code == 4
    report = json.loads((out / "report.json").read_text())
    assert "income_k" in report["drifted"]
    assert "age" not in report["drifted"] and "tenure_years" not in report["drifted"]
    assert report["scores"]["income_k"]["psi"] > 1.0
    assert re.search(r"^income_k\s+[\d.]+\s+0\.25\s+DRIFT$", printed, re.MULTILINE)
    assert "DRIFT: income_k" in printed
    prom = (tmp_path / "drift.prom").read_text()
    assert re.search(
        r'^mlpipeline_drift_psi\{model_version="v001",feature="income_k"\} \d', prom, re.M
    )
    assert 'mlpipeline_drift_psi_threshold{model_version="v001"} 0.25' in prom


def test_the_chart_is_a_png_with_a_panel_per_feature(tmp_path: Path, reference: Reference) -> None:
    log = write_log(tmp_path / "p.jsonl", served_rows(300, seed=3), reference.estimator, "v001")
    code, out = drift(tmp_path, reference, log)
    assert code == 0
    data = (out / "chart.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(out / "chart.png") as image:
        image.verify()
    with Image.open(out / "chart.png") as image:
        width, height = image.size
        assert width >= 1000 and height >= 600  # 2 x 2 panels
        # Both bar colours are drawn: reference (blue) and observed (orange).
        rgb = np.asarray(image.convert("RGB")).reshape(-1, 3)
        colours = {tuple(int(c) for c in pixel) for pixel in np.unique(rgb, axis=0)}
    assert (0x4C, 0x72, 0xB0) in colours and (0xDD, 0x84, 0x52) in colours


def test_rows_of_other_versions_are_left_out(tmp_path: Path, reference: Reference) -> None:
    log = tmp_path / "p.jsonl"
    write_log(log, served_rows(300, seed=5), reference.estimator, "v001")
    # v000's rows are shifted: if they were counted, income_k would drift.
    write_log(log, served_rows(300, seed=6, shift={"income_k": 40}), reference.estimator, "v000")
    code, out = drift(tmp_path, reference, log, "--version", "v001")
    assert code == 0
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert rows["used"] == 300
    assert rows["other_versions"] == {"v000": 300}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no prediction records in 0 line(s)"),
        ('{"event": "request", "status": 200}\nnot json\n', "no prediction records in 2 line(s)"),
        (
            '{"event": "prediction", "model_version": "v001", "features": {}, "prediction": 1}\n',
            "all 1 prediction record(s) are malformed (line 1: feature 'age' missing)",
        ),
    ],
)
def test_a_log_without_usable_rows_is_a_clear_error(
    tmp_path: Path,
    reference: Reference,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    log = tmp_path / "p.jsonl"
    log.write_text(content)
    code, out = drift(tmp_path, reference, log)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_log_of_another_version_only_says_which_versions_it_holds(
    tmp_path: Path, reference: Reference, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "p.jsonl", served_rows(150, seed=5), reference.estimator, "v007")
    code, out = drift(tmp_path, reference, log)
    assert code == 1
    assert "no prediction records for v001 (found v007: 150)" in capsys.readouterr().err
    assert not out.exists()


def test_a_manifest_without_a_profile_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = publish_reference(tmp_path / "old", with_profile=False)
    log = write_log(tmp_path / "p.jsonl", served_rows(150, seed=5), old.estimator, "v001")
    code, out = drift(tmp_path, old, log)
    err = capsys.readouterr().err
    assert code == 1
    assert "v001: the manifest has no training profile (schema_version 1)" in err
    assert not out.exists()


def test_too_few_rows_to_judge_is_a_clear_error(
    tmp_path: Path, reference: Reference, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "p.jsonl", served_rows(20, seed=5), reference.estimator, "v001")
    code, _ = drift(tmp_path, reference, log)
    assert code == 1
    assert (
        "only 20 sampled row(s) for v001; the policy needs at least 100" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--log", "missing.jsonl"], "missing.jsonl: no such prediction log"),
        (["--version", "v042"], "v042: no such run in"),
        (["--version", "latest"], "--version 'latest': must look like v001"),
    ],
)
def test_bad_arguments_are_clear_errors(
    tmp_path: Path,
    reference: Reference,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    log = write_log(tmp_path / "p.jsonl", served_rows(150, seed=5), reference.estimator, "v001")
    code, _ = drift(tmp_path, reference, log, *argv)
    assert code == 1
    assert message in capsys.readouterr().err


def test_a_broken_policy_is_a_clear_error(
    tmp_path: Path, reference: Reference, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "p.jsonl", served_rows(150, seed=5), reference.estimator, "v001")
    policy = tmp_path / "policy.toml"
    policy.write_text("[drift]\nfeature_psi = 0.2\nprediction_psi = true\nmin_rows = 10\n")
    code, _ = drift(tmp_path, reference, log, "--policy", str(policy))
    assert code == 1
    assert "[drift] prediction_psi must be a float" in capsys.readouterr().err
    policy.write_text("[drift]\nfeature_psi = 0.2\nmin_row = 10\n")
    code, _ = drift(tmp_path, reference, log, "--policy", str(policy))
    assert code == 1
    assert "[drift] missing min_rows, prediction_psi; unknown min_row" in capsys.readouterr().err


def test_without_version_a_log_of_one_other_known_version_is_checked_against_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make drift LOG=...` after promoting v001 while latest moved on to v002: the log says
    which model served it, so that one is used (and said)."""
    first = publish_reference(tmp_path / "artifacts")
    second = publish_reference(tmp_path / "artifacts")
    assert (first.version, second.version) == ("v001", "v002")
    log = write_log(tmp_path / "p.jsonl", served_rows(300, seed=5), first.estimator, "v001")
    code, out = drift(tmp_path, first, log)
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert stdout.splitlines()[0] == (
        f"{log}: every prediction record is from v001 (latest is v002): checking v001"
    )
    report = json.loads((out / "report.json").read_text())
    assert report["model_version"] == "v001" and report["rows"]["used"] == 300
