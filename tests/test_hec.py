"""HecClient: batching, gzip, retries, errors, acks, deadlines and at-least-once delivery.

Fault injection with ``responses`` (the exact requests the client makes, HEC's answers
scripted) and wire tests against the loopback HEC stub (real sockets: drops, 503 bursts,
proxies, TLS, a server that drips its answer).
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import ipaddress
import itertools
import json
import logging
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from iot_defender_splunk.hec import HecClient, HecError, SendReport, batches
from tests.fake_time import FakeTime
from tests.hec_server import Fault, HecStub, refusing_url

TOKEN = "9d2c6a1e-7f3b-4e8a-b5c4-1a2b3c4d5e6f"
CHANNEL = "3c9e1f7a-2b4d-4a6c-8e0f-9a8b7c6d5e4f"
EVENT = "/services/collector/event"
ACK = "/services/collector/ack"
BASE = "https://splunk.example:8088"


def envelope(number: int, *, pad: int = 0) -> bytes:
    return json.dumps({"event": {"n": number, "pad": "x" * pad}}).encode()


def same_size_envelopes(count: int) -> list[bytes]:
    return [envelope(n, pad=2 - len(str(n))) for n in range(count)]  # up to 100 events


def client_for(url: str, fake: FakeTime, **options: Any) -> HecClient:
    options = {"channel": CHANNEL, "backoff": 0.01, **options}
    return HecClient(url, TOKEN, sleep=fake.sleep, clock=fake.clock, **options)


@pytest.fixture
def stub() -> Iterator[HecStub]:
    with HecStub(TOKEN) as running:
        yield running


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def posts(stub: HecStub, path: str = EVENT) -> int:
    return sum(1 for r in stub.requests if r.path == path)


def hec_answer(status: int, text: str, code: int, **extra: Any) -> dict[str, Any]:
    return {"status": status, "json": {"text": text, "code": code, **extra}}


# --- what goes on the wire (responses) -----------------------------------------------------


def test_a_batch_is_gzip_with_splunk_authorization_and_the_channel(mocked, fake):
    mocked.post(BASE + EVENT, json={"text": "Success", "code": 0, "ackId": 0})
    mocked.post(BASE + ACK, json={"acks": {"0": True}})

    report = client_for(BASE, fake).send([envelope(0), envelope(1)])

    event_post, ack_post = mocked.calls
    headers = event_post.request.headers
    assert headers["Authorization"] == f"Splunk {TOKEN}"
    assert headers["X-Splunk-Request-Channel"] == CHANNEL
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(event_post.request.body) == envelope(0) + b"\n" + envelope(1)
    assert json.loads(ack_post.request.body) == {"acks": [0]}
    assert ack_post.request.headers["X-Splunk-Request-Channel"] == CHANNEL
    assert report == SendReport(events_sent=2, batches=1, acked=True)


def test_without_gzip_the_batch_is_plain(mocked, fake):
    mocked.post(BASE + EVENT, json={"text": "Success", "code": 0})
    client_for(BASE, fake, use_gzip=False).send([envelope(0)])
    (call,) = mocked.calls
    assert "Content-Encoding" not in call.request.headers
    assert call.request.body == envelope(0)


def test_a_503_is_retried_then_the_200_counts(mocked, fake):
    mocked.post(BASE + EVENT, **hec_answer(503, "Server is busy", 9))
    mocked.post(BASE + EVENT, json={"text": "Success", "code": 0})
    report = client_for(BASE, fake).send([envelope(0)])
    assert len(mocked.calls) == 2
    # HEC said busy: it took nothing, so the retry cannot duplicate.
    assert report == SendReport(events_sent=1, batches=1, acked=False)


@pytest.mark.parametrize(
    ("status", "text", "code"),
    [
        (400, "Invalid data format", 6),
        (401, "Token is required", 2),
        (401, "Invalid authorization", 3),
        (403, "Invalid token", 4),
        (403, "Token disabled", 1),
    ],
)
def test_a_client_error_is_raised_with_hec_text_and_never_retried(mocked, fake, status, text, code):
    mocked.post(BASE + EVENT, **hec_answer(status, text, code))
    with pytest.raises(HecError) as caught:
        client_for(BASE, fake).send([envelope(0)])
    assert (caught.value.http_status, caught.value.code, caught.value.text) == (status, code, text)
    assert str(caught.value) == f"{text} (HTTP {status}, code {code})"
    assert len(mocked.calls) == 1
    assert fake.sleeps == []


def test_a_connection_error_mid_send_keeps_what_was_delivered_and_stops(mocked, fake):
    mocked.post(BASE + EVENT, json={"text": "Success", "code": 0, "ackId": 0})
    mocked.post(BASE + EVENT, body=requests.ConnectionError("connection reset by peer"))
    mocked.post(BASE + EVENT, json={"text": "Success", "code": 0, "ackId": 1})
    client = client_for(BASE, fake, max_batch_bytes=len(envelope(0)))

    with pytest.raises(HecError, match="cannot reach HEC: ConnectionError") as caught:
        client.send([envelope(0), envelope(1), envelope(2)])

    assert caught.value.report == SendReport(events_sent=1, batches=1, acked=False)
    assert len(mocked.calls) == 2  # the third batch was never sent


def test_an_invalid_event_number_counts_from_the_start_of_the_send(mocked, fake):
    mocked.post(BASE + EVENT, json={"text": "Success", "code": 0})
    mocked.post(
        BASE + EVENT,
        **hec_answer(400, "Event field is required", 12, **{"invalid-event-number": 1}),
    )
    client = client_for(BASE, fake, max_batch_bytes=2 * len(envelope(0)) + 1)
    with pytest.raises(HecError) as caught:
        client.send([envelope(n) for n in range(4)])
    assert caught.value.invalid_event_number == 3
    assert caught.value.report == SendReport(events_sent=2, batches=1, acked=False)


def test_an_answer_that_is_not_json_is_an_error(mocked, fake):
    mocked.post(BASE + EVENT, body="<html>proxy says hi</html>", status=200)
    with pytest.raises(HecError, match="not a JSON object"):
        client_for(BASE, fake).send([envelope(0)])


# --- the loopback HEC: batching, acks, retries ---------------------------------------------


def test_send_delivers_events_in_order_and_waits_for_acks(stub, fake):
    report = client_for(stub.url, fake).send(envelope(n) for n in range(5))
    assert report == SendReport(events_sent=5, batches=1, acked=True)
    assert [e["event"]["n"] for e in stub.events] == [0, 1, 2, 3, 4]
    data_posts = [r for r in stub.requests if r.path == EVENT]
    assert [(r.channel, r.status, r.events, r.content_encoding) for r in data_posts] == [
        (CHANNEL, 200, 5, "gzip")
    ]
    assert [(r.channel, r.status) for r in stub.requests if r.path == ACK] == [(CHANNEL, 200)]


def test_gzip_and_plain_deliver_the_same_events(fake):
    """Differential: compression changes the bytes on the wire, never what Splunk stores."""
    items = [envelope(n, pad=n) for n in range(30)]
    stored = []
    for use_gzip in (True, False):
        with HecStub(TOKEN) as stub:
            client_for(stub.url, fake, use_gzip=use_gzip, max_batch_bytes=500).send(items)
            stored.append(stub.events)
    assert stored[0] == stored[1] == [json.loads(item) for item in items]


def test_default_channel_is_a_fresh_guid_per_client(stub):
    first, second = HecClient(stub.url, TOKEN), HecClient(stub.url, TOKEN)
    assert first.channel != second.channel
    assert first.send([envelope(0)]).acked
    assert stub.requests[0].channel == first.channel


def test_batches_split_at_max_batch_bytes(stub, fake):
    items = [envelope(n, pad=80) for n in range(10)]
    size = len(items[0])
    # Three events plus two newline separators fit; a fourth does not.
    report = client_for(stub.url, fake, max_batch_bytes=3 * size + 2).send(items)
    assert report == SendReport(events_sent=10, batches=4, acked=True)
    assert [r.events for r in stub.requests if r.path == EVENT] == [3, 3, 3, 1]
    assert [e["event"]["n"] for e in stub.events] == list(range(10))


def test_one_byte_less_pushes_an_event_into_the_next_batch(stub, fake):
    items = [envelope(n) for n in range(4)]
    report = client_for(stub.url, fake, max_batch_bytes=2 * len(items[0])).send(items)
    assert report.batches == 4


def test_an_event_larger_than_a_batch_is_refused_before_anything_is_sent(stub, fake):
    with pytest.raises(ValueError, match="event 0 is"):
        client_for(stub.url, fake, max_batch_bytes=50).send([envelope(0, pad=100)])
    assert stub.requests == []


def test_nothing_to_send_posts_nothing(stub, fake):
    assert client_for(stub.url, fake).send([]) == SendReport(0, 0, acked=False)
    assert stub.requests == []


def test_busy_server_is_retried_with_urllib3_backoff_then_succeeds(fake):
    with HecStub(TOKEN, busy_responses=3) as stub:
        report = client_for(stub.url, fake).send([envelope(0), envelope(1)])
        answered = [(r.status, r.code) for r in stub.requests if r.path == EVENT]
        stored = stub.events
    assert report == SendReport(events_sent=2, batches=1, acked=True)
    assert answered == [(503, 9), (503, 9), (503, 9), (200, 0)]
    # urllib3: the first retry at once, then backoff * 2**(n-1), plus up to `backoff` jitter.
    assert len(fake.sleeps) == 2
    assert 0.02 <= fake.sleeps[0] <= 0.03
    assert 0.04 <= fake.sleeps[1] <= 0.05
    assert len(stored) == 2


def test_a_retry_after_answer_sets_the_wait(fake):
    with HecStub(TOKEN, busy_responses=1, retry_after=7) as stub:
        client_for(stub.url, fake).send([envelope(0)])
    assert fake.sleeps == [7]


def test_retry_after_is_capped_at_max_backoff(fake):
    with HecStub(TOKEN, busy_responses=1, retry_after=3600) as stub:
        client_for(stub.url, fake, max_backoff=5).send([envelope(0)])
    assert fake.sleeps == [5]


def test_busy_server_gives_up_after_max_attempts(fake):
    with HecStub(TOKEN, busy_responses=10) as stub:
        with pytest.raises(HecError) as caught:
            client_for(stub.url, fake, max_attempts=3).send([envelope(0)])
        attempts = posts(stub)
    assert (caught.value.http_status, caught.value.code) == (503, 9)
    assert attempts == 3


def test_invalid_token_raises_at_once_without_retry(stub, fake):
    client = HecClient(stub.url, "wrong-token", sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(HecError) as caught:
        client.send([envelope(0)])
    assert (caught.value.http_status, caught.value.code, caught.value.text) == (
        403,
        4,
        "Invalid token",
    )
    assert posts(stub) == 1


def test_ack_timeout_is_reported_with_what_stays_unconfirmed(fake):
    with HecStub(TOKEN, confirm_acks=False) as stub:
        client = client_for(stub.url, fake, ack_timeout=5.0, max_batch_bytes=len(envelope(0)))
        with pytest.raises(
            HecError, match=r"timed out after 5 s: 2 of 2 batches \(2 events\)"
        ) as e:
            client.send([envelope(0), envelope(1)])
        polls = posts(stub, ACK)
    assert e.value.http_status is None
    assert e.value.report == SendReport(2, 2, acked=False, unconfirmed_batches=2)
    assert polls == 6  # at 0, 1, 2, 3, 4 and 5 s
    assert sum(fake.sleeps) == pytest.approx(5.0)


def test_acks_are_polled_until_every_batch_is_confirmed(stub, fake, monkeypatch):
    stub.confirm_acks = False
    original = fake.sleep

    def sleep_then_confirm(seconds: float) -> None:
        original(seconds)
        stub.confirm_acks = True  # indexing "finishes" after the first poll

    monkeypatch.setattr(fake, "sleep", sleep_then_confirm)
    report = client_for(stub.url, fake, max_batch_bytes=len(envelope(0))).send(
        [envelope(0), envelope(1)]
    )
    assert report == SendReport(events_sent=2, batches=2, acked=True)
    assert posts(stub, ACK) == 2


def test_without_ack_the_report_says_not_acked():
    with HecStub(TOKEN, use_ack=False) as stub:
        report = HecClient(stub.url, TOKEN).send([envelope(0)])
        ack_polls = posts(stub, ACK)
    assert report == SendReport(events_sent=1, batches=1, acked=False)
    assert ack_polls == 0


def test_an_ack_id_that_is_not_ascii_digits_is_never_taken_for_one(mocked, fake):
    """'²' passes str.isdigit(), and int() of it raised ValueError out of send()."""
    mocked.post(BASE + EVENT, json={"text": "Success", "code": 0, "ackId": 2})
    mocked.post(BASE + ACK, json={"acks": {"²": True, "٢": True}})
    with pytest.raises(HecError, match="timed out") as caught:
        client_for(BASE, fake, ack_timeout=2.0).send([envelope(0)])
    assert caught.value.report is not None
    assert caught.value.report.unconfirmed_batches == 1


def test_progress_hears_each_accepted_batch(stub, fake):
    heard: list[int] = []
    client_for(stub.url, fake, max_batch_bytes=2 * len(envelope(0)) + 1).send(
        [envelope(n) for n in range(5)], progress=heard.append
    )
    assert heard == [2, 2, 1]


def test_unreachable_server_is_retried_then_reported(fake):
    with refusing_url() as url:
        client = client_for(url, fake, max_attempts=3)
        with pytest.raises(HecError, match="cannot reach HEC: ConnectionRefusedError") as e:
            client.send([envelope(0)])
        assert client.health() is False
    assert e.value.http_status is None
    assert e.value.report == SendReport(0, 0, acked=False)


def test_health_is_true_for_a_healthy_hec(stub):
    assert HecClient(stub.url, TOKEN).health() is True
    assert stub.requests[-1].path == "/services/collector/health"


# --- at least once: nothing lost across drops and busy bursts ------------------------------


def test_every_event_arrives_at_least_once_and_duplicates_are_bounded(fake):
    items = same_size_envelopes(40)
    per_batch = 4
    with HecStub(TOKEN) as stub:
        # Drops happen after the request went out: the client cannot know whether HEC took it.
        stub.inject(
            Fault.DROP_AFTER_INDEXING,
            Fault.BUSY,
            Fault.BUSY,
            Fault.DROP_BEFORE_INDEXING,
            Fault.BUSY,
        )
        accepted: list[int] = []

        def then_drop_the_second_batch(events: int) -> None:
            if not accepted:
                stub.inject(Fault.DROP_AFTER_INDEXING)
            accepted.append(events)

        client = client_for(
            stub.url, fake, max_attempts=6, max_batch_bytes=per_batch * (len(items[0]) + 1) - 1
        )
        report = client.send(items, progress=then_drop_the_second_batch)
        received = Counter(e["event"]["n"] for e in stub.events)
    assert set(received) == set(range(40))
    duplicates = sum(received.values()) - len(items)
    assert duplicates == 2 * per_batch  # the two batches indexed, then dropped
    assert report == SendReport(
        events_sent=40, batches=10, acked=True, resent_batches=2, possible_duplicates=3 * per_batch
    )


@pytest.mark.property
@settings(max_examples=25)  # each example is a real loopback exchange
@given(
    faults=st.lists(st.sampled_from(list(Fault)), max_size=12),
    count=st.integers(min_value=1, max_value=30),
    per_batch=st.integers(min_value=1, max_value=8),
)
def test_whatever_the_faults_delivered_events_arrive_and_duplicates_stay_bounded(
    faults: list[Fault], count: int, per_batch: int
) -> None:
    items = same_size_envelopes(count)
    fake = FakeTime()
    with HecStub(TOKEN) as stub:
        stub.inject(*faults)
        client = client_for(
            stub.url, fake, max_attempts=4, max_batch_bytes=per_batch * (len(items[0]) + 1) - 1
        )
        failure: HecError | None = None
        try:
            report = client.send(items)
        except HecError as error:
            failure = error
        if failure is not None:
            assert failure.report is not None
            report = failure.report
        received = Counter(e["event"]["n"] for e in stub.events)
    assert set(range(report.events_sent)) <= set(received)
    assert sum(received.values()) <= report.events_sent + report.possible_duplicates


# --- batching, as a property ---------------------------------------------------------------

event_bytes = st.binary(min_size=1, max_size=60).filter(lambda b: b.strip() == b)


@pytest.mark.property
@given(events=st.lists(event_bytes, max_size=40), max_bytes=st.integers(1, 200))
def test_batching_never_splits_or_reorders_and_respects_the_limit(
    events: list[bytes], max_bytes: int
) -> None:
    if any(len(event) > max_bytes for event in events):
        first = next(i for i, event in enumerate(events) if len(event) > max_bytes)
        with pytest.raises(ValueError, match=f"event {first} is"):
            list(batches(events, max_bytes))
        return
    grouped = list(batches(events, max_bytes))
    assert [event for batch in grouped for event in batch] == events
    assert all(batch and len(b"\n".join(batch)) <= max_bytes for batch in grouped)
    # Greedy: no batch could have taken the next batch's first event.
    for batch, following in itertools.pairwise(grouped):
        assert len(b"\n".join([*batch, following[0]])) > max_bytes


def test_an_empty_event_is_refused_with_its_position():
    with pytest.raises(ValueError, match="event 1 is empty"):
        list(batches([b"{}", b"  \n"], 100))


# --- URLs, tokens, channels ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://splunk.example:8088",
        "https://splunk.example:8088/",
        "https://splunk.example:8088/services/collector",
        "https://splunk.example:8088/services/collector/event",
        "https://splunk.example:8088/services/collector/event/1.0",
        "https://splunk.example:8088/services/collector/raw",
    ],
)
def test_url_is_normalized_to_the_event_endpoint(url):
    client = HecClient(url, TOKEN)
    assert client.event_url == "https://splunk.example:8088/services/collector/event"
    assert client.ack_url == "https://splunk.example:8088/services/collector/ack"
    assert client.health_url == "https://splunk.example:8088/services/collector/health"


def test_url_path_prefix_of_a_proxy_is_kept():
    client = HecClient("https://gw.example/splunk/services/collector/event", TOKEN)
    assert client.event_url == "https://gw.example/splunk/services/collector/event"


@pytest.mark.parametrize(
    "url",
    ["splunk:8088", "ftp://splunk:8088", "file:///etc/passwd", "https://s:8088/?token=abc"],
)
def test_unusable_urls_are_refused(url):
    with pytest.raises(ValueError, match="url"):
        HecClient(url, TOKEN)


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "tab\t"])
def test_a_token_that_cannot_be_a_header_value_is_refused(token):
    with pytest.raises(ValueError, match="token"):
        HecClient(BASE, token)


def test_channel_must_be_a_guid():
    with pytest.raises(ValueError, match="GUID"):
        HecClient(BASE, TOKEN, channel="demo")


def test_token_never_appears_in_repr_errors_or_logs(fake, caplog):
    caplog.set_level(logging.DEBUG)
    with HecStub(TOKEN, busy_responses=2, confirm_acks=False) as stub:
        client = client_for(stub.url, fake, ack_timeout=1.0)
        with pytest.raises(HecError, match="timed out") as caught:
            client.send([envelope(0)])
    assert any(r.name == "iot_defender_splunk.hec" for r in caplog.records)  # retries logged
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(vars(client))
    assert TOKEN not in str(caught.value)


# --- deadlines, redirects, proxies, TLS ----------------------------------------------------


@contextlib.contextmanager
def dripping_server(*, headers_first: bool) -> Iterator[tuple[str, list[int]]]:
    """Answers 200 one byte every 0.2 s (about 200 s in all); counts the connections.

    ``headers_first`` sends the status line and headers at once and drips the body; otherwise
    even the status line drips.
    """
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    stop = threading.Event()
    connections: list[int] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def drip(conn: socket.socket) -> None:
        conn.recv(65536)
        head, rest = (answer, b" " * 1000) if headers_first else (b"", answer + b" " * 1000)
        conn.sendall(head)
        for byte in rest:
            if stop.wait(0.2):
                return
            conn.sendall(bytes([byte]))

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            connections.append(1)
            with conn, contextlib.suppress(OSError):
                drip(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host, port = listener.getsockname()[:2]
    try:
        yield f"http://{host}:{port}", connections
    finally:
        stop.set()
        thread.join(10)
        listener.close()


@pytest.mark.parametrize("headers_first", [True, False], ids=["body-drips", "status-drips"])
@pytest.mark.parametrize("max_attempts", [1, 3])
def test_a_dripping_server_cannot_hold_a_request_past_its_deadline(
    fake, headers_first, max_attempts
):
    """Each read has a 1 s timeout and a byte comes every 0.2 s: only a total bound ends it.

    The deadline covers every attempt of the request, so a spent deadline is not retried.
    """
    with dripping_server(headers_first=headers_first) as (url, connections):
        client = client_for(url, fake, timeout=1.0, deadline=1.0, max_attempts=max_attempts)
        with pytest.raises(HecError, match=r"did not finish within 1 s"):
            client.send([envelope(0)])
    assert len(connections) == 1


def test_an_http_proxy_from_the_environment_is_used(stub, monkeypatch):
    """The stub stands in for the proxy: it gets the request for an unresolvable host."""
    monkeypatch.setenv("http_proxy", stub.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    report = HecClient("http://splunk.invalid:8088", TOKEN, channel=CHANNEL).send([envelope(0)])
    assert report == SendReport(events_sent=1, batches=1, acked=True)
    assert stub.events == [{"event": {"n": 0, "pad": ""}}]


class _Answering:
    """A loopback server that answers every request the same way; counts the requests."""

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes = b"",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        outer = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"{scheme}://{host!s}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def test_a_redirect_is_not_followed(fake):
    """A redirected POST would lose its body: a 3xx is reported instead."""
    server = _Answering(307, {"Location": "http://127.0.0.1:9/services/collector/event"})
    try:
        with pytest.raises(HecError) as caught:
            client_for(server.url, fake).send([envelope(0)])
    finally:
        server.close()
    assert caught.value.http_status == 307
    assert server.requests == 1


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 with a self-signed certificate, and that certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hec-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "hec.pem"
    key_path = tmp_path / "hec.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


@pytest.fixture
def tls_hec(self_signed) -> Iterator[tuple[_Answering, Path]]:
    context, cert_path = self_signed
    healthy = json.dumps({"text": "HEC is healthy", "code": 17}).encode()
    server = _Answering(200, {"Content-Type": "application/json"}, healthy, tls=context)
    try:
        yield server, cert_path
    finally:
        server.close()


def test_tls_is_verified_by_default_and_a_failure_is_not_retried(tls_hec, fake, monkeypatch):
    server, _ = tls_hec
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(HecError, match=r"TLS failure talking to HEC.*CERTIFICATE_VERIFY_FAILED"):
        client_for(server.url, fake, max_attempts=5).send([envelope(0)])
    assert server.requests == 0
    assert fake.sleeps == []


def test_tls_trusts_the_ca_bundle_from_the_environment(tls_hec, monkeypatch):
    server, cert_path = tls_hec
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    assert HecClient(server.url, TOKEN).health() is True


def test_without_verification_a_self_signed_hec_is_reached(tls_hec, monkeypatch):
    server, _ = tls_hec
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    with pytest.warns(Warning, match="Unverified HTTPS request"):
        assert HecClient(server.url, TOKEN, verify_tls=False).health() is True
