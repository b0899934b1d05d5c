"""Expected failures. Each carries a one-line message for a human and the CLI exit code.

Every exit status of the trainer's commands is defined here.
"""

import signal

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_GATE_FAILED = 3
EXIT_DRIFT = 4  # `trainer drift` found drift: a finding, not a crash
EXIT_INTERRUPTED = 128 + signal.SIGINT  # Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM  # SIGTERM (143)


class TrainerError(Exception):
    """An expected failure: the CLI prints ``error: <message>`` and exits with ``exit_code``."""

    exit_code = EXIT_ERROR


class DataError(TrainerError):
    """The training data cannot be read or does not fit the expected schema."""


class TrackingError(TrainerError):
    """MLflow could not record the run or register the model version."""
