"""``inference score --input FILE --output FILE``: score a CSV or JSON Lines file (local or
``s3://bucket/key``) with the configured model, in chunks (bounded memory), into the same format.

Each line is read as ``/invocations`` reads that format (formats.py) and checked as ``/predict``
checks a record; the output has one line per input record, in order: CSV ``prediction`` (and
``probability_<class>`` per class for a classifier) under a header, or JSON Lines
``{"prediction", "probabilities"}``. The output appears complete or not at all (written under
a temporary name, then renamed into place or uploaded whole); a bad line stops the run naming it.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import orjson
from artifact_contract import label_key

from inference.errors import ConfigurationError, InvalidInput, NonFinitePrediction
from inference.formats import CsvRecords, jsonl_record, line_namer
from inference.model import CLASSIFICATION, LoadedModel
from inference.schema import field_rules
from inference.settings import Settings
from inference.validation import RequestValidator

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
S3 = "s3://"
PROGRESS_SECONDS = 2.0


@dataclass(frozen=True)
class ScoreResult:
    rows: int
    seconds: float


def file_format(location: str) -> str:
    kind = FORMATS.get(PurePosixPath(location).suffix.lower())
    if kind is None:
        raise ConfigurationError(
            f"{location[:200]}: the format comes from the extension: .csv, .jsonl or .ndjson"
        )
    return kind


def score(
    model: LoadedModel,
    settings: Settings,
    source: str,
    destination: str,
    chunk_rows: int = 1000,
    progress: Callable[[str], None] = lambda _line: None,
) -> ScoreResult:
    """Score ``source`` into ``destination`` (local paths or ``s3://bucket/key``)."""
    kind = file_format(source)
    if file_format(destination) != kind:
        raise ConfigurationError(f"write {kind} output for {kind} input (same format out)")
    validator = RequestValidator(
        field_rules(model.manifest.input_schema, settings.input_range_margin),
        max_rows=chunk_rows,
        frame=model.takes_frame,
    )
    started = last = time.perf_counter()
    rows = 0
    remote = destination.startswith(S3)
    # Beside a local destination (renamed into place); anywhere for S3 (uploaded whole).
    directory = None if remote else Path(destination).resolve().parent
    handle = tempfile.NamedTemporaryFile(  # renamed, uploaded or removed below
        "w",
        encoding="utf-8",
        newline="",
        dir=directory,
        prefix=f".{PurePosixPath(destination).name}.",
        delete=False,
    )
    try:
        with handle, _open_lines(source) as lines:
            write = _writer(kind, model, handle)
            for numbers, records in _chunks(kind, lines, validator, chunk_rows):
                parsed = validator.parse_records(records, line_namer(numbers))
                try:
                    result = model.infer(parsed.rows)
                except NonFinitePrediction as exc:
                    raise InvalidInput(
                        f"the model gives no finite prediction for line {numbers[exc.rows[0]]}: "
                        "its values are too far from the training data",
                        code=exc.code,
                    ) from None
                write(result.predictions, result.probabilities)
                rows += len(records)
                now = time.perf_counter()
                if now - last >= PROGRESS_SECONDS:
                    progress(_rate(rows, now - started))
                    last = now
        if rows == 0:
            raise InvalidInput(f"{source[:200]} holds no records", code="empty_batch")
        if remote:
            bucket, key = _s3_parts(destination)
            _s3_client().upload_file(handle.name, bucket, key)
        else:
            os.replace(handle.name, destination)
    finally:
        Path(handle.name).unlink(missing_ok=True)
    elapsed = time.perf_counter() - started
    progress(_rate(rows, elapsed) + f" -> {destination}")
    return ScoreResult(rows, elapsed)


def _s3_parts(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix(S3).partition("/")
    if not bucket or not key:
        raise ConfigurationError(f"{uri[:200]}: expected s3://bucket/key")
    return bucket, key


def _s3_client() -> Any:
    import boto3  # imported here: only s3:// locations pay for it

    # boto3's default chain: env, shared config, instance/task role; AWS_ENDPOINT_URL honoured.
    return boto3.client("s3")


@contextmanager
def _open_lines(source: str) -> Iterator[Iterable[str]]:
    """The source's text lines, streamed (a local file, or an S3 object's body)."""
    if not source.startswith(S3):
        with open(source, encoding="utf-8-sig", newline="") as lines:
            yield lines
        return
    bucket, key = _s3_parts(source)
    try:
        body = _s3_client().get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as exc:  # botocore's errors: one line, not a traceback
        raise ConfigurationError(f"cannot read {source[:200]}: {exc}"[:300]) from None
    try:
        yield _decoded(body.iter_lines(keepends=True))
    finally:
        body.close()


def _decoded(chunks: Iterable[bytes]) -> Iterator[str]:
    first = True
    for chunk in chunks:
        text = chunk.decode("utf-8")
        yield text.removeprefix("\ufeff") if first else text
        first = False


def _rate(rows: int, seconds: float) -> str:
    return f"scored {rows} rows in {seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f} rows/s)"


def _chunks(
    kind: str, lines: Iterable[str], validator: RequestValidator, size: int
) -> Iterator[tuple[list[int], list[Any]]]:
    """(line numbers, records) of at most ``size`` records at a time."""
    numbers: list[int] = []
    records: list[Any] = []
    if kind == "csv":
        reader = csv.reader(lines)
        csv_records = CsvRecords(validator)
        for cells in reader:
            if not cells or not any(cell.strip() for cell in cells):
                continue
            record = csv_records.record(cells, reader.line_num)
            if record is None:
                continue
            numbers.append(reader.line_num)
            records.append(record)
            if len(records) == size:
                yield numbers, records
                numbers, records = [], []
    else:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                numbers.append(number)
                records.append(jsonl_record(line, validator.feature_names, number))
                if len(records) == size:
                    yield numbers, records
                    numbers, records = [], []
    if records:
        yield numbers, records


def _writer(
    kind: str, model: LoadedModel, out: IO[str]
) -> Callable[[list[Any], list[dict[str, float]] | None], None]:
    keys = [label_key(label) for label in model.classes]
    if kind == "jsonl":

        def write_lines(
            predictions: list[Any], probabilities: list[dict[str, float]] | None
        ) -> None:
            if probabilities is None:
                rows = [{"prediction": p} for p in predictions]
            else:
                rows = [
                    {"prediction": p, "probabilities": q}
                    for p, q in zip(predictions, probabilities, strict=True)
                ]
            out.write("".join(orjson.dumps(row).decode() + "\n" for row in rows))

        return write_lines
    writer = csv.writer(out, lineterminator="\n")
    classifier = model.task == CLASSIFICATION
    writer.writerow(
        ["prediction", *(f"probability_{key}" for key in keys)] if classifier else ["prediction"]
    )

    def write_csv(predictions: list[Any], probabilities: list[dict[str, float]] | None) -> None:
        if probabilities is None:
            writer.writerows(
                [repr(p) if isinstance(p, float) else label_key(p)] for p in predictions
            )
        else:
            writer.writerows(
                [label_key(p), *(repr(q[key]) for key in keys)]
                for p, q in zip(predictions, probabilities, strict=True)
            )

    return write_csv
