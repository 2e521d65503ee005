"""Detect alarms (SNS envelope or raw delivery) -> aws:iot:defender:violation events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    STREAM_ARN,
    fixture_id,
    fixture_paths,
    record_bytes,
    report_events,
    transform,
)

VIOLATIONS = fixture_paths("violation")


def _message(path: Path) -> tuple[dict[str, Any], str]:
    """The alarm body and the source it must be reported under."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    if "TopicArn" in doc:
        return json.loads(doc["Message"]), doc["TopicArn"]
    return doc, STREAM_ARN


def _event(path: Path) -> dict[str, Any]:
    events = report_events(transform([record_bytes(path)]))
    assert len(events) == 1
    return events[0]


@pytest.mark.parametrize("path", VIOLATIONS, ids=fixture_id)
def test_each_alarm_becomes_one_violation_event(path: Path) -> None:
    message, source = _message(path)
    event = _event(path)

    assert event["sourcetype"] == "aws:iot:defender:violation"
    assert event["source"] == source
    assert event["host"] == message["thingName"]
    time = message["violationEventTime"]
    assert event["time"] == pytest.approx(time / 1000 if time > 1e11 else time)
    body = event["event"]
    assert {k: body[k] for k in message} == message, "original fields are kept unchanged"
    assert body["thing"] == message["thingName"]
    assert event["fields"]["thing"] == message["thingName"]
    assert event["fields"]["violation_event_type"] == message["violationEventType"]
    assert event["fields"]["behavior"] == message["behavior"]["name"]


def test_sns_and_raw_delivery_cover_every_event_type() -> None:
    kinds = {_message(path)[0]["violationEventType"] for path in VIOLATIONS}
    assert kinds == {"in-alarm", "alarm-cleared", "alarm-invalidated"}
    assert {path.stem.rsplit("_", 1)[1] for path in VIOLATIONS} == {"sns", "raw"}


def test_ml_behavior_is_marked_with_its_confidence() -> None:
    path = next(p for p in VIOLATIONS if p.stem == "in_alarm_ml_behavior_sns")
    body = _event(path)["event"]
    assert body["behavior_type"] == "ml"
    assert body["confidence_level"] == "HIGH"
    assert body["metric"] == "aws:num-authorization-failures"


def test_statistical_and_static_behaviors_are_told_apart() -> None:
    by_stem = {p.stem: p for p in VIOLATIONS}
    statistical = _event(by_stem["in_alarm_statistical_threshold_sns"])["event"]
    static = _event(by_stem["in_alarm_listening_ports_sns"])["event"]
    assert statistical["behavior_type"] == "statistical"
    assert static["behavior_type"] == "static"
    assert "confidence_level" not in static
    assert static["metricValue"]["ports"] == [22, 23, 443]


def test_alarm_time_in_seconds_is_not_mistaken_for_milliseconds() -> None:
    path = next(p for p in VIOLATIONS if p.stem == "in_alarm_time_in_seconds_raw")
    assert _event(path)["time"] == 1795167900.0
