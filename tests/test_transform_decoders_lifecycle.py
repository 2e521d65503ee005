"""Lifecycle events (connected, disconnected) -> aws:iot:lifecycle events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import (
    STREAM_ARN,
    fixture_id,
    fixture_paths,
    record_bytes,
    report_events,
    transform,
)


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
