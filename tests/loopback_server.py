"""A race-free loopback HTTP server for stand-ins of real services in tests.

The stand-in is one function from :class:`Request` to :class:`Response`; this module does the
serving the way tests need it: bound and listening (with a deep backlog) before the URL is
handed out, serving before the constructor returns, every handler thread joined on stop, and
an exception inside the stand-in raised when it stops instead of a dropped connection. The
stand-in may also raise :class:`ConnectionDroppedError` to close the connection unanswered, as
a reset connection or a crashed load balancer would. Every stand-in of the suite (the HEC and
splunkd ones) is served by this one module.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Self, cast
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "LISTEN_BACKLOG",
    "ConnectionDroppedError",
    "LoopbackServer",
    "LoopbackServerError",
    "Request",
    "Response",
    "StandIn",
]

# Connections the kernel queues before the server accepts them. socketserver's default of 5
# resets the sixth client that connects at once, so this leaves room for every concurrent
# client the tests and the operator tools open (keep them below it).
LISTEN_BACKLOG: Final = 128
# How long a new server may take to reach its serving loop before the test fails.
_START_TIMEOUT_SECONDS: Final = 10.0
# Socket timeout per request: a client that connects and goes quiet cannot hold stop().
_REQUEST_TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True)
class Request:
    """One request: the path unquoted (and as sent), query parameters, headers (names in lower
    case), raw body."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    raw_path: str = ""

    def params(self) -> dict[str, str]:
        """Query string and urlencoded body together, the last value of each name winning."""
        merged = {name: values[-1] for name, values in self.query.items()}
        form = parse_qs(self.body.decode("utf-8"), keep_blank_values=True) if self.body else {}
        merged.update({name: values[-1] for name, values in form.items()})
        return merged


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/xml; charset=UTF-8"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


class LoopbackServerError(Exception):
    """The stand-in raised while answering; raised by stop() so no test passes over it."""


class ConnectionDroppedError(Exception):
    """Raised by a stand-in that closes the connection without any answer."""


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close joins every handler thread
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, respond: Handler) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)  # binds and listens: connections queue
        self.respond = respond
        self.serving = threading.Event()
        self.failures: list[BaseException] = []
        self.lock = threading.Lock()
        self.seen: list[Request] = []

    def service_actions(self) -> None:
        """serve_forever calls this on every pass of its loop: the first pass means ready."""
        self.serving.set()

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        if error is not None:
            with self.lock:
                self.failures.append(error)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _REQUEST_TIMEOUT_SECONDS

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded on the server instead."""

    def _answer(self, method: str) -> None:
        self.close_connection = True  # one request per connection, answered or dropped
        parts = urlsplit(self.path)
        request = Request(
            method=method,
            path=unquote(parts.path),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self._body(),
            raw_path=parts.path,
        )
        server = cast(_Server, self.server)
        with server.lock:
            server.seen.append(request)
        try:
            response = server.respond(request)
        except ConnectionDroppedError:
            return  # no answer at all: the client sees the socket close
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(response.body)

    def _body(self) -> bytes:
        """The body; a Content-Length that is not a number reads as none (the client's bug,
        which the stand-in answers as it answers an empty body, not a failure of its own)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""


class StandIn:
    """A stand-in's with-block: it stops at the end of the block, whatever happened inside."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LoopbackServer(StandIn):
    """Serves ``respond`` on 127.0.0.1 from construction until :meth:`stop`.

    ``error`` is the type of what :meth:`stop` (or a server that never starts) raises, so a
    stand-in's tests can name its own failures.
    """

    def __init__(
        self, respond: Handler, *, error: type[LoopbackServerError] = LoopbackServerError
    ) -> None:
        self._error = error
        self._server = _Server(respond)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="loopback-server",
            daemon=True,
        )
        self._thread.start()
        self._stopped = False
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        if not self._server.serving.wait(_START_TIMEOUT_SECONDS):
            self.stop()
            raise error(f"did not start serving in {_START_TIMEOUT_SECONDS} s")

    @property
    def requests(self) -> list[Request]:
        """Every request answered so far, in arrival order."""
        with self._server.lock:
            return list(self._server.seen)

    @property
    def listening(self) -> bool:
        return self._thread.is_alive() and self._server.socket.fileno() != -1

    def stop(self) -> None:
        """Stop serving, join every handler and free the port; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        with self._server.lock:
            failures = list(self._server.failures)
        if failures:
            raise self._error(
                f"the stand-in failed answering {len(failures)} request(s): {failures[0]!r}"
            ) from failures[0]
