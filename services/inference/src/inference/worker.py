"""Our gunicorn worker: a connection holds a thread only while its complete request is served.

gunicorn's ``gthread`` worker hands a connection to a thread as soon as its first bytes arrive,
and the thread then blocks reading the rest with no deadline: a few clients that send part of a
request and stop hold every thread, and healthy clients (the load balancer's health check
included) wait behind them. This worker keeps gthread's selector, threads and keep-alive, and
changes how a request is read: a thread reads what has arrived without blocking and frames it
(``framing.RequestScanner``); a complete request is served at once, by gunicorn's own parser from
memory; an incomplete one goes back to the selector with its buffer, and the thread is free.
Each request has deadlines, kept by the event loop (``CLIENT_HEADER_TIMEOUT`` from the connection
or its first byte to the end of the headers, ``CLIENT_BODY_TIMEOUT`` for the body); past them
the client gets a 408 and the connection is closed. Refusals made here (408, 413, 414, 431, a
malformed chunked body) and gunicorn's parse errors are answered with the service's JSON error
shape, an ``X-Request-ID`` and a request log line, never gunicorn's HTML page. HTTP/1.x only
(TLS and HTTP/2 terminate in front of us).
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any, ClassVar

from artifact_contract.errors import first_line
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from inference.app import request_id_from
from inference.framing import FramingError, Head, RequestScanner
from inference.refusals import Rejection, error_response, parse_error

READ_SIZE = 256 * 1024
# After an error answer, read and drop what the client still sends for this long (at most this
# much) before closing, so the kernel does not reset the connection before the answer arrives.
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    header_timeout: int
    body_timeout: int
    max_body_bytes: int


@dataclass
class Waiting:
    scanner: RequestScanner
    deadline: float
    started: float
    idle: bool  # kept alive, no byte of the next request yet
    lingering: bool = False
    dropped: int = 0


class Next(Enum):
    """What the event loop does with a connection a thread hands back."""

    WAIT = "wait"  # the request is not complete yet: back to the selector, same deadline
    CLOSE = "close"  # the client closed, or the connection failed
    LINGER = "linger"  # answered (an error, or Connection: close): drain briefly, then close
    KEEP = "keep"  # answered; wait for the next request on this connection


class BufferingWorker(ThreadWorker):  # type: ignore[misc]
    """Configured by subclassing (serving.worker_class): gunicorn instantiates it itself."""

    limits: ClassVar[Limits]
    # Logs and counts a request refused before it reached the app, as the app does its own.
    report: ClassVar[Callable[[Rejection], None]]

    def init_process(self) -> None:
        self.waiting: dict[Any, Waiting] = {}  # connections in the selector
        self.next_deadline = float("inf")  # no connection in the selector has an earlier one
        super().init_process()

    # --- event loop ------------------------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        # Writing an answer to a client that does not read it is bounded too, by the kernel
        # (a socket timeout would cost a poll() before every send).
        timeout = struct.pack("ll", self.limits.body_timeout, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
        conn = TConn(self.cfg, sock, client, listener.getsockname())
        now = time.monotonic()
        waiting = Waiting(self._scanner(), now + self.limits.header_timeout, now, False)
        try:  # the request has usually arrived with the connection: no trip through the selector
            data = sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            self._wait(conn, waiting)
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.waiting, conn.leftover = waiting, data
        self.enqueue_req(conn)

    def _scanner(self) -> RequestScanner:
        return RequestScanner(self.limits.max_body_bytes)

    def _wait(self, conn: Any, waiting: Waiting) -> None:
        conn.sock.setblocking(False)
        self.waiting[conn] = waiting
        self.next_deadline = min(self.next_deadline, waiting.deadline)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: Any, _sock: Any) -> None:
        waiting = self.waiting.get(conn)
        if waiting is None:
            return
        if waiting.lingering:
            self._drain(conn, waiting)
            return
        # A thread reads what has arrived without blocking (as gthread hands a readable
        # connection to a thread, so the common case costs no extra hand-off); it serves the
        # request if that completes it, else gives the connection back (Next.WAIT).
        self.poller.unregister(conn.sock)
        del self.waiting[conn]
        conn.waiting = waiting
        self.enqueue_req(conn)

    def _drain(self, conn: Any, waiting: Waiting) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        waiting.dropped += len(data)
        if not data or waiting.dropped > LINGER_BYTES:
            self._close(conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        """Back in the event loop with what the thread decided."""
        try:
            step = fs.result() if not fs.cancelled() else Next.CLOSE
        except Exception:
            self.log.exception("error reading a request")
            step = Next.CLOSE
        waiting: Waiting = conn.waiting
        conn.waiting = None
        try:
            if step is Next.WAIT:
                self._wait(conn, waiting)
            elif step is Next.KEEP:
                leftover = conn.parser.unreader.take_buffered()
                now = time.monotonic()
                idle = self.cfg.keepalive if self.alive else STOP_KEEPALIVE_LINGER
                waiting = Waiting(self._scanner(), now + idle, now, idle=True)
                if leftover:  # a pipelined next request, read already: a thread takes it
                    waiting.idle = False
                    waiting.deadline = now + self.limits.header_timeout
                    conn.waiting, conn.leftover = waiting, leftover
                    conn.sock.setblocking(False)
                    self.enqueue_req(conn)
                    return
                self._wait(conn, waiting)
            elif step is Next.LINGER:
                conn.sock.setblocking(False)
                self._linger(conn, waiting)
            else:
                self._close(conn)
        except (OSError, ValueError):  # the socket is gone already
            self._close(conn)

    def _linger(self, conn: Any, waiting: Waiting) -> None:
        """Half-close after an answer; close once the client has (often already the case),
        else drain in the selector until then or until the linger ends."""
        waiting.lingering = True
        waiting.deadline = time.monotonic() + LINGER_SECONDS
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            closed = conn.sock.recv(READ_SIZE) == b""
        except (BlockingIOError, InterruptedError):
            closed = False
        except OSError:
            closed = True
        if closed:
            self._close(conn)
        elif conn not in self.waiting:
            self._wait(conn, waiting)
        else:
            self.next_deadline = min(self.next_deadline, waiting.deadline)

    def _close(self, conn: Any) -> None:
        if self.waiting.pop(conn, None) is not None:
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
        self.nr_conns -= 1
        util.close(conn.sock)

    def murder_pending(self) -> None:
        """Every loop turn: close or refuse the connections past their deadline (a sweep only
        when the earliest deadline has come, so a busy loop does not pay for idle ones)."""
        now = time.monotonic()
        if self.alive and now < self.next_deadline:
            return
        self.next_deadline = float("inf")
        for conn, waiting in list(self.waiting.items()):
            if not self.alive and waiting.idle:
                waiting.deadline = min(waiting.deadline, now + STOP_KEEPALIVE_LINGER)
            if waiting.deadline > now:
                self.next_deadline = min(self.next_deadline, waiting.deadline)
                continue
            if waiting.lingering or waiting.idle:
                self._close(conn)
                continue
            setting, limit = (
                ("CLIENT_HEADER_TIMEOUT", self.limits.header_timeout)
                if waiting.scanner.head is None
                else ("CLIENT_BODY_TIMEOUT", self.limits.body_timeout)
            )
            part = "headers" if waiting.scanner.head is None else "body"
            message = f"the request's {part} did not arrive within {limit:g} s ({setting})"
            self._refuse(conn, waiting, 408, "request_timeout", message)
            self._linger(conn, waiting)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self.waiting:  # wake up for the first deadline, not up to a second later
            timeout = min(timeout, max(self.next_deadline - time.monotonic(), 0.0) + 0.01)
        super().wait_for_and_dispatch_events(timeout)

    # --- threads ---------------------------------------------------------------------------

    def handle(self, conn: Any) -> Next:
        """Read what has arrived (never blocking); serve the request once it is complete."""
        waiting: Waiting = conn.waiting
        leftover, conn.leftover = getattr(conn, "leftover", b""), b""
        step = self._received(conn, waiting, leftover) if leftover else None
        while step is None:
            try:
                data = conn.sock.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return Next.WAIT
            except OSError:
                return Next.CLOSE
            if not data:
                return Next.CLOSE
            step = self._received(conn, waiting, data)
        if step is not Next.KEEP:
            return step
        return self._serve(conn, waiting)

    def _received(self, conn: Any, waiting: Waiting, data: bytes) -> Next | None:
        """None while the request is incomplete; Next.KEEP once it is complete (to serve);
        Next.LINGER once it is refused (answered here)."""
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
            return Next.LINGER
        if scanner.head is not None and not had_head:
            waiting.deadline = now + self.limits.body_timeout
            if end is None and scanner.head.expect_continue:
                _send_quietly(conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
        return None if end is None else Next.KEEP

    def _refuse(self, conn: Any, waiting: Waiting, status: int, code: str, message: str) -> None:
        head = waiting.scanner.best_head()
        request_id = request_id_from(head.request_id if head else None)
        _send_quietly(conn.sock, error_response(status, code, message, request_id))
        self._report(head, request_id, status, code, waiting.started)

    def _report(
        self, head: Head | None, request_id: str, status: int, code: str, started: float
    ) -> None:
        method, path = (head.method, head.path) if head else ("-", "-")
        latency = time.monotonic() - started
        type(self).report(Rejection(request_id, method, path, status, code, latency))

    def _serve(self, conn: Any, waiting: Waiting) -> Next:
        """gunicorn's parser and request handling, on the complete request in memory."""
        head = waiting.scanner.head
        assert head is not None
        req = None
        try:
            conn.sock.setblocking(True)
            conn.initialized = conn.data_ready = True
            conn.parser = RequestParser(self.cfg, [bytes(waiting.scanner.data)], conn.client)
            req = next(conn.parser)
            req._expected_100_continue = False  # answered already, if it was asked for
            keep = self._keepalive_after(conn, self.handle_request(req, conn))
            return Next.KEEP if keep else Next.LINGER
        except (StopIteration, http_errors.NoMoreData):
            return Next.LINGER
        except OSError as exc:  # the client went away or stopped reading (socket timeout)
            self.log.debug("connection closed while answering: %s", exc)
            return Next.CLOSE
        except Exception as exc:
            if isinstance(exc, http_errors.ParseException):
                status, code = parse_error(exc)
                message = first_line(str(exc), default=code, limit=200)
            else:
                self.log.exception("error handling a request")
                status, code = 500, "internal_error"
                message = "internal error; the server log has the details"
            request_id = request_id_from(head.request_id)
            try:
                conn.sock.sendall(error_response(status, code, message, request_id))
            except OSError:
                pass
            self._report(head, request_id, status, code, waiting.started)
            return Next.LINGER


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Best effort, never blocking the loop: an error answer is small and the socket's send
    buffer is empty at this point; a client that has gone away does not need it."""
    try:
        sock.send(data)
    except OSError:
        pass
