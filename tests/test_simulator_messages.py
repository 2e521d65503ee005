"""The simulator's message builders make exactly the documented AWS shapes: what each builds
matches the transform's input schema, and the real transform makes of it the same sourcetypes,
event fields and index-time fields as of the matching real-shaped sample (samples/<kind>/)."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest

from iot_defender_splunk.simulator import (
    audit,
    detect,
    device_report,
    inventory,
    iot_logs,
    lifecycle,
    metric_stream,
)
from iot_defender_splunk.simulator.delivery import Message
from iot_defender_splunk.simulator.device_report import Connection
from tests.support import fixture, report_events, transform
from transform.sourcetypes import UNPARSED
from transform.validation import checker

T = 1_795_165_800.0  # 2026-11-20T09:10:00Z, the samples' day
TASK = "1da65ff6040bc44fdffa2b9b6e4a0277"


def _export() -> Message:
    items = [
        detect.export_item("gw-berlin-03", "aws:message-byte-size", T, {"count": 1834}),
        detect.export_item("gw-berlin-03", "aws:num-messages-sent", T, {"count": 412}),
        detect.export_item(
            "gw-berlin-03", "aws:source-ip-address", T, {"cidrs": ["198.51.100.23/32"]}
        ),
    ]
    return detect.export_message(items)


def _report() -> Message:
    document = device_report.report(
        int(T),
        tcp=[22, 23, 80],
        udp=[69],
        connections=[Connection("10.40.0.1:443", 51744), Connection("203.0.113.77:6667", 49201)],
        network={"bytes_in": 2210, "bytes_out": 48213, "packets_in": 31, "packets_out": 40},
        custom={"running_processes": device_report.strings(["dropbear", "telnetd"])},
    )
    return device_report.forwarded(document, "cam-lobby-2", T)


def _alarm() -> Message:
    criteria = {
        "comparisonOperator": "greater-than",
        "value": {"count": 5},
        "durationSeconds": 300,
        "consecutiveDatapointsToAlarm": 1,
        "consecutiveDatapointsToClear": 1,
    }
    violation = detect.violation(
        "gw-berlin-03",
        T,
        event_type="in-alarm",
        behavior="auth-failures-high",
        metric="aws:num-authorization-failures",
        criteria=criteria,
        value={"count": 54},
    )
    return detect.alarm_message(violation, T + 1)


def _audit_notification() -> Message:
    checks = [
        audit.Check("LOGGING_DISABLED_CHECK", "COMPLETED_NON_COMPLIANT", 1, 1),
        audit.Check("DEVICE_CERTIFICATE_SHARED_CHECK", total=14),
    ]
    return audit.notification_message(audit.notification(TASK, T, checks), T + 1200)


def _shared_certificate() -> Message:
    resource = audit.device_certificate("ab" * 32, "pump-0018", "pump-0018-bench")
    return audit.findings_page(
        [audit.finding(TASK, T, "DEVICE_CERTIFICATE_SHARED_CHECK", resource)]
    )


def _one_finding() -> Message:
    resource = audit.device_certificate("ab" * 32, "pump-0018")
    finding = audit.finding(TASK, T, "DEVICE_CERTIFICATE_SHARED_CHECK", resource)
    return audit.finding_record(finding)


def _logging_disabled() -> Message:
    resource = audit.account_settings()
    return audit.findings_page([audit.finding(TASK, T, "LOGGING_DISABLED_CHECK", resource)])


def _logs() -> Message:
    entries = [
        iot_logs.entry(
            T,
            "Connect",
            "Failure",
            client_id="gw-berlin-03",
            source_ip="203.0.113.45",
            reason="AUTHORIZATION_FAILURE",
            details="Authorization Failure",
        )
    ]
    return iot_logs.batch_message(entries, first=T)


def _connected() -> Message:
    return lifecycle.forwarded(lifecycle.presence("gw-berlin-03", T, "connected", "198.51.100.23"))


def _disconnected() -> Message:
    event = lifecycle.presence(
        "gw-berlin-03", T, "disconnected", "198.51.100.23", reason="DUPLICATE_CLIENT_ID"
    )
    return lifecycle.forwarded(event)


def _stream() -> Message:
    points = [
        metric_stream.datapoint("Connect.AuthError", T, 2),
        metric_stream.datapoint("PublishIn.AuthError", T, 1),
    ]
    return metric_stream.lines_message(points)


def _thing() -> Message:
    return inventory.thing_message(
        "gw-berlin-03",
        T,
        thing_type="edge-gateway",
        attributes={"firmware_version": "2.4.1", "segment": "plant-a"},
        groups=["gateways", "plant-a"],
    )


# Builder -> the sample of the same shape (kind folder, file).
CASES: list[tuple[Callable[[], Message], tuple[str, str]]] = [
    (_export, ("metrics_export", "cloud_side_metrics.json")),
    (_report, ("device_report", "telnet_backdoor_opened.json")),
    (_alarm, ("violation", "in_alarm_rule_count_sns.json")),
    (_audit_notification, ("audit_notification", "completed_scheduled_noncompliant_sns.json")),
    (_shared_certificate, ("audit_finding", "device_certificate_shared.json")),
    (_one_finding, ("audit_finding", "device_certificate_shared.json")),
    (_logging_disabled, ("audit_finding", "logging_disabled.json")),
    (_logs, ("iot_logs", "connect_auth_failures.json")),
    (_connected, ("lifecycle", "connected.json")),
    (_disconnected, ("lifecycle", "disconnected_duplicate_client_id.json")),
    (_stream, ("cloudwatch_metric_stream", "auth_errors.ndjson")),
    (_thing, ("thing", "gateway_connected_fleet_index.json")),
]
IDS = [build.__name__.strip("_") for build, _ in CASES]


Checked = tuple[str, str | None, Any]


def _documents(message: Message) -> list[Checked]:
    """(schema, definition, document) of everything in the message the transform validates."""
    data = message.data
    if message.kind == "iot_logs":
        payload = json.loads(gzip.decompress(data))
        logs: list[Checked] = [
            ("iot_log", None, json.loads(e["message"])) for e in payload["logEvents"]
        ]
        return [("cloudwatch_logs", None, payload), *logs]
    if message.kind == "cloudwatch_metric_stream":
        return [("metric_stream", None, json.loads(line)) for line in data.splitlines()]
    document = json.loads(data)
    if "route" in document:
        inner = json.loads(base64.b64decode(document["payload"]))
        return [("rule_envelope", None, document), (message.kind, None, inner)]
    if "TopicArn" in document:
        return [("sns", None, document), (message.kind, None, json.loads(document["Message"]))]
    if "findings" in document:
        return [("audit_finding", "fullPage", document)]
    return [(message.kind, None, document)]


def _shape(events: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (e["sourcetype"], tuple(sorted(e["event"])), tuple(sorted(e["fields"])), "host" in e)
        for e in events
    }


@pytest.mark.parametrize(("build", "sample"), CASES, ids=IDS)
def test_builds_what_the_input_schema_accepts(
    build: Callable[[], Message], sample: tuple[str, str]
) -> None:
    message = build()
    assert message.kind == sample[0]
    for schema, definition, document in _documents(message):
        assert checker(schema, definition)(document) is None, (schema, document)


@pytest.mark.parametrize(("build", "sample"), CASES, ids=IDS)
def test_transforms_like_the_real_shaped_sample(
    build: Callable[[], Message], sample: tuple[str, str]
) -> None:
    built = report_events(transform([build().data]))
    real = report_events(transform([fixture(*sample)]))
    assert not [e for e in built if e["sourcetype"] == UNPARSED]
    assert _shape(built) <= _shape(real)
