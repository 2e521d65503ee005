"""Event bodies put their small fields first, so Splunk's JSON extraction sees them.

KV_MODE=json and spath extract fields from the first ``[spath] extraction_cutoff`` bytes of an
event only (5,000 by default, limits.conf). A device with many destinations, an audit with
many failed checks or a finding with a long resource description would otherwise hide the
fields that searches filter on (thing, name, taskStatus, check names...) past that point.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.support import (
    ARRIVAL_MS,
    NOW,
    STREAM_ARN,
    fixture,
    fixture_json,
    fixture_paths,
    record_bytes,
    report_events,
    routed,
    transform,
)
from transform.config import Settings
from transform.context import Invocation, RecordContext, scalars_first
from transform.sourcetypes import LIFECYCLE

EXTRACTION_CUTOFF = 5_000
CIDRS = [f"198.51.{n // 250}.{n % 250}/32" for n in range(400)]


def late_scalars(body: dict[str, Any]) -> list[str]:
    """Top-level scalar fields whose key starts past the extraction cutoff."""
    text = orjson.dumps(body)
    late = []
    for key, value in body.items():
        if isinstance(value, dict | list):
            continue
        at = text.find(orjson.dumps(key) + b":")
        assert at >= 0, key
        if at >= EXTRACTION_CUTOFF:
            late.append(key)
    return late


def _export_with_long_cidrs() -> bytes:
    doc = copy.deepcopy(fixture_json("metrics_export", "all_value_kinds.json"))
    for item in doc["metrics"]:
        if "cidrs" in item["value"]:
            item["value"]["cidrs"] = CIDRS
    return routed("metrics_export", doc)


def _report_with_many_destinations() -> bytes:
    doc = copy.deepcopy(fixture_json("device_report", "long_names_full.json"))
    connections = [{"remote_addr": f"{cidr[:-3]}:443", "local_port": 50000} for cidr in CIDRS]
    doc["metrics"]["tcp_connections"]["established_connections"]["connections"] = connections
    return routed("device_report", doc)


def _violation_with_long_criteria() -> bytes:
    doc = copy.deepcopy(fixture_json("violation", "in_alarm_destination_cidrs_raw.json"))
    doc["behavior"]["criteria"]["value"]["cidrs"] = CIDRS
    doc["metricValue"]["cidrs"] = CIDRS
    return json.dumps(doc).encode()


def _audit_with_many_failed_checks() -> bytes:
    doc = copy.deepcopy(fixture_json("audit_notification", "completed_on_demand_raw.json"))
    detail = {
        **doc["auditDetails"][0],
        "message": "m" * 400,
        "errorCode": "INSUFFICIENT_PERMISSIONS",
    }
    doc["auditDetails"] = [{**detail, "checkRunStatus": "FAILED"} for _ in range(17)]
    return json.dumps(doc).encode()


LARGE: dict[str, Callable[[], bytes]] = {
    "detect-export-with-400-cidrs": _export_with_long_cidrs,
    "device-report-with-400-destinations": _report_with_many_destinations,
    "violation-with-400-cidrs": _violation_with_long_criteria,
    "audit-with-17-failed-checks": _audit_with_many_failed_checks,
}


@pytest.mark.parametrize("name", sorted(LARGE))
def test_small_fields_come_before_the_extraction_cutoff_in_large_events(name: str) -> None:
    events = report_events(transform([LARGE[name]()]))
    assert events
    assert max(len(orjson.dumps(e["event"])) for e in events) > EXTRACTION_CUTOFF  # large indeed
    for event in events:
        assert late_scalars(event["event"]) == [], event["sourcetype"]


@pytest.mark.parametrize(
    "path", fixture_paths(), ids=lambda path: f"{path.parent.name}/{path.stem}"
)
def test_every_sample_event_has_its_scalar_fields_before_its_lists(path: Any) -> None:
    for event in report_events(transform([record_bytes(path)])):
        kinds = [isinstance(value, dict | list) for value in event["event"].values()]
        assert kinds == sorted(kinds), (event["sourcetype"], list(event["event"]))


def test_scalars_first_keeps_each_group_in_order_and_changes_nothing_else() -> None:
    body = {"a": [1], "b": 2, "c": {"d": 3}, "e": "f", "g": None}
    ordered = scalars_first(body)
    assert list(ordered) == ["b", "e", "g", "a", "c"]
    assert ordered == body
    flat = {"x": 1, "y": "z"}
    assert scalars_first(flat) is flat


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


BOTH_PATHS = pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "reference"])


@BOTH_PATHS
def test_a_record_with_one_event_too_deep_for_orjson_still_sends_every_event(
    fast_path: bool,
) -> None:
    """orjson writes 254 levels at most; one datapoint 300 deep makes the whole record take
    the stdlib encoder, which must still frame each event on its own line, in order."""
    message = fixture_json("metrics_export", "cloud_side_metrics.json")
    message["metrics"][4]["site"] = "Pumpstation Süd"  # non-ASCII
    settings = Settings(fast_path=fast_path)
    plain = base64.b64decode(
        transform([routed("metrics_export", message)], settings=settings).outcomes[0].data
    )
    message["metrics"][4]["vendor"] = _deep_list(300)

    report = transform([routed("metrics_export", message)], settings=settings)

    data = base64.b64decode(report.outcomes[0].data)
    assert data.endswith(b"\n")
    lines, plain_lines = data.split(b"\n")[:-1], plain.split(b"\n")[:-1]
    deep_line, plain_line = lines.pop(4), plain_lines.pop(4)
    deep = json.loads(deep_line)
    assert deep["event"].pop("vendor") == _deep_list(300)
    assert deep == json.loads(plain_line)
    assert lines == plain_lines
    # The deep event is spelled as orjson spells the others, compact and UTF-8: only the
    # vendor member is added, and the licence bytes are what they would be.
    assert len(deep_line) == len(plain_line) + len(b',"vendor":') + 2 * 300
    assert "Pumpstation Süd".encode() in deep_line


@BOTH_PATHS
def test_time_fallbacks_are_counted_over_the_whole_batch(fast_path: bool) -> None:
    """The count is every re-stamped event of every record (the TimeFallbacks metric), not
    the last record's."""
    future = fixture("metrics_export", "device_clock_in_the_future.json")
    report = fixture_json("device_report", "metrics_only_minimal.json")
    report["received_at"] = 0
    payloads = [future, routed("device_report", report)]

    batch = transform(payloads, settings=Settings(fast_path=fast_path))

    restamped = [e for e in report_events(batch) if "time_fallback" in e["event"]]
    assert {e["sourcetype"] for e in restamped} == {"aws:iot:defender:metric"}
    assert {e["fields"]["origin"] for e in restamped} == {"detect-export", "device-report"}
    assert batch.time_fallbacks == len(restamped)


def _connected_at(millis: int) -> bytes:
    message = fixture_json("lifecycle", "connected.json")
    return routed("lifecycle", {**message, "timestamp": millis})


SKEW_MS = int(Settings().max_future_skew_seconds * 1000)


@pytest.mark.parametrize(
    ("millis", "fallback"),
    [
        (1_420_070_400_000, None),  # 2015-01-01T00:00:00Z: AWS IoT's first year, kept
        (1_420_070_399_999, "timestamp 1420070399.999 is before 2015; arrival time used"),
        (int(NOW * 1000) + SKEW_MS, None),  # as far ahead as the skew allows, kept
        (
            int(NOW * 1000) + SKEW_MS + 1,
            f"timestamp {NOW + SKEW_MS / 1000 + 0.001} is too far in the future; arrival time used",
        ),
    ],
    ids=["first-plausible", "just-before", "last-plausible", "just-after"],
)
def test_a_timestamp_is_kept_exactly_within_the_plausible_window(
    millis: int, fallback: str | None
) -> None:
    (event,) = report_events(transform([_connected_at(millis)], now=NOW))

    assert event["event"].get("time_fallback") == fallback
    assert event["time"] == (millis / 1000 if fallback is None else ARRIVAL_MS / 1000)


@pytest.mark.parametrize(
    ("when", "says"),
    [
        (None, "message has no timestamp; arrival time used"),
        ("x" * 80, f"unreadable timestamp {'x' * 64!r}; arrival time used"),
    ],
    ids=["missing", "unreadable-and-long"],
)
def test_the_fallback_says_why_quoting_at_most_64_characters(when: object, says: str) -> None:
    """What the operator reads in time_fallback: the reason, and the start of what was
    there, never the whole of a device-chosen string."""
    arrival = ARRIVAL_MS / 1000
    ctx = RecordContext(Invocation(Settings(), NOW, STREAM_ARN), "record-1", arrival, b"")

    ctx.emit(LIFECYCLE, {"eventType": "connected"}, when=when)

    (event,) = ctx.events
    assert event["event"] == {"eventType": "connected", "time_fallback": says}
    assert event["time"] == arrival


def test_an_unparsed_event_is_stamped_with_the_arrival_time_and_is_no_time_fallback() -> None:
    """What could not be decoded has no time of its own: it takes the record's arrival, as a
    fact and not a fallback, so neither its body nor the TimeFallbacks count says otherwise."""
    arrival = ARRIVAL_MS / 1000
    invocation = Invocation(Settings(), NOW, STREAM_ARN)
    ctx = RecordContext(invocation, "record-1", arrival, b"not json")

    ctx.unparsed("invalid_json", "record is not JSON")

    (event,) = ctx.events
    assert event["time"] == arrival
    assert event["event"] == {
        "reason_code": "invalid_json",
        "reason": "record is not JSON",
        "record_id": "record-1",
        "payload": "not json",
        "payload_encoding": "utf-8",
    }
    assert invocation.time_fallbacks == 0


@pytest.mark.parametrize(
    ("controls", "encoding"), [(20, "utf-8"), (21, "base64")], ids=["at-the-limit", "over-it"]
)
def test_an_unparsed_payload_stays_text_up_to_exactly_its_escaping_limit(
    controls: int, encoding: str
) -> None:
    """76 bytes escape to 2 + 56 + 20 x 6 = 178 bytes of JSON string, the most text may grow
    to (1.5 x 76 + 64); one more control character and base64 (4/3) is the smaller."""
    payload = b"a" * (76 - controls) + b"\x01" * controls

    (event,) = report_events(transform([payload]))

    assert event["event"]["payload_encoding"] == encoding
    kept = event["event"]["payload"]
    assert (kept.encode() if encoding == "utf-8" else base64.b64decode(kept)) == payload
