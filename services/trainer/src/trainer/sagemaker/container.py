"""The SageMaker training-container contract: the ``train`` console script of the trainer image.

SageMaker starts the image as ``docker run IMAGE train`` with this layout under ``<base>``
(``SAGEMAKER_BASE_DIR``, default ``/opt/ml``)::

  input/config/hyperparameters.json  {"name": "value"}, always strings: `trainer train` flags
  input/data/<channel>/              the channel's files; we read one CSV or Parquet file
  model/                             we write the run directory's contents here; SageMaker uploads
                                     it as model.tar.gz, so manifest.json sits at the tar's root
  output/failure                     on failure, the reason (SageMaker's FailureReason)

The training itself is ``train()``, the function behind ``trainer train``: same flags, same
validation, same run directory. It publishes into a scratch artifact root, and the finished,
verified run is copied into ``model/``; on any failure ``model/`` is left empty, never
half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from artifact_contract import ContractError, verify_run_dir

from trainer.errors import EXIT_ERROR, EXIT_GATE_FAILED, EXIT_OK, TrainerError
from trainer.logs import configure_logging
from trainer.settings import Settings
from trainer.train import parse_train_flags
from trainer.training.pipeline import TrainConfig, train

DEFAULT_CHANNEL = "train"
DATA_SUFFIXES = (".csv", ".parquet", ".pq")
# Flags the container layout decides; a hyper-parameter may not override them.
RESERVED_FLAGS = frozenset({"--data-uri", "--output-dir"})
# SageMaker shows at most this many characters of output/failure as the job's FailureReason.
FAILURE_REASON_LIMIT = 1024

_log = logging.getLogger("trainer")


class SageMakerError(TrainerError):
    """The container layout or the hyper-parameters are not what the contract says."""


class GateFailed(SageMakerError):
    """The model trained but did not pass its quality gate: nothing is written to model/."""

    exit_code = EXIT_GATE_FAILED


@dataclass(frozen=True)
class Layout:
    base: Path

    @property
    def hyperparameters(self) -> Path:
        return self.base / "input" / "config" / "hyperparameters.json"

    def channel(self, name: str) -> Path:
        return self.base / "input" / "data" / name

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def failure(self) -> Path:
        return self.base / "output" / "failure"


def read_hyperparameters(path: Path) -> dict[str, str]:
    """The hyper-parameters file as a dict of strings ({} when the file is absent)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SageMakerError(f"cannot read {path}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SageMakerError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise SageMakerError(f"{path} must hold a JSON object of name -> string value")
    values: dict[str, str] = {}
    for key, value in document.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise SageMakerError(f"hyper-parameter {key!r} must be a string, got {value!r}")
        values[key] = value if isinstance(value, str) else str(value)
    return values


def hyperparameter_flags(hyperparameters: Mapping[str, str]) -> list[str]:
    """``{"max_iter": "50"}`` -> ``["--max-iter", "50"]`` (keys sorted, so the order is stable).

    Keys SageMaker's SDK adds for its own containers (``sagemaker_*``) are skipped, and a value the
    SDK JSON-quoted (``"\\"ridge\\""``) is unquoted.
    """
    flags: list[str] = []
    for key in sorted(hyperparameters):
        if key.startswith(("sagemaker_", "_")):
            continue
        flag = "--" + key.strip().lstrip("-").replace("_", "-")
        if flag in RESERVED_FLAGS:
            raise SageMakerError(
                f"hyper-parameter {key!r} is set by the container layout (input/data, model/)"
            )
        flags += [flag, _unquote(hyperparameters[key])]
    return flags


def find_data_file(channel_dir: Path) -> Path:
    """The one CSV or Parquet file SageMaker put in the channel's directory."""
    if not channel_dir.is_dir():
        raise SageMakerError(
            f"no input channel at {channel_dir}: give the job a {channel_dir.name!r} channel"
            " (InputDataConfig) with one CSV or Parquet file"
        )
    files = sorted(
        path
        for path in channel_dir.rglob("*")
        if path.is_file() and path.suffix.lower() in DATA_SUFFIXES
    )
    if not files:
        raise SageMakerError(f"no .csv or .parquet file in channel directory {channel_dir}")
    if len(files) > 1:
        names = ", ".join(str(path.relative_to(channel_dir)) for path in files[:5])
        raise SageMakerError(
            f"{len(files)} data files in {channel_dir} ({names}): point the channel at one file"
        )
    return files[0]


def parse_train_args(flags: Sequence[str]) -> TrainConfig:
    """Hyper-parameter flags -> TrainConfig, checked by the `trainer train` flags' own parser."""
    try:
        return parse_train_flags(list(flags), "hyper-parameters")
    except TrainerError as exc:
        raise SageMakerError(str(exc)) from None


def run(layout: Layout, settings: Settings, channel: str = DEFAULT_CHANNEL) -> int:
    """Train from the layout's inputs into ``model/``; expected failures raise TrainerError."""
    if layout.model_dir.is_dir() and any(layout.model_dir.iterdir()):
        raise SageMakerError(f"{layout.model_dir} is not empty: refusing to mix two runs")
    flags = hyperparameter_flags(read_hyperparameters(layout.hyperparameters))
    data_file = find_data_file(layout.channel(channel))
    _log.info("sagemaker: channel %r file %s, hyper-parameters %s", channel, data_file, flags)

    config = parse_train_args(flags)
    with tempfile.TemporaryDirectory(prefix="trainer-sagemaker-") as scratch:
        config = replace(config, data_uri=str(data_file), output_dir=Path(scratch))
        result = train(config, settings)
        if not result.gate.passed:
            raise GateFailed(_gate_reason(result.gate.checks))
        _install(result.published.run_dir, layout.model_dir)
    _log.info("sagemaker: run %s written to %s", result.version, layout.model_dir)
    return EXIT_OK


def _gate_reason(checks: list[dict[str, Any]]) -> str:
    failed = [f"{c['name']}: {c['value']:.4g} vs {c['threshold']:.4g}" for c in checks]
    return "quality gate failed (" + "; ".join(failed) + "): no model written"


def _install(run_dir: Path, model_dir: Path) -> None:
    """Copy a verified run into model/ (its contents at the root); on failure leave it empty."""
    verify_run_dir(run_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(run_dir, model_dir, dirs_exist_ok=True)
        verify_run_dir(model_dir)
    except BaseException:
        _empty(model_dir)
        raise


def _empty(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def write_failure(layout: Layout, reason: str) -> None:
    layout.failure.parent.mkdir(parents=True, exist_ok=True)
    layout.failure.write_text(reason[:FAILURE_REASON_LIMIT] + "\n")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        with contextlib.suppress(json.JSONDecodeError):
            decoded = json.loads(value)
            if isinstance(decoded, str):
                return decoded
    return value


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """``train``: what SageMaker runs. 0 with model/ written, else non-zero and output/failure."""
    parser = argparse.ArgumentParser(
        prog="train",
        description="SageMaker training entrypoint: hyper-parameters and data from "
        "$SAGEMAKER_BASE_DIR (default /opt/ml), run directory to <base>/model.",
    )
    parser.add_argument("--channel", default=DEFAULT_CHANNEL, help="input channel (default train)")
    args = parser.parse_args(argv)
    configure_logging()
    settings = settings or Settings.from_env()
    layout = Layout(settings.sagemaker_base_dir)
    layout.failure.unlink(missing_ok=True)
    try:
        return run(layout, settings, args.channel)
    except (TrainerError, ContractError) as exc:
        write_failure(layout, str(exc))
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code if isinstance(exc, TrainerError) else EXIT_ERROR
    except Exception as exc:
        # A bug, not a bad input: still tell SageMaker why, then let the traceback reach the log.
        write_failure(layout, f"unexpected {type(exc).__name__}: {exc}")
        raise


if __name__ == "__main__":
    sys.exit(main())
