"""Crash consistency of a training (issue 11, items 8 and 12) and the skops trust list.

A run that cannot be tracked and registered in MLflow is not published (latest does not move);
a disk that fills up while the model is saved is reported as a full disk; and every pipeline the
trainer builds holds only the types the contract's trust list names.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from artifact_contract import TRUSTED_TYPES, ArtifactRoot
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from tests.conftest import REPO_ROOT, make_settings, run_cli
from trainer.errors import TrainerError
from trainer.training import evaluate, model, schema, serialization


def _assert_unpublished(root: ArtifactRoot, versions: list[str], latest: str | None) -> None:
    assert root.versions() == versions
    assert root.latest_version() == latest
    leftovers = [p.name for p in root.runs_dir.iterdir()] if root.runs_dir.exists() else []
    assert not [name for name in leftovers if name.startswith(".staging-")]


@pytest.mark.slow
def test_a_locked_store_is_one_line_and_nothing_is_published(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert run_cli(["train", "--samples", "200"], settings).code == 0
    database = tmp_path / "mlflow.db"
    holder = sqlite3.connect(database, isolation_level=None, timeout=1)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the store
    try:
        result = run_cli(["train", "--samples", "200", "--seed", "3"], settings)
    finally:
        holder.close()
    assert result.code == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"error: MLflow at {settings.tracking_uri}: database is locked; the run was not "
        "registered, so nothing was published and latest did not move"
    )
    _assert_unpublished(ArtifactRoot(settings.artifact_root), ["v001"], "v001")


def test_a_corrupt_store_is_one_line_and_nothing_is_published(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (tmp_path / "mlflow.db").write_bytes(b"this is not an sqlite database\n" * 200)
    result = run_cli(["train", "--samples", "200"], settings)
    assert result.code == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"error: MLflow at {settings.tracking_uri}: ")
    assert "file is not a database" in last and last.endswith("latest did not move")
    _assert_unpublished(ArtifactRoot(settings.artifact_root), [], None)


def _limit_file_size() -> None:
    # A file-size limit instead of a full disk (no mount needed): writes past it fail with
    # EFBIG once SIGXFSZ, which would kill the process, is ignored.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


def test_a_full_disk_while_saving_says_disk_full_and_leaves_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "trainer"), "train", "--samples", "200"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "MLPIPELINE_ARTIFACT_ROOT": str(settings.artifact_root),
        },
        preexec_fn=_limit_file_size,
        check=False,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "cloudpickle" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("error: ") and "disk full: no space left to write the run" in last
    assert last.endswith("nothing was published")
    _assert_unpublished(ArtifactRoot(settings.artifact_root), [], None)


def _frame(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "city": rng.choice(["a", "b", "c"], rows).astype(object),
            "flag": rng.choice([True, False], rows).astype(object),
        }
    )
    frame.loc[::7, "x"] = np.nan
    frame.loc[::5, "city"] = None
    frame["y"] = frame["x"].fillna(0) + (frame["city"] == "a") + rng.normal(0, 0.1, rows)
    frame["label"] = np.where(frame["y"] > frame["y"].median(), "hi", "lo")
    return frame


PIPELINES = [
    ("y", "regression", "ridge", ("x",)),
    ("y", "regression", "ridge", None),
    ("y", "regression", "hist_gb", None),
    ("label", "classification", "logistic", None),
    ("label", "classification", "hist_gb", None),
]


def test_every_pipeline_needs_exactly_the_trusted_types() -> None:
    needed: set[str] = set()
    for target, task, kind, features in PIPELINES:
        raw = _frame().dropna(subset=["x"]) if features else _frame()
        drop = ("label",) if target == "y" else ("y",)
        frame, table = schema.prepare(
            raw, source="t", target=target, features=features, drop=() if features else drop
        )
        assert table.task == task
        split = evaluate.split(frame, 1, 0.2, table)
        estimator = model.fit(model.ModelConfig(kind=kind, max_iter=5), table, split.train, 1)
        needed |= set(serialization.untrusted_types(estimator))
    # Nothing in the list that no pipeline needs; nothing needed that is not in the list.
    assert needed == set(TRUSTED_TYPES)


def _double(values: Any) -> Any:
    return values * 2


def test_a_model_with_an_untrusted_type_is_refused() -> None:
    estimator = Pipeline([("double", FunctionTransformer(_double))]).fit(np.ones((3, 1)))
    with pytest.raises(TrainerError, match=r"outside the trust list: tests\.test_publish\._double"):
        serialization.untrusted_types(estimator)
