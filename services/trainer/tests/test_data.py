"""Training data: the synthetic generator, file formats and URIs, and what bad data looks like to
a user (one line, non-zero exit, nothing published, latest unchanged)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from artifact_contract import ArtifactRoot, read_manifest, sha256_file

from tests.conftest import REPO_ROOT, TrainedRoot, make_settings, run_cli
from trainer.errors import DataError
from trainer.training import data


def test_synthetic_data_is_deterministic_for_a_seed_and_in_range() -> None:
    first, again, other = data.synthetic(500, 3), data.synthetic(500, 3), data.synthetic(500, 4)
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert first.sha256 == again.sha256 != other.sha256
    frame = first.frame
    assert list(frame.columns) == ["age", "income_k", "tenure_years", "target"]
    assert frame["age"].between(18, 69).all() and (frame["age"] % 1 == 0).all()
    assert frame["income_k"].between(30, 120).all()
    assert set(frame["tenure_years"].unique()) <= set(range(10))
    # target = 10000 + 120 age + 500 income_k + 800 tenure_years + N(0, 3000)
    residual = frame["target"] - (
        10_000 + 120 * frame["age"] + 500 * frame["income_k"] + 800 * frame["tenure_years"]
    )
    assert abs(residual.mean()) < 500 and 2500 < residual.std() < 3500


def _frame(rows: int = 40) -> pd.DataFrame:
    return data.synthetic(max(rows, data.MIN_ROWS), 1).frame.head(rows)


def test_csv_and_parquet_load_from_a_path_and_a_file_uri(tmp_path: Path) -> None:
    frame = _frame()
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    for uri in (str(tmp_path / "d.csv"), (tmp_path / "d.parquet").as_uri()):
        loaded = data.load(uri)
        assert loaded.rows == 40 and loaded.source == uri
        np.testing.assert_allclose(loaded.frame.to_numpy(), frame.to_numpy())
    assert data.load(str(tmp_path / "d.csv")).sha256 == sha256_file(tmp_path / "d.csv")


def test_sample_data_writes_the_synthetic_set_as_csv(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    out = tmp_path / "sample.csv"
    result = run_cli(
        ["sample-data", "--out", str(out), "--samples", "300", "--seed", "4"], settings
    )
    assert result.code == 0, result.stderr
    loaded = data.load(str(out))
    synthetic = data.synthetic(300, 4)
    assert loaded.sha256 == synthetic.sha256  # the same bytes the synthetic digest is taken over
    pd.testing.assert_frame_equal(loaded.frame, synthetic.frame)
    assert f"wrote 300 rows to {out}" in result.stderr


def _write(tmp: Path, name: str, edit: Callable[[pd.DataFrame], pd.DataFrame] | None) -> str:
    path = tmp / name
    if edit is None:
        path.write_bytes(b"")
    else:
        edit(_frame().astype(object)).to_csv(path, index=False)
    return str(path)


def _set(column: str, row: int, value: str | float) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    return edit


def _labels(*counts: tuple[str, int]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    labels = [label for label, count in counts for _ in range(count)]
    return lambda f: f.head(len(labels)).assign(target=labels)


Edit = Callable[[pd.DataFrame], pd.DataFrame] | None
# case: (file name, edit of the 40-row synthetic frame, extra flags, expected message part)
BAD_DATA: dict[str, tuple[str, Edit, list[str], str]] = {
    "unknown target": (
        "d.csv",
        lambda f: f,
        ["--target", "price"],
        "no column 'price' (for --target); the columns are: age, income_k, tenure_years, target",
    ),
    "unknown feature": (
        "d.csv",
        lambda f: f,
        ["--features", "age,height"],
        "no column 'height' (for --features)",
    ),
    "unknown dropped column": (
        "d.csv",
        lambda f: f,
        ["--drop", "zip"],
        "no column 'zip' (for --drop)",
    ),
    "constant column": (
        "d.csv",
        lambda f: f.assign(country="FR"),
        [],
        "column 'country' is "
        "constant ('FR' in every row that has a value); drop it with --drop country",
    ),
    "all-missing column": (
        "d.csv",
        lambda f: f.assign(notes=np.nan),
        [],
        "column 'notes' has no values; drop it with --drop notes",
    ),
    "identifier column": (
        "d.csv",
        lambda f: f.assign(user=[f"u{i}" for i in range(40)]),
        [],
        "column 'user' looks like an identifier (40 distinct strings in 40 rows; at most 255 "
        "categories are used); drop it with --drop user",
    ),
    "string in numeric column": (
        "d.csv",
        _set("age", 3, "forty"),
        [],
        "column 'age' mixes "
        "numbers and strings ('forty', row 4 of the rows with a target); clean it, or drop it with "
        "--drop age",
    ),
    "string in numeric target": (
        "d.csv",
        _set("target", 3, "unknown"),
        [],
        "target 'target' is not "
        "numeric (value 'unknown', row 4 of the rows with a target); use --task classification",
    ),
    "infinity": ("d.csv", _set("target", 0, "inf"), [], "target 'target' has infinite values"),
    "single class": (
        "d.csv",
        _labels(("yes", 40)),
        [],
        "target 'target' has a single class 'yes'; classification needs at least 2",
    ),
    "class too rare for the holdout": (
        "d.csv",
        _labels(("yes", 36), ("no", 4)),
        [],
        "class "
        "'no' of target 'target' has 4 row(s); with a holdout of 0.2 each class needs at least 5",
    ),
    "labels that are not integers": (
        "d.csv",
        lambda f: f,
        ["--task", "classification"],
        "target 'target' holds non-integer numbers; classification needs labels",
    ),
    "empty file": ("d.csv", None, [], "the file is empty"),
    "header only": (
        "d.csv",
        lambda f: f.head(0),
        [],
        "too few rows: 0 with a target 'target' (need at least 20)",
    ),
    "too few rows": ("d.csv", lambda f: f.head(5), [], "too few rows: 5 with a target"),
    "too few rows with a target": (
        "d.csv",
        lambda f: f.head(25).assign(target=[*[1.0] * 10, *[np.nan] * 15]),
        [],
        "too few rows: 10 with a target",
    ),
    "unsupported format": ("d.json", lambda f: f, [], "unsupported data format '.json'"),
    "missing file": ("absent.csv", None, [], "no such file"),
}


@pytest.fixture()
def published_root(two_trainings: TrainedRoot) -> Iterator[ArtifactRoot]:
    """The shared two-run root; each bad-data test checks it is left exactly as it was."""
    root = ArtifactRoot(two_trainings.root)
    before = (root.versions(), root.latest_version())
    yield root
    assert (root.versions(), root.latest_version()) == before


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_is_one_line_nonzero_and_publishes_nothing(
    case: str, tmp_path: Path, two_trainings: TrainedRoot, published_root: ArtifactRoot
) -> None:
    name, edit, flags, expected = BAD_DATA[case]
    uri = str(tmp_path / name) if case == "missing file" else _write(tmp_path, name, edit)
    result = run_cli(["train", "--data-uri", uri, *flags], two_trainings.settings)
    assert result.code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {uri}: ")
    assert expected in lines[0]
    assert published_root.versions() == ["v001", "v002"]


@pytest.mark.slow
def test_bad_data_from_the_console_script_has_no_traceback(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "trainer"),
            "train",
            "--data-uri",
            str(tmp_path / "absent.csv"),
            "--output-dir",
            str(settings.artifact_root),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri},
        check=False,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr == f"error: {tmp_path / 'absent.csv'}: no such file\n"
    assert done.stdout == ""
    assert not settings.artifact_root.exists()


def test_unreadable_s3_uri_is_a_data_error() -> None:
    with pytest.raises(DataError, match="an s3 URI needs a bucket and a key"):
        data.load("s3:///nokey.csv")


def test_manifest_records_file_data_source_and_digest(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    data.synthetic(200, 11).frame.to_parquet(path, index=False)
    settings = make_settings(tmp_path)
    result = run_cli(["train", "--data-uri", path.as_uri(), "--seed", "1"], settings)
    assert result.code == 0, result.stderr
    manifest = read_manifest(Path(result.summary["run_dir"]))
    assert manifest.data.source == path.as_uri()
    assert manifest.data.sha256 == sha256_file(path)
    assert manifest.data.rows == 200
    assert manifest.params["samples"] is None
