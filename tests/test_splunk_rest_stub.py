"""The splunkd stand-in answers as splunkd does, or verify's tests prove nothing: splunk-sdk
reads its responses, it refuses what splunkd refuses, and it is race-free under load."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from splunklib import binding, client, results

from tests.concurrency import run_at_once
from tests.hec_server import HecStub
from tests.loopback_server import LISTEN_BACKLOG, LoopbackServer, LoopbackServerError, Response
from tests.splunk_rest_stub import (
    PASSWORD,
    SPLUNK_VERSION,
    USERNAME,
    SplunkRestStub,
    StubEvent,
    healthy_state,
    installed_state,
)

VERSION = "0.1.0"
APP = "iot_defender_security"
RISKY = "IoT - Risky Port Listening"  # a shipped detection whose name has spaces


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


# --- the endpoints the demo reads (iot_defender_splunk/story/live.py) ----------------------


def _json_get(service: client.Service, path: str, **query: object) -> Any:
    return json.loads(service.get(path, output_mode="json", **query).body.read())


def _json_post(service: client.Service, path: str, **form: object) -> Any:
    return json.loads(service.post(path, output_mode="json", **form).body.read())


def _count(service: client.Service, search: str, earliest: str, latest: str) -> list[Any]:
    answer = _json_post(
        service,
        "search/jobs",
        search=search,
        exec_mode="oneshot",
        earliest_time=earliest,
        latest_time=latest,
    )
    return list(answer["results"])


def _dispatch(service: client.Service, name: str) -> str:
    path = "saved/searches/" + binding.UrlEncoded(name, encode_slash=True) + "/dispatch"
    return str(_json_post(service, path, **{"dispatch.now": "1796040000"})["sid"])


def test_the_macro_in_json_is_the_same_definition_as_in_atom(stub: SplunkRestStub) -> None:
    stub.state.macros["iot_defender_index"] = '(index="iot_a" OR index=iot_b)'
    scoped = _connect(stub, owner="nobody", app=APP)
    (entry,) = _json_get(scoped, "configs/conf-macros/iot_defender_index")["entry"]
    assert entry["name"] == "iot_defender_index"
    assert entry["content"]["definition"] == scoped.macros["iot_defender_index"].definition
    assert entry["acl"]["app"] == APP


def test_a_missing_macro_in_json_is_a_404_with_splunkds_message(stub: SplunkRestStub) -> None:
    scoped = _connect(stub, owner="nobody", app=APP)
    with pytest.raises(binding.HTTPError) as error:
        _json_get(scoped, "configs/conf-macros/no_such_macro")
    assert error.value.status == 404
    assert json.loads(error.value.body)["messages"] == [
        {"type": "ERROR", "text": "Could not find object id=no_such_macro"}
    ]


def test_unauthenticated_json_requests_are_refused_in_json(stub: SplunkRestStub) -> None:
    status, body = _raw(stub, "GET", "/services/server/info?output_mode=json")
    assert status == 401
    assert json.loads(body)["messages"][0]["text"] == "call not properly authenticated"


def test_a_v1_oneshot_tstats_without_by_is_one_row_even_when_nothing_matches(
    stub: SplunkRestStub,
) -> None:
    stub.state.events = [
        StubEvent("iot_security", "aws:iot:log", 10.0),
        StubEvent("iot_security", "aws:iot:log", 59.5),
        StubEvent("iot_security", "aws:iot:log", 60.0),  # latest_time is exclusive
        StubEvent("main", "aws:iot:log", 30.0),
    ]
    scoped = _connect(stub, owner="nobody", app=APP)
    search = '| tstats count where index="iot_security"'
    assert _count(scoped, search, "0.000", "60.000") == [{"count": "2"}]
    assert _count(scoped, search, "100.000", "200.000") == [{"count": "0"}]


@pytest.mark.property
@settings(max_examples=15, deadline=None)
@given(batches=st.lists(st.integers(min_value=0, max_value=30), max_size=5))
def test_each_search_makes_the_next_indexing_batch_searchable(batches: list[int]) -> None:
    state = installed_state(VERSION)
    state.indexing = [[StubEvent("iot_security", "aws:iot:log", 30.0)] * n for n in batches]
    with SplunkRestStub(state) as stub:
        scoped = _connect(stub, owner="nobody", app=APP)
        search = '| tstats count where index="iot_security"'
        seen = [_count(scoped, search, "0", "60")[0]["count"] for _ in range(len(batches) + 2)]
    prefix_sums = [sum(batches[:k]) for k in range(len(batches) + 1)]
    assert seen == [str(n) for n in [*prefix_sums, sum(batches)]]
    assert state.indexing == []


def test_what_a_linked_hec_stub_indexed_is_searchable_in_its_index_and_time() -> None:
    channel = "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
    envelopes = [
        {"event": "a", "index": "iot_security", "time": 20},
        {"event": "b", "index": "iot_security", "time": "40.5"},
        {"event": "c", "index": "iot_security", "time": 90},  # outside the window
        {"event": "d", "time": 30},  # no index: the token's default, main
    ]
    with HecStub("t0ken") as hec, SplunkRestStub(installed_state(VERSION), hec=hec) as stub:
        sent = _post(
            hec.url + "/services/collector/event",
            "\n".join(json.dumps(e) for e in envelopes).encode(),
            {"Authorization": "Splunk t0ken", "X-Splunk-Request-Channel": channel},
        )
        scoped = _connect(stub, owner="nobody", app=APP)
        by_index = _count(scoped, "| tstats count where index=* by index", "0", "60")
    assert sent == 200
    assert sorted(by_index, key=lambda row: row["index"]) == [
        {"index": "iot_security", "count": "2"},
        {"index": "main", "count": "1"},
    ]


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_dispatched_saved_search_is_done_with_the_rows_the_state_gives_it(
    stub: SplunkRestStub,
) -> None:
    stub.state.saved_search_results[RISKY] = [{"thing": "cam-0001", "port": "23"}]
    scoped = _connect(stub, owner="nobody", app=APP)
    sid = _dispatch(scoped, RISKY)
    (job,) = _json_get(scoped, f"search/jobs/{sid}")["entry"]
    answer = _json_get(scoped, f"search/jobs/{sid}/results", count=0)
    assert job["content"]["sid"] == sid
    assert job["content"]["label"] == RISKY  # '+' in the path decoded as a space
    assert (job["content"]["isDone"], job["content"]["isFailed"]) == (True, False)
    assert job["content"]["resultCount"] == 1
    assert answer["results"] == [{"thing": "cam-0001", "port": "23"}]
    assert stub.state.jobs[sid].request["dispatch.now"] == "1796040000"


def test_a_saved_search_that_fails_to_run_is_a_failed_job(stub: SplunkRestStub) -> None:
    (saved,) = [s for s in stub.state.saved_searches if s.name == RISKY]
    stub.state.run_errors[saved.search[:40]] = "Error in 'lookup' command: no such lookup."
    scoped = _connect(stub, owner="nobody", app=APP)
    sid = _dispatch(scoped, RISKY)
    content = _json_get(scoped, f"search/jobs/{sid}")["entry"][0]["content"]
    answer = _json_get(scoped, f"search/jobs/{sid}/results", count=0)
    assert (content["isDone"], content["isFailed"], content["dispatchState"]) == (
        True,
        True,
        "FAILED",
    )
    assert answer["results"] == []
    assert answer["messages"][0]["type"] == "FATAL"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "saved/searches/IoT+-+No+Such+Detection/dispatch"),
        ("GET", "search/jobs/admin__admin__no_such_sid"),
        ("GET", "search/jobs/admin__admin__no_such_sid/results"),
    ],
    ids=["saved-search", "job", "results"],
)
def test_an_unknown_saved_search_or_sid_is_a_404(
    stub: SplunkRestStub, method: str, path: str
) -> None:
    scoped = _connect(stub, owner="nobody", app=APP)
    call = _json_post if method == "POST" else _json_get
    with pytest.raises(binding.HTTPError) as error:
        call(scoped, path)
    assert error.value.status == 404


def test_a_job_asked_for_in_xml_is_a_stand_in_failure_at_stop() -> None:
    stub = SplunkRestStub(installed_state(VERSION))
    scoped = _connect(stub, owner="nobody", app=APP)
    sid = _dispatch(scoped, RISKY)
    with pytest.raises((http.client.HTTPException, OSError)):
        scoped.get(f"search/jobs/{sid}")
    with pytest.raises(LoopbackServerError, match="with output_mode=json"):
        stub.stop()
