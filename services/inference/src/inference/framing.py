"""Find where an HTTP/1.1 request ends in the bytes received so far.

The worker (worker.py) buffers each request until it is complete and serves only complete
requests, so a client that sends slowly, or stops, holds a buffer and never a thread. This
scanner only frames: request line + headers up to the blank line, then a body of
``Content-Length`` bytes or a chunked body up to its last chunk and trailers. It enforces the
size limits as the bytes arrive (413 as soon as a declared or decoded size passes
``MAX_BODY_BYTES``, before the rest is read). gunicorn's own parser then parses the complete
request again and stays the authority on everything else: where this scanner cannot tell the
framing (a malformed or repeated Content-Length, Content-Length with Transfer-Encoding, a coding
other than chunked), it calls the request complete at its headers and gunicorn's parser refuses
it.
"""

from __future__ import annotations

from dataclasses import dataclass

HEAD_END = b"\r\n\r\n"
CRLF = b"\r\n"
MAX_REQUEST_LINE = 4094  # gunicorn's limit_request_line default (414 past it)
MAX_HEAD_BYTES = 64 * 1024  # request line + headers (431 past it); gunicorn allows ~800 KiB
MAX_CHUNK_LINE = 1024  # a chunk-size line with its extensions
_HEX = frozenset(b"0123456789abcdefABCDEF")


class FramingError(Exception):
    """The request cannot be accepted; answered with ``status`` and this JSON error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Head:
    method: str
    path: str
    request_id: str | None
    content_length: int | None  # None: no body, or one gunicorn will refuse
    chunked: bool
    expect_continue: bool


class RequestScanner:
    """Feed it the bytes of one connection; ``feed`` says when the current request is whole."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.data = bytearray()
        self.head: Head | None = None
        self._body_start = 0
        self._chunk_at = 0  # offset of the next chunk-size line (chunked bodies)
        self._decoded = 0

    def feed(self, data: bytes) -> int | None:
        """Add ``data``; return the length of the complete request, or None while it is not.

        Raises FramingError for a request to refuse without reading it further.
        """
        searched = max(len(self.data) - 3, 0)
        self.data += data
        if self.head is None:
            end = self.data.find(HEAD_END, searched)
            if end < 0:
                self._check_partial_head()
                return None
            if end + 4 > MAX_HEAD_BYTES:
                raise _headers_too_large()
            self.head = parse_head(bytes(self.data[:end]))
            self._body_start = self._chunk_at = end + 4
            if self.head.content_length is not None:
                self._check_size(self.head.content_length)
        head = self.head
        if head.chunked:
            return self._scan_chunks()
        total = self._body_start + (head.content_length or 0)
        return total if len(self.data) >= total else None

    def best_head(self) -> Head | None:
        """The head, or what its complete lines say so far (for the log of a refusal)."""
        if self.head is not None:
            return self.head
        end = self.data.rfind(CRLF, 0, MAX_HEAD_BYTES)
        return parse_head(bytes(self.data[:end])) if end > 0 else None

    def _check_partial_head(self) -> None:
        line_end = self.data.find(CRLF, 0, MAX_REQUEST_LINE + 2)
        if line_end < 0 and len(self.data) > MAX_REQUEST_LINE + 1:
            raise FramingError(
                414, "uri_too_long", f"the request line is longer than {MAX_REQUEST_LINE} bytes"
            )
        if len(self.data) > MAX_HEAD_BYTES:
            raise _headers_too_large()

    def _check_size(self, size: int) -> None:
        if size > self.max_body_bytes:
            raise FramingError(
                413,
                "payload_too_large",
                f"request body is larger than {self.max_body_bytes} bytes (MAX_BODY_BYTES)",
            )

    def _scan_chunks(self) -> int | None:
        data = self.data
        # Chunk framing may cost more than the bytes it frames (1-byte chunks): bound it too.
        if len(data) - self._body_start > 2 * self.max_body_bytes + MAX_HEAD_BYTES:
            self._check_size(self.max_body_bytes + 1)
        while True:
            line_end = data.find(CRLF, self._chunk_at, self._chunk_at + MAX_CHUNK_LINE + 2)
            if line_end < 0:
                if len(data) - self._chunk_at > MAX_CHUNK_LINE:
                    raise _bad_chunk("a chunk-size line is too long")
                return None
            size_text = bytes(data[self._chunk_at : line_end]).split(b";", 1)[0]
            if not size_text or len(size_text) > 16 or not set(size_text) <= _HEX:
                raise _bad_chunk(f"invalid chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                return self._scan_trailers(line_end + 2)
            self._check_size(self._decoded + size)  # before waiting for the chunk's bytes
            chunk_end = line_end + 2 + size + 2
            if len(data) < chunk_end:
                return None
            if data[chunk_end - 2 : chunk_end] != CRLF:
                raise _bad_chunk("a chunk does not end with CRLF")
            self._decoded += size
            self._chunk_at = chunk_end

    def _scan_trailers(self, start: int) -> int | None:
        if self.data[start : start + 2] == CRLF:
            return start + 2
        end = self.data.find(HEAD_END, start)
        if end < 0:
            if len(self.data) - start > MAX_HEAD_BYTES:
                raise _headers_too_large()
            return None
        return end + 4


def parse_head(head: bytes) -> Head:
    """What framing needs from the request line and headers; gunicorn validates the rest."""
    lines = head.split(CRLF)
    request_line = lines[0].decode("latin-1").split(" ")
    method = request_line[0][:16]
    path = request_line[1].split("?", 1)[0][:200] if len(request_line) > 1 else ""
    lengths: list[bytes] = []
    codings: list[bytes] = []
    request_id = None
    expect_continue = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        value = value.strip(b" \t")
        if key == b"content-length":
            lengths.append(value)
        elif key == b"transfer-encoding":
            codings.extend(c.strip(b" \t").lower() for c in value.split(b","))
        elif key == b"x-request-id":
            request_id = value.decode("latin-1")
        elif key == b"expect":
            expect_continue = value.lower() == b"100-continue"
    chunked = bool(codings) and codings == [b"chunked"] and not lengths
    content_length = None
    if not codings and len(lengths) == 1 and lengths[0].isdigit():
        content_length = int(lengths[0])
    has_body = chunked or bool(content_length)
    return Head(method, path, request_id, content_length, chunked, expect_continue and has_body)


def _headers_too_large() -> FramingError:
    return FramingError(
        431,
        "request_header_fields_too_large",
        f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes",
    )


def _bad_chunk(message: str) -> FramingError:
    return FramingError(400, "invalid_chunked_body", message)
