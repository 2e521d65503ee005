"""The splunkd stand-in answers as splunkd does, or verify's tests prove nothing: splunk-sdk
reads its responses, it refuses what splunkd refuses, and it is race-free under load."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from splunklib import binding, client, results

from tests.concurrency import run_at_once
from tests.loopback_server import LISTEN_BACKLOG, LoopbackServer, LoopbackServerError, Response
from tests.splunk_rest_stub import (
    PASSWORD,
    SPLUNK_VERSION,
    USERNAME,
    SplunkRestStub,
    StubEvent,
    healthy_state,
)

VERSION = "0.1.0"


@pytest.fixture
def stub() -> Iterator[SplunkRestStub]:
    with SplunkRestStub(healthy_state(VERSION)) as running:
        yield running


def _connect(stub: SplunkRestStub, **namespace: str) -> client.Service:
    parts = urlsplit(stub.url)
    return client.connect(
        scheme="http",
        host=parts.hostname,
        port=parts.port,
        username=USERNAME,
        password=PASSWORD,
        **namespace,
    )


def _raw(stub: SplunkRestStub, method: str, path: str, headers: dict[str, str] | None = None):
    parts = urlsplit(stub.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_splunk_sdk_signs_in_and_reads_the_server_info(stub: SplunkRestStub) -> None:
    service = _connect(stub)
    assert service.info["version"] == SPLUNK_VERSION
    assert not service.disable_v2_api  # 9.4: splunk-sdk takes the v2 search endpoints


def test_splunk_sdk_reads_the_app_macro_indexes_and_saved_searches(stub: SplunkRestStub) -> None:
    system = _connect(stub)
    scoped = _connect(stub, owner="nobody", app="iot_defender_security")
    app = system.apps["iot_defender_security"]
    assert (app.content["version"], app.content["disabled"]) == (VERSION, "0")
    assert scoped.macros["iot_defender_index"].definition == "index=iot_security"
    assert {index.name for index in scoped.indexes.list(count=-1)} == {
        "main",
        "iot_security",
        "_audit",
    }
    saved = scoped.saved_searches.list(count=-1)
    by_name = {s.name: s for s in saved}
    expected = {s.name: s.search for s in stub.state.saved_searches}
    assert {name: s.content["search"] for name, s in by_name.items()} == expected
    assert {s.access["app"] for s in saved} == {"iot_defender_security"}


def test_a_missing_object_is_a_key_error_for_splunk_sdk(stub: SplunkRestStub) -> None:
    stub.state.app = None
    with pytest.raises(KeyError):
        _ = _connect(stub).apps["iot_defender_security"]


def test_the_app_namespace_is_gone_with_the_app(stub: SplunkRestStub) -> None:
    stub.state.app = None
    scoped = _connect(stub, owner="nobody", app="iot_defender_security")
    with pytest.raises(binding.HTTPError) as error:
        scoped.saved_searches.list()
    assert error.value.status == 404


def test_unauthenticated_requests_are_refused(stub: SplunkRestStub) -> None:
    status, body = _raw(stub, "GET", "/services/server/info")
    assert status == 401
    assert b"call not properly authenticated" in body


def test_a_wrong_password_is_splunk_sdks_authentication_error(stub: SplunkRestStub) -> None:
    parts = urlsplit(stub.url)
    with pytest.raises(binding.AuthenticationError):
        client.connect(
            scheme="http", host=parts.hostname, port=parts.port, username=USERNAME, password="no"
        )


def test_tstats_counts_the_events_of_the_macros_indexes_in_the_job_window(
    stub: SplunkRestStub,
) -> None:
    now = time.time()
    stub.state.events = [
        StubEvent("iot_security", "aws:iot:log", now - 60),
        StubEvent("iot_security", "aws:iot:log", now - 120),
        StubEvent("iot_security", "aws:iot:log", now - 3 * 86400),
        StubEvent("main", "aws:iot:log", now - 60),
    ]
    scoped = _connect(stub, owner="nobody", app="iot_defender_security")
    stream = scoped.jobs.oneshot(
        "| tstats count where `iot_defender_index` by index sourcetype",
        output_mode="json",
        earliest_time="-24h",
        latest_time="now",
    )
    rows = [row for row in results.JSONResultsReader(stream) if isinstance(row, dict)]
    assert rows == [{"index": "iot_security", "sourcetype": "aws:iot:log", "count": "2"}]


def test_a_search_that_does_not_parse_is_a_400_with_splunkds_message(stub: SplunkRestStub) -> None:
    stub.state.parse_errors["nosuchcommand"] = "Unknown search command 'nosuchcommand'."
    scoped = _connect(stub, owner="nobody", app="iot_defender_security")
    calls: list[Callable[[], object]] = [
        lambda: scoped.parse("search x | nosuchcommand", output_mode="json"),
        lambda: scoped.jobs.oneshot("search x | nosuchcommand", output_mode="json"),
    ]
    for call in calls:
        with pytest.raises(binding.HTTPError) as error:
            call()
        assert error.value.status == 400
        assert json.loads(error.value.body)["messages"] == [
            {"type": "FATAL", "text": "Unknown search command 'nosuchcommand'."}
        ]


def test_the_parser_lists_the_commands_of_the_pipeline(stub: SplunkRestStub) -> None:
    scoped = _connect(stub, owner="nobody", app="iot_defender_security")
    parsed = json.loads(
        scoped.parse('search a="x | y" | eval b=1 | outputlookup t', output_mode="json").body.read()
    )
    assert [command["command"] for command in parsed["commands"]] == [
        "search",
        "eval",
        "outputlookup",
    ]


def test_a_failure_inside_the_stand_in_fails_when_it_stops() -> None:
    def broken(request: object) -> Response:
        raise RuntimeError("stand-in bug")

    def get(url: str) -> bytes:
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
        try:
            connection.request("GET", "/")
            return connection.getresponse().read()
        finally:
            connection.close()

    server = LoopbackServer(broken)
    with pytest.raises((http.client.HTTPException, OSError)):
        get(server.url)
    with pytest.raises(LoopbackServerError, match="stand-in bug"):
        server.stop()


# More clients at once than socketserver's default listen backlog (5) lets in.
CONCURRENT_CLIENTS = 32
assert CONCURRENT_CLIENTS < LISTEN_BACKLOG


def test_concurrent_clients_are_all_answered(stub: SplunkRestStub) -> None:
    session = {"Authorization": f"Splunk {stub.session_key}"}
    answers = run_at_once(
        [lambda: _raw(stub, "GET", "/services/server/info", session)] * CONCURRENT_CLIENTS
    )
    assert [status for status, _ in answers] == [200] * CONCURRENT_CLIENTS
    assert len(stub.requests) == CONCURRENT_CLIENTS


def test_stop_stops_serving_and_is_safe_twice() -> None:
    server = LoopbackServer(lambda request: Response(200, b""))
    assert server.listening
    server.stop()
    server.stop()
    assert not server.listening
