"""``inference score --input FILE --output FILE``: score a CSV or JSON Lines file with the
configured model, in chunks (bounded memory), into the same format.

Each line is read as ``/invocations`` reads that format (formats.py) and checked as ``/predict``
checks a record; the output has one line per input record, in order: CSV ``prediction`` (and
``probability_<class>`` per class for a classifier) under a header, or JSON Lines
``{"prediction", "probabilities"}``. The output appears complete or not at all (written beside
it under a temporary name, renamed at the end); a bad line stops the run naming it.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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
PROGRESS_SECONDS = 2.0


@dataclass(frozen=True)
class ScoreResult:
    rows: int
    seconds: float


def file_format(path: Path) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigurationError(
            f"{path.name}: the format comes from the extension: .csv, .jsonl or .ndjson"
        )
    return kind


def score(
    model: LoadedModel,
    settings: Settings,
    source: Path,
    destination: Path,
    chunk_rows: int = 1000,
    progress: Callable[[str], None] = lambda _line: None,
) -> ScoreResult:
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
    directory = destination.resolve().parent
    handle = tempfile.NamedTemporaryFile(  # renamed or removed below
        "w",
        encoding="utf-8",
        newline="",
        dir=directory,
        prefix=f".{destination.name}.",
        delete=False,
    )
    try:
        with handle, source.open(encoding="utf-8-sig", newline="") as lines:
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
            raise InvalidInput(f"{source.name} holds no records", code="empty_batch")
        os.replace(handle.name, destination)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    elapsed = time.perf_counter() - started
    progress(_rate(rows, elapsed) + f" -> {destination}")
    return ScoreResult(rows, elapsed)


def _rate(rows: int, seconds: float) -> str:
    return f"scored {rows} rows in {seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f} rows/s)"


def _chunks(
    kind: str, lines: IO[str], validator: RequestValidator, size: int
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
