"""``trainer sample-data``: write the synthetic training set as a CSV (to edit, or train on)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from trainer.errors import EXIT_OK
from trainer.settings import Settings
from trainer.training.data import write_synthetic_csv


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sample-data",
        help="write the synthetic data set as CSV",
        description="Write the seed's synthetic regression set (age, income_k, tenure_years, "
        "target) as CSV. `trainer train --data-uri FILE` on it trains the same model as "
        "`trainer train` with the same --seed and --samples.",
    )
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    parser.add_argument("--samples", type=int, default=2000, help="rows (default 2000)")
    parser.add_argument("--seed", type=int, default=42, help="seed (default 42)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:  # noqa: ARG001
    dataset = write_synthetic_csv(args.out, args.samples, args.seed)
    sys.stderr.write(f"wrote {dataset.rows} rows to {args.out} (sha256 {dataset.sha256})\n")
    return EXIT_OK
