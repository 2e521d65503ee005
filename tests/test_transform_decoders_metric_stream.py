"""CloudWatch metric stream records (AWS/IoT metrics) -> aws:iot:cloudwatch:metric events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import (
    fixture_id,
    fixture_paths,
    record_bytes,
    report_events,
    transform,
    transform_fixture,
)


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
