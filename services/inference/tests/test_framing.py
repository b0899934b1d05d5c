"""Request framing as the bytes arrive, in any pieces."""

from __future__ import annotations

import pytest

from inference.framing import FramingError, RequestScanner

CHUNKED = (
    b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: yes\r\n\r\n"
)
LENGTH = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
NEXT = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("request_bytes", [CHUNKED, LENGTH, NEXT], ids=["chunked", "length", "get"])
def test_a_request_is_complete_exactly_at_its_end_whatever_the_pieces(
    request_bytes: bytes,
) -> None:
    for size in (1, 2, 7, len(request_bytes)):
        scanner = RequestScanner(max_body_bytes=100)
        stream = request_bytes + NEXT  # a pipelined request behind it is not part of it
        ends = []
        for start in range(0, len(stream), size):
            end = scanner.feed(stream[start : start + size])
            if end is not None:
                ends.append(end)
                break
        assert ends == [len(request_bytes)], size


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", 413),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc", 400),
        (b"GET /" + b"a" * 5000, 414),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20000, 431),
    ],
    ids=["length", "chunk-total", "chunk-size", "chunk-end", "request-line", "headers"],
)
def test_refusals_come_as_soon_as_the_bytes_show_them(data: bytes, status: int) -> None:
    with pytest.raises(FramingError) as refused:
        RequestScanner(max_body_bytes=100).feed(data)
    assert refused.value.status == status


def test_framing_gunicorn_must_judge_ends_at_the_headers() -> None:
    """Ambiguous framing is not guessed at: gunicorn's parser refuses it (worker tests)."""
    for framing in (b"Content-Length: 5\r\nContent-Length: 6", b"Content-Length: 5\r\n"
                    b"Transfer-Encoding: chunked", b"Content-Length: -1"):  # fmt: skip
        head = b"POST / HTTP/1.1\r\n" + framing + b"\r\n\r\n"
        assert RequestScanner(100).feed(head + b"abcdef") == len(head)
