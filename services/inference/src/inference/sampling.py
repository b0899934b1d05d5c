"""Prediction sampling: a JSONL record of a random share of the rows served, for drift checks.

PREDICTION_SAMPLE_RATE (0 = off, the default) is the probability that any one row is recorded;
PREDICTION_LOG is a file path or ``stdout``. One line per sampled row::

    {"ts": "...Z", "event": "prediction", "request_id": "...", "model_version": "v003",
     "features": {"age": 42.0, ...}, "prediction": 41234.5}

Cost is bounded: off costs one comparison per request; on, a single-row request costs one
random draw, and a batch costs O(sampled rows), not O(rows), because the gaps between sampled
rows are drawn from a geometric distribution. Each worker opens its own line-buffered,
append-mode handle on first use (never in the gunicorn master, whose handles the workers would
share), so every line is written by one ``write()``: whole on a pipe (lines are far below
PIPE_BUF) and, with O_APPEND, on a regular file, so workers never interleave half lines.
Sampling is best effort: a write error is logged once per worker and never fails a request.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from inference.errors import ConfigurationError
from inference.logs import log_event
from inference.model import LoadedModel
from inference.settings import Settings

STDOUT = "stdout"
EVENT = "prediction"


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
        self._handle: IO[str] | None = None
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
        rows: npt.NDArray[np.float64],
        predictions: Sequence[float],
    ) -> int:
        """Write the sampled rows of one request; return how many were written."""
        if self.rate <= 0.0:
            return 0
        picked = self.sampled_indices(len(predictions))
        if not picked:
            return 0
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        names = self.feature_names
        lines = [
            json.dumps(
                {
                    "ts": ts,
                    "event": EVENT,
                    "request_id": request_id,
                    "model_version": model_version,
                    "features": dict(zip(names, rows[index].tolist(), strict=True)),
                    "prediction": predictions[index],
                }
            )
            + "\n"
            for index in picked
        ]
        try:
            handle = self._worker_handle()
            for line in lines:
                handle.write(line)  # line-buffered: one write() per line
        except (OSError, ValueError) as exc:
            self._report_failure(exc)
            return 0
        return len(lines)

    def _worker_handle(self) -> IO[str]:
        pid = os.getpid()
        if self._handle is None or self._pid != pid:
            self._handle = self._open()
            self._pid = pid
        return self._handle

    def _open(self) -> IO[str]:
        if self.destination == STDOUT:
            # Our own line-buffered handle on fd 1 (sys.stdout may be block-buffered in a pipe).
            return open(sys.stdout.fileno(), "w", buffering=1, encoding="utf-8", closefd=False)
        return Path(self.destination or "").open("a", buffering=1, encoding="utf-8")

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
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None


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
