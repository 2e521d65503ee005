"""A catalogue of named bad inputs, each run through the handler to one precise outcome.

Every case says what the record must become: Ok with exactly one unparsed event (its reason
code and part of its reason), Ok with good events kept alongside it, Dropped, or
ProcessingFailed. Whatever is reported as unparsed must carry the bytes it could not decode
(UTF-8 text or base64), so nothing is ever lost silently.
"""

from __future__ import annotations

import base64
import copy
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from iot_defender_splunk.simulator.delivery import (
    RULE_ROUTES,
    cloudwatch_gzip,
    gzipped,
    rule_record,
)
from tests.support import (
    ARRIVAL_MS,
    STREAM_ARN,
    firehose_event,
    fixture,
    fixture_json,
    hec_events,
)
from transform import reingest
from transform.sourcetypes import (
    AUDIT_CHECK,
    AUDIT_FINDING,
    AUDIT_TASK,
    CLOUDWATCH_METRIC,
    IOT_LOG,
    LIFECYCLE,
    METRIC,
    UNPARSED,
    VIOLATION,
)

Run = Callable[[dict[str, Any]], dict[str, Any]]
# A record's data: bytes are base64-encoded as Firehose does; a str is put in verbatim.
Payload = bytes | str
ARRIVAL = ARRIVAL_MS / 1000
MIB = 1024 * 1024

# The unparsed payload is the whole record (its raw bytes) unless a case names a part of it.
WHOLE_RECORD = object()


@dataclass(frozen=True)
class Built:
    """The batch for a case; the last record is the one under test, earlier ones are context.

    ``lost`` is what the unparsed event must carry: WHOLE_RECORD, or the piece (bytes/str as
    text, anything else compared as JSON) the decoder isolated.
    """

    payloads: list[Payload]
    lost: object = WHOLE_RECORD


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Built]
    result: str
    reason_code: str | None = None
    reason: str | None = None
    kept: dict[str, int] = field(default_factory=dict)
    check: Callable[[list[dict[str, Any]]], None] | None = None


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _doc(kind: str, name: str) -> Any:
    return copy.deepcopy(fixture_json(kind, name))


def _one(payload: Payload, lost: object = WHOLE_RECORD) -> Built:
    return Built([payload], lost)


def _routed(kind: str, message: bytes, lost: object = WHOLE_RECORD, **added: object) -> Built:
    """A message as its IoT rule forwards it; a whole-record loss is the message itself."""
    record = rule_record(RULE_ROUTES[kind], message, **added)
    return Built([record], message if lost is WHOLE_RECORD else lost)


def _report(doc: dict[str, Any], lost: object = WHOLE_RECORD) -> Built:
    """A device report fixture, its rule-added keys moved into the rule's record."""
    added = {key: doc.pop(key) for key in ("thing_name", "received_at") if key in doc}
    return _routed("device_report", _json(doc), lost, **added)


# --- builders -------------------------------------------------------------------------------

_LIFECYCLE = ("lifecycle", "connected.json")
_VIOLATION_RAW = ("violation", "in_alarm_custom_metric_raw.json")
_VIOLATION_SNS = ("violation", "in_alarm_rule_count_sns.json")
_METRICS = ("metrics_export", "all_value_kinds.json")
_PORTS = ("metrics_export", "listening_ports_with_risky_ports.json")
_CUSTOM = ("device_report", "custom_metrics_only.json")
_REPORT = ("device_report", "telnet_backdoor_opened.json")
_LOGS = ("iot_logs", "mixed_broker_events.json")
_STREAM = ("cloudwatch_metric_stream", "auth_errors.ndjson")
_AUDIT = ("audit_notification", "with_suppressed_counts_raw.json")
_PAGE = ("audit_finding", "findings_page_batch.json")

N_METRICS = len(fixture_json(*_METRICS)["metrics"])
N_PORTS = len(fixture_json(*_PORTS)["metrics"])
N_CUSTOM = len(fixture_json(*_CUSTOM)["custom_metrics"])
N_LOGS = len(fixture_json(*_LOGS)["logEvents"])
N_STREAM = len(fixture(*_STREAM).splitlines())
N_CHECKS = len(fixture_json(*_AUDIT)["auditDetails"])
N_FINDINGS = len(fixture_json(*_PAGE)["findings"])


def lifecycle_with(**changes: Any) -> Built:
    doc = _doc(*_LIFECYCLE)
    doc.update(changes)
    return _routed("lifecycle", _json(doc))


def violation_with(**changes: Any) -> Built:
    doc = _doc(*_VIOLATION_RAW)
    doc.update(changes)
    return _one(_json(doc))


def metrics_item_changed(
    source: tuple[str, str], index: int, change: Callable[[dict[str, Any]], object]
) -> Built:
    """A metrics export whose item ``index`` is replaced by ``change(item)``."""
    doc = _doc(*source)
    doc["metrics"][index] = change(doc["metrics"][index])
    return _routed("metrics_export", _json(doc), doc["metrics"][index])


def _string_value(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "value": "2"}


def _without_thing(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "thing"}


def _port_70000(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "value": {"ports": [*item["value"]["ports"], 70000]}}


def custom_metric_added(name: str, value: object) -> Built:
    doc = _doc(*_CUSTOM)
    doc["custom_metrics"][name] = value
    return _report(doc, {"name": name, "value": value})


def report_with(**changes: Any) -> Built:
    """The device report, with ``changes`` to what the rule adds (``thing_name`` is a topic
    segment, which the publishing client chooses) or to the report itself."""
    doc = _doc(*_REPORT)
    doc.update(changes)
    built = _report(doc)
    return Built(built.payloads)  # an invalid rule record is kept whole


def report_port_70000() -> Built:
    doc = _doc(*_REPORT)
    doc["metrics"]["listening_tcp_ports"]["ports"].append({"port": 70000, "interface": "eth0"})
    return _report(doc)


def through_rule(route: str, kind: str, name: str) -> Built:
    """Another input's sample published on a rule's topic: it may only become the route's kind."""
    message = _json(_doc(kind, name))
    added = (
        {"thing_name": "pump-0017", "received_at": ARRIVAL_MS} if route == "device-report" else {}
    )
    return Built([rule_record(route, message, **added)], message)


def bare(kind: str, name: str) -> Built:
    """A message only a rule should deliver, put into the stream without its rule's record."""
    return _one(_json(_doc(kind, name)))


def envelope(**record: object) -> Built:
    return _one(_json(record))


def log_message_replaced(message: str) -> Built:
    doc = _doc(*_LOGS)
    doc["logEvents"][1]["message"] = message
    return _one(cloudwatch_gzip(doc), message)


def stream_line_replaced(line: bytes) -> Built:
    lines = fixture(*_STREAM).splitlines()
    lines[1] = line
    return _one(b"\n".join(lines) + b"\n", line)


def audit_detail_broken() -> Built:
    doc = _doc(*_AUDIT)
    doc["auditDetails"][1]["checkRunStatus"] = "EXPLODED"
    return _one(_json(doc), doc["auditDetails"][1])


def finding_broken() -> Built:
    doc = _doc(*_PAGE)
    doc["findings"][0]["severity"] = "URGENT"
    return _one(_json(doc), doc["findings"][0])


def duplicate_export() -> Built:
    export = fixture(*_METRICS)
    return Built([export, export])


def tagged(prefix: bytes) -> Built:
    return _one(prefix + fixture(*_LIFECYCLE))


def gzip_truncated() -> Built:
    data = fixture(*_LOGS)
    return _one(data[: len(data) // 2])


def gzip_bad_crc() -> Built:
    data = bytearray(fixture(*_LOGS))
    data[-8] ^= 0xFF  # the CRC-32 of the gzip trailer
    return _one(bytes(data))


def gzip_then_garbage() -> Built:
    return _one(fixture(*_LOGS) + b"\x1f\x8bnot a second gzip member")


def nested(depth: int) -> bytes:
    return b'{"deep": ' + b"[" * depth + b"]" * depth + b"}"


def deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def lifecycle_nested(depth: int) -> Built:
    return lifecycle_with(extra=deep_list(depth))


def big_count() -> Built:
    doc = _doc(*_METRICS)
    doc["metrics"][0]["value"]["count"] = 2**64 + 1
    return _routed("metrics_export", _json(doc))


def sns_with(**changes: Any) -> Built:
    """The SNS-wrapped Detect alarm fixture with envelope fields changed."""
    envelope: dict[str, Any] = _doc(*_VIOLATION_SNS)
    envelope.update(changes)
    return _one(_json(envelope))


def sns_message_with(**changes: Any) -> Built:
    """The SNS-wrapped Detect alarm fixture with fields of the alarm inside changed."""
    message = json.loads(_doc(*_VIOLATION_SNS)["Message"])
    message.update(changes)
    return sns_with(Message=json.dumps(message))


# --- extra checks ---------------------------------------------------------------------------


def time_fallback(sourcetype: str, words: str) -> Callable[[list[dict[str, Any]]], None]:
    def check(events: list[dict[str, Any]]) -> None:
        (event,) = (e for e in events if e["sourcetype"] == sourcetype)
        assert event["time"] == ARRIVAL
        assert words in event["event"]["time_fallback"]

    return check


def big_count_kept(events: list[dict[str, Any]]) -> None:
    # orjson reads integers beyond 64 bits as IEEE doubles: kept, at double precision.
    (event,) = (e for e in events if e["event"]["name"] == "aws:num-authorization-failures")
    assert event["event"]["value"]["count"] == float(2**64 + 1)


def no_events(events: list[dict[str, Any]]) -> None:
    assert events == []


# --- the catalogue --------------------------------------------------------------------------

OK, DROPPED, FAILED = "Ok", "Dropped", "ProcessingFailed"

CASES = [
    Case("invalid-base64-data-string", lambda: _one("not base64 at all!"), OK, "invalid_base64"),
    Case("base64-with-bad-padding", lambda: _one("eyJhIjoxfQ="), OK, "invalid_base64"),
    Case(
        # Firehose never sends this; the handler must not raise on it all the same.
        "non-base64-data-with-lone-surrogate",
        lambda: _one("bad\ud800data"),
        OK,
        "invalid_base64",
    ),
    Case("non-utf8-bytes", lambda: _one(b"\xff\xfe\xfd binary \x80\x81"), OK, "not_utf8"),
    Case(
        "cbor-looking-binary",
        lambda: _one(bytes.fromhex("a2646e616d6563616263657468696e67a1617801")),
        OK,
        "not_utf8",
        "CBOR",
    ),
    Case("empty-data", lambda: _one(b""), OK, "empty", "empty"),
    Case("whitespace-only", lambda: _one(b" \n\t\r\n  "), OK, "empty"),
    Case(
        "truncated-json",
        lambda: _one(_json(_doc(*_LIFECYCLE))[:60]),
        OK,
        "invalid_json",
        "not JSON",
    ),
    Case(
        "utf8-bom-before-json",
        lambda: _one(b"\xef\xbb\xbf" + _json(_doc(*_LIFECYCLE))),
        OK,
        "invalid_json",
        "BOM",
    ),
    Case(
        "nan-literal-in-json",
        lambda: _one(b'{"clientId": "a", "timestamp": NaN, "eventType": "connected"}'),
        OK,
        "invalid_json",
    ),
    Case("json-array", lambda: _one(b'[{"clientId": "a"}]'), OK, "unknown_shape", "JSON array"),
    Case("json-scalar", lambda: _one(b"1795165121906"), OK, "unknown_shape", "not an object"),
    Case("json-string", lambda: _one(b'"hello"'), OK, "unknown_shape", "JSON str"),
    Case("json-null", lambda: _one(b"null"), OK, "unknown_shape", "not an object"),
    Case(
        "unknown-object-shape",
        lambda: _one(b'{"temperature": 21.5, "unit": "C"}'),
        OK,
        "unknown_shape",
        "top-level keys temperature, unit",
    ),
    Case("empty-object", lambda: _one(b"{}"), OK, "unknown_shape", "empty object"),
    Case(
        "metrics-not-a-list",
        lambda: _routed("metrics_export", b'{"version": "1.0", "metrics": {"name": "x"}}'),
        OK,
        "schema_violation",
        "metrics_export",
    ),
    Case(
        "integer-beyond-64-bits",
        big_count,
        OK,
        kept={METRIC: N_METRICS},
        check=big_count_kept,
    ),
    Case(
        "deeply-nested-json-depth-2000",
        lambda: _one(nested(2000)),
        OK,
        "invalid_json",
        "depth",
    ),
    Case(
        # Valid for its schema, so it is kept (docs/events.md: internal_error is a bug). orjson
        # reads 1024 levels but writes only 254.
        "valid-lifecycle-with-300-deep-extra-field",
        lambda: lifecycle_nested(300),
        OK,
        kept={LIFECYCLE: 1},
    ),
    Case(
        "huge-record-output-cannot-fit",
        lambda: _one(_json({"blob": "x" * 5_000_000})),
        FAILED,
        check=no_events,
    ),
    # Detect metrics export
    Case(
        "metrics-export-string-value",
        lambda: metrics_item_changed(_METRICS, 0, _string_value),
        OK,
        "schema_violation",
        "metrics[0]",
        kept={METRIC: N_METRICS - 1},
    ),
    Case(
        "metrics-export-item-missing-thing",
        lambda: metrics_item_changed(_METRICS, 1, _without_thing),
        OK,
        "schema_violation",
        "metrics[1]",
        kept={METRIC: N_METRICS - 1},
    ),
    Case(
        "metrics-export-port-70000",
        lambda: metrics_item_changed(_PORTS, 0, _port_70000),
        OK,
        "schema_violation",
        "metrics[0]",
        kept={METRIC: N_PORTS - 1},
    ),
    Case(
        "metrics-export-item-not-an-object",
        lambda: metrics_item_changed(_METRICS, 2, lambda _: "garbage"),
        OK,
        "schema_violation",
        "metrics[2]",
        kept={METRIC: N_METRICS - 1},
    ),
    Case(
        "duplicate-only-metrics-export-after-identical-one",
        duplicate_export,
        DROPPED,
        check=no_events,
    ),
    # CloudWatch Logs (gzip)
    Case(
        "gzip-bomb-zeros",
        lambda: _one(gzipped(b"\0" * (9 * MIB))),
        OK,
        "decompressed_too_large",
        "inflates beyond",
    ),
    Case(
        "gzip-bomb-json-spaces",
        lambda: _one(gzipped(b"{" + b" " * (9 * MIB) + b"}")),
        OK,
        "decompressed_too_large",
    ),
    Case("truncated-gzip", gzip_truncated, OK, "invalid_gzip", "truncated"),
    Case("gzip-magic-only", lambda: _one(b"\x1f\x8b"), OK, "invalid_gzip"),
    Case("gzip-bad-crc", gzip_bad_crc, OK, "invalid_gzip", "not valid gzip"),
    Case("gzip-trailing-garbage-member", gzip_then_garbage, OK, "invalid_gzip"),
    Case(
        "gzip-of-non-json",
        lambda: _one(gzipped(b"hello, not json"), b"hello, not json"),
        OK,
        "invalid_json",
        "gunzipped payload",
    ),
    Case(
        "gzip-of-json-array",
        lambda: _one(gzipped(b"[1, 2]"), b"[1, 2]"),
        OK,
        "unknown_shape",
        "not an object",
    ),
    Case(
        "gzip-of-non-cloudwatch-object",
        lambda: _one(cloudwatch_gzip({"hello": "world"})),
        OK,
        "schema_violation",
        "cloudwatch_logs",
    ),
    Case(
        "cloudwatch-control-message",
        lambda: _one(fixture("iot_logs", "control_message.json")),
        DROPPED,
        check=no_events,
    ),
    Case(
        "cloudwatch-log-event-message-not-json",
        lambda: log_message_replaced("2026-11-20 09:02:38 plain text, not JSON"),
        OK,
        "invalid_json",
        "not a JSON object",
        kept={IOT_LOG: N_LOGS - 1},
    ),
    Case(
        "cloudwatch-log-entry-without-event-type",
        lambda: log_message_replaced('{"logLevel": "INFO", "clientId": "pump-0017"}'),
        OK,
        "schema_violation",
        "eventType",
        kept={IOT_LOG: N_LOGS - 1},
    ),
    Case(
        "cloudwatch-forged-log-group",
        lambda: _one(cloudwatch_gzip({**_doc(*_LOGS), "logGroup": "index=main"})),
        OK,
        "schema_violation",
        "logGroup",
    ),
    # SNS
    Case(
        "sns-unknown-message",
        lambda: sns_with(Message='{"alarm": "raised", "level": 3}'),
        OK,
        "unknown_message",
        "arn:aws:sns:eu-west-1:123456789012:iot-defender-alerts",
    ),
    Case(
        "sns-message-json-array",
        lambda: sns_with(Message="[1, 2, 3]"),
        OK,
        "unknown_message",
    ),
    Case(
        "sns-message-not-json",
        lambda: sns_with(Message="<html>Service Unavailable</html>"),
        OK,
        "invalid_json",
        "is not JSON",
    ),
    Case(
        "sns-forged-topic-arn",
        lambda: sns_with(TopicArn="index=main"),
        OK,
        "schema_violation",
        "TopicArn",
    ),
    Case(
        "sns-topic-arn-with-trailing-newline",
        lambda: sns_with(TopicArn="arn:aws:sns:eu-west-1:123456789012:iot-defender-alerts\n"),
        OK,
        "schema_violation",
        "TopicArn",
    ),
    Case(
        "sns-violation-with-invalid-event-type",
        lambda: sns_message_with(violationEventType="x"),
        OK,
        "schema_violation",
        "violation:",
    ),
    # Timestamps
    Case(
        "timestamp-far-in-the-future",
        lambda: lifecycle_with(timestamp=4_102_444_800_000),  # 2100-01-01, in ms
        OK,
        kept={LIFECYCLE: 1},
        check=time_fallback(LIFECYCLE, "too far in the future"),
    ),
    Case(
        "timestamp-before-2015",
        lambda: lifecycle_with(timestamp=1_262_304_000_000),  # 2010-01-01, in ms
        OK,
        kept={LIFECYCLE: 1},
        check=time_fallback(LIFECYCLE, "before 2015"),
    ),
    Case(
        "timestamp-unreadable-string",
        lambda: violation_with(violationEventTime="next tuesday"),
        OK,
        kept={VIOLATION: 1},
        check=time_fallback(VIOLATION, "unreadable timestamp 'next tuesday'"),
    ),
    Case(
        "lifecycle-timestamp-as-string",
        lambda: lifecycle_with(timestamp="1795165121906"),
        OK,
        "schema_violation",
        "lifecycle",
    ),
    # Device reports
    Case(
        "device-report-rule-record-without-thing-name",
        lambda: envelope(route="device-report", payload="e30=", received_at=ARRIVAL_MS),
        OK,
        "schema_violation",
        'rule_envelope: document: "thing_name" is a required property',
    ),
    Case(
        "device-report-topic-segment-not-a-thing-name",
        lambda: report_with(thing_name="dev 1; index=main"),
        OK,
        "schema_violation",
        "rule_envelope: thing_name",
    ),
    Case(
        "device-report-thing-name-with-trailing-newline",
        lambda: report_with(thing_name="cam-lobby-2\n"),
        OK,
        "schema_violation",
        "rule_envelope: thing_name",
    ),
    Case(
        "device-report-port-70000",
        report_port_70000,
        OK,
        "schema_violation",
        "port",
    ),
    Case(
        # Splunk matches terms case-insensitively: AWS: would pass for Device Defender's own.
        "custom-metric-with-reserved-aws-name-in-capitals",
        lambda: custom_metric_added("AWS:listening-tcp-ports", [{"number_list": [23]}]),
        OK,
        "schema_violation",
        "'AWS:listening-tcp-ports'",
        kept={METRIC: N_CUSTOM},
    ),
    Case(
        "custom-metric-with-reserved-aws-name",
        lambda: custom_metric_added("aws:listening-tcp-ports", [{"number_list": [23]}]),
        OK,
        "schema_violation",
        "'aws:listening-tcp-ports'",
        kept={METRIC: N_CUSTOM},
    ),
    Case(
        # One bad item costs itself alone, never the record (and never an internal_error).
        "custom-metric-nested-300-deep",
        lambda: custom_metric_added("deep_metric", deep_list(300)),
        OK,
        "schema_violation",
        "'deep_metric'",
        kept={METRIC: N_CUSTOM},
    ),
    Case(
        "custom-metric-with-two-value-kinds",
        lambda: custom_metric_added("fan_speed", [{"number": 1200, "string_list": ["fast"]}]),
        OK,
        "schema_violation",
        "'fan_speed'",
        kept={METRIC: N_CUSTOM},
    ),
    # Other input kinds
    Case(
        # Routing never keys on content: an empty "metrics" list made this an empty export,
        # silently Dropped, when content chose the decoder.
        "lifecycle-event-carrying-an-empty-metrics-list",
        lambda: lifecycle_with(metrics=[]),
        OK,
        kept={LIFECYCLE: 1},
    ),
    Case(
        "lifecycle-unknown-event-type",
        lambda: lifecycle_with(eventType="exploded"),
        OK,
        "schema_violation",
        "eventType",
    ),
    Case(
        "metric-stream-one-corrupt-line",
        lambda: stream_line_replaced(b'{"metric_stream_name": "iot", "namesp'),
        OK,
        "invalid_json",
        "line 2",
        kept={CLOUDWATCH_METRIC: N_STREAM - 1},
    ),
    Case(
        "metric-stream-line-not-an-object",
        lambda: stream_line_replaced(b'["metric_stream_name"]'),
        OK,
        "unknown_shape",
        "line 2 is not an object",
        kept={CLOUDWATCH_METRIC: N_STREAM - 1},
    ),
    Case(
        "audit-notification-one-invalid-detail",
        audit_detail_broken,
        OK,
        "schema_violation",
        "auditDetails[1]",
        kept={AUDIT_TASK: 1, AUDIT_CHECK: N_CHECKS - 1},
    ),
    Case(
        "findings-page-one-bad-item",
        finding_broken,
        OK,
        "schema_violation",
        "findings[0]",
        kept={AUDIT_FINDING: N_FINDINGS - 1},
    ),
    Case(
        "violation-invalid-event-type",
        lambda: violation_with(violationEventType="in-panic"),
        OK,
        "schema_violation",
        "violationEventType",
    ),
    Case(
        "response-schema-version-true",
        lambda: _one(
            _json({**_doc("response", "quarantine_thing_succeeded.json"), "schemaVersion": True})
        ),
        OK,
        "schema_violation",
        "schemaVersion",
    ),
    # Trust by provenance: what a rule forwards becomes its route's kind or nothing
    Case(
        "sns-alarm-published-on-the-detect-export-topic",
        lambda: through_rule("detect-export", *_VIOLATION_SNS),
        OK,
        "schema_violation",
        "metrics_export",
    ),
    Case(
        "raw-violation-published-on-the-detect-export-topic",
        lambda: through_rule("detect-export", *_VIOLATION_RAW),
        OK,
        "schema_violation",
        "metrics_export",
    ),
    Case(
        "thing-record-published-as-a-device-report",
        lambda: through_rule("device-report", "thing", "gateway_connected_fleet_index.json"),
        OK,
        "schema_violation",
        "device_report",
    ),
    Case(
        "response-record-published-as-a-device-report",
        lambda: through_rule("device-report", "response", "quarantine_thing_succeeded.json"),
        OK,
        "schema_violation",
        "device_report",
    ),
    Case(
        "detect-export-published-on-the-lifecycle-route",
        lambda: through_rule("lifecycle", *_METRICS),
        OK,
        "schema_violation",
        "lifecycle",
    ),
    Case(
        "bare-detect-export-is-not-trusted",
        lambda: bare(*_METRICS),
        OK,
        "unrouted",
        "a Detect metrics export",
    ),
    Case(
        "bare-device-report-is-not-trusted",
        lambda: bare(*_REPORT),
        OK,
        "unrouted",
        "a device metrics report",
    ),
    Case(
        "bare-lifecycle-event-is-not-trusted",
        lambda: bare(*_LIFECYCLE),
        OK,
        "unrouted",
        "a lifecycle event",
    ),
    Case(
        "rule-record-with-an-unknown-route",
        lambda: envelope(route="violation", payload="e30="),
        OK,
        "schema_violation",
        "rule_envelope: route",
    ),
    Case(
        "rule-record-with-an-extra-key",
        lambda: envelope(route="detect-export", payload="e30=", TopicArn="arn:aws:sns:x"),
        OK,
        "schema_violation",
        "rule_envelope",
    ),
    Case(
        "lifecycle-rule-record-claiming-a-thing",
        lambda: envelope(route="lifecycle", payload="e30=", thing_name="pump-0017"),
        OK,
        "schema_violation",
        "rule_envelope",
    ),
    Case(
        "rule-record-payload-not-base64",
        lambda: Built([_json({"route": "detect-export", "payload": "not base64!"})], "not base64!"),
        OK,
        "invalid_base64",
        "metrics_export: the rule's payload is not valid base64",
    ),
    Case(
        "cbor-device-report-through-the-rule",
        lambda: _routed(
            "device_report",
            bytes.fromhex("a2636865648201636d6574a0"),
            thing_name="pump-0017",
            received_at=ARRIVAL_MS,
        ),
        OK,
        "not_utf8",
        "device_report: record is neither gzip nor UTF-8",
    ),
    # Re-ingest tags
    Case(
        "reingest-tag-with-non-digit-count",
        lambda: tagged(b"\x1eiot-defender-splunk:reingest:x\n"),
        OK,
        "invalid_json",
    ),
    Case(
        "reingest-tag-with-four-digit-count",
        lambda: tagged(b"\x1eiot-defender-splunk:reingest:1000\n"),
        OK,
        "invalid_json",
    ),
    Case(
        "reingest-tag-without-newline",
        lambda: tagged(b"\x1eiot-defender-splunk:reingest:1"),
        OK,
        "invalid_json",
    ),
    Case(
        "well-formed-reingest-tag-is-stripped",
        lambda: _one(reingest.tag(fixture(*_LIFECYCLE), 2)),
        OK,
        kept={LIFECYCLE: 1},
    ),
]


def _lost_text(lost: object, payload: Payload) -> tuple[object, str]:
    """What the unparsed event's payload must be, and its encoding."""
    raw = payload if lost is WHOLE_RECORD else lost
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: kept as the code units, in base64
            raw = raw.encode("utf-8", "surrogatepass")
        else:
            return raw, "utf-8"
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii"), "base64"
    return raw, "json"


def _event_for(payloads: list[Payload]) -> dict[str, Any]:
    event = firehose_event([p if isinstance(p, bytes) else b"" for p in payloads])
    for record, payload in zip(event["records"], payloads, strict=True):
        if isinstance(payload, str):
            record["data"] = payload
    return event


def test_catalogue_is_large_and_names_are_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) >= 30
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case: Case, run_handler: Run) -> None:
    built = case.build()
    event = _event_for(built.payloads)
    response = run_handler(event)

    records = response["records"]
    assert [r["recordId"] for r in records] == [r["recordId"] for r in event["records"]]
    assert len(json.dumps(response)) <= 6_000_000
    for context in records[:-1]:
        assert context["result"] == OK
    record = records[-1]
    assert record["result"] == case.result, record
    events = hec_events(record)
    if case.result != OK:
        assert not record.get("data")

    unparsed = [e for e in events if e["sourcetype"] == UNPARSED]
    good = Counter(e["sourcetype"] for e in events if e["sourcetype"] != UNPARSED)
    assert dict(good) == case.kept
    if case.reason_code is None:
        assert unparsed == []
    else:
        (only,) = unparsed
        body = only["event"]
        assert body["reason_code"] == case.reason_code
        assert only["fields"]["reason_code"] == case.reason_code
        assert body["record_id"] == record["recordId"]
        if case.reason is not None:
            assert case.reason in body["reason"]
        assert only["source"] == STREAM_ARN
        assert only["time"] == ARRIVAL
        expected, encoding = _lost_text(built.lost, built.payloads[-1])
        if encoding == "json":
            assert body["payload_encoding"] == "utf-8"
            assert json.loads(body["payload"]) == expected
        else:
            assert body["payload_encoding"] == encoding
            assert body["payload"] == expected
    for hec_event in events:
        assert "index" not in hec_event
    if case.check is not None:
        case.check(events)
