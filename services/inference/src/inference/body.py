"""Read a request body whole, bounded by MAX_BODY_BYTES whether or not it has a Content-Length.

Under gunicorn our worker has already framed and bounded the body (worker.py); this is the same
rule at the app's edge, for any other WSGI server and for the test client. werkzeug's own bound
on a body without Content-Length stops reading at the limit and keeps what it read, so a body
cut short could still parse as valid JSON: here a body over the limit is refused.
"""

from __future__ import annotations

from flask import request

from inference.errors import InvalidBody, PayloadTooLarge

_READ = 64 * 1024


def read_body(max_bytes: int) -> bytes:
    too_large = PayloadTooLarge(f"request body is larger than {max_bytes} bytes (MAX_BODY_BYTES)")
    length = request.content_length
    if length is not None and length > max_bytes:
        raise too_large
    environ = request.environ
    # A server that ends the stream itself (chunked bodies) says so; else read Content-Length.
    stream = environ["wsgi.input"] if environ.get("wsgi.input_terminated") else request.stream
    parts: list[bytes] = []
    size = 0
    try:
        while part := stream.read(min(_READ, max_bytes + 1 - size)):
            parts.append(part)
            size += len(part)
            if size > max_bytes:
                raise too_large
    except PayloadTooLarge:
        raise
    except Exception as exc:  # whatever the server's reader raises (a malformed chunk, a cut
        # connection) is the body failing to arrive: the client's error, never a 500
        raise InvalidBody(
            f"the request body could not be read ({type(exc).__name__}: {str(exc)[:100]})"
        ) from None
    return b"".join(parts)
