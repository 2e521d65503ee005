"""Detect metrics export -> aws:iot:defender:metric events."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from tests.support import (
    NOW,
    STREAM_ARN,
    fixture,
    fixture_json,
    outcome_events,
    report_events,
    routed,
    transform,
    transform_fixture,
)
from transform.config import Settings
from transform.context import Invocation, RecordContext
from transform.decoders.metrics_export import decode


@pytest.fixture(params=[True, False], ids=["fast", "reference"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Every test on both paths: the fast one Detect's exports take, and the reference decoder
    it must agree with."""
    return Settings(fast_path=request.param)


def test_every_value_kind_becomes_one_event_keeping_original_fields(settings: Settings) -> None:
    message = fixture_json("metrics_export", "all_value_kinds.json")
    events = transform_fixture("metrics_export", "all_value_kinds.json", settings=settings)

    assert len(events) == len(message["metrics"])
    for event, item in zip(events, message["metrics"], strict=True):
        assert event["sourcetype"] == "aws:iot:defender:metric"
        assert event["host"] == item["thing"]
        assert event["source"] == STREAM_ARN
        assert event["time"] == item["timestamp"] / 1000
        assert event["fields"] == {
            "thing": item["thing"],
            "metric": item["name"],
            "origin": "detect-export",
        }
        # The body is the datapoint as Detect sent it but for its timestamp, which _time holds.
        assert event["event"] == {k: v for k, v in item.items() if k != "timestamp"}
        assert "origin" not in event["event"]
    kinds = {key for event in events for key in event["event"]["value"]}
    assert kinds == {"count", "cidrs", "ports", "number", "numbers", "strings"}


def test_duplicate_datapoints_keep_the_highest_version_only(settings: Settings) -> None:
    events = transform_fixture("metrics_export", "duplicate_versions.json", settings=settings)

    kept = {
        (e["event"]["thing"], e["event"]["name"], int(e["time"] * 1000)): e["event"] for e in events
    }
    assert len(kept) == len(events) == 5
    assert kept["pump-0017", "aws:all-bytes-out", 1795165961000]["version"] == 3
    assert kept["pump-0017", "aws:all-bytes-out", 1795165961000]["value"] == {"count": 18502}
    cidrs = kept["pump-0018", "aws:destination-ip-addresses", 1795165975000]
    assert cidrs["version"] == 2
    assert cidrs["value"]["cidrs"] == ["10.20.0.1/32", "198.51.100.40/32"]
    # A later timestamp is a new datapoint, not a duplicate.
    assert kept["pump-0017", "aws:all-bytes-out", 1795166261000]["value"] == {"count": 17960}


def test_duplicates_are_counted(settings: Settings) -> None:
    report = transform([fixture("metrics_export", "duplicate_versions.json")], settings=settings)
    assert report.duplicates_removed == 3


def test_a_record_repeated_later_in_the_batch_is_dropped_not_sent_twice(settings: Settings) -> None:
    payload = fixture("metrics_export", "with_dimension.json")
    report = transform([payload, payload], settings=settings)

    assert [o.result for o in report.outcomes] == ["Ok", "Dropped"]
    assert report.duplicates_removed == len(
        fixture_json("metrics_export", "with_dimension.json")["metrics"]
    )


def test_a_later_record_with_a_higher_version_is_still_sent(settings: Settings) -> None:
    item = {
        "name": "aws:all-bytes-out",
        "thing": "pump-0017",
        "value": {"count": 100},
        "version": 1,
        "timestamp": 1795165961000,
    }
    first = routed("metrics_export", {"version": "1.0", "metrics": [item]})
    second = routed("metrics_export", {"version": "1.0", "metrics": [{**item, "version": 2}]})
    stale = routed("metrics_export", {"version": "1.0", "metrics": [{**item, "version": 1}]})

    report = transform([first, second, stale], settings=settings)

    assert [o.result for o in report.outcomes] == ["Ok", "Ok", "Dropped"]
    assert [e["event"]["version"] for e in report_events(report)] == [1, 2]


def test_timestamps_in_seconds_are_read_as_seconds(settings: Settings) -> None:
    message = fixture_json("metrics_export", "timestamps_in_seconds.json")
    events = transform_fixture("metrics_export", "timestamps_in_seconds.json", settings=settings)

    assert [e["time"] for e in events] == [float(m["timestamp"]) for m in message["metrics"]]
    assert all("time_fallback" not in e["event"] for e in events)


def test_dimensioned_datapoints_are_distinct_from_undimensioned_ones(settings: Settings) -> None:
    message = fixture_json("metrics_export", "with_dimension.json")
    events = transform_fixture("metrics_export", "with_dimension.json", settings=settings)

    assert len(events) == len(message["metrics"])
    dimensions = [e["event"].get("dimension") for e in events]
    assert {"name": "TopicFilterCommands", "operator": "IN"} in dimensions
    assert None in dimensions


def test_index_comes_from_settings_with_per_sourcetype_override(settings: Settings) -> None:
    payloads = [
        fixture("metrics_export", "cloud_side_metrics.json"),
        fixture("lifecycle", "connected.json"),
    ]
    indexed = dataclasses.replace(
        settings, default_index="iot_security", index_overrides={"aws:iot:lifecycle": "iot_ops"}
    )

    events = report_events(transform(payloads, settings=indexed))

    indexes = {(e["sourcetype"], e["index"]) for e in events}
    assert indexes == {
        ("aws:iot:defender:metric", "iot_security"),
        ("aws:iot:lifecycle", "iot_ops"),
    }


def test_without_an_index_setting_events_carry_no_index(settings: Settings) -> None:
    events = transform_fixture("metrics_export", "cloud_side_metrics.json", settings=settings)
    assert events
    assert all("index" not in e for e in events)


def test_a_repeated_datapoint_costs_only_itself_the_rest_of_its_record_is_sent(
    settings: Settings,
) -> None:
    """Detect re-exports a datapoint already sent, then new ones, in one record: only the
    repeat is dropped; every datapoint after it is sent."""
    earlier = fixture_json("metrics_export", "with_dimension.json")
    fresh = fixture_json("metrics_export", "cloud_side_metrics.json")
    later = {**fresh, "metrics": [earlier["metrics"][0], *fresh["metrics"]]}

    report = transform(
        [routed("metrics_export", earlier), routed("metrics_export", later)], settings=settings
    )

    sent_later = outcome_events(report.outcomes[1])
    expected = transform_fixture("metrics_export", "cloud_side_metrics.json", settings=settings)
    assert [e["event"] for e in sent_later] == [e["event"] for e in expected]
    assert report.duplicates_removed == 1


def test_duplicates_are_counted_over_the_whole_batch(settings: Settings) -> None:
    """The count adds up every record's duplicates, not only the last record's."""
    payload = fixture("metrics_export", "duplicate_versions.json")
    message = fixture_json("metrics_export", "duplicate_versions.json")

    report = transform([payload, payload], settings=settings)

    # 3 repeats within the first record; every datapoint of the second was already sent.
    assert report.duplicates_removed == 3 + len(message["metrics"])
    assert report.decoder_errors == []


def _bytes_out(**fields: object) -> dict[str, object]:
    """One datapoint of Detect's export: pump-0017's bytes out at one time."""
    item = {"name": "aws:all-bytes-out", "thing": "pump-0017", "timestamp": 1795165961000}
    return {**item, "value": {"count": 18231}, **fields}


def test_a_datapoint_without_a_version_is_version_0(settings: Settings) -> None:
    """version is optional in the export: a copy without one is the lowest, so a versioned
    copy in the same record replaces it, and a repeat in a later record is dropped."""
    first = [_bytes_out(value={"count": 1}), _bytes_out(value={"count": 2}, version=1)]
    # Larger, so transformed after the first (smallest first): its copy is the repeat.
    later = [
        _bytes_out(value={"count": 3}),
        _bytes_out(name="aws:all-packets-out", value={"count": 9}),
        _bytes_out(name="aws:all-packets-in", value={"count": 10}),
    ]
    records = [
        routed("metrics_export", {"version": "1.0", "metrics": first}),
        routed("metrics_export", {"version": "1.0", "metrics": later}),
    ]

    report = transform(records, settings=settings)

    values = [e["event"]["value"]["count"] for e in report_events(report)]
    assert values == [2, 9, 10]
    assert report.duplicates_removed == 2
    assert report.decoder_errors == []


def test_of_two_copies_with_one_version_in_a_record_the_first_is_sent(settings: Settings) -> None:
    """Only a higher version replaces what a record already holds."""
    copies = [_bytes_out(value={"count": 1}, version=2), _bytes_out(value={"count": 2}, version=2)]
    record = routed("metrics_export", {"version": "1.0", "metrics": copies})

    report = transform([record], settings=settings)

    assert [e["event"]["value"] for e in report_events(report)] == [{"count": 1}]
    assert report.duplicates_removed == 1


def test_datapoints_of_one_metric_at_different_times_are_all_sent(settings: Settings) -> None:
    """Each timestamp is its own datapoint, however many a record holds for one metric; the
    same time in seconds and in milliseconds is one."""
    times = [1795165961000, 1795166261000, 1795166561, 1795166561000]
    items = [_bytes_out(timestamp=t, value={"count": n}) for n, t in enumerate(times)]
    record = routed("metrics_export", {"version": "1.0", "metrics": items})

    events = report_events(transform([record], settings=settings))

    assert [(e["time"], e["event"]["value"]["count"]) for e in events] == [
        (1795165961.0, 0),
        (1795166261.0, 1),
        (1795166561.0, 2),
    ]


def test_a_datapoint_cannot_claim_another_origin(settings: Settings) -> None:
    """The index-time origin says where an event came from; a datapoint's own "origin" would
    contradict it at search time, so the body drops it."""
    item = _bytes_out(version=1, origin="device-report")
    record = routed("metrics_export", {"version": "1.0", "metrics": [item]})

    (event,) = report_events(transform([record], settings=settings))

    assert event["fields"]["origin"] == "detect-export"
    assert "origin" not in event["event"]


def test_a_source_given_by_the_caller_is_every_events_source() -> None:
    """The decoder contract every kind keeps: a wrapper that knows where the message came from
    (an SNS topic) names the source; without one, the stream's ARN is the source."""
    doc = fixture_json("metrics_export", "with_dimension.json")
    topic = "arn:aws:sns:eu-west-1:123456789012:detect-exports"
    given, default = (
        RecordContext(Invocation(Settings(), NOW, STREAM_ARN), "record-1", NOW, b"")
        for _ in range(2)
    )

    decode(copy.deepcopy(doc), given, source=topic)
    decode(copy.deepcopy(doc), default)

    assert [e["source"] for e in given.events] == [topic] * len(doc["metrics"])
    assert [e["source"] for e in default.events] == [STREAM_ARN] * len(doc["metrics"])
