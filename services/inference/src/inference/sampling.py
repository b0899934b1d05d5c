"""Prediction sampling: a JSONL record of a random share of the rows served, for drift checks.

PREDICTION_SAMPLE_RATE (0 = off, the default) is the probability that any one row is recorded;
PREDICTION_LOG is a file path or ``stdout``. One line per sampled row, in the record format of
``artifact_contract.prediction_log`` (which the trainer's drift check reads with the same module).

Cost is bounded: off costs one comparison per request; on, a single-row request costs one random
draw, and a batch costs O(sampled rows), not O(rows), because the gaps between sampled rows are
drawn from a geometric distribution. A line is formatted from the contract's per-request head and a
per-model template (no json.dumps per row; orjson for version 3 models' typed values). Each worker
opens its own append-mode descriptor on first use (never in the gunicorn master, whose descriptors
the workers would share) and keeps it; lines go out in ``os.write`` calls of whole lines of at most
PIPE_BUF (4 KiB) bytes, which the kernel never interleaves with another process's writes, on a pipe
(stdout) or, with O_APPEND, on a file. Sampling is best effort: a write error is logged once per
worker and never fails a request (docs/04_monitoring.md has the measured cost).
"""

from __future__ import annotations

import logging
import math
import os
import random
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from artifact_contract.prediction_log import float_row_template, line_head, line_tail

from inference.errors import ConfigurationError
from inference.logs import log_event
from inference.model import LoadedModel
from inference.settings import Settings

STDOUT = "stdout"
# Writes up to this size are atomic on a pipe (POSIX PIPE_BUF is at least 512; Linux has 4096).
WRITE_CHUNK = 4096


class PredictionSampler:
    def __init__(
        self,
        destination: str | None,
        rate: float,
        feature_names: Sequence[str],
        logger: logging.Logger,
        rng: random.Random | None = None,
    ) -> None:
        self.destination = destination
        self.rate = rate if destination else 0.0
        self.feature_names = tuple(feature_names)
        self._logger = logger
        self._rng = rng or random.Random()
        # log(1 - rate): the scale of the geometric gaps between sampled rows.
        self._log_keep = math.log1p(-self.rate) if 0.0 < self.rate < 1.0 else 0.0
        self._row_template = float_row_template(self.feature_names)
        self._fd: int | None = None
        self._pid = 0
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self.rate > 0.0

    def check_destination(self) -> None:
        """Fail at start-up, not on the first sampled request, when the log cannot be opened."""
        if not self.enabled or self.destination == STDOUT:
            return
        try:
            with open(self.destination or "", "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise ConfigurationError(
                f"PREDICTION_LOG {self.destination!r} cannot be opened for appending "
                f"({exc.strerror})"
            ) from None

    def sampled_indices(self, rows: int) -> list[int]:
        """Each of ``rows`` rows independently with probability ``rate``, in O(sampled)."""
        if self.rate >= 1.0:
            return list(range(rows))
        picked: list[int] = []
        index = -1
        while True:
            # 1 - random() lies in (0, 1]: log is finite; the gap is >= 0.
            index += 1 + int(math.log(1.0 - self._rng.random()) / self._log_keep)
            if index >= rows:
                return picked
            picked.append(index)

    def record(
        self,
        request_id: str,
        model_version: str,
        rows: npt.NDArray[np.float64] | Mapping[str, Sequence[Any]],
        predictions: Sequence[Any],
    ) -> int:
        """Write the sampled rows of one request; return how many were written."""
        if self.rate <= 0.0:
            return 0
        picked = self.sampled_indices(len(predictions))
        if not picked:
            return 0
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        prefix = line_head(ts, request_id, model_version)
        if isinstance(rows, Mapping):
            names = self.feature_names
            lines = [
                prefix
                + line_tail(
                    orjson.dumps({name: rows[name][index] for name in names}).decode(),
                    orjson.dumps(predictions[index]).decode(),
                )
                for index in picked
            ]
        else:
            template = self._row_template
            # Features were validated finite, so repr() is their JSON; a prediction might not be.
            values: list[list[float]] = rows[picked].tolist()  # one numpy call for all rows
            lines = [
                prefix + template % (*row, _json_number(predictions[index]))
                for row, index in zip(values, picked, strict=True)
            ]
        try:
            self._write_lines(lines)
        except OSError as exc:
            self._report_failure(exc)
            return 0
        return len(lines)

    def _write_lines(self, lines: list[str]) -> None:
        fd = self._worker_fd()
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            data = line.encode()
            if chunk and size + len(data) > WRITE_CHUNK:
                _write_all(fd, b"".join(chunk))
                chunk, size = [], 0
            chunk.append(data)
            size += len(data)
        if chunk:
            _write_all(fd, b"".join(chunk))

    def _worker_fd(self) -> int:
        pid = os.getpid()
        if self._fd is None or self._pid != pid:
            self._fd = self._open()
            self._pid = pid
        return self._fd

    def _open(self) -> int:
        if self.destination == STDOUT:
            return sys.stdout.fileno()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        return os.open(self.destination or "", flags, 0o644)

    def _report_failure(self, exc: Exception) -> None:
        if not self._failed:
            self._failed = True
            log_event(
                self._logger,
                logging.WARNING,
                "prediction_log_error",
                destination=self.destination,
                error=str(exc)[:200],
            )

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid() and self.destination != STDOUT:
            os.close(self._fd)
        self._fd = None


def _json_number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else "null"


def _write_all(fd: int, data: bytes) -> None:
    # A regular file or pipe takes the whole buffer in one call; loop for the odd short write.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def prediction_sampler(
    settings: Settings, model: LoadedModel | None, logger: logging.Logger
) -> PredictionSampler | None:
    """The app's sampler, or None when sampling is off (or there is no model to sample)."""
    if model is None or settings.prediction_sample_rate <= 0.0 or not settings.prediction_log:
        return None
    sampler = PredictionSampler(
        settings.prediction_log, settings.prediction_sample_rate, model.feature_names, logger
    )
    sampler.check_destination()
    return sampler
