"""`trainer traffic` against a stand-in /predict on loopback: the trainer may not import the
inference service, and what is checked here is what the client sends and how it reports a
refusal. The notebook test drives the real server with it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from trainer.cli import main
from trainer.training import data


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[Any]
    refuse: bool

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        answer: dict[str, Any] = {"prediction": 1.0, "model_version": "v003"}
        status = 200
        if type(self).refuse:
            answer, status = {"error": {"code": "invalid_input", "message": "nope"}}, 422
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"bodies": [], "refuse": False})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_rows_like_the_training_data_are_posted_one_per_request(
    server: tuple[str, type[_Recorder]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, handler = server
    assert main(["traffic", "--url", url, "--rows", "25", "--seed", "3"]) == 0
    assert len(handler.bodies) == 25
    first = handler.bodies[0]
    assert set(first) == set(data.FEATURE_NAMES)
    assert isinstance(first["age"], int) and isinstance(first["tenure_years"], int)
    expected = data.synthetic(25, 3).frame
    assert [body["income_k"] for body in handler.bodies] == expected["income_k"].tolist()
    assert "sent 25 rows" in capsys.readouterr().out


def test_a_shift_moves_one_feature_and_batches_group_rows(
    server: tuple[str, type[_Recorder]],
) -> None:
    url, handler = server
    argv = ["traffic", "--url", url, "--rows", "30", "--batch", "20", "--shift", "income_k=25"]
    assert main(argv) == 0
    assert [len(body["instances"]) for body in handler.bodies] == [20, 10]
    sent = [row["income_k"] for body in handler.bodies for row in body["instances"]]
    expected = (data.synthetic(30, 7).frame["income_k"] + 25).tolist()
    assert sent == pytest.approx(expected)


def test_a_refusal_or_no_server_is_one_clear_line(
    server: tuple[str, type[_Recorder]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, handler = server
    handler.refuse = True
    assert main(["traffic", "--url", url, "--rows", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {url}/predict answered 422:") and err.count("\n") == 1
    assert main(["traffic", "--url", "http://127.0.0.1:9", "--rows", "5"]) == 1
    assert "cannot connect" in capsys.readouterr().err


def test_a_bad_shift_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["traffic", "--shift", "height=3"])
    assert exit_info.value.code == 2
    assert "FEATURE=NUMBER" in capsys.readouterr().err
