"""Detect metrics export -> aws:iot:defender:metric events."""

from __future__ import annotations

import pytest

from tests.support import (
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


def test_every_value_kind_becomes_one_event_keeping_original_fields() -> None:
    message = fixture_json("metrics_export", "all_value_kinds.json")
    events = transform_fixture("metrics_export", "all_value_kinds.json")

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


def test_duplicate_datapoints_keep_the_highest_version_only() -> None:
    events = transform_fixture("metrics_export", "duplicate_versions.json")

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


def test_duplicates_are_counted() -> None:
    report = transform([fixture("metrics_export", "duplicate_versions.json")])
    assert report.duplicates_removed == 3


def test_a_record_repeated_later_in_the_batch_is_dropped_not_sent_twice() -> None:
    payload = fixture("metrics_export", "with_dimension.json")
    report = transform([payload, payload])

    assert [o.result for o in report.outcomes] == ["Ok", "Dropped"]
    assert report.duplicates_removed == len(
        fixture_json("metrics_export", "with_dimension.json")["metrics"]
    )


def test_a_later_record_with_a_higher_version_is_still_sent() -> None:
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

    report = transform([first, second, stale])

    assert [o.result for o in report.outcomes] == ["Ok", "Ok", "Dropped"]
    assert [e["event"]["version"] for e in report_events(report)] == [1, 2]


def test_timestamps_in_seconds_are_read_as_seconds() -> None:
    message = fixture_json("metrics_export", "timestamps_in_seconds.json")
    events = transform_fixture("metrics_export", "timestamps_in_seconds.json")

    assert [e["time"] for e in events] == [float(m["timestamp"]) for m in message["metrics"]]
    assert all("time_fallback" not in e["event"] for e in events)


def test_dimensioned_datapoints_are_distinct_from_undimensioned_ones() -> None:
    message = fixture_json("metrics_export", "with_dimension.json")
    events = transform_fixture("metrics_export", "with_dimension.json")

    assert len(events) == len(message["metrics"])
    dimensions = [e["event"].get("dimension") for e in events]
    assert {"name": "TopicFilterCommands", "operator": "IN"} in dimensions
    assert None in dimensions


def test_index_comes_from_settings_with_per_sourcetype_override() -> None:
    payloads = [
        fixture("metrics_export", "cloud_side_metrics.json"),
        fixture("lifecycle", "connected.json"),
    ]
    settings = Settings(
        default_index="iot_security", index_overrides={"aws:iot:lifecycle": "iot_ops"}
    )

    events = report_events(transform(payloads, settings=settings))

    indexes = {(e["sourcetype"], e["index"]) for e in events}
    assert indexes == {
        ("aws:iot:defender:metric", "iot_security"),
        ("aws:iot:lifecycle", "iot_ops"),
    }


def test_without_an_index_setting_events_carry_no_index() -> None:
    events = transform_fixture("metrics_export", "cloud_side_metrics.json")
    assert events
    assert all("index" not in e for e in events)


BOTH_PATHS = pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "reference"])


@BOTH_PATHS
def test_a_repeated_datapoint_costs_only_itself_the_rest_of_its_record_is_sent(
    fast_path: bool,
) -> None:
    """Detect re-exports a datapoint already sent, then new ones, in one record: only the
    repeat is dropped; every datapoint after it is sent."""
    earlier = fixture_json("metrics_export", "with_dimension.json")
    fresh = fixture_json("metrics_export", "cloud_side_metrics.json")
    later = {**fresh, "metrics": [earlier["metrics"][0], *fresh["metrics"]]}
    settings = Settings(fast_path=fast_path)

    report = transform(
        [routed("metrics_export", earlier), routed("metrics_export", later)], settings=settings
    )

    sent_later = outcome_events(report.outcomes[1])
    expected = transform_fixture("metrics_export", "cloud_side_metrics.json", settings=settings)
    assert [e["event"] for e in sent_later] == [e["event"] for e in expected]
    assert report.duplicates_removed == 1


@BOTH_PATHS
def test_duplicates_are_counted_over_the_whole_batch(fast_path: bool) -> None:
    """The count adds up every record's duplicates, not only the last record's."""
    payload = fixture("metrics_export", "duplicate_versions.json")
    message = fixture_json("metrics_export", "duplicate_versions.json")

    report = transform([payload, payload], settings=Settings(fast_path=fast_path))

    # 3 repeats within the first record; every datapoint of the second was already sent.
    assert report.duplicates_removed == 3 + len(message["metrics"])
    assert report.decoder_errors == []
