"""A loopback Splunk HTTP Event Collector (HEC) for tests.

Real Splunk cannot run in CI here, so clients are tested against this stub instead. It
follows Splunk's documented HEC contract (endpoints, token auth, channels, indexer
acknowledgement, status codes and ``invalid-event-number``) so that a client passing
against it fails against a real Splunk only for deployment reasons, never protocol ones.
Anything the stub decides that Splunk does not document is called out where it happens.
The serving itself (backlog, ready before the URL is handed out, handlers joined on stop, the
stub's own failures raised at stop) is tests/loopback_server.py's; this module is HEC's side.
"""

from __future__ import annotations

import base64
import binascii
import enum
import gzip
import json
import re
import socket
import threading
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

from tests.loopback_server import (
    LISTEN_BACKLOG,
    ConnectionDroppedError,
    LoopbackServer,
    LoopbackServerError,
    Request,
    Response,
    StandIn,
)

__all__ = [
    "LISTEN_BACKLOG",
    "ConnectionDroppedError",
    "Fault",
    "HecRequest",
    "HecStub",
    "HecStubError",
    "refusing_url",
]

EVENT_PATHS: Final = frozenset(
    {"/services/collector", "/services/collector/event", "/services/collector/event/1.0"}
)
RAW_PATHS: Final = frozenset({"/services/collector/raw", "/services/collector/raw/1.0"})
ACK_PATHS: Final = frozenset({"/services/collector/ack", "/services/collector/ack/1.0"})
HEALTH_PATHS: Final = frozenset({"/services/collector/health", "/services/collector/health/1.0"})

# Splunk wants channels as GUIDs in the 8-4-4-4-12 hex form.
_GUID = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")

# HEC status code -> (HTTP status, text), as in Splunk's documented table.
_ERRORS: Final[Mapping[int, tuple[int, str]]] = {
    1: (403, "Token disabled"),
    2: (401, "Token is required"),
    3: (401, "Invalid authorization"),
    4: (403, "Invalid token"),
    5: (400, "No data"),
    6: (400, "Invalid data format"),
    7: (400, "Incorrect index"),
    9: (503, "Server is busy"),
    10: (400, "Data channel is missing"),
    11: (400, "Invalid data channel"),
    12: (400, "Event field is required"),
    13: (400, "Event field cannot be blank"),
    14: (400, "ACK is disabled"),
    15: (400, "Error in handling indexed fields"),
    16: (400, "Query string authorization is not enabled"),
}

Payload = dict[str, Any]
_JSON: Final = "application/json; charset=UTF-8"


class Fault(enum.Enum):
    """What the network or HEC can do to one data POST, for client retry tests.

    ``BUSY`` is Splunk's documented 503 code 9 (nothing indexed). The two drops close the
    connection without any answer, as a reset connection or a crashed load balancer would:
    ``DROP_BEFORE_INDEXING`` before the events are taken, ``DROP_AFTER_INDEXING`` after they
    were indexed (and their ackId issued), so a client that sends again indexes them twice.
    """

    BUSY = "busy"
    DROP_BEFORE_INDEXING = "drop-before-indexing"
    DROP_AFTER_INDEXING = "drop-after-indexing"


@dataclass(frozen=True)
class HecRequest:
    """What the stub saw and answered, so tests can assert on the wire exchange.

    A request whose connection the stub dropped has ``dropped`` set, status 0 and no code.
    """

    method: str
    path: str
    channel: str | None
    events: int
    status: int
    code: int | None
    dropped: bool = False
    content_encoding: str | None = None


@dataclass(frozen=True)
class _Incoming:
    """One request, reduced to the parts HEC looks at."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    authorization: str | None
    channel: str | None
    content_encoding: str | None
    body: bytes

    @classmethod
    def of(cls, request: Request) -> _Incoming:
        """The channel comes from its header or, failing that, the query string."""
        channel = request.headers.get("x-splunk-request-channel")
        if channel is None and request.query.get("channel"):
            channel = request.query["channel"][0]
        return cls(
            method=request.method,
            path=request.path.rstrip("/") or "/",
            query=request.query,
            authorization=request.headers.get("authorization"),
            channel=channel,
            content_encoding=request.headers.get("content-encoding"),
            body=request.body,
        )


class _Drop(Exception):  # noqa: N818 - control flow, not an error condition of the stub
    """Abort request handling by closing the connection; ``stored`` events were kept."""

    def __init__(self, stored: int) -> None:
        super().__init__(stored)
        self.stored = stored


class _Reject(Exception):  # noqa: N818 - control flow, not an error condition of the stub
    """Abort request handling with a documented HEC error response."""

    def __init__(self, code: int, invalid_event_number: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.invalid_event_number = invalid_event_number


def _error_payload(code: int, invalid_event_number: int | None = None) -> tuple[int, Payload]:
    status, text = _ERRORS[code]
    payload: Payload = {"text": text, "code": code}
    if invalid_event_number is not None:
        payload["invalid-event-number"] = invalid_event_number
    return status, payload


def _is_indexed_fields(value: object) -> bool:
    """Splunk only indexes flat ``fields``: string values or lists of strings."""
    if not isinstance(value, dict):
        return False
    return all(
        isinstance(item, str)
        or (isinstance(item, list) and all(isinstance(part, str) for part in item))
        for item in value.values()
    )


def _is_epoch(value: object) -> bool:
    """HEC ``time`` is epoch seconds, as a number or a numeric string.

    The stub rejects anything else with code 6; this catches clients sending ISO dates.
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


class HecStubError(LoopbackServerError):
    """The stub itself failed while answering; raised when it stops so no test passes over it."""


class HecStub(StandIn):
    """A running loopback HEC endpoint with one token.

    ``use_ack`` mirrors the token's indexer-acknowledgement setting; ``allowed_indexes``
    (when given) is the token's index allow-list; ``disabled`` simulates a disabled token;
    the first ``busy_responses`` data POSTs get 503 code 9 so client retries can be tested
    (:meth:`inject` queues any :class:`Fault`); ``retry_after`` (seconds) adds a Retry-After
    header to 503 answers, as a load balancer in front of HEC may (Splunk documents none);
    ``confirm_acks=False`` makes every ack query answer false, as if indexing never finished.
    """

    def __init__(
        self,
        token: str,
        *,
        use_ack: bool = True,
        allowed_indexes: set[str] | None = None,
        disabled: bool = False,
        busy_responses: int = 0,
        retry_after: int | None = None,
        confirm_acks: bool = True,
    ) -> None:
        self.token = token
        self.use_ack = use_ack
        self.allowed_indexes = None if allowed_indexes is None else frozenset(allowed_indexes)
        self.disabled = disabled
        self.confirm_acks = confirm_acks
        self.retry_after = retry_after
        self._faults: deque[Fault] = deque([Fault.BUSY] * busy_responses)
        self._lock = threading.Lock()
        self._events: list[Payload] = []
        self._requests: list[HecRequest] = []
        self._next_ack: dict[str, int] = {}
        self._indexed_acks: dict[str, set[int]] = {}
        self._server = LoopbackServer(
            # Looked up per request, so a test can replace ``respond`` to break the stub.
            lambda request: self.respond(request),  # noqa: PLW0108
            error=HecStubError,
        )
        self.url = self._server.url

    def stop(self) -> None:
        """Shut the server down and free its port; safe to call twice.

        Raises :class:`HecStubError` if answering any request raised inside the stub: a client
        would only have seen a dropped connection, which hides the stub's own bug.
        """
        self._server.stop()

    @property
    def listening(self) -> bool:
        """Whether the stub still serves: its loop runs and its listening socket is open."""
        return self._server.listening

    @property
    def events(self) -> list[Payload]:
        """A snapshot of the stored events, in arrival order."""
        with self._lock:
            return list(self._events)

    @property
    def requests(self) -> list[HecRequest]:
        """A snapshot of every request answered, in order."""
        with self._lock:
            return list(self._requests)

    def respond(self, request: Request) -> Response:
        """Answer one request as HEC would, with its JSON body.

        Raises :class:`ConnectionDroppedError` when an injected fault drops the connection.
        """
        status, payload = self._answer(_Incoming.of(request))
        headers = {}
        if status == HTTPStatus.SERVICE_UNAVAILABLE and self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return Response(status, json.dumps(payload).encode(), _JSON, headers)

    def _answer(self, incoming: _Incoming) -> tuple[int, Payload]:
        """(HTTP status, JSON body) of one request, recorded in :attr:`requests`."""
        stored = 0
        try:
            status, payload, stored = self._route(incoming)
        except _Reject as reject:
            status, payload = _error_payload(reject.code, reject.invalid_event_number)
            if reject.invalid_event_number is not None:
                stored = reject.invalid_event_number
        except _Drop as drop:
            self._record(incoming, drop.stored, 0, None, dropped=True)
            raise ConnectionDroppedError from None
        code = payload.get("code")
        self._record(incoming, stored, status, code if isinstance(code, int) else None)
        return status, payload

    def _record(
        self,
        incoming: _Incoming,
        events: int,
        status: int,
        code: int | None,
        *,
        dropped: bool = False,
    ) -> None:
        with self._lock:
            self._requests.append(
                HecRequest(
                    method=incoming.method,
                    path=incoming.path,
                    channel=incoming.channel,
                    events=events,
                    status=status,
                    code=code,
                    dropped=dropped,
                    content_encoding=incoming.content_encoding,
                )
            )

    def _route(self, incoming: _Incoming) -> tuple[int, Payload, int]:
        path = incoming.path
        known = EVENT_PATHS | RAW_PATHS | ACK_PATHS | HEALTH_PATHS
        if path not in known:
            return 404, {"text": "The requested URL was not found on this server.", "code": 404}, 0
        if path in HEALTH_PATHS:
            # Health needs no token: load balancers probe it.
            if incoming.method != "GET":
                return _method_not_allowed()
            return 200, {"text": "HEC is healthy", "code": 17}, 0
        if incoming.method != "POST":
            return _method_not_allowed()
        self._authorize(incoming.query, incoming.authorization)
        if path in ACK_PATHS:
            return self._ack(incoming.channel, incoming.body)
        fault = self._take_fault()
        if fault is Fault.BUSY:
            raise _Reject(9)
        if fault is Fault.DROP_BEFORE_INDEXING:
            raise _Drop(0)
        data = _decode_body(incoming.body, incoming.content_encoding)
        canonical: str | None
        if path in RAW_PATHS:
            # Raw has no envelope to carry event boundaries, so Splunk always wants a channel.
            canonical = _require_channel(incoming.channel)
            events = self._parse_raw(data)
        else:
            wants_channel = self.use_ack or incoming.channel is not None
            canonical = _require_channel(incoming.channel) if wants_channel else None
            events = self._parse_events(data)
        with self._lock:
            self._events.extend(events)
            payload: Payload = {"text": "Success", "code": 0}
            if self.use_ack and canonical is not None:
                ack_id = self._next_ack.get(canonical, 0)
                self._next_ack[canonical] = ack_id + 1
                self._indexed_acks.setdefault(canonical, set()).add(ack_id)
                payload["ackId"] = ack_id
        if fault is Fault.DROP_AFTER_INDEXING:
            raise _Drop(len(events))
        return 200, payload, len(events)

    def _authorize(self, query: Mapping[str, list[str]], authorization: str | None) -> None:
        if "token" in query:
            raise _Reject(16)
        if authorization is None:
            raise _Reject(2)
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() == "splunk" and credential:
            presented = credential
        elif scheme.lower() == "basic" and credential:
            try:
                decoded = base64.b64decode(credential, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _Reject(3) from None
            _user, colon, presented = decoded.partition(":")
            if not colon or not presented:
                raise _Reject(3)
        else:
            raise _Reject(3)
        if presented != self.token:
            raise _Reject(4)
        if self.disabled:
            raise _Reject(1)

    def inject(self, *faults: Fault) -> None:
        """Queue faults: each of the next data POSTs that passes authentication meets one."""
        with self._lock:
            self._faults.extend(faults)

    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _ack(self, channel: str | None, body: bytes) -> tuple[int, Payload, int]:
        if not self.use_ack:
            raise _Reject(14)
        canonical = _require_channel(channel)
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _Reject(6) from None
        ids = request.get("acks") if isinstance(request, dict) else None
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise _Reject(6)
        answers: dict[str, bool] = {}
        with self._lock:
            indexed = self._indexed_acks.setdefault(canonical, set())
            for ack_id in ids:
                done = self.confirm_acks and ack_id in indexed
                if done:
                    # Read-once: Splunk forgets an ackId after reporting it true.
                    indexed.discard(ack_id)
                answers[str(ack_id)] = done
        return 200, {"acks": answers}, 0

    def _parse_events(self, data: str) -> list[Payload]:
        """Parse concatenated envelopes, keeping the valid prefix as Splunk does."""
        decoder = json.JSONDecoder()
        events: list[Payload] = []
        position = 0
        while True:
            while position < len(data) and data[position].isspace():
                position += 1
            if position >= len(data):
                break
            number = len(events)
            try:
                obj, position = decoder.raw_decode(data, position)
            except json.JSONDecodeError:
                self._keep(events)
                raise _Reject(6, number) from None
            problem = self._problem(obj)
            if problem is not None:
                self._keep(events)
                raise _Reject(problem, number)
            events.append(obj)
        if not events:
            raise _Reject(5)
        return events

    def _parse_raw(self, data: str) -> list[Payload]:
        events: list[Payload] = [{"event": line} for line in data.splitlines() if line.strip()]
        if not events:
            raise _Reject(5)
        return events

    def _problem(self, obj: object) -> int | None:
        """The HEC code for an invalid envelope, or None when Splunk would index it."""
        code: int | None = None
        if not isinstance(obj, dict):
            code = 6
        elif "event" not in obj:
            code = 12
        elif obj["event"] == "" or obj["event"] is None:
            code = 13
        elif "time" in obj and not _is_epoch(obj["time"]):
            code = 6
        elif "fields" in obj and not _is_indexed_fields(obj["fields"]):
            code = 15
        elif self.allowed_indexes is not None and "index" in obj:
            index = obj["index"]
            if not isinstance(index, str) or index not in self.allowed_indexes:
                code = 7
        return code

    def _keep(self, events: list[Payload]) -> None:
        with self._lock:
            self._events.extend(events)


def _method_not_allowed() -> tuple[int, Payload, int]:
    return HTTPStatus.METHOD_NOT_ALLOWED, {"text": "Method Not Allowed", "code": 405}, 0


def _require_channel(channel: str | None) -> str:
    if not channel:
        raise _Reject(10)
    if not _GUID.fullmatch(channel):
        raise _Reject(11)
    return channel.lower()


def _decode_body(body: bytes, content_encoding: str | None) -> str:
    """Undo gzip and decode UTF-8; the stub answers code 6 to anything it cannot read."""
    if not body:
        raise _Reject(5)
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            raise _Reject(6, 0) from None
    elif encoding != "identity":
        raise _Reject(6, 0)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Reject(6, 0) from None


@contextmanager
def refusing_url() -> Iterator[str]:
    """A loopback URL on which every connection is refused, for as long as the block runs.

    The port stays bound (never listening), so no other server, in this process or another,
    can take it meanwhile: connecting to a just-stopped server's port gives no such promise.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        host, port = held.getsockname()[:2]
        yield f"http://{host!s}:{port}"
