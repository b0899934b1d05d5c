"""Expected failures. Each carries a one-line message for a human and the CLI exit code."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_GATE_FAILED = 3


class TrainerError(Exception):
    """An expected failure: the CLI prints ``error: <message>`` and exits with ``exit_code``."""

    exit_code = EXIT_ERROR


class DataError(TrainerError):
    """The training data cannot be read or does not fit the expected schema."""


class TrackingError(TrainerError):
    """MLflow could not record the run or register the model version."""
