"""``trainer`` console script: a thin dispatcher over one module per subcommand.

To add a subcommand, write a module with ``add_parser(subparsers)`` that sets
``handler=run(args, settings) -> exit code`` and list it in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from artifact_contract import ContractError

from trainer import drift, k8s, promote, retrain, rollback, sample_data, traffic, train
from trainer.errors import EXIT_ERROR, TrainerError
from trainer.logs import configure_logging
from trainer.sagemaker import deploy, submit
from trainer.settings import Settings

SUBCOMMANDS = (train, sample_data, submit, drift, traffic, promote, rollback, retrain, deploy, k8s)


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
        code: int = args.handler(args, settings or Settings.from_env())
    except (TrainerError, ContractError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code if isinstance(exc, TrainerError) else EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
