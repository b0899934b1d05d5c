"""Our gunicorn worker: requests are read in the event loop, only complete ones reach a thread.

gunicorn's ``gthread`` worker hands a connection to a thread as soon as its first bytes arrive,
and the thread then blocks reading the rest with no deadline: a few clients that send part of a
request and stop hold every thread, and healthy clients (the load balancer's health check
included) wait behind them. This worker keeps gthread's threads and keep-alive, and changes who
reads: every connection waits in the worker's selector while its request arrives, buffered in
memory and framed by ``framing.RequestScanner``; a thread is given only a complete request,
parsed by gunicorn's own parser from memory. Each request has deadlines
(``CLIENT_HEADER_TIMEOUT`` from the connection or its first byte to the end of the headers,
``CLIENT_BODY_TIMEOUT`` for the body); past them the client gets a 408 and the connection is
closed. Refusals made here (408, 413, 414, 431, a malformed chunked body) and gunicorn's parse
errors are answered with the service's JSON error shape, an ``X-Request-ID`` and a request log
line, never gunicorn's HTML page. HTTP/1.x only (TLS and HTTP/2 terminate in front of us).
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Any, ClassVar

import orjson
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, ThreadWorker

from inference.app import request_id_from
from inference.framing import FramingError, Head, RequestScanner

READ_SIZE = 256 * 1024
# After an error answer, read and drop what the client still sends for this long (at most this
# much) before closing, so the kernel does not reset the connection before the answer arrives.
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    header_timeout: float
    body_timeout: float
    max_body_bytes: int


@dataclass(frozen=True)
class Rejection:
    """What the service logs (and counts) about a request refused before it reached Flask."""

    request_id: str
    method: str
    path: str
    status: int
    code: str
    latency: float


@dataclass
class Waiting:
    scanner: RequestScanner
    deadline: float
    started: float
    idle: bool  # kept alive, no byte of the next request yet
    lingering: bool = False
    dropped: int = 0
    phase: str = "header"


@dataclass
class Handoff:
    """A complete request, from the event loop to a thread."""

    data: bytes
    head: Head
    started: float


def error_response(status: int, code: str, message: str, request_id: str) -> bytes:
    body = orjson.dumps({"error": {"code": code, "message": message}, "request_id": request_id})
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def parse_error(exc: Exception) -> tuple[int, str]:
    """gunicorn's parse errors as (status, code), the way its own HTML page would say them."""
    if isinstance(exc, http_errors.LimitRequestLine):
        return 414, "uri_too_long"
    if isinstance(exc, http_errors.LimitRequestHeaders):
        return 431, "request_header_fields_too_large"
    if isinstance(exc, http_errors.UnsupportedTransferCoding):
        return 501, "not_implemented"
    if isinstance(exc, http_errors.ExpectationFailed):
        return 417, "expectation_failed"
    if isinstance(exc, http_errors.ForbiddenProxyRequest):
        return 403, "forbidden"
    chunk_errors = (
        http_errors.InvalidChunkSize,
        http_errors.ChunkMissingTerminator,
        http_errors.InvalidChunkExtension,
    )
    if isinstance(exc, chunk_errors):
        return 400, "invalid_chunked_body"
    return 400, "bad_request"


class BufferingWorker(ThreadWorker):  # type: ignore[misc]
    """Configured by subclassing (serving.worker_class): gunicorn instantiates it itself."""

    limits: ClassVar[Limits]
    # Logs and counts a request refused before it reached the app, as the app does its own.
    report: ClassVar[Callable[[Rejection], None]]

    def init_process(self) -> None:
        self.waiting: dict[Any, Waiting] = {}
        super().init_process()

    # --- event loop: reading requests ------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        conn = self._connection(sock, client, listener.getsockname())
        now = time.monotonic()
        self._wait(conn, now + self.limits.header_timeout, now, idle=False)

    def _connection(self, sock: socket.socket, client: Any, server: Any) -> Any:
        from gunicorn.workers.gthread import TConn

        return TConn(self.cfg, sock, client, server)

    def _wait(self, conn: Any, deadline: float, started: float, *, idle: bool) -> None:
        conn.sock.setblocking(False)
        self.waiting[conn] = Waiting(
            RequestScanner(self.limits.max_body_bytes), deadline, started, idle
        )
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: Any, _sock: Any) -> None:
        waiting = self.waiting.get(conn)
        if waiting is None:
            return
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
        elif waiting.lingering:
            waiting.dropped += len(data)
            if waiting.dropped > LINGER_BYTES:
                self._close(conn)
        else:
            self._received(conn, waiting, data)

    def _received(self, conn: Any, waiting: Waiting, data: bytes) -> None:
        now = time.monotonic()
        if waiting.idle:  # the first byte of a kept-alive connection's next request
            waiting.idle = False
            waiting.started = now
            waiting.deadline = now + self.limits.header_timeout
        scanner = waiting.scanner
        had_head = scanner.head is not None
        try:
            end = scanner.feed(data)
        except FramingError as exc:
            self._refuse(conn, waiting, exc.status, exc.code, exc.message)
            return
        head = scanner.head
        if head is not None and not had_head:
            waiting.phase = "body"
            waiting.deadline = now + self.limits.body_timeout
            if end is None and head.expect_continue:
                _send_quietly(conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
        if end is None or head is None:
            return
        self.poller.unregister(conn.sock)
        del self.waiting[conn]
        conn.handoff = Handoff(bytes(scanner.data), head, waiting.started)
        conn.data_ready = True
        self.enqueue_req(conn)

    def _refuse(self, conn: Any, waiting: Waiting, status: int, code: str, message: str) -> None:
        head = waiting.scanner.best_head()
        request_id = request_id_from(head.request_id if head else None)
        _send_quietly(conn.sock, error_response(status, code, message, request_id))
        self._report(head, request_id, status, code, waiting.started)
        self._linger(conn, waiting)

    def _linger(self, conn: Any, waiting: Waiting) -> None:
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        waiting.lingering = True
        waiting.deadline = time.monotonic() + LINGER_SECONDS

    def _report(
        self, head: Head | None, request_id: str, status: int, code: str, started: float
    ) -> None:
        method, path = (head.method, head.path) if head else ("-", "-")
        latency = time.monotonic() - started
        type(self).report(Rejection(request_id, method, path, status, code, latency))

    def _close(self, conn: Any) -> None:
        if self.waiting.pop(conn, None) is not None:
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
        self.nr_conns -= 1
        util.close(conn.sock)

    def murder_pending(self) -> None:
        """Every loop turn: close or refuse the connections past their deadline."""
        now = time.monotonic()
        for conn, waiting in list(self.waiting.items()):
            if not self.alive and waiting.idle:
                waiting.deadline = min(waiting.deadline, now + STOP_KEEPALIVE_LINGER)
            if waiting.deadline > now:
                continue
            if waiting.lingering or (waiting.idle and not waiting.scanner.data):
                self._close(conn)
            else:
                setting = (
                    "CLIENT_HEADER_TIMEOUT"
                    if waiting.phase == "header"
                    else ("CLIENT_BODY_TIMEOUT")
                )
                limit = getattr(self.limits, f"{waiting.phase}_timeout")
                message = (
                    f"the request's {waiting.phase} did not arrive within {limit:g} s ({setting})"
                )
                self._refuse(conn, waiting, 408, "request_timeout", message)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self.waiting:  # wake up for the first deadline, not a whole second later
            first = min(waiting.deadline for waiting in self.waiting.values())
            timeout = min(timeout, max(first - time.monotonic(), 0.0) + 0.01)
        super().wait_for_and_dispatch_events(timeout)

    # --- threads: serving complete requests ------------------------------------------------

    def handle(self, conn: Any) -> bool:
        handoff: Handoff = conn.handoff
        req = None
        try:
            # Writing the answer to a client that does not read it is bounded too.
            conn.sock.settimeout(self.limits.body_timeout)
            conn.initialized = True
            conn.parser = RequestParser(self.cfg, [handoff.data], conn.client)
            req = next(conn.parser)
            req._expected_100_continue = False  # the event loop has answered it already
            keep = self.handle_request(req, conn)
            return bool(self._keepalive_after(conn, keep))
        except (StopIteration, http_errors.NoMoreData):
            return False
        except OSError as exc:  # the client went away or stopped reading (socket timeout)
            self.log.debug("connection closed while answering: %s", exc)
            return False
        except Exception as exc:
            self._answer_failure(conn, handoff, exc)
            return False

    def _answer_failure(self, conn: Any, handoff: Handoff, exc: Exception) -> None:
        if isinstance(exc, http_errors.ParseException):
            status, code = parse_error(exc)
            message = str(exc).splitlines()[0][:200] if str(exc) else code
        else:
            self.log.exception("error handling a request")
            status, code = 500, "internal_error"
            message = "internal error; the server log has the details"
        request_id = request_id_from(handoff.head.request_id)
        try:
            conn.sock.sendall(error_response(status, code, message, request_id))
        except OSError:
            pass
        self._report(handoff.head, request_id, status, code, handoff.started)

    def finish_request(self, conn: Any, fs: Any) -> None:
        """Back in the event loop: wait for the next request, or close."""
        try:
            keep = bool(fs.result()) if not fs.cancelled() else False
        except Exception:
            keep = False
        conn.handoff = None
        if not keep:
            self._wait(conn, 0.0, time.monotonic(), idle=False)
            self._linger(conn, self.waiting[conn])
            return
        leftover = conn.parser.unreader.take_buffered()
        now = time.monotonic()
        linger = self.cfg.keepalive if self.alive else STOP_KEEPALIVE_LINGER
        self._wait(conn, now + linger, now, idle=True)
        if leftover:  # a pipelined next request, already read
            self._received(conn, self.waiting[conn], leftover)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Best effort, never blocking the loop: an error answer is small and the socket's send
    buffer is empty at this point; a client that has gone away does not need it."""
    try:
        sock.send(data)
    except OSError:
        pass
