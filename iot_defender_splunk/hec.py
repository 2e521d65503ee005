"""A Splunk HTTP Event Collector client: batches, gzip, a channel, retries and indexer acks.

Events go to ``/services/collector/event`` as HEC expects them from Firehose: serialized JSON
envelopes back to back in one POST (one event never spans two), ``Authorization: Splunk
<token>``, an ``X-Splunk-Request-Channel`` GUID and, when the token has indexer
acknowledgement on, polling of ``/services/collector/ack`` until Splunk confirms every batch.
HTTP is ``requests`` with urllib3's ``Retry`` on its adapter; the token only ever travels in
the Authorization header and is never logged, shown or put in an error.

Delivery is at least once, and acks bound the duplicates:

* A batch is retried (with urllib3's exponential backoff and jitter, honouring ``Retry-After``)
  when HEC answers 429/5xx or the connection fails. 400, 401 and 403 are never retried: the
  same bytes or token would be refused again, and HEC's own text is raised.
* A retry after HEC said "busy" cannot duplicate (nothing was taken). A retry after the
  connection dropped *after* the batch was sent can: HEC may have indexed the lost attempt.
  :class:`SendReport` counts those re-sent batches and the events they carry
  (``possible_duplicates``), an upper bound on what Splunk may hold twice.
* With acks, a batch is confirmed only when its ackId reads true; the ackId of a lost attempt
  is never polled. A batch still unconfirmed after ``ack_timeout`` is reported (HecError with
  the report, ``unconfirmed_batches``), never counted as delivered: it may or may not be
  indexed, and sending it again may duplicate it.

Every POST has a total ``deadline`` (retries and their waits included), not only per-read
timeouts: a watchdog shuts the request's socket when it passes, so a server that drips its
answer a byte at a time cannot hold a request open. Redirects are not followed (a redirected
POST would lose its body); proxies from the environment (https_proxy, no_proxy) are used.
"""

from __future__ import annotations

import contextlib
import contextvars
import gzip
import json
import logging
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ProtocolError, ReadTimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import RequestHistory, Retry

__all__ = ["HecClient", "HecError", "SendReport", "batches"]

log = logging.getLogger(__name__)

_COLLECTOR: Final = "/services/collector"
# Answers a later attempt may not meet: throttling, HEC busy (503 code 9), and the 5xx a
# load balancer in front of the indexers gives while one restarts.
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
# An ackId key in an ack answer: ASCII digits only ("²" passes str.isdigit, not int()).
_ACK_ID: Final = re.compile(r"[0-9]{1,18}")
_TOKEN: Final = re.compile(r"[!-~]+")  # printable ASCII, no spaces: it goes in a header


@dataclass(frozen=True)
class SendReport:
    """What one :meth:`HecClient.send` delivered.

    ``acked`` is true only when the token uses indexer acknowledgement and Splunk confirmed
    every batch; false when acknowledgement is off, nothing was sent, or some batch stayed
    unconfirmed (``unconfirmed_batches``). ``resent_batches`` counts batches posted again after
    an attempt whose outcome was unknown (the connection failed after the request went out);
    ``possible_duplicates`` is the number of events those attempts carried, a failed batch's
    included. So Splunk holds at most ``events_sent + possible_duplicates`` events of the send.
    """

    events_sent: int
    batches: int
    acked: bool
    unconfirmed_batches: int = 0
    resent_batches: int = 0
    possible_duplicates: int = 0


class HecError(Exception):
    """HEC refused data, kept failing, or never confirmed indexing.

    ``http_status`` and ``code`` are None when there was no HEC answer (connection failure,
    deadline, ack timeout). ``invalid_event_number`` counts events from the start of the whole
    :meth:`HecClient.send` call, not of the failing batch. ``report`` says what the send had
    delivered before it failed (batches HEC took stay taken: HEC has no transactions);
    ``uncertain_attempts`` counts attempts of the failing request that HEC may have acted on.
    """

    def __init__(
        self,
        text: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
        invalid_event_number: int | None = None,
        report: SendReport | None = None,
    ) -> None:
        self.text = text
        self.http_status = http_status
        self.code = code
        self.invalid_event_number = invalid_event_number
        self.report = report
        self.uncertain_attempts = 0
        super().__init__(text)

    def __str__(self) -> str:
        detail = [f"HTTP {self.http_status}" if self.http_status is not None else "no HTTP answer"]
        if self.code is not None:
            detail.append(f"code {self.code}")
        if self.invalid_event_number is not None:
            detail.append(f"invalid event {self.invalid_event_number}")
        return f"{self.text} ({', '.join(detail)})"


def batches(events: Iterable[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """Group events, in order, into batches whose newline-joined size is at most ``max_bytes``.

    Each event is stripped of surrounding whitespace. An empty event, or one larger than
    ``max_bytes`` on its own, raises ValueError naming its position: one event cannot span
    HEC requests, and dropping it silently would lose it.
    """
    batch: list[bytes] = []
    size = 0
    for number, event in enumerate(events):
        item = event.strip()
        if not item:
            raise ValueError(f"event {number} is empty")
        if len(item) > max_bytes:
            raise ValueError(
                f"event {number} is {len(item)} bytes, over the {max_bytes}-byte batch limit; "
                "one event cannot span HEC requests"
            )
        if batch and size + 1 + len(item) > max_bytes:
            yield batch
            batch, size = [], 0
        size += len(item) + (1 if batch else 0)
        batch.append(item)
    if batch:
        yield batch


# --- one request: its total deadline and what its attempts met ------------------------------

_ACTIVE: contextvars.ContextVar[_Request | None] = contextvars.ContextVar(
    "hec_request", default=None
)


class _Request:
    """One request's scope on its thread: a time budget, and the history of its attempts.

    When the budget is spent, every socket the request used is shut (connections register
    themselves, :class:`_WatchedConnection`), so whatever is blocked on one returns at once,
    and no further attempt starts (:meth:`_Retry.is_exhausted`). ``uncertain_attempts`` are
    attempts that failed after the request went out: HEC may have acted on them.
    """

    def __init__(self, deadline: float) -> None:
        self.uncertain_attempts = 0
        self._expired = threading.Event()
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []
        self._timer = threading.Timer(deadline, self._expire)
        self._timer.daemon = True
        self._token: contextvars.Token[_Request | None] | None = None

    @property
    def expired(self) -> bool:
        return self._expired.is_set()

    def __enter__(self) -> Self:
        self._token = _ACTIVE.set(self)
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        if self._token is not None:
            _ACTIVE.reset(self._token)

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)
        if self.expired:
            _shut(connection)

    def saw(self, history: tuple[RequestHistory, ...]) -> None:
        self.uncertain_attempts = sum(
            1 for entry in history if isinstance(entry.error, ProtocolError | ReadTimeoutError)
        )

    def _expire(self) -> None:
        self._expired.set()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            _shut(connection)


def _shut(connection: HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)


class _WatchedConnection(HTTPConnection):
    """An urllib3 connection that puts itself under the active request deadline."""

    def connect(self) -> None:
        _watch(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)  # a kept-alive connection is reused without connect()
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


def _watch(connection: HTTPConnection) -> None:
    request = _ACTIVE.get()
    if request is not None:
        request.watch(connection)


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS: Final = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connections (direct or through a proxy) that a deadline can shut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


class _Retry(Retry):
    """urllib3's Retry, telling the active request what its attempts met, never going past its
    deadline, and waiting through an injectable ``sleeper``.

    The schedule is urllib3's: the first retry at once, then ``backoff_factor * 2**(n-1)``
    plus up to ``backoff_jitter``, capped at ``backoff_max``; a ``Retry-After`` answer wins.
    """

    sleeper: Callable[[float], None] = staticmethod(time.sleep)

    def new(self, **kw: Any) -> Self:
        retry = super().new(**kw)
        retry.sleeper = self.sleeper
        request = _ACTIVE.get()
        if request is not None:
            request.saw(retry.history)
        return retry

    def is_exhausted(self) -> bool:
        request = _ACTIVE.get()
        return super().is_exhausted() or (request is not None and request.expired)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        delay = None
        if self.respect_retry_after_header and response is not None:
            delay = self.get_retry_after(response)
        if delay is None:
            delay = self.get_backoff_time()
        log.debug("HEC retry %d in %.3g s", len(self.history) + 1, delay)
        if delay > 0:
            self.sleeper(delay)


class _SplunkAuth(AuthBase):
    """``Authorization: Splunk <token>``; as the session's auth it also keeps .netrc out."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Splunk {self._token}"
        return request

    def __repr__(self) -> str:
        return "_SplunkAuth(<token>)"


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    uncertain_attempts: int  # earlier attempts of this request whose outcome is unknown


def _collector_base(url: str) -> str:
    """Reduce a base URL or any collector endpoint URL to the part before /services/collector."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("HEC url must be an absolute http:// or https:// URL")
    if parts.query or parts.fragment:
        # A query could carry ?token=, which HEC refuses; a fragment is meaningless here.
        raise ValueError("HEC url must not have a query string or fragment")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise ValueError(f"HEC url has no usable port: {url}") from None
    path = parts.path.rstrip("/")
    cut = path.find(_COLLECTOR)
    if cut != -1:
        path = path[:cut]
    return f"{parts.scheme}://{parts.netloc}{path}"


def _is_guid(value: str) -> bool:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return str(parsed) == value.lower()


class HecClient:
    """Posts serialized HEC event envelopes to one Splunk HEC endpoint.

    ``url`` is a base URL (``https://splunk:8088``) or any collector endpoint; events always go
    to ``/services/collector/event``. ``timeout`` bounds each connect and read, ``deadline``
    each whole POST (all its attempts and waits), ``ack_timeout`` the wait for indexer acks.
    ``max_attempts``, ``backoff`` (urllib3's backoff factor) and ``max_backoff`` bound retries;
    ``gzip`` compresses event batches (``Content-Encoding: gzip``, which HEC accepts);
    ``max_batch_bytes`` is the uncompressed size of one POST. ``sleep`` and ``clock`` are
    injectable so tests need not wait.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        channel: str | None = None,
        timeout: float = 10.0,
        deadline: float = 30.0,
        max_batch_bytes: int = 800_000,
        ack_timeout: float = 120.0,
        verify_tls: bool = True,
        use_gzip: bool = True,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        ack_poll_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not _TOKEN.fullmatch(token):
            raise ValueError("HEC token must be non-empty printable ASCII without spaces")
        if channel is not None and not _is_guid(channel):
            raise ValueError("HEC channel must be a GUID such as str(uuid.uuid4())")
        if max_batch_bytes < 1 or max_attempts < 1:
            raise ValueError("max_batch_bytes and max_attempts must be positive")
        if min(timeout, deadline, ack_timeout) <= 0:
            raise ValueError("timeout, deadline and ack_timeout must be positive")
        base = _collector_base(url)
        self.event_url = base + _COLLECTOR + "/event"
        self.ack_url = base + _COLLECTOR + "/ack"
        self.health_url = base + _COLLECTOR + "/health"
        self.channel = channel if channel is not None else str(uuid.uuid4())
        self.timeout = timeout
        self.deadline = deadline
        self.max_batch_bytes = max_batch_bytes
        self.ack_timeout = ack_timeout
        self.use_gzip = use_gzip
        self.ack_poll_interval = ack_poll_interval
        self._sleep = sleep
        self._clock = clock
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE override a session's
        # verify=False. False is only for a lab Splunk with its self-signed certificate.
        self._verify_tls = verify_tls
        retry = _Retry(
            total=max_attempts - 1,
            other=0,  # TLS and other failures do not heal by retrying
            redirect=False,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),  # see the module docstring
            backoff_factor=backoff,
            backoff_max=max_backoff,
            backoff_jitter=backoff,
            retry_after_max=math.ceil(max_backoff),
            raise_on_status=False,
        )
        retry.sleeper = sleep
        self._session = requests.Session()
        self._session.auth = _SplunkAuth(token)
        self._session.headers["X-Splunk-Request-Channel"] = self.channel
        adapter = _DeadlineAdapter(max_retries=retry)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"HecClient(event_url={self.event_url!r}, channel={self.channel!r})"

    def close(self) -> None:
        """Close pooled connections; the client is unusable afterwards."""
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(
        self, events: Iterable[bytes], *, progress: Callable[[int], None] | None = None
    ) -> SendReport:
        """Batch, post and (when the token acks) confirm events; raises HecError on failure.

        Each item is one serialized HEC envelope. ``progress`` is called with the number of
        events of each batch HEC accepted. On failure the HecError's ``report`` says what
        had been delivered; batches already posted stay posted.
        """
        report = SendReport(events_sent=0, batches=0, acked=False)
        ack_ids: dict[int, int] = {}  # ackId -> events in its batch
        every_batch_acks = True
        for batch in batches(events, self.max_batch_bytes):
            try:
                answer = self._post_batch(batch, first=report.events_sent)
            except HecError as error:
                error.report = _with_attempts(report, error.uncertain_attempts, len(batch))
                raise
            ack_id = _ack_id(answer.json)
            if ack_id is None:
                every_batch_acks = False
            else:
                ack_ids[ack_id] = len(batch)
            report = replace(
                _with_attempts(report, answer.uncertain_attempts, len(batch)),
                events_sent=report.events_sent + len(batch),
                batches=report.batches + 1,
            )
            if progress is not None:
                progress(len(batch))
        if not ack_ids:
            return report
        unconfirmed = self._wait_for_acks(set(ack_ids), report)
        if unconfirmed:
            report = replace(report, unconfirmed_batches=len(unconfirmed))
            raise HecError(
                f"indexer acknowledgement timed out after {self.ack_timeout:g} s: "
                f"{len(unconfirmed)} of {len(ack_ids)} batches "
                f"({sum(ack_ids[i] for i in unconfirmed)} events) unconfirmed, "
                f"ackIds {sorted(unconfirmed)} on channel {self.channel}; they may or may not "
                "be indexed",
                report=report,
            )
        return replace(report, acked=every_batch_acks)

    def health(self) -> bool:
        """True when HEC reports itself healthy (code 17); false on any failure."""
        try:
            answer = self._request("GET", self.health_url, None, {})
        except HecError as error:
            log.debug("HEC health unreachable: %s", error.text)
            return False
        body = _json_object(answer.body)
        return answer.status == 200 and body is not None and body.get("code") == 17

    def _post_batch(self, batch: list[bytes], *, first: int) -> _JsonAnswer:
        body = b"\n".join(batch)
        headers = {"Content-Type": "application/json"}
        if self.use_gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        try:
            return self._post(self.event_url, body, headers)
        except HecError as error:
            if error.invalid_event_number is not None:
                error.invalid_event_number += first
            raise

    def _wait_for_acks(self, pending: set[int], report: SendReport) -> set[int]:
        """Poll the ack endpoint until every ackId reads true; returns those that never did."""
        give_up = self._clock() + self.ack_timeout
        while True:
            body = json.dumps({"acks": sorted(pending)}).encode()
            try:
                answer = self._post(self.ack_url, body, {"Content-Type": "application/json"})
            except HecError as error:
                error.report = report
                raise
            statuses = answer.json.get("acks")
            if not isinstance(statuses, dict):
                raise HecError("HEC ack answer has no 'acks' object", report=report)
            for key, done in statuses.items():
                if done is True and _ACK_ID.fullmatch(key):
                    pending.discard(int(key))
            remaining = give_up - self._clock()
            if not pending or remaining <= 0:
                return pending
            self._sleep(min(self.ack_poll_interval, remaining))

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> _JsonAnswer:
        """POST (with retries); returns HEC's JSON answer or raises HecError with its text."""
        reply = self._request("POST", url, body, headers)
        answer = _json_object(reply.body)
        failure: HecError | None = None
        if reply.status >= 300 or (answer is not None and answer.get("code", 0) != 0):
            failure = _http_failure(reply.status, answer or {})
        elif answer is None:
            failure = HecError("HEC answer is not a JSON object", http_status=reply.status)
        if failure is not None:
            failure.uncertain_attempts = reply.uncertain_attempts
            raise failure
        assert answer is not None  # noqa: S101 - for mypy: None is a failure above
        return _JsonAnswer(answer, reply.uncertain_attempts)

    def _request(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> _Answer:
        """One request with its retries and whole answer, within ``deadline`` seconds."""
        connect = min(self.timeout, self.deadline)
        with _Request(self.deadline) as scope:
            try:
                response = self._session.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    timeout=(connect, self.timeout),
                    allow_redirects=False,
                    verify=self._verify_tls,
                )
                content = response.content
            except requests.exceptions.RequestException as error:
                failure = HecError(self._failure_text(error, scope))
                failure.uncertain_attempts = scope.uncertain_attempts
                raise failure from None
        return _Answer(response.status_code, content, scope.uncertain_attempts)

    def _failure_text(self, error: requests.exceptions.RequestException, scope: _Request) -> str:
        if isinstance(error, requests.exceptions.SSLError):
            return f"TLS failure talking to HEC: {_reason(error)}"
        if scope.expired:
            return f"HEC request did not finish within {self.deadline:g} s"
        return f"cannot reach HEC: {_reason(error)}"


@dataclass(frozen=True)
class _JsonAnswer:
    json: dict[str, object]
    uncertain_attempts: int


def _with_attempts(report: SendReport, uncertain_attempts: int, events: int) -> SendReport:
    """The report, counting a batch's attempts whose outcome is unknown."""
    if not uncertain_attempts:
        return report
    return replace(
        report,
        resent_batches=report.resent_batches + 1,
        possible_duplicates=report.possible_duplicates + uncertain_attempts * events,
    )


def _ack_id(answer: dict[str, object]) -> int | None:
    ack_id = answer.get("ackId")
    return ack_id if isinstance(ack_id, int) and not isinstance(ack_id, bool) else None


def _reason(error: BaseException) -> str:
    """The innermost cause, in one line: requests nests urllib3's errors several deep."""
    cause = error
    while True:
        inner = getattr(cause, "reason", None) or cause.__cause__
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in cause.args if isinstance(arg, BaseException)), None)
        if inner is None:
            return f"{type(cause).__name__}: {cause}".replace("\n", " ")
        cause = inner


def _json_object(raw: bytes) -> dict[str, object] | None:
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _http_failure(status: int, answer: dict[str, object]) -> HecError:
    """Turn an HEC error answer into HecError, keeping Splunk's text and codes."""
    text = answer.get("text")
    code = answer.get("code")
    number = answer.get("invalid-event-number")
    return HecError(
        text if isinstance(text, str) else f"HEC answered HTTP {status}",
        http_status=status,
        code=code if isinstance(code, int) else None,
        invalid_event_number=number if isinstance(number, int) else None,
    )
