"""``inference score``: a file in, the same format out, equal to /predict row by row, in bounded
memory; a bad line stops it with one line and no output."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from flask.testing import FlaskClient
from moto.server import ThreadedMotoServer

from inference.errors import ConfigurationError, InvalidInput
from inference.loader import load_model
from inference.model import LoadedModel
from inference.score import score
from inference.settings import Settings
from tests.tabular import TYPED_FEATURES, records_of
from tests.test_formats import csv_text
from tests.test_typed import client_for, frame_of


def typed(run: Path, tmp_path: Path) -> tuple[LoadedModel, Settings, FlaskClient]:
    settings = Settings(model_dir=run, model_cache_dir=tmp_path / "cache")
    return load_model(settings), settings, client_for(run, tmp_path)


def one_by_one(client: FlaskClient, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers = []
    for record in records:
        response = client.post("/predict", json=record)
        assert response.status_code == 200
        body = response.get_json()
        answers.append({k: body[k] for k in ("prediction", "probabilities") if k in body})
    return answers


@pytest.mark.parametrize("kind", ["regression", "multiclass"])
def test_a_csv_file_scores_as_predict_answers_each_row(
    kind: str, typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    model, settings, client = typed(typed_runs[kind], tmp_path)
    records = records_of(frame_of(typed_runs[kind]).head(60))
    source = tmp_path / "rows.csv"
    source.write_text(csv_text(records, TYPED_FEATURES[::-1], header=True))
    lines: list[str] = []
    result = score(
        model, settings, str(source), str(tmp_path / "out.csv"), chunk_rows=7, progress=lines.append
    )
    assert result.rows == 60
    assert lines[-1].startswith("scored 60 rows in ")
    rows = list(csv.reader((tmp_path / "out.csv").read_text().splitlines()))
    want = one_by_one(client, records)
    # A chunk of rows goes through one matrix product, a single row through its own: float64
    # rounding may differ in the last digit, never more.
    if kind == "regression":
        assert rows[0] == ["prediction"]
        got = [float(row[0]) for row in rows[1:]]
        assert got == pytest.approx([w["prediction"] for w in want], rel=1e-12)
    else:
        assert rows[0] == ["prediction", "probability_0", "probability_1", "probability_2"]
        assert [int(row[0]) for row in rows[1:]] == [w["prediction"] for w in want]
        for row, answer in zip(rows[1:], want, strict=True):
            probabilities = [answer["probabilities"][k] for k in ("0", "1", "2")]
            assert [float(v) for v in row[1:]] == pytest.approx(probabilities, rel=1e-12)


def test_a_json_lines_file_scores_into_json_lines(
    typed_runs: dict[str, Path], tmp_path: Path
) -> None:
    model, settings, client = typed(typed_runs["multiclass"], tmp_path)
    records = records_of(frame_of(typed_runs["multiclass"]).head(25))
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(record) + "\n\n" for record in records))
    score(model, settings, str(source), str(tmp_path / "out.jsonl"), chunk_rows=10)
    got = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    want = one_by_one(client, records)
    assert [g["prediction"] for g in got] == [w["prediction"] for w in want]
    for answer, expected in zip(got, want, strict=True):
        assert answer["probabilities"] == pytest.approx(expected["probabilities"], rel=1e-12)


def test_a_bad_line_stops_the_run_naming_it_and_writes_nothing(
    loaded_model: LoadedModel, settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("age,income_k,tenure_years\n" + "40,50.0,1\n" * 30 + "40,lots,1\n")
    with pytest.raises(InvalidInput, match=r"'line 32\.income_k' must be a number"):
        score(loaded_model, settings, str(source), str(tmp_path / "out.csv"), chunk_rows=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_the_command_keeps_memory_bounded_on_100_000_rows(ridge_run: Path, tmp_path: Path) -> None:
    """Peak memory is the same for 10,000 and 100,000 rows: the file is never held whole."""
    rng = np.random.default_rng(0)
    peaks = {}
    for rows in (10_000, 100_000):
        source = tmp_path / f"rows-{rows}.csv"
        data = np.column_stack(
            [rng.integers(18, 80, rows), rng.uniform(10, 200, rows), rng.integers(0, 30, rows)]
        )
        with source.open("w") as out:
            out.write("age,income_k,tenure_years\n")
            out.writelines(f"{int(a)},{b!r},{int(c)}\n" for a, b, c in data.tolist())
        # VmHWM: this process's own peak (ru_maxrss would also count the forked pytest's pages).
        code = (
            "import re, sys\n"
            "from inference.cli import main\n"
            "status = main(sys.argv[1:])\n"
            "status_text = open('/proc/self/status').read()\n"
            "sys.stderr.write(re.search(r'VmHWM:\\s+(\\d+)', status_text)[0] + '\\n')\n"
            "sys.exit(status)\n"
        )
        output = tmp_path / f"out-{rows}.csv"
        env = {**os.environ, "MODEL_DIR": str(ridge_run), "MODEL_CACHE_DIR": str(tmp_path / "c")}
        done = subprocess.run(
            [sys.executable, "-c", code, "score", "--input", str(source), "--output", str(output)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"scored {rows} rows in " in done.stderr
        peaks[rows] = int(done.stderr.rsplit("VmHWM:", 1)[1].split()[0])
        assert len(output.read_text().splitlines()) == rows + 1
    # Holding 100,000 rows as records would add well over 40 MiB.
    assert peaks[100_000] - peaks[10_000] < 16 * 1024, peaks


def test_the_command_refuses_with_one_line(ridge_run: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MODEL_DIR": str(ridge_run), "MODEL_CACHE_DIR": str(tmp_path / "c")}
    inference = str(Path(sys.executable).parent / "inference")
    source = tmp_path / "rows.csv"
    source.write_text("40,50.0\n")
    for args, message in [
        (["--input", str(source), "--output", str(tmp_path / "o.jsonl")], "same format out"),
        (["--input", str(source), "--output", str(tmp_path / "o.csv")], "line 1 has 2 values"),
        (["--input", str(tmp_path / "none.csv"), "--output", str(tmp_path / "o.csv")], "none.csv"),
    ]:
        done = subprocess.run(
            [inference, "score", *args], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode != 0
        assert message in done.stderr + done.stdout
        assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_s3_in_and_out(
    loaded_model: LoadedModel,
    settings: Settings,
    client: FlaskClient,
    aws_env: None,  # noqa: ARG001  # credentials for moto only
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against moto's S3 server on a loopback port (AWS itself is the boundary we cannot reach)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="batch")
        records = [{"age": 20 + i, "income_k": 30.5 + i, "tenure_years": i % 9} for i in range(30)]
        lines = "".join(json.dumps(record) + "\n" for record in records).encode()
        s3.put_object(Bucket="batch", Key="in/rows.jsonl", Body=b"\xef\xbb\xbf" + lines)
        score(loaded_model, settings, "s3://batch/in/rows.jsonl", "s3://batch/out/p.jsonl", 8)
        body = s3.get_object(Bucket="batch", Key="out/p.jsonl")["Body"].read().decode()
        got = [json.loads(line)["prediction"] for line in body.splitlines()]
        want = [w["prediction"] for w in one_by_one(client, records)]
        assert got == pytest.approx(want, rel=1e-12)
        with pytest.raises(ConfigurationError, match=r"cannot read s3://batch/in/none\.jsonl"):
            score(loaded_model, settings, "s3://batch/in/none.jsonl", "s3://batch/out/x.jsonl")
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="batch")["Contents"]] == [
            "in/rows.jsonl",
            "out/p.jsonl",
        ]
    finally:
        server.stop()
