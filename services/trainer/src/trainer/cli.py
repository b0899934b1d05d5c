"""``trainer`` console script: a thin dispatcher over one module per subcommand.

To add a subcommand, write a module with ``add_parser(subparsers)`` that sets
``handler=run(args, settings) -> exit code`` and list it in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from artifact_contract import ContractError

from trainer import k8s, sample_data, train
from trainer.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED, TrainerError
from trainer.logs import configure_logging
from trainer.monitoring import drift, traffic
from trainer.promotion import promote, retrain, rollback
from trainer.sagemaker import deploy, submit, transform
from trainer.settings import Settings

SUBCOMMANDS = (
    train,
    sample_data,
    submit,
    transform,
    drift,
    traffic,
    promote,
    rollback,
    retrain,
    deploy,
    k8s,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainer", description="mlpipeline training path")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        with _sigterm_unwinds():
            code: int = args.handler(args, settings or Settings.from_env())
    except (TrainerError, ContractError, Interrupted) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code if isinstance(exc, TrainerError | Interrupted) else EXIT_ERROR
    except KeyboardInterrupt:  # Ctrl-C: the same unwinding, without a traceback
        sys.stderr.write("error: interrupted\n")
        return EXIT_INTERRUPTED
    return code


class Interrupted(BaseException):
    """SIGTERM: raised where the command was, so its cleanup runs (a smoke-gate server stopped,
    locks released, temporary files removed). A BaseException, like KeyboardInterrupt, so no
    ``except Exception`` on the way (MLflow has many) swallows it. Exit 143 = 128 + SIGTERM."""

    exit_code = EXIT_TERMINATED


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup
        raise Interrupted("interrupted by SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
