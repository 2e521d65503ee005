"""IoT Core logs (CloudWatch Logs), lifecycle events and CloudWatch metric stream records."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.support import (
    STREAM_ARN,
    by_sourcetype,
    fixture,
    fixture_id,
    fixture_json,
    fixture_paths,
    record_bytes,
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


@pytest.mark.parametrize("path", fixture_paths("lifecycle"), ids=fixture_id)
def test_lifecycle_events(path: Path) -> None:
    message = json.loads(path.read_text(encoding="utf-8"))
    (event,) = report_events(transform([record_bytes(path)]))

    assert event["sourcetype"] == "aws:iot:lifecycle"
    assert event["source"] == STREAM_ARN
    assert event["time"] == message["timestamp"] / 1000
    assert event["host"] == message["clientId"]
    assert event["fields"] == {"event_type": message["eventType"], "thing": message["clientId"]}
    assert {k: event["event"][k] for k in message} == message


@pytest.mark.parametrize("path", fixture_paths("cloudwatch_metric_stream"), ids=fixture_id)
def test_every_metric_stream_line_becomes_one_event(path: Path) -> None:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    events = report_events(transform([record_bytes(path)]))

    assert len(events) == len(lines) > 1
    for event, datapoint in zip(events, lines, strict=True):
        assert event["sourcetype"] == "aws:iot:cloudwatch:metric"
        assert event["event"] == datapoint
        assert event["time"] == datapoint["timestamp"] / 1000
        assert event["source"] == "cloudwatch:metric-stream:iot-defender-splunk-iot-metrics"
        assert event["fields"] == {"namespace": "AWS/IoT", "metric_name": datapoint["metric_name"]}
        assert "host" not in event


def test_auth_error_metrics_arrive_per_protocol_metric() -> None:
    names = {
        e["event"]["metric_name"]
        for e in transform_fixture("cloudwatch_metric_stream", "auth_errors.ndjson")
    }
    assert {"Connect.AuthError", "PublishIn.AuthError", "Subscribe.AuthError"} <= names


def test_inventory_record_becomes_the_thing_document() -> None:
    record = fixture_json("thing", "gateway_connected_fleet_index.json")
    (event,) = transform_fixture("thing", "gateway_connected_fleet_index.json")

    assert event["sourcetype"] == "aws:iot:thing"
    assert event["host"] == "gw-berlin-03"
    assert event["time"] == record["collectedAt"] / 1000
    assert event["event"] == {
        **record["thing"],
        "collectedAt": record["collectedAt"],
        "collector": "fleet-index",
        "thing": "gw-berlin-03",
    }
    assert event["event"]["attributes"]["firmware_version"] == "2.4.1"
    assert event["fields"] == {"thing": "gw-berlin-03", "thing_type": "edge-gateway"}


def test_response_record_keeps_the_act_and_names_the_device() -> None:
    record = fixture_json("response", "quarantine_thing_succeeded.json")
    (event,) = transform_fixture("response", "quarantine_thing_succeeded.json")

    assert event["sourcetype"] == "aws:iot:response"
    assert event["host"] == "cam-lobby-2"
    assert event["time"] == record["completedAt"] / 1000
    assert event["event"] == {**record, "thing": "cam-lobby-2"}
    assert event["fields"] == {
        "action": "quarantine_thing",
        "status": "SUCCEEDED",
        "thing": "cam-lobby-2",
    }


def test_response_without_a_thing_target_has_no_host() -> None:
    (event,) = transform_fixture("response", "deactivate_certificate_failed.json")
    assert "host" not in event
    assert event["event"]["status"] == "FAILED"
    assert event["event"]["error"]["code"]
