"""A small, stdlib-only Splunk HTTP Event Collector client for ``make demo``.

The demo posts already-transformed events straight to a Splunk HEC, the same way Firehose
does in production: concatenated JSON envelopes on ``/services/collector/event``, a
request channel, retries on 503 and, when the token has indexer acknowledgement on,
polling ``/services/collector/ack`` until Splunk confirms the events are indexed.
Delivery is at-least-once: a batch retried after a lost response may be indexed twice.
The token is only ever placed in the Authorization header; it is never logged or shown.

Every request has a total deadline, not only per-read timeouts: a server that drips its
answer a byte at a time would otherwise hold a request open for as long as it likes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

__all__ = ["HecClient", "HecError", "SendReport"]

log = logging.getLogger(__name__)

_COLLECTOR: Final = "/services/collector"
_RETRY_STATUSES: Final = frozenset({503})
# An ackId key in an ack answer: ASCII digits only ("²" passes str.isdigit, not int()).
_ACK_ID: Final = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class SendReport:
    """What one :meth:`HecClient.send` delivered.

    ``acked`` is true only when the token uses indexer acknowledgement and Splunk confirmed
    every batch; it is false when acknowledgement is off or nothing was sent.
    """

    events_sent: int
    batches: int
    acked: bool


class HecError(Exception):
    """HEC refused data, kept failing, or never confirmed indexing.

    ``http_status`` and ``code`` are None when there was no HEC answer (connection failure,
    ack timeout). ``invalid_event_number`` counts events from the start of the whole
    :meth:`HecClient.send` call, not from the start of the failing batch.
    """

    def __init__(
        self,
        text: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
        invalid_event_number: int | None = None,
    ) -> None:
        self.text = text
        self.http_status = http_status
        self.code = code
        self.invalid_event_number = invalid_event_number
        detail = [f"HTTP {http_status}" if http_status is not None else "no HTTP answer"]
        if code is not None:
            detail.append(f"code {code}")
        if invalid_event_number is not None:
            detail.append(f"invalid event {invalid_event_number}")
        super().__init__(f"{text} ({', '.join(detail)})")


def _collector_base(url: str) -> str:
    """Reduce a base URL or any collector endpoint URL to the part before /services/collector."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("HEC url must be an absolute http:// or https:// URL")
    if parts.query or parts.fragment:
        # A query could carry ?token=, which HEC refuses; a fragment is meaningless here.
        raise ValueError("HEC url must not have a query string or fragment")
    path = parts.path.rstrip("/")
    cut = path.find(_COLLECTOR)
    if cut != -1:
        path = path[:cut]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _is_guid(value: str) -> bool:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return str(parsed) == value.lower()


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes


class _DeadlineExceededError(Exception):
    """A request ran past its total deadline and its connection was shut down."""


def _exchange(
    url: str,
    method: str,
    body: bytes | None,
    headers: dict[str, str],
    *,
    timeout: float,
    deadline: float,
    tls: ssl.SSLContext,
) -> _Answer:
    """One request and its whole answer, within ``deadline`` seconds from start to finish.

    ``timeout`` bounds each connect and read as usual; a timer shuts the socket down when
    the deadline passes, so whatever is blocked on it returns at once. Redirects are not
    followed (a redirected POST would become a bodiless GET): a 3xx is an answer like any
    other. A proxy from the environment (https_proxy / http_proxy, no_proxy) is honoured.
    """
    parts = urlsplit(url)
    connection = _connection(parts, timeout, tls)
    expired = threading.Event()

    def abort() -> None:
        expired.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(deadline, abort)
    timer.daemon = True
    timer.start()
    try:
        connection.connect()
        if expired.is_set():
            raise _DeadlineExceededError
        target = url if isinstance(connection, _PlainProxy) else _path(parts)
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return _Answer(response.status, response.read())
    except (OSError, http.client.HTTPException):
        if expired.is_set():
            raise _DeadlineExceededError from None
        raise
    finally:
        timer.cancel()
        connection.close()


class _PlainProxy(http.client.HTTPConnection):
    """An http:// request through an HTTP proxy: the proxy gets the absolute URL."""


def _connection(
    parts: SplitResult, timeout: float, tls: ssl.SSLContext
) -> http.client.HTTPConnection:
    host, port = parts.hostname or "", parts.port
    proxy = (
        None if urllib.request.proxy_bypass(host) else urllib.request.getproxies().get(parts.scheme)
    )
    if parts.scheme == "https":
        if proxy:
            via = urlsplit(proxy)
            tunnel = http.client.HTTPSConnection(
                via.hostname or "", via.port, timeout=timeout, context=tls
            )
            tunnel.set_tunnel(host, port or 443)
            return tunnel
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
    if proxy:
        via = urlsplit(proxy)
        return _PlainProxy(via.hostname or "", via.port or 80, timeout=timeout)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _path(parts: SplitResult) -> str:
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class HecClient:
    """Posts serialized HEC event envelopes to one Splunk HEC endpoint.

    ``url`` is a base URL (``https://splunk:8088``) or any collector endpoint; events
    always go to ``/services/collector/event``. ``timeout`` bounds each connect and read,
    ``deadline`` each whole request. ``max_attempts``, ``backoff`` and ``max_backoff``
    bound the retries of 503 answers and connection errors; ``sleep`` and ``clock`` are
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
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        ack_poll_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not token:
            raise ValueError("HEC token must not be empty")
        if channel is not None and not _is_guid(channel):
            raise ValueError("HEC channel must be a GUID such as str(uuid.uuid4())")
        if max_batch_bytes < 1 or max_attempts < 1:
            raise ValueError("max_batch_bytes and max_attempts must be positive")
        base = _collector_base(url)
        self.event_url = base + _COLLECTOR + "/event"
        self.ack_url = base + _COLLECTOR + "/ack"
        self.health_url = base + _COLLECTOR + "/health"
        self.channel = channel if channel is not None else str(uuid.uuid4())
        self.timeout = timeout
        self.deadline = deadline
        self.max_batch_bytes = max_batch_bytes
        self.ack_timeout = ack_timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.ack_poll_interval = ack_poll_interval
        self._token = token
        self._sleep = sleep
        self._clock = clock
        self._tls = ssl.create_default_context()
        if not verify_tls:
            # For a lab Splunk with its self-signed default certificate only.
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE

    def __repr__(self) -> str:
        return f"HecClient(event_url={self.event_url!r}, channel={self.channel!r})"

    def send(self, events: Iterable[bytes]) -> SendReport:
        """Batch, post and (when the token acks) confirm events; raises HecError on failure.

        Each item is one serialized HEC envelope. Batches already posted stay posted if a
        later one fails: HEC has no transactions.
        """
        ack_ids: list[int] = []
        batches = 0
        sent = 0
        every_batch_acked = True
        batch: list[bytes] = []
        batch_bytes = 0
        first = 0  # index, within this send, of the batch's first event

        def flush() -> None:
            nonlocal batches, sent, every_batch_acked, batch, batch_bytes, first
            ack_id = self._post_batch(b"\n".join(batch), first)
            if ack_id is None:
                every_batch_acked = False
            else:
                ack_ids.append(ack_id)
            batches += 1
            sent += len(batch)
            first += len(batch)
            batch, batch_bytes = [], 0

        for number, event in enumerate(events):
            item = event.strip()
            if not item:
                raise ValueError(f"event {number} is empty")
            if len(item) > self.max_batch_bytes:
                raise ValueError(
                    f"event {number} is {len(item)} bytes, over max_batch_bytes; "
                    "one event cannot span HEC requests"
                )
            added = len(item) + (1 if batch else 0)
            if batch and batch_bytes + added > self.max_batch_bytes:
                flush()
                added = len(item)
            batch.append(item)
            batch_bytes += added
        if batch:
            flush()
        if ack_ids:
            self._wait_for_acks(ack_ids)
        return SendReport(
            events_sent=sent, batches=batches, acked=batches > 0 and every_batch_acked
        )

    def health(self) -> bool:
        """True when HEC reports itself healthy (code 17); false on any failure."""
        try:
            answer = self._request(self.health_url, "GET", None, {})
        except (OSError, http.client.HTTPException, _DeadlineExceededError) as error:
            log.debug("HEC health unreachable: %s", type(error).__name__)
            return False
        body = _json_object(answer.body)
        return answer.status == 200 and body is not None and body.get("code") == 17

    def _request(
        self, url: str, method: str, body: bytes | None, headers: dict[str, str]
    ) -> _Answer:
        return _exchange(
            url, method, body, headers, timeout=self.timeout, deadline=self.deadline, tls=self._tls
        )

    def _post_batch(self, body: bytes, first: int) -> int | None:
        """Post one batch; returns its ackId, or None when the token does not ack."""
        try:
            answer = self._post(self.event_url, body)
        except HecError as error:
            if error.invalid_event_number is not None:
                raise HecError(
                    error.text,
                    http_status=error.http_status,
                    code=error.code,
                    invalid_event_number=first + error.invalid_event_number,
                ) from error
            raise
        ack_id = answer.get("ackId")
        if isinstance(ack_id, int) and not isinstance(ack_id, bool):
            return ack_id
        return None

    def _wait_for_acks(self, ack_ids: list[int]) -> None:
        """Poll the ack endpoint until every ackId reads true, within ack_timeout."""
        pending = set(ack_ids)
        deadline = self._clock() + self.ack_timeout
        while True:
            body = json.dumps({"acks": sorted(pending)}).encode()
            answer = self._post(self.ack_url, body)
            statuses = answer.get("acks")
            if not isinstance(statuses, dict):
                raise HecError("HEC ack answer has no 'acks' object")
            for key, done in statuses.items():
                if done is True and _ACK_ID.fullmatch(key):
                    pending.discard(int(key))
            if not pending:
                return
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise HecError(
                    f"indexer acknowledgement timed out after {self.ack_timeout:g} s; "
                    f"{len(pending)} of {len(ack_ids)} batches unconfirmed "
                    f"(ackIds {sorted(pending)} on channel {self.channel})"
                )
            self._sleep(min(self.ack_poll_interval, remaining))

    def _post(self, url: str, body: bytes) -> dict[str, object]:
        """POST with retries on 503 and connection errors; returns the JSON answer."""
        headers = {
            "Authorization": f"Splunk {self._token}",
            "X-Splunk-Request-Channel": self.channel,
            "Content-Type": "application/json",
        }
        failure = HecError("no attempt made")
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                delay = min(self.backoff * 2 ** (attempt - 2), self.max_backoff)
                log.debug("HEC retry %d/%d in %.3g s", attempt, self.max_attempts, delay)
                self._sleep(delay)
            try:
                reply = self._request(url, "POST", body, headers)
            except _DeadlineExceededError:
                failure = HecError(f"HEC request did not finish within {self.deadline:g} s")
                log.debug("HEC request past its deadline")
                continue
            except ssl.SSLError as error:
                # A certificate problem does not heal by retrying.
                raise HecError(f"TLS failure talking to HEC: {error}") from None
            except (OSError, http.client.HTTPException) as error:
                failure = HecError(f"cannot reach HEC: {type(error).__name__}: {error}")
                log.debug("HEC unreachable: %s", type(error).__name__)
                continue
            if reply.status >= 300:
                failure = _http_failure(reply.status, reply.body)
                if reply.status not in _RETRY_STATUSES:
                    raise failure
                log.debug("HEC answered HTTP %s code %s", reply.status, failure.code)
                continue
            answer = _json_object(reply.body)
            if answer is None:
                raise HecError("HEC answer is not a JSON object", http_status=reply.status)
            if "code" in answer and answer["code"] != 0:
                raise _http_failure(reply.status, reply.body)
            return answer
        raise failure


def _json_object(raw: bytes) -> dict[str, object] | None:
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _http_failure(status: int, raw: bytes) -> HecError:
    """Turn an HEC error answer into HecError, keeping Splunk's text and codes."""
    answer = _json_object(raw) or {}
    text = answer.get("text")
    code = answer.get("code")
    number = answer.get("invalid-event-number")
    return HecError(
        text if isinstance(text, str) else f"HEC answered HTTP {status}",
        http_status=status,
        code=code if isinstance(code, int) else None,
        invalid_event_number=number if isinstance(number, int) else None,
    )
