"""HecClient against the loopback HEC stub: batching, retries, errors and acks."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from iot_defender_splunk.hec import HecClient, HecError, SendReport
from tests.hec_server import HecStub, refusing_url

TOKEN = "9d2c6a1e-7f3b-4e8a-b5c4-1a2b3c4d5e6f"
CHANNEL = "3c9e1f7a-2b4d-4a6c-8e0f-9a8b7c6d5e4f"
EVENT = "/services/collector/event"
ACK = "/services/collector/ack"


class FakeTime:
    """A clock that only moves when the client sleeps, so retries and timeouts are instant."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def envelope(number: int, *, pad: int = 0) -> bytes:
    return json.dumps({"event": {"n": number, "pad": "x" * pad}}).encode()


def client_for(stub: HecStub, fake: FakeTime, **options: Any) -> HecClient:
    return HecClient(
        stub.url,
        TOKEN,
        channel=CHANNEL,
        backoff=0.01,
        sleep=fake.sleep,
        clock=fake.clock,
        **options,
    )


@pytest.fixture
def stub() -> Iterator[HecStub]:
    with HecStub(TOKEN) as running:
        yield running


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def posts(stub: HecStub, path: str = EVENT) -> int:
    return sum(1 for r in stub.requests if r.path == path)


def test_send_delivers_events_in_order_and_waits_for_acks(stub, fake):
    report = client_for(stub, fake).send(envelope(n) for n in range(5))
    assert report == SendReport(events_sent=5, batches=1, acked=True)
    assert [e["event"]["n"] for e in stub.events] == [0, 1, 2, 3, 4]
    data_posts = [r for r in stub.requests if r.path == EVENT]
    assert [(r.channel, r.status, r.code, r.events) for r in data_posts] == [(CHANNEL, 200, 0, 5)]
    ack_posts = [r for r in stub.requests if r.path == ACK]
    assert [(r.channel, r.status) for r in ack_posts] == [(CHANNEL, 200)]


def test_default_channel_is_a_fresh_guid_per_client(stub):
    first, second = HecClient(stub.url, TOKEN), HecClient(stub.url, TOKEN)
    assert first.channel != second.channel
    assert first.send([envelope(0)]).acked
    assert stub.requests[0].channel == first.channel


def test_batches_split_at_max_batch_bytes(stub, fake):
    items = [envelope(n, pad=80) for n in range(10)]
    size = len(items[0])
    assert all(len(item) == size for item in items)
    # Three events plus two newline separators fit; a fourth does not.
    client = client_for(stub, fake, max_batch_bytes=3 * size + 2)
    report = client.send(items)
    assert report == SendReport(events_sent=10, batches=4, acked=True)
    data_posts = [r for r in stub.requests if r.path == EVENT]
    assert [r.events for r in data_posts] == [3, 3, 3, 1]
    assert [e["event"]["n"] for e in stub.events] == list(range(10))


def test_one_byte_less_pushes_an_event_into_the_next_batch(stub, fake):
    items = [envelope(n) for n in range(4)]
    size = len(items[0])
    report = client_for(stub, fake, max_batch_bytes=2 * size).send(items)
    assert report.batches == 4
    assert [r.events for r in stub.requests if r.path == EVENT] == [1, 1, 1, 1]


def test_an_event_larger_than_a_batch_is_refused(stub, fake):
    client = client_for(stub, fake, max_batch_bytes=50)
    with pytest.raises(ValueError, match="event 0 is"):
        client.send([envelope(0, pad=100)])
    assert stub.requests == []


def test_nothing_to_send_posts_nothing(stub, fake):
    report = client_for(stub, fake).send([])
    assert report == SendReport(events_sent=0, batches=0, acked=False)
    assert stub.requests == []


def test_busy_server_is_retried_with_backoff_then_succeeds(fake):
    with HecStub(TOKEN, busy_responses=2) as stub:
        report = client_for(stub, fake).send([envelope(0), envelope(1)])
        answered = [(r.status, r.code) for r in stub.requests if r.path == EVENT]
        stored = stub.events
    assert report == SendReport(events_sent=2, batches=1, acked=True)
    assert answered == [(503, 9), (503, 9), (200, 0)]
    assert fake.sleeps == [0.01, 0.02]
    assert len(stored) == 2


def test_busy_server_gives_up_after_max_attempts(fake):
    with HecStub(TOKEN, busy_responses=10) as stub:
        client = client_for(stub, fake, max_attempts=3)
        with pytest.raises(HecError) as caught:
            client.send([envelope(0)])
        attempts = posts(stub)
    assert (caught.value.http_status, caught.value.code) == (503, 9)
    assert attempts == 3
    assert len(fake.sleeps) == 2


def test_invalid_token_raises_at_once_without_retry(stub, fake):
    client = HecClient(stub.url, "wrong-token", sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(HecError) as caught:
        client.send([envelope(0)])
    assert caught.value.http_status == 403
    assert caught.value.code == 4
    assert caught.value.text == "Invalid token"
    assert posts(stub) == 1
    assert fake.sleeps == []


def test_invalid_event_number_counts_from_the_start_of_the_send(stub, fake):
    items = [envelope(n) for n in range(5)]
    items[3] = json.dumps({"host": "thing-3"}).encode()  # no "event": code 12
    size = len(items[0])
    client = client_for(stub, fake, max_batch_bytes=2 * size + 1)
    with pytest.raises(HecError) as caught:
        client.send(items)
    assert (caught.value.http_status, caught.value.code) == (400, 12)
    assert caught.value.invalid_event_number == 3
    assert [e["event"]["n"] for e in stub.events] == [0, 1, 2]


def test_ack_timeout_raises_after_polling(fake):
    with HecStub(TOKEN, confirm_acks=False) as stub:
        client = client_for(stub, fake, ack_timeout=5.0, ack_poll_interval=1.0)
        with pytest.raises(HecError, match="timed out") as caught:
            client.send([envelope(0)])
        polls = posts(stub, ACK)
    assert caught.value.http_status is None
    assert polls == 6  # at 0, 1, 2, 3, 4 and 5 s
    assert sum(fake.sleeps) == pytest.approx(5.0)


def test_acks_are_polled_until_every_batch_is_confirmed(stub, fake, monkeypatch):
    stub.confirm_acks = False
    original = fake.sleep

    def sleep_then_confirm(seconds: float) -> None:
        original(seconds)
        stub.confirm_acks = True  # indexing "finishes" after the first poll

    monkeypatch.setattr(fake, "sleep", sleep_then_confirm)
    client = client_for(stub, fake, max_batch_bytes=len(envelope(0)))
    report = client.send([envelope(0), envelope(1)])
    assert report == SendReport(events_sent=2, batches=2, acked=True)
    assert posts(stub, ACK) == 2
    assert fake.sleeps == [1.0]


def test_without_ack_the_report_says_not_acked():
    with HecStub(TOKEN, use_ack=False) as stub:
        report = HecClient(stub.url, TOKEN).send([envelope(0)])
        ack_polls = posts(stub, ACK)
    assert report == SendReport(events_sent=1, batches=1, acked=False)
    assert ack_polls == 0


def test_unreachable_server_is_retried_then_reported(fake):
    with refusing_url() as url:
        client = HecClient(url, TOKEN, max_attempts=3, backoff=0.01, sleep=fake.sleep)
        with pytest.raises(HecError, match="cannot reach HEC") as caught:
            client.send([envelope(0)])
        healthy = client.health()
    assert caught.value.http_status is None
    assert fake.sleeps == [0.01, 0.02]
    assert healthy is False


def test_health_is_true_for_a_healthy_hec(stub):
    assert HecClient(stub.url, TOKEN).health() is True
    assert stub.requests[-1].path == "/services/collector/health"


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


def test_channel_must_be_a_guid():
    with pytest.raises(ValueError, match="GUID"):
        HecClient("https://splunk:8088", TOKEN, channel="demo")


def test_token_never_appears_in_repr_errors_or_logs(fake, caplog):
    caplog.set_level(logging.DEBUG, logger="iot_defender_splunk.hec")
    with HecStub(TOKEN, busy_responses=1, confirm_acks=False) as stub:
        client = client_for(stub, fake, ack_timeout=1.0)
        with pytest.raises(HecError, match="timed out") as caught:
            client.send([envelope(0)])
    assert caplog.records  # the retry was logged
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(client)
    assert TOKEN not in str(caught.value)


# --- deadlines, odd answers, proxies ---------------------------------------------------------


@pytest.fixture
def dripping_server() -> Iterator[str]:
    """A server that answers 200 with a 1,000-byte body one byte every 0.2 s (200 s in all)."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                for _ in range(1000):
                    if stop.wait(0.2):
                        break
                    with contextlib.suppress(OSError):
                        conn.sendall(b" ")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host, port = listener.getsockname()[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def test_a_server_that_drips_its_answer_cannot_hold_a_request_past_its_deadline(
    dripping_server: str, fake: FakeTime
) -> None:
    """The defect: each read had a 1 s timeout, so a byte every 0.2 s held send() for 18 s."""
    client = HecClient(
        dripping_server, TOKEN, timeout=1.0, deadline=1.0, max_attempts=1, sleep=fake.sleep
    )
    started = time.monotonic()
    with pytest.raises(HecError, match=r"did not finish within 1 s"):
        client.send([envelope(0)])
    assert time.monotonic() - started < 30  # the drip alone would take 200 s


def test_an_ack_id_that_is_not_ascii_digits_is_never_taken_for_one(
    stub: HecStub, fake: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'²' passes str.isdigit() and then int() raised ValueError out of send()."""
    client = client_for(stub, fake, ack_timeout=2.0)
    real_post = client._post

    def post(url: str, body: bytes) -> dict[str, object]:
        if url == client.ack_url:
            return {"acks": {"²": True, "٣": True}}
        return real_post(url, body)

    monkeypatch.setattr(client, "_post", post)
    with pytest.raises(HecError, match="timed out"):
        client.send([envelope(0)])


def test_an_http_proxy_from_the_environment_is_used(
    stub: HecStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stub stands in for the proxy: it gets the absolute URL of an unresolvable host."""
    monkeypatch.setenv("http_proxy", stub.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    client = HecClient("http://splunk.invalid:8088", TOKEN, channel=CHANNEL)

    report = client.send([envelope(0)])

    assert report == SendReport(events_sent=1, batches=1, acked=True)
    assert stub.events == [{"event": {"n": 0, "pad": ""}}]


def test_a_redirect_is_not_followed(fake: FakeTime) -> None:
    """urllib turned a redirected POST into a bodiless GET; a 3xx is reported instead."""
    server = _Redirecting()
    try:
        client = HecClient(server.url, TOKEN, sleep=fake.sleep, clock=fake.clock)
        with pytest.raises(HecError) as caught:
            client.send([envelope(0)])
    finally:
        server.close()
    assert caught.value.http_status == 307
    assert server.requests == 1


class _Redirecting:
    """Answers every request with 307 to elsewhere; counts the requests."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, HTTPServer  # noqa: PLC0415

        outer = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(307)
                self.send_header("Location", "http://127.0.0.1:9/services/collector/event")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
