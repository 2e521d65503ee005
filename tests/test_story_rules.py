"""The offline rules (iot_defender_splunk.story.rules) the demo and the oracles share: their
thresholds are the searches', each detection's rule meets the counts its YAML's tests expect, and
they keep what the searches keep apart apart."""

from __future__ import annotations

import re
import statistics
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from appbuild import detection_data
from appbuild.build_app import DETECTIONS_DIR, REPORTS_DIR, load_definitions
from iot_defender_splunk.story import rules
from tests.built_app import app_knowledge
from tests.datasets import dataset_events

SPECS = {d.stem: d.spec for d in load_definitions(DETECTIONS_DIR, REPORTS_DIR)}
SURGE = "fleet_wide_authentication_error_surge"
FLAPPING = "connection_flapping"
OUTBOUND = "outbound_volume_spike_vs_device_baseline"
# Stem -> what one result row of the search is, where that is not what OFFLINE_RULES alerts on.
ROWS: dict[str, rules.Rule] = {
    "risky_port_listening": lambda events, window: {
        f"{thing} {port}" for thing, port in rules.risky_ports(events, window)
    },
}
CASES = [
    pytest.param(stem, test, id=f"{stem}-{test['dataset'].rsplit('/', 1)[-1]}")
    for stem in rules.OFFLINE_RULES
    for test in SPECS[stem]["tests"]
]


def _search(stem: str) -> str:
    return " ".join(SPECS[stem]["search"].split())


def _window(stem: str) -> rules.Window:
    return rules.schedule_window(SPECS[stem]["schedule"], detection_data.REFERENCE_TIME)


@pytest.mark.parametrize(("text", "seconds"), [("now", 0), ("-24h@m", 86_400), ("-65m@m", 3900)])
def test_relative_seconds_reads_the_schedules_forms(text: str, seconds: int) -> None:
    assert rules.relative_seconds(text) == seconds


@pytest.mark.parametrize("text", ["-1mon", "+5m", "-5m@w1", "yesterday"])
def test_an_unsupported_relative_time_is_refused_not_read_as_now(text: str) -> None:
    with pytest.raises(ValueError, match="unsupported relative time"):
        rules.relative_seconds(text)


def test_schedule_window_snaps_both_ends_to_the_minute() -> None:
    schedule = {"earliest_time": "-24h@m", "latest_time": "-5m@m"}
    assert rules.schedule_window(schedule, 86_400 * 10 + 59) == (86_400 * 9, 86_400 * 10 - 300)


def test_spike_floors_are_the_macros() -> None:
    definition = app_knowledge().macros["iot_defender_spike_floor"].definition
    floors = {m: int(v) for m, v in re.findall(r'name=="([^"]+)", (\d+)', definition)}
    assert floors == rules.SPIKE_FLOORS
    assert rules.OUTBOUND_FLOORS.items() <= floors.items()


def test_surge_reads_the_searchs_metrics_with_its_floors() -> None:
    search = _search(SURGE)
    assert set(re.findall(r'metric_name::"([^"]+)"', search)) == rules.AUTH_ERROR_METRICS
    match = re.search(r'error_floor=if\(metric_name=="([^"]+)", (\d+), (\d+)\)', search)
    assert match, "the search sets a floor per metric"
    expected = {m: float(match[2] if m == match[1] else match[3]) for m in rules.AUTH_ERROR_METRICS}
    assert {m: rules.auth_error_floor(m) for m in rules.AUTH_ERROR_METRICS} == expected


def test_address_and_burst_thresholds_are_the_searches() -> None:
    many = _search("client_id_connecting_from_many_source_ips")
    assert f"| where source_ips >= {rules.MANY_ADDRESSES} |" in many
    burst = _search("authentication_error_burst_from_source_ip")
    assert f"| where peak_errors >= {rules.BURST_ERRORS} |" in burst


@pytest.mark.parametrize(("stem", "test"), CASES)
def test_offline_rule_finds_what_the_detections_tests_expect(
    stem: str, test: dict[str, Any]
) -> None:
    """What the demo says would fire is what the detection's own tests say it returns."""
    rule = ROWS.get(stem, rules.OFFLINE_RULES[stem])
    found = rule(list(dataset_events(test["dataset"])), _window(stem))
    assert len(found) == test["expected"]["result_count"]


def _subscription(connect: dict[str, Any], t: float, kind: str) -> dict[str, Any]:
    """A lifecycle subscribed/unsubscribed event of the same session as a connect event."""
    keep = ("clientId", "sessionIdentifier", "principalIdentifier", "versionNumber", "thing")
    body = {key: connect["event"][key] for key in keep}
    topics = [f"$aws/things/{body['thing']}/shadow/update/delta"]
    event = {**body, "timestamp": int(t * 1000), "eventType": kind, "topics": topics}
    return {
        **connect,
        "time": t,
        "event": event,
        "fields": {**connect["fields"], "event_type": kind},
    }


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 299), st.sampled_from(["subscribed", "unsubscribed"])),
        max_size=40,
    )
)
@example([(s, "subscribed") for s in range(0, 240, 20)])
def test_subscriptions_are_not_flapping(subscriptions: list[tuple[int, str]]) -> None:
    """The search counts connects and disconnects only: a quiet client subscribing to many
    topics in one 5-minute interval does not flap."""
    events = list(dataset_events("detections/data/connections.ndjson"))
    window = _window(FLAPPING)
    quiet = next(
        e
        for e in events
        if e["sourcetype"] == "aws:iot:lifecycle"
        and e["event"]["eventType"] == "connected"
        and e["event"]["clientId"] != "pump-0018"
    )
    bucket = window[1] - 600 - (window[1] - 600) % 300
    added = [_subscription(quiet, bucket + offset, kind) for offset, kind in subscriptions]
    presence = rules.lifecycle_presence(events + added)
    assert rules.flapping_clients(presence, window) == {"pump-0018"}


VOLUMES = st.sampled_from([0.0, 1_000_000.0, 20_000_000.0])


def _series(origin: str, baseline: list[float], current: float) -> list[rules.Datapoint]:
    """One device's bytes-out datapoints of one origin: a baseline from the window's start
    and one datapoint in its last hour."""
    earliest, latest = _window(OUTBOUND)
    metric = "aws:all-bytes-out"
    points = [(earliest + 300 * i, "pump-0021", metric, origin, v) for i, v in enumerate(baseline)]
    return [*points, (latest - 300, "pump-0021", metric, origin, current)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(VOLUMES, min_size=12, max_size=16),
    VOLUMES,
    st.lists(VOLUMES, min_size=12, max_size=16),
    VOLUMES,
)
@example([0.0] * 12, 20_000_000.0, [20_000_000.0] * 12, 0.0)
def test_volume_spikes_judge_each_origin_on_its_own_baseline(
    device: list[float], device_now: float, detect: list[float], detect_now: float
) -> None:
    """Device reports and Detect exports are separate series (the macro groups by origin):
    together they spike exactly when one of them does alone."""
    reports = _series("device-report", device, device_now)
    exports = _series("detect-export", detect, detect_now)

    def spikes(points: list[rules.Datapoint]) -> set[str]:
        return rules.volume_spikes(points, _window(OUTBOUND), rules.SPIKE_FLOORS.__getitem__)

    assert spikes(reports + exports) == spikes(reports) | spikes(exports)


def _aligned_after(t: float) -> float:
    """The start of the first 5-minute bucket at or after `t`."""
    return t + (-t % 300)


@settings(max_examples=80, deadline=None)
@given(
    st.dictionaries(st.integers(2, 200), st.integers(1, 30), max_size=12),
    st.integers(0, 60),
    st.sampled_from([10.0, 50.0]),
)
@example({}, 10, 10.0)
@example({}, 11, 10.0)
@example({100: 320}, 59, 10.0)  # 59 is above the bound over 276 buckets, not over 275
def test_buckets_above_baseline_is_the_searchs_zero_filled_bound(
    baseline: dict[int, int], current: int, floor: float
) -> None:
    """Differential against the statistics module: a current bucket alerts when above the mean
    plus three sample standard deviations of every baseline bucket, empty ones as zeros, and
    above the floor (strictly, as `where current_max > upper_bound`)."""
    window = _window(FLAPPING)
    earliest, latest = window
    current_start = latest - 3600
    n = int((current_start - earliest) // 300)
    first = _aligned_after(earliest)
    points = [(first + 300 * i, "pump-0018", float(v)) for i, v in baseline.items()]
    spike_at = _aligned_after(current_start)
    points += [(spike_at, "pump-0018", 1.0)] * current
    values = [float(baseline.get(i, 0)) for i in range(n)]
    bound = max(statistics.mean(values) + 3 * statistics.stdev(values), floor)
    found = rules.buckets_above_baseline(points, window, current=3600, floor=floor)
    assert found == ({"pump-0018": [spike_at]} if current > bound else {})


@pytest.mark.parametrize(("connects", "flaps"), [(10, False), (11, True)])
def test_flapping_needs_more_than_ten_lifecycle_events_in_an_interval(
    connects: int, flaps: bool
) -> None:
    window = _window(FLAPPING)
    at = _aligned_after(window[1] - 3600)
    presence = [(at + i, "pump-0018", 1.0) for i in range(connects)]
    assert rules.flapping_clients(presence, window) == ({"pump-0018"} if flaps else set())


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 10_000_000).map(float), min_size=10, max_size=14),
    st.integers(0, 40_000_000).map(float),
    st.sampled_from([3600, 3000, 1]),
)
@example([1_000.0] * 12, 6_000_000.0, 3600)
@example([1_000.0] * 11, 6_000_000.0, 3600)
def test_volume_spikes_is_the_macros_bound(
    baseline: list[float], current: float, before_end: int
) -> None:
    """Differential against the statistics module: a datapoint of the last hour (from exactly
    an hour before the end) alerts when above the mean plus three sample standard deviations
    of at least 12 earlier datapoints and above the metric's floor."""
    window = _window(OUTBOUND)
    points = [*_series("device-report", baseline, current)[:-1]]
    points.append(
        (window[1] - before_end, "pump-0021", "aws:all-bytes-out", "device-report", current)
    )
    floor = rules.SPIKE_FLOORS["aws:all-bytes-out"]
    bound = max(statistics.mean(baseline) + 3 * statistics.stdev(baseline), floor)
    spikes = rules.volume_spikes(points, window, rules.SPIKE_FLOORS.__getitem__)
    assert spikes == ({"pump-0021"} if len(baseline) >= 12 and current > bound else set())


def test_a_datapoint_exported_twice_counts_once() -> None:
    """Detect can export a datapoint more than once: the volume is the highest, not the sum."""
    events = list(dataset_events("detections/data/outbound_volume.ndjson"))
    metrics = rules.OUTBOUND_FLOORS
    once = rules.count_datapoints(events, metrics)
    assert once
    assert sorted(rules.count_datapoints(events + events, metrics)) == sorted(once)


def test_addresses_within_an_hour_of_each_other_are_counted_together() -> None:
    start = _window("client_id_connecting_from_many_source_ips")[0] + 60
    seen = [
        (start, "pump-0018", "198.51.100.58"),
        (start + 1800, "pump-0018", "203.0.113.9"),
        (start + 3599, "pump-0018", "192.0.2.44"),
        (start + 7200, "pump-0018", "192.0.2.45"),
    ]
    window = (start, start + 7260)
    assert rules.most_addresses_in_an_hour(seen, window) == {"pump-0018": 3}


@pytest.mark.parametrize(("errors", "burst"), [(19, False), (20, True)])
def test_a_burst_is_twenty_errors_in_one_interval(errors: int, burst: bool) -> None:
    template = next(
        e
        for e in dataset_events("detections/data/authentication_errors_by_source.ndjson")
        if e["fields"].get("event_type") == "Connection.AuthNError"
    )
    window = _window("authentication_error_burst_from_source_ip")
    at = _aligned_after(window[0])
    source = "198.51.100.200"
    events = [
        {**template, "time": at + i, "event": {**template["event"], "sourceIp": source}}
        for i in range(errors)
    ]
    assert rules.authentication_bursts(events, window) == ({source} if burst else set())
