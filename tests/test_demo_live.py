"""The demo's live Splunk side (iot_defender_splunk/story/live.py) against the splunkd
stand-in: waiting for the events to be searchable is bounded, and the index macro is read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_defender_splunk.story.live import LiveError, SearchHead, Splunk, indexes_in
from tests.loopback_server import Request
from tests.splunk_rest_stub import (
    PASSWORD,
    USERNAME,
    SplunkRestStub,
    StubEvent,
    installed_state,
)


class FakeClock:
    """Time that passes only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stand_in() -> Iterator[SplunkRestStub]:
    with SplunkRestStub(installed_state("0.1.0")) as rest:
        yield rest


def connect(rest: SplunkRestStub, clock: FakeClock) -> Splunk:
    head = SearchHead.from_environment(
        {"SPLUNK_URL": rest.url, "SPLUNK_USERNAME": USERNAME, "SPLUNK_PASSWORD": PASSWORD}
    )
    assert head is not None
    return Splunk.connect(head, sleep=clock.sleep, clock=clock)


def events(count: int) -> list[StubEvent]:
    """``count`` events of iot_security inside the [0, 60) window the tests wait for."""
    return [StubEvent("iot_security", "aws:iot:log", 30.0)] * count


def test_it_waits_until_every_event_is_searchable(stand_in: SplunkRestStub) -> None:
    stand_in.state.indexing = [events(40), events(59), events(1)]  # searchable: 0, 40, 99, 100
    clock = FakeClock()
    found = connect(stand_in, clock).wait_until_searchable("iot_security", 0, 60, 100, 30)
    assert found == 100
    assert len(clock.slept) == 3
    searches = [
        p for p in map(Request.params, stand_in.requests) if p.get("exec_mode") == "oneshot"
    ]
    assert {r["search"] for r in searches} == {'| tstats count where index="iot_security"'}
    assert {(r["earliest_time"], r["latest_time"]) for r in searches} == {("0.000", "60.000")}


def test_it_stops_waiting_at_the_deadline_with_what_is_searchable(
    stand_in: SplunkRestStub,
) -> None:
    stand_in.state.events = events(7)
    clock = FakeClock()
    found = connect(stand_in, clock).wait_until_searchable("iot_security", 0, 60, 100, 5)
    assert found == 7
    assert clock.now >= 5
    assert sum(clock.slept) <= 6


def test_the_index_macro_is_read_in_the_apps_namespace(stand_in: SplunkRestStub) -> None:
    stand_in.state.macros["iot_defender_index"] = '(index="iot_a" OR index=iot_b)'
    definition = connect(stand_in, FakeClock()).index_macro()
    assert indexes_in(definition) == {"iot_a", "iot_b"}
    (read,) = [r for r in stand_in.requests if "conf-macros" in r.path]
    assert (
        read.path
        == "/servicesNS/nobody/iot_defender_security/configs/conf-macros/iot_defender_index"
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SPLUNK_URL": "https://splunk:8089"}, "needs SPLUNK_USERNAME and SPLUNK_PASSWORD"),
        ({"SPLUNK_URL": "https://splunk:port", "SPLUNK_TOKEN": "t"}, "is not like https://"),
    ],
)
def test_an_incomplete_search_head_setting_is_refused(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(LiveError, match=message):
        SearchHead.from_environment(environ)


def test_no_splunk_url_means_no_search_head() -> None:
    assert SearchHead.from_environment({"SPLUNK_TOKEN": "t"}) is None


INDEX_NAMES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)


@pytest.mark.property
@given(
    names=st.lists(INDEX_NAMES, min_size=1, max_size=4, unique=True),
    quoted=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_every_index_an_or_of_index_terms_names_is_found(
    names: list[str], quoted: list[bool]
) -> None:
    terms = [f'index="{n}"' if q else f"index={n}" for n, q in zip(names, quoted, strict=False)]
    definition = "(" + " OR ".join(terms) + ")"
    assert indexes_in(definition) == set(names)
    assert indexes_in(f"{definition} sourcetype=aws:iot:*") == set(names)
