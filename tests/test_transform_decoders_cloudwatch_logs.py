"""IoT Core logs (CloudWatch Logs subscription records) -> aws:iot:log events."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.support import (
    by_sourcetype,
    fixture,
    fixture_json,
    report_events,
    transform,
    transform_fixture,
)


@pytest.mark.parametrize(
    "name", ["connect_auth_failures.json", "mixed_broker_events.json", "rules_engine_errors.json"]
)
def test_each_log_entry_becomes_one_iot_log_event(name: str) -> None:
    payload = fixture_json("iot_logs", name)
    events = transform_fixture("iot_logs", name)

    assert len(events) == len(payload["logEvents"])
    for event, log_event in zip(events, payload["logEvents"], strict=True):
        entry = json.loads(log_event["message"])
        assert event["sourcetype"] == "aws:iot:log"
        assert event["source"] == payload["logGroup"]
        assert event["time"] == log_event["timestamp"] / 1000
        assert {k: event["event"][k] for k in entry} == entry
        assert event["event"]["log_event_id"] == log_event["id"]
        assert event["fields"]["event_type"] == entry["eventType"]


def test_auth_failures_name_the_device_when_the_client_id_is_a_thing_name() -> None:
    events = transform_fixture("iot_logs", "connect_auth_failures.json")
    assert all(e["event"]["reason"] == "AUTHORIZATION_FAILURE" for e in events)
    assert {e["host"] for e in events} >= {"gw-berlin-03"}
    assert all(e["fields"]["thing"] == e["host"] == e["event"]["thing"] for e in events)
    assert len({e["event"]["sourceIp"] for e in events if e["host"] == "gw-berlin-03"}) > 1


def test_a_client_id_that_cannot_be_a_thing_name_sets_no_host() -> None:
    payload = fixture_json("iot_logs", "connect_auth_failures.json")
    entry = json.loads(payload["logEvents"][0]["message"])
    entry["clientId"] = "scanner probe; index=main"
    payload["logEvents"] = [{**payload["logEvents"][0], "message": json.dumps(entry)}]

    (event,) = report_events(transform([gzip.compress(json.dumps(payload).encode())]))

    assert "host" not in event
    assert "thing" not in event["fields"]
    assert event["event"]["clientId"] == "scanner probe; index=main"


def test_control_message_is_dropped() -> None:
    report = transform([fixture("iot_logs", "control_message.json")])
    assert report.outcomes[0].result == "Dropped"
    assert report.outcomes[0].data == ""


def test_a_non_json_log_line_is_kept_as_unparsed_text() -> None:
    payload = fixture_json("iot_logs", "non_json_message.json")
    events = transform_fixture("iot_logs", "non_json_message.json")
    unparsed = by_sourcetype(events, "aws:iot:defender:unparsed")
    assert len(unparsed) == 1
    assert unparsed[0]["event"]["payload"] == payload["logEvents"][0]["message"]
    assert unparsed[0]["event"]["reason_code"] == "invalid_json"
