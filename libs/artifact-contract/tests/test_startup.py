from __future__ import annotations

import json

from artifact_contract.startup import STARTUP_REFUSED, Refusal, last_refusal, parse_refusal


def test_the_last_refusal_line_of_a_server_output_is_found() -> None:
    first = Refusal("configuration", "bad PORT")
    second = Refusal("model_integrity", "digest mismatch", "runs/artifacts/latest")
    lines = [
        "[gunicorn] starting",
        json.dumps({"level": "error", "event": STARTUP_REFUSED, **first.fields()}),
        json.dumps({"level": "info", "event": "model_loaded"}),
        json.dumps({"level": "error", "event": STARTUP_REFUSED, **second.fields()}),
        "trailing text",
    ]
    assert last_refusal(lines) == second
    assert str(second) == "model_integrity: digest mismatch"


def test_other_lines_are_not_refusals() -> None:
    assert parse_refusal("not json") is None
    assert parse_refusal('{"event": "request"}') is None
    assert last_refusal(["", "{}"]) is None
