"""The loopback HEC stub must answer as Splunk documents, or client tests prove nothing.

Each test checks both the HTTP status and the HEC ``code`` in the JSON body.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from tests.concurrency import run_at_once
from tests.hec_server import LISTEN_BACKLOG, Fault, HecStub, HecStubError, refusing_url
from tests.loopback_server import LoopbackServerError

TOKEN = "5b3d0e52-1c0a-4d3b-9f7e-2a6c8e4b1d90"
CHANNEL = "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
OTHER_CHANNEL = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
EVENT = "/services/collector/event"

# Bypass any proxy from the environment: the stub is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    retry_after: str | None = None


def call(
    stub: HecStub,
    path: str,
    body: bytes | None = b"",
    *,
    method: str = "POST",
    authorization: str | None = f"Splunk {TOKEN}",
    channel: str | None = CHANNEL,
    extra_headers: Mapping[str, str] | None = None,
) -> Reply:
    headers: dict[str, str] = dict(extra_headers or {})
    if authorization is not None:
        headers["Authorization"] = authorization
    if channel is not None:
        headers["X-Splunk-Request-Channel"] = channel
    data = body if method == "POST" else None
    url = stub.url + path  # always http://127.0.0.1:<port>
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with _OPENER.open(request, timeout=5) as response:
            answer = json.loads(response.read())
            return Reply(response.status, answer, response.headers.get("Retry-After"))
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, json.loads(error.read()), error.headers.get("Retry-After"))


def envelopes(*objects: object) -> bytes:
    return b"\n".join(json.dumps(obj).encode() for obj in objects)


def ack(stub: HecStub, ids: list[int], channel: str = CHANNEL) -> Reply:
    body = json.dumps({"acks": ids}).encode()
    return call(stub, f"/services/collector/ack?channel={channel}", body, channel=None)


@pytest.fixture
def stub() -> Iterator[HecStub]:
    with HecStub(TOKEN) as running:
        yield running


# --- success, channels and ack ---------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/services/collector", EVENT, "/services/collector/event/1.0", EVENT + "/"]
)
def test_every_event_endpoint_accepts_an_event_and_returns_an_ack_id(stub, path):
    reply = call(stub, path, envelopes({"event": {"metric": "aws:all-bytes-out"}}))
    assert reply.status == 200
    assert reply.body == {"text": "Success", "code": 0, "ackId": 0}
    assert stub.events == [{"event": {"metric": "aws:all-bytes-out"}}]


def test_ack_ids_count_up_per_channel_from_zero(stub):
    first = call(stub, EVENT, envelopes({"event": "a"}))
    second = call(stub, EVENT, envelopes({"event": "b"}))
    elsewhere = call(stub, EVENT, envelopes({"event": "c"}), channel=OTHER_CHANNEL)
    assert [first.status, second.status, elsewhere.status] == [200, 200, 200]
    assert [first.body["code"], second.body["code"], elsewhere.body["code"]] == [0, 0, 0]
    assert [first.body["ackId"], second.body["ackId"], elsewhere.body["ackId"]] == [0, 1, 0]


def test_channel_can_come_from_the_query_string(stub):
    reply = call(stub, f"{EVENT}?channel={CHANNEL}", envelopes({"event": "x"}), channel=None)
    assert reply.status == 200
    assert reply.body["code"] == 0
    assert stub.requests[-1].channel == CHANNEL


def test_ack_status_is_true_once_then_forgotten(stub):
    posted = call(stub, EVENT, envelopes({"event": "x"}))
    assert posted.body["ackId"] == 0
    first = ack(stub, [0, 7])
    second = ack(stub, [0])
    assert first.status == 200
    assert first.body == {"acks": {"0": True, "7": False}}
    assert second.status == 200
    assert second.body == {"acks": {"0": False}}


def test_ack_ids_are_scoped_to_their_channel(stub):
    call(stub, EVENT, envelopes({"event": "x"}))
    reply = ack(stub, [0], channel=OTHER_CHANNEL)
    assert reply.status == 200
    assert reply.body == {"acks": {"0": False}}


def test_unconfirmed_acks_stay_false():
    with HecStub(TOKEN, confirm_acks=False) as stub:
        call(stub, EVENT, envelopes({"event": "x"}))
        reply = ack(stub, [0])
    assert reply.status == 200
    assert reply.body == {"acks": {"0": False}}


def test_without_ack_success_has_no_ack_id_and_needs_no_channel():
    with HecStub(TOKEN, use_ack=False) as stub:
        reply = call(stub, EVENT, envelopes({"event": "x"}), channel=None)
        assert stub.events == [{"event": "x"}]
    assert reply.status == 200
    assert reply.body == {"text": "Success", "code": 0}


def test_ack_endpoint_refuses_when_ack_is_disabled():
    with HecStub(TOKEN, use_ack=False) as stub:
        reply = ack(stub, [0])
    assert reply.status == 400
    assert reply.body == {"text": "ACK is disabled", "code": 14}


def test_ack_endpoint_needs_a_channel(stub):
    reply = call(stub, "/services/collector/ack", b'{"acks":[0]}', channel=None)
    assert reply.status == 400
    assert reply.body["code"] == 10


# --- batching --------------------------------------------------------------------------


def test_concatenated_objects_are_one_batch_in_order(stub):
    body = b'{"event":"one"}{"event":"two"}\n\n  {"event":"three","host":"thing-1"}\r\n\t'
    reply = call(stub, EVENT, body)
    assert reply.status == 200
    assert reply.body["code"] == 0
    assert stub.events == [
        {"event": "one"},
        {"event": "two"},
        {"event": "three", "host": "thing-1"},
    ]
    assert stub.requests[-1].events == 3


def test_syntax_error_reports_its_event_number_and_keeps_earlier_events(stub):
    body = b'{"event":"a"}\n{"event":"b"}\n{"event": oops}\n{"event":"d"}'
    reply = call(stub, EVENT, body)
    assert reply.status == 400
    assert reply.body == {"text": "Invalid data format", "code": 6, "invalid-event-number": 2}
    assert stub.events == [{"event": "a"}, {"event": "b"}]
    assert "ackId" not in reply.body


def test_a_json_array_is_not_a_batch(stub):
    reply = call(stub, EVENT, b'[{"event":"a"},{"event":"b"}]')
    assert reply.status == 400
    assert reply.body["code"] == 6
    assert reply.body["invalid-event-number"] == 0
    assert stub.events == []


def test_gzip_body_is_accepted(stub):
    body = gzip.compress(envelopes({"event": "zipped"}, {"event": "too"}))
    reply = call(stub, EVENT, body, extra_headers={"Content-Encoding": "gzip"})
    assert reply.status == 200
    assert reply.body["code"] == 0
    assert stub.events == [{"event": "zipped"}, {"event": "too"}]
    assert stub.requests[-1].content_encoding == "gzip"


# More clients at once than socketserver's default listen backlog (5) lets in.
CONCURRENT_CLIENTS = 32
assert CONCURRENT_CLIENTS <= LISTEN_BACKLOG


def test_concurrent_posts_lose_no_events_and_never_reuse_an_ack_id(stub):
    def post(number: int) -> Callable[[], Reply]:
        return lambda: call(stub, EVENT, envelopes({"event": number}))

    replies = run_at_once([post(n) for n in range(CONCURRENT_CLIENTS)])

    assert [(r.status, r.body["code"]) for r in replies] == [(200, 0)] * CONCURRENT_CLIENTS
    assert sorted(r.body["ackId"] for r in replies) == list(range(CONCURRENT_CLIENTS))
    assert sorted(e["event"] for e in stub.events) == list(range(CONCURRENT_CLIENTS))
    assert len(stub.requests) == CONCURRENT_CLIENTS


def test_a_failure_inside_the_stub_fails_the_test_when_it_stops(monkeypatch):
    stub = HecStub(TOKEN)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug in the stub")

    monkeypatch.setattr(stub, "respond", broken)
    # The body was read before the stub failed, so the client sees a clean close, no reply.
    with pytest.raises(http.client.RemoteDisconnected):
        call(stub, EVENT, envelopes({"event": "x"}))
    with pytest.raises(HecStubError, match=r"failed answering 1 request.*bug in the stub") as error:
        stub.stop()
    assert isinstance(error.value, LoopbackServerError), "served by loopback_server"


def test_a_content_length_that_is_not_a_number_is_an_empty_body(stub):
    connection = http.client.HTTPConnection("127.0.0.1", int(stub.url.rsplit(":", 1)[1]), timeout=5)
    try:
        connection.putrequest("POST", EVENT)
        connection.putheader("Authorization", f"Splunk {TOKEN}")
        connection.putheader("X-Splunk-Request-Channel", CHANNEL)
        connection.putheader("Content-Length", "lots")
        connection.endheaders()
        response = connection.getresponse()
        reply = (response.status, json.loads(response.read())["code"])
    finally:
        connection.close()
    assert reply == (400, 5)  # answered as "No data"; stop() finds no stub failure


# --- raw -------------------------------------------------------------------------------


def test_raw_stores_each_line_as_an_event(stub):
    reply = call(stub, "/services/collector/raw", b"first line\nsecond line\n")
    assert reply.status == 200
    assert reply.body == {"text": "Success", "code": 0, "ackId": 0}
    assert stub.events == [{"event": "first line"}, {"event": "second line"}]


def test_raw_needs_a_channel_even_without_ack():
    with HecStub(TOKEN, use_ack=False) as stub:
        reply = call(stub, "/services/collector/raw", b"line", channel=None)
        assert stub.events == []
    assert reply.status == 400
    assert reply.body == {"text": "Data channel is missing", "code": 10}


# --- authentication --------------------------------------------------------------------


def test_basic_auth_with_the_token_as_password_is_accepted(stub):
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    reply = call(stub, EVENT, envelopes({"event": "x"}), authorization=f"Basic {basic}")
    assert reply.status == 200
    assert reply.body["code"] == 0


def test_missing_token_is_code_2(stub):
    reply = call(stub, EVENT, envelopes({"event": "x"}), authorization=None)
    assert reply.status == 401
    assert reply.body == {"text": "Token is required", "code": 2}
    assert stub.events == []


@pytest.mark.parametrize(
    "authorization", ["Splunk", "Bearer " + TOKEN, TOKEN, "Basic not-base64!", "Basic Zm9v"]
)
def test_malformed_authorization_is_code_3(stub, authorization):
    reply = call(stub, EVENT, envelopes({"event": "x"}), authorization=authorization)
    assert reply.status == 401
    assert reply.body == {"text": "Invalid authorization", "code": 3}


def test_wrong_token_is_code_4(stub):
    reply = call(stub, EVENT, envelopes({"event": "x"}), authorization="Splunk not-the-token")
    assert reply.status == 403
    assert reply.body == {"text": "Invalid token", "code": 4}
    assert stub.events == []


def test_disabled_token_is_code_1():
    with HecStub(TOKEN, disabled=True) as stub:
        reply = call(stub, EVENT, envelopes({"event": "x"}))
        assert stub.events == []
    assert reply.status == 403
    assert reply.body == {"text": "Token disabled", "code": 1}


def test_query_string_token_is_code_16(stub):
    reply = call(stub, f"{EVENT}?token={TOKEN}", envelopes({"event": "x"}), authorization=None)
    assert reply.status == 400
    assert reply.body == {"text": "Query string authorization is not enabled", "code": 16}


# --- channel errors --------------------------------------------------------------------


def test_missing_channel_with_ack_is_code_10(stub):
    reply = call(stub, EVENT, envelopes({"event": "x"}), channel=None)
    assert reply.status == 400
    assert reply.body == {"text": "Data channel is missing", "code": 10}
    assert stub.events == []


@pytest.mark.parametrize("channel", ["not-a-guid", "0f8e7d6c5b4a43928170", CHANNEL + "0"])
def test_channel_that_is_not_a_guid_is_code_11(stub, channel):
    reply = call(stub, EVENT, envelopes({"event": "x"}), channel=channel)
    assert reply.status == 400
    assert reply.body == {"text": "Invalid data channel", "code": 11}


# --- body validation -------------------------------------------------------------------


def test_empty_body_is_code_5(stub):
    reply = call(stub, EVENT, b"")
    assert reply.status == 400
    assert reply.body == {"text": "No data", "code": 5}


def test_missing_event_field_is_code_12(stub):
    reply = call(stub, EVENT, envelopes({"event": "ok"}, {"host": "thing-1"}))
    assert reply.status == 400
    assert reply.body == {"text": "Event field is required", "code": 12, "invalid-event-number": 1}
    assert stub.events == [{"event": "ok"}]


def test_blank_event_is_code_13(stub):
    reply = call(stub, EVENT, envelopes({"event": ""}))
    assert reply.status == 400
    assert reply.body == {
        "text": "Event field cannot be blank",
        "code": 13,
        "invalid-event-number": 0,
    }
    assert stub.events == []


@pytest.mark.parametrize(
    "fields",
    [{"nested": {"a": "b"}}, {"ports": [22, 80]}, {"count": 3}, ["thing-1"], "thing=1"],
)
def test_fields_that_are_not_flat_strings_are_code_15(stub, fields):
    reply = call(stub, EVENT, envelopes({"event": "x", "fields": fields}))
    assert reply.status == 400
    assert reply.body == {
        "text": "Error in handling indexed fields",
        "code": 15,
        "invalid-event-number": 0,
    }


def test_flat_string_fields_are_accepted(stub):
    fields = {"thing": "thing-1", "ports": ["22", "80"]}
    reply = call(stub, EVENT, envelopes({"event": "x", "fields": fields}))
    assert reply.status == 200
    assert reply.body["code"] == 0
    assert stub.events == [{"event": "x", "fields": fields}]


def test_index_outside_the_allow_list_is_code_7():
    with HecStub(TOKEN, allowed_indexes={"iot"}) as stub:
        good = call(stub, EVENT, envelopes({"event": "x", "index": "iot"}))
        bad = call(stub, EVENT, envelopes({"event": "y"}, {"event": "z", "index": "main"}))
        stored = stub.events
    assert (good.status, good.body["code"]) == (200, 0)
    assert bad.status == 400
    assert bad.body == {"text": "Incorrect index", "code": 7, "invalid-event-number": 1}
    assert stored == [{"event": "x", "index": "iot"}, {"event": "y"}]


def test_non_numeric_time_is_invalid_data_format(stub):
    reply = call(stub, EVENT, envelopes({"event": "x", "time": "2024-05-01T00:00:00Z"}))
    assert reply.status == 400
    assert reply.body["code"] == 6
    assert reply.body["invalid-event-number"] == 0


# --- busy, health, routing, bookkeeping ------------------------------------------------


def test_first_posts_are_busy_when_asked():
    with HecStub(TOKEN, busy_responses=2) as stub:
        replies = [call(stub, EVENT, envelopes({"event": n})) for n in range(3)]
        stored = stub.events
    assert [(r.status, r.body["code"]) for r in replies] == [(503, 9), (503, 9), (200, 0)]
    assert replies[0].body["text"] == "Server is busy"
    assert stored == [{"event": 2}]


def test_injected_faults_meet_the_next_data_posts_in_order(stub):
    stub.inject(Fault.BUSY, Fault.DROP_BEFORE_INDEXING, Fault.DROP_AFTER_INDEXING)
    busy = call(stub, EVENT, envelopes({"event": 0}))
    for number in (1, 2):
        with pytest.raises(http.client.RemoteDisconnected):
            call(stub, EVENT, envelopes({"event": number}))
    after = call(stub, EVENT, envelopes({"event": 3}))
    assert (busy.status, busy.body["code"]) == (503, 9)
    # Dropped before indexing: event 1 is lost; dropped after: event 2 is kept, ackId 0 used.
    assert stub.events == [{"event": 2}, {"event": 3}]
    assert after.body["ackId"] == 1
    assert [(r.status, r.events, r.dropped) for r in stub.requests] == [
        (503, 0, False),
        (0, 0, True),
        (0, 1, True),
        (200, 1, False),
    ]


def test_faults_wait_for_a_post_that_passes_authentication(stub):
    stub.inject(Fault.BUSY)
    refused = call(stub, EVENT, envelopes({"event": "x"}), authorization="Splunk wrong")
    health = call(stub, "/services/collector/health", method="GET")
    busy = call(stub, EVENT, envelopes({"event": "x"}))
    assert (refused.status, health.status, busy.status) == (403, 200, 503)


def test_busy_answers_carry_retry_after_when_asked():
    with HecStub(TOKEN, busy_responses=1, retry_after=7) as stub:
        busy = call(stub, EVENT, envelopes({"event": "x"}))
        ok = call(stub, EVENT, envelopes({"event": "x"}))
    assert (busy.status, busy.retry_after) == (503, "7")
    assert (ok.status, ok.retry_after) == (200, None)


def test_health_needs_no_token(stub):
    reply = call(stub, "/services/collector/health", method="GET", authorization=None)
    assert reply.status == 200
    assert reply.body == {"text": "HEC is healthy", "code": 17}


def test_unknown_path_is_404(stub):
    reply = call(stub, "/services/collector/events", envelopes({"event": "x"}))
    assert reply.status == 404
    assert reply.body["code"] == 404
    assert stub.events == []


def test_requests_record_what_was_seen_and_answered(stub):
    call(stub, EVENT, envelopes({"event": 1}, {"event": 2}))
    call(stub, EVENT, envelopes({"event": 3}), authorization="Splunk wrong")
    records = stub.requests
    assert [(r.method, r.path, r.channel) for r in records] == [("POST", EVENT, CHANNEL)] * 2
    assert [(r.events, r.status, r.code) for r in records] == [(2, 200, 0), (0, 403, 4)]


def test_stop_closes_the_port():
    stub = HecStub(TOKEN)
    assert stub.listening
    assert call(stub, "/services/collector/health", method="GET").status == 200
    stub.stop()
    stub.stop()  # idempotent
    # Checked from inside: connecting to the freed port could reach whichever server (of any
    # process) took it since, so a refused connection would prove nothing either way.
    assert not stub.listening


def test_refusing_url_refuses_every_connection():
    with refusing_url() as url:
        for _ in range(3):
            with pytest.raises(urllib.error.URLError) as caught:
                _OPENER.open(url + "/services/collector/health", timeout=2)
            assert isinstance(caught.value.reason, ConnectionRefusedError)
