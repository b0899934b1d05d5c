"""The console script's command line: subcommands, usage errors, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_settings, run_cli
from trainer.cli import build_parser, main


def test_train_is_a_subcommand_with_documented_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data-uri", "--samples", "--seed", "--output-dir", "--experiment", "--model"):
        assert flag in out
    assert "3 quality gate failed" in out


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "usage: trainer" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--holdout-fraction", "0.9"],
        ["train", "--model", "forest"],
        ["train", "--samples", "many"],
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--alpha", "-1"], "error: invalid hyper-parameters for ridge: "),
        (
            ["--model", "hist_gb", "--max-iter", "0"],
            "error: invalid hyper-parameters for hist_gb: ",
        ),
        (["--samples", "5"], "error: --samples must be at least 20, got 5"),
    ],
)
def test_invalid_values_are_one_line_and_publish_nothing(
    argv: list[str], expected: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    result = run_cli(["train", "--samples", "100", *argv], settings)
    assert result.code == 1
    assert result.stderr.splitlines()[-1].startswith(expected)
    assert "Traceback" not in result.stderr
    assert not settings.artifact_root.exists()


def test_the_sagemaker_entrypoint_does_not_import_the_cli() -> None:
    # train() is called directly; nothing goes back through the command line (no import cycle).
    code = "import sys, trainer.sagemaker.container; print('trainer.cli' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
