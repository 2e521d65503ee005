"""Test datasets for the detections, produced by the real transform Lambda.

Every dataset in `detections/data/` is a small story told as the AWS messages that would reach
Firehose: device-side metrics reports, Detect metrics exports, Detect alarms via SNS, audit
notifications and findings pages, IoT Core log batches (gzipped CloudWatch Logs payloads),
lifecycle events, CloudWatch metric-stream lines, inventory and response records. Those
messages go through `transform.handler.lambda_handler`, and the HEC events it returns are the
dataset. Nothing is written by hand, so a change to the transform that would break a detection
shows up as a dataset diff (the tests regenerate every dataset and compare).

Timestamps are laid out relative to `REFERENCE_TIME`: days of baseline behaviour, then the
incident in the last hour. Some show what must *not* alert (a misfire a detection once had),
so their expected result count is 0. A Splunk replay shifts each dataset so that
`REFERENCE_TIME` is "now" and then runs the detection with its scheduled time range; `tests:`
in each YAML gives the result expected then (`expected.fields`: values that some result row
has). Detections that read a lookup built by a Baseline report expect that report to have run
over the dataset first, as their test names say; a test may also set macros of its own
(`macros:`), as a site would.

`python -m appbuild.detection_data` rewrites every `detections/data/*.ndjson`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iot_defender_splunk.local_lambda import LocalLambdaContext
from iot_defender_splunk.simulator.delivery import STREAM_ARN, firehose_event, rule_record
from respond.actions import ERROR, NOOP, OK, REFUSED, Target
from respond.records import response_records
from respond.requests import parse_request
from respond.things import Certificate, ThingState
from transform.config import load_settings

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "detections" / "data"

# 2026-11-23T02:00:00Z. The handler distrusts only timestamps more than a day ahead of its wall
# clock, so on any machine whose clock is past 2026-11-22 the datasets come out the same.
REFERENCE_TIME = 1_795_399_200
INDEX = "iot_security"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
ALERTS_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:iot-defender-alerts"
AUDIT_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:iot-defender-audit"
METRIC_STREAM = "iot-defender-splunk-iot-metrics"
LOG_GROUP = "AWSIotLogsV2"
RECORDS_PER_INVOCATION = 100

MINUTE = 60
HOUR = 3600
DAY = 86_400

# The IP an IoT endpoint would have (documentation range, as in every sample of the project).
IOT_ENDPOINT = "198.51.100.40"


def ago(seconds: float) -> float:
    """A moment `seconds` before the reference time."""
    return REFERENCE_TIME - seconds


def epoch_ms(t: float) -> int:
    return round(t * 1000)


def stable_id(*parts: object) -> str:
    """A deterministic identifier (32 hex digits), so datasets are byte-for-byte reproducible."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def stable_uuid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(map(str, parts))))


def jitter(*parts: object, spread: float) -> float:
    """A deterministic value in [-spread, +spread], the same on every Python version."""
    fraction = int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)
    return (fraction / 0xFFFFFFFF * 2 - 1) * spread


def to_bytes(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


# --- AWS-shaped input messages ------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    remote_addr: str
    local_port: int
    local_interface: str = "eth0"


def device_report(
    thing: str,
    t: float,
    *,
    tcp: list[int] | None = None,
    udp: list[int] | None = None,
    connections: list[Connection] | None = None,
    network: dict[str, int] | None = None,
    custom: dict[str, float] | None = None,
    interfaces: dict[int, str] | None = None,
) -> bytes:
    """A device-side metrics report as the device-report rule forwards it (thing and time added).

    Ports listen on eth0 unless `interfaces` names another for a port."""
    metrics: dict[str, Any] = {}
    where = interfaces or {}
    if tcp is not None:
        metrics["listening_tcp_ports"] = {
            "ports": [{"port": port, "interface": where.get(port, "eth0")} for port in tcp],
            "total": len(tcp),
        }
    if udp is not None:
        metrics["listening_udp_ports"] = {
            "ports": [{"port": port, "interface": where.get(port, "eth0")} for port in udp],
            "total": len(udp),
        }
    if connections is not None:
        metrics["tcp_connections"] = {
            "established_connections": {
                "connections": [
                    {
                        "remote_addr": c.remote_addr,
                        "local_port": c.local_port,
                        "local_interface": c.local_interface,
                    }
                    for c in connections
                ],
                "total": len(connections),
            }
        }
    if network is not None:
        metrics["network_stats"] = network
    report: dict[str, Any] = {"header": {"report_id": int(t), "version": "1.0"}}
    if metrics:
        report["metrics"] = metrics
    if custom:
        report["custom_metrics"] = {name: [{"number": value}] for name, value in custom.items()}
    return rule_record("device-report", to_bytes(report), thing_name=thing, received_at=epoch_ms(t))


def export_item(thing: str, name: str, t: float, value: dict[str, Any]) -> dict[str, Any]:
    """One datapoint of a Detect metrics export (Detect stamps datapoints in epoch ms)."""
    return {"name": name, "thing": thing, "value": value, "version": 1, "timestamp": epoch_ms(t)}


def detect_export(items: list[dict[str, Any]]) -> bytes:
    """A Detect metrics export as the export rule forwards it."""
    return rule_record("detect-export", to_bytes({"version": "1.0", "metrics": items}))


def sns_envelope(topic: str, message: dict[str, Any], t: float) -> bytes:
    """The SNS notification Firehose receives from a subscribed topic."""
    stamp = f"{_iso(t)[:-1]}.000Z"
    return to_bytes(
        {
            "Type": "Notification",
            "MessageId": stable_uuid(topic, stamp, message),
            "TopicArn": topic,
            "Message": json.dumps(message, separators=(",", ":")),
            "Timestamp": stamp,
            "SignatureVersion": "1",
            "Signature": base64.b64encode(hashlib.sha256(stamp.encode()).digest()).decode(),
            "SigningCertURL": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService.pem",
            "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe",
        }
    )


def violation(
    thing: str,
    t: float,
    *,
    event_type: str,
    behavior: str,
    metric: str,
    criteria: dict[str, Any],
    value: dict[str, Any] | None = None,
    profile: str = "fleet-baseline",
    confidence: str | None = None,
    violation_id: str | None = None,
) -> dict[str, Any]:
    """A Device Defender Detect `ViolationEvent` message."""
    message: dict[str, Any] = {
        "violationId": violation_id or stable_id(thing, behavior, t),
        "thingName": thing,
        "securityProfileName": profile,
        "behavior": {
            "name": behavior,
            "metric": metric,
            "criteria": criteria,
            "suppressAlerts": False,
        },
    }
    if value is not None:
        message["metricValue"] = value
    message["violationEventType"] = event_type
    message["violationEventTime"] = epoch_ms(t)
    if confidence:
        message["violationEventAdditionalInfo"] = {"confidenceLevel": confidence}
    return message


@dataclass(frozen=True)
class Check:
    """One check's result in an audit notification (an `auditDetails` item)."""

    name: str
    status: str = "COMPLETED_COMPLIANT"
    noncompliant: int = 0
    total: int = 1
    error_code: str | None = None

    def detail(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "checkName": self.name,
            "checkRunStatus": self.status,
            "nonCompliantResourcesCount": self.noncompliant,
            "totalResourcesCount": self.total,
        }
        if self.error_code:
            item["errorCode"] = self.error_code
            item["message"] = "The audit role is not authorized to read the resources."
        return item


def audit_notification(
    task_id: str,
    t: float,
    checks: list[Check],
    *,
    status: str = "COMPLETED",
    task_type: str = "SCHEDULED_AUDIT_TASK",
    audit_name: str | None = "daily-fleet-audit",
) -> dict[str, Any]:
    """An audit completion notification, as Device Defender publishes it to SNS."""
    statuses = [check.status for check in checks]
    message: dict[str, Any] = {
        "accountId": ACCOUNT,
        "taskId": task_id,
        "taskStatus": status,
        "taskType": task_type,
    }
    if audit_name:
        message["scheduledAuditName"] = audit_name
    message |= {
        "failedChecksCount": statuses.count("FAILED"),
        "canceledChecksCount": statuses.count("CANCELED"),
        "nonCompliantChecksCount": statuses.count("COMPLETED_NON_COMPLIANT"),
        "compliantChecksCount": statuses.count("COMPLETED_COMPLIANT"),
        "totalChecksCount": len(checks),
        "taskStartTime": epoch_ms(t),
        "auditDetails": [check.detail() for check in checks],
    }
    return message


@dataclass(frozen=True)
class Resource:
    """A non-compliant resource of an audit finding."""

    resource_type: str
    identifier: dict[str, Any]
    related_clients: tuple[str, ...] = ()


# A finding as the datasets describe it: the check that found it and the resource.
Finding = tuple[str, Resource]


# AWS's severity of each finding's check (the transform keeps the finding's own value).
FINDING_SEVERITY = {
    "DEVICE_CERTIFICATE_SHARED_CHECK": "CRITICAL",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": "CRITICAL",
    "CONFLICTING_CLIENT_IDS_CHECK": "HIGH",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK": "MEDIUM",
    "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK": "MEDIUM",
    "LOGGING_DISABLED_CHECK": "LOW",
}
# Reason code and text for each check's findings, as AWS words them.
FINDING_REASON = {
    "DEVICE_CERTIFICATE_SHARED_CHECK": (
        "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES",
        "Certificate shared by one or more devices.",
    ),
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": (
        "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
        "Policy allows broad access to IoT data plane actions: [iot:Connect, iot:Publish].",
    ),
    "CONFLICTING_CLIENT_IDS_CHECK": (
        "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS",
        "Multiple devices are connecting with the same client ID.",
    ),
    "DEVICE_CERTIFICATE_EXPIRING_CHECK": (
        "CERTIFICATE_APPROACHING_EXPIRATION",
        "Certificate is expiring within 30 days.",
    ),
    "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK": (
        "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT",
        "Policy contains MQTT wildcards in a Deny statement that may not block the intended "
        "topics.",
    ),
    "LOGGING_DISABLED_CHECK": ("LOGGING_DISABLED", "Logging is disabled for the account."),
}


def finding(
    task_id: str, task_start: float, check: str, resource: Resource, *, suppressed: bool = False
) -> dict[str, Any]:
    """One ListAuditFindings item (times in epoch seconds, as the API returns them)."""
    code, reason = FINDING_REASON[check]
    item: dict[str, Any] = {
        "findingId": stable_uuid(task_id, check, resource.identifier),
        "taskId": task_id,
        "checkName": check,
        "taskStartTime": round(task_start, 3),
        "findingTime": round(task_start + 2.5, 3),
        "severity": FINDING_SEVERITY[check],
        "nonCompliantResource": {
            "resourceType": resource.resource_type,
            "resourceIdentifier": resource.identifier,
        },
    }
    if resource.related_clients:
        item["relatedResources"] = [
            {"resourceType": "CLIENT_ID", "resourceIdentifier": {"clientId": client}}
            for client in resource.related_clients
        ]
    item |= {
        "reasonForNonCompliance": reason,
        "reasonForNonComplianceCode": code,
        "isSuppressed": suppressed,
    }
    return item


def findings_page(findings: list[dict[str, Any]]) -> bytes:
    """What the audit-findings collector puts into Firehose: one ListAuditFindings page."""
    return to_bytes({"findings": findings})


LogEntry = tuple[float, dict[str, Any]]


def iot_log(
    t: float,
    event_type: str,
    status: str,
    *,
    client_id: str | None = None,
    source_ip: str | None = None,
    reason: str | None = None,
    details: str | None = None,
    topic: str | None = None,
    certificate: str | None = None,
) -> LogEntry:
    """One AWS IoT logs v2 entry and the CloudWatch timestamp it is logged at.

    The principal is the client's own certificate, unless `certificate` names another (a
    certificate used with client ids not its own)."""
    entry: dict[str, Any] = {
        "timestamp": _iso(t, sep=" ", millis=True),
        "logLevel": "ERROR" if status == "Failure" else "INFO",
        "traceId": stable_uuid("trace", t, event_type, client_id, topic),
        "accountId": ACCOUNT,
        "status": status,
        "eventType": event_type,
        "protocol": "MQTT",
    }
    if client_id:
        entry["clientId"] = client_id
        owner = certificate or client_id
        entry["principalId"] = hashlib.sha256(f"cert:{owner}".encode()).hexdigest()
    if topic:
        entry["topicName"] = topic
    if source_ip:
        entry["sourceIp"] = source_ip
        entry["sourcePort"] = 30000 + int(jitter("port", t, spread=20000) + 20000)
    if reason:
        entry["reason"] = reason
        entry["details"] = details or reason.replace("_", " ").title()
    return t, entry


def cloudwatch_logs(entries: list[LogEntry], *, raw: tuple[str, ...] = ()) -> bytes:
    """A gzipped CloudWatch Logs subscription payload of IoT log entries (and raw lines)."""
    first = min([t for t, _ in entries] or [REFERENCE_TIME])
    events = [
        {
            "id": str(int(stable_id("log", t, entry)[:18], 16)),
            "timestamp": epoch_ms(t),
            "message": json.dumps(entry),
        }
        for t, entry in entries
    ]
    events += [
        {
            "id": str(int(stable_id("raw", line)[:18], 16)),
            "timestamp": epoch_ms(first),
            "message": line,
        }
        for line in raw
    ]
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": LOG_GROUP,
        "logStream": stable_uuid("stream", first),
        "subscriptionFilters": ["iot-defender-splunk-logs"],
        "logEvents": events,
    }
    return gzip.compress(json.dumps(payload).encode(), mtime=0)


def lifecycle(
    client_id: str,
    t: float,
    event_type: str,
    ip: str,
    *,
    reason: str | None = None,
    session: int = 0,
) -> bytes:
    """A presence event from `$aws/events/presence/...`, forwarded by an IoT rule."""
    message: dict[str, Any] = {
        "clientId": client_id,
        "timestamp": epoch_ms(t),
        "eventType": event_type,
    }
    if event_type == "disconnected":
        message["clientInitiatedDisconnect"] = reason is None
    message |= {
        "sessionIdentifier": stable_uuid("session", client_id, session),
        "principalIdentifier": hashlib.sha256(f"cert:{client_id}".encode()).hexdigest(),
        "ipAddress": ip,
    }
    if reason:
        message["disconnectReason"] = reason
    message["versionNumber"] = session
    return rule_record("lifecycle", to_bytes(message))


def metric_datapoint(
    metric_name: str, t: float, total: float, *, dimensions: dict[str, str] | None = None
) -> dict[str, Any]:
    """One CloudWatch metric-stream datapoint (JSON output format), AWS/IoT namespace."""
    return {
        "metric_stream_name": METRIC_STREAM,
        "account_id": ACCOUNT,
        "region": REGION,
        "namespace": "AWS/IoT",
        "metric_name": metric_name,
        "dimensions": dimensions or {"Protocol": "MQTT"},
        "timestamp": epoch_ms(t),
        "value": {"max": 1.0, "min": 1.0, "sum": float(total), "count": float(total)},
        "unit": "None",
    }


def metric_stream(datapoints: list[dict[str, Any]]) -> bytes:
    """A metric-stream Firehose record: newline-separated JSON datapoints."""
    return b"".join(to_bytes(point) + b"\n" for point in datapoints)


@dataclass(frozen=True)
class Device:
    """A thing as the inventory knows it."""

    name: str
    thing_type: str
    firmware: str
    segment: str
    groups: tuple[str, ...]
    ip: str


def inventory_record(device: Device, t: float, *, connected: bool = True) -> bytes:
    """What the inventory collector puts into Firehose for one thing (fleet-index collector)."""
    return to_bytes(
        {
            "recordType": "aws:iot:thing",
            "schemaVersion": 1,
            "collectedAt": epoch_ms(t),
            "collector": "fleet-index",
            "thing": {
                "thingName": device.name,
                "thingId": stable_uuid("thing", device.name),
                "thingTypeName": device.thing_type,
                "attributes": {"firmware_version": device.firmware, "segment": device.segment},
                "thingGroupNames": list(device.groups),
                "connectivity": {"connected": connected, "timestamp": epoch_ms(t - 6 * HOUR)},
            },
        }
    )


# The stack's quarantine thing group (`<stack>-quarantine`, stack iot-defender-splunk).
QUARANTINE_GROUP = "iot-defender-splunk-quarantine"


def certificate_id(name: str) -> str:
    """The id of the X.509 certificate a client connects with (its principal in logs and
    lifecycle events): `certificate_id(device.name)` is a device's own."""
    return hashlib.sha256(f"cert:{name}".encode()).hexdigest()


def thing_state(
    device: Device,
    *,
    quarantined: bool = False,
    certificate: str = "ACTIVE",
    shared_with: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A thing's groups and certificate as the responder reads and records them."""
    groups = [*device.groups, QUARANTINE_GROUP] if quarantined else list(device.groups)
    return ThingState(
        device.name,
        sorted(groups),
        [Certificate(certificate_id(device.name), certificate, list(shared_with))],
        [],
        QUARANTINE_GROUP,
    ).as_dict()


def quarantined(
    device: Device, *, session: str = "ended", shared_with: tuple[str, ...] = ()
) -> Target:
    """A thing the responder quarantined: added to the group, its certificate deactivated (left
    active when other things share it) and its session ended (or not, as `session` says)."""
    status = "ACTIVE" if shared_with else "INACTIVE"
    after = thing_state(device, quarantined=True, certificate=status, shared_with=shared_with)
    after["session"] = session
    parts = [f"quarantined {device.name}: added to {QUARANTINE_GROUP}"]
    if shared_with:
        parts += [
            "0 certificate(s) deactivated",
            f"1 shared certificate(s) left active ({certificate_id(device.name)[:12]})",
        ]
    else:
        parts.append("1 certificate(s) deactivated")
    message = ", ".join(parts) + f", session {session}"
    before = thing_state(device, shared_with=shared_with)
    return Target(OK, message, {"thing_name": device.name}, before, after)


def released(device: Device) -> Target:
    """A thing the responder released: out of the group, its certificate active again."""
    before = thing_state(device, quarantined=True, certificate="INACTIVE")
    message = (
        f"released {device.name}: removed from {QUARANTINE_GROUP}, 1 certificate(s) reactivated"
    )
    return Target(OK, message, {"thing_name": device.name}, before, thing_state(device))


def unchanged(device: Device, message: str, *, in_quarantine: bool = False) -> Target:
    """A thing that already was as asked (a no-op)."""
    status = "INACTIVE" if in_quarantine else "ACTIVE"
    state = thing_state(device, quarantined=in_quarantine, certificate=status)
    return Target(NOOP, message, {"thing_name": device.name}, state, state)


def refused(key: dict[str, Any], message: str, before: dict[str, Any] | None = None) -> Target:
    """A target a guard rail refused."""
    return Target(REFUSED, message, key, before)


def failed(
    key: dict[str, Any], message: str, code: str, text: str, before: dict[str, Any] | None = None
) -> Target:
    """A target whose AWS call failed, with the AWS error code and message."""
    return Target(ERROR, message, key, before, error={"code": code, "message": text})


def responses(request: dict[str, Any], targets: list[Target], t: float) -> list[bytes]:
    """The records the responder writes for one request it executed (its own code writes them),
    completed at `t`."""
    parsed = parse_request(request)
    return response_records(
        parsed,
        stable_uuid("response", parsed.request_id, t),
        targets,
        requested_at=t - 1.3,
        completed_at=t,
    )


def _iso(t: float, *, sep: str = "T", millis: bool = False) -> str:
    stamp = dt.datetime.fromtimestamp(t, dt.UTC)
    text = stamp.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    return f"{text}.{stamp.microsecond // 1000:03d}" if millis else f"{text}Z"


# --- the fleet ----------------------------------------------------------------------------------

GATEWAY = Device("gw-berlin-03", "edge-gateway", "2.4.1", "plant-a", ("gateways",), "198.51.100.23")
LOBBY_CAMERA = Device("cam-lobby-2", "ip-camera", "1.9.3", "office", ("cameras",), "198.51.100.71")
DOCK_CAMERA = Device("cam-dock-4", "ip-camera", "1.9.3", "office", ("cameras",), "198.51.100.72")
YARD_CAMERA = Device("cam-yard-1", "ip-camera", "1.9.3", "office", ("cameras",), "198.51.100.73")
PUMPS = tuple(
    Device(f"pump-00{n}", "water-pump", "3.2.0", "plant-a", ("pumps",), f"198.51.100.{n + 40}")
    for n in range(17, 23)
)
PUMP_17, PUMP_18, PUMP_19, PUMP_20, PUMP_21, PUMP_22 = PUMPS
NEW_PUMP = Device("pump-0099", "water-pump", "3.2.0", "plant-a", ("pumps",), "198.51.100.99")


# --- datasets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One Firehose record: its bytes and when Firehose received it."""

    arrival: float
    data: bytes
    alone: bool = False  # its own invocation, so an unparsed event gets exactly this arrival


@dataclass
class Story:
    records: list[Record] = field(default_factory=list)

    def add(self, t: float, data: bytes, *, alone: bool = False) -> None:
        self.records.append(Record(t, data, alone))

    def respond(self, t: float, request: dict[str, Any], targets: list[Target]) -> None:
        """The responder's records of a request it completed at `t`, arriving a second later."""
        for record in responses(request, targets, t):
            self.add(t + 1, record)


DATASETS: dict[str, Callable[[], Story]] = {}


def dataset(function: Callable[[], Story]) -> Callable[[], Story]:
    """Register a dataset builder under its function name."""
    DATASETS[function.__name__] = function
    return function


def _port_story() -> Iterator[tuple[float, Device, list[int], list[int]]]:
    """Listening ports every 2 h for 3 days; in the last report two devices open new ports.

    gw-berlin-03 starts listening on tcp/4444 (a classic reverse-shell port); cam-lobby-2 starts
    Telnet on tcp/23 and tcp/2323 (Mirai). pump-0018's mDNS responder comes and goes, which is
    normal for it; pump-0099 is a new device whose first report arrives in the last hour.
    """
    for slot in range(35, -1, -1):
        t = ago(8 * MINUTE + slot * 2 * HOUR)
        latest = slot == 0
        yield t, GATEWAY, [22, 8443] + ([4444] if latest else []), [123]
        yield t + 7, LOBBY_CAMERA, [443, 554] + ([23, 2323] if latest else []), [3702]
        yield t + 13, PUMP_17, [8443], []
        yield t + 21, PUMP_18, [8443], [5353] if slot % 2 == 0 else []
        if latest:
            yield t + 29, NEW_PUMP, [22, 8443], []


@dataset
def listening_ports() -> Story:
    """Listening ports from device-side reports (no Detect)."""
    story = Story()
    for t, device, tcp, udp in _port_story():
        story.add(t, device_report(device.name, t, tcp=tcp, udp=udp))
    return story


@dataset
def listening_ports_detect() -> Story:
    """The same ports as `listening_ports`, from Detect's metrics export instead."""
    story = Story()
    slots: dict[float, list[dict[str, Any]]] = {}
    for t, device, tcp, udp in _port_story():
        at = t - t % (5 * MINUTE)  # Detect datapoints fall on 5-minute boundaries
        slots.setdefault(at, []).extend(
            [
                export_item(device.name, "aws:listening-tcp-ports", at, {"ports": sorted(tcp)}),
                export_item(device.name, "aws:listening-udp-ports", at, {"ports": sorted(udp)}),
                export_item(device.name, "aws:num-listening-tcp-ports", at, {"count": len(tcp)}),
                export_item(device.name, "aws:num-listening-udp-ports", at, {"count": len(udp)}),
            ]
        )
    for at, items in slots.items():
        story.add(at + 2 * MINUTE, detect_export(items))
    return story


@dataset
def listening_ports_new_release() -> Story:
    """A release rolls out a debug server: three pumps of firmware 3.2.0 start listening on 8081.

    Six pumps (firmware 3.2.0) and two cameras (1.9.3) report their ports every 2 hours for three
    days. pump-0017, pump-0019 and pump-0021 start listening on tcp/8081 on their USB network
    interface 19, 9 and 3 hours ago, as each takes the update; cam-lobby-2 starts a web server
    on 8081 too, alone in its segment.
    """
    story = Story()
    starts = {PUMP_17: 19 * HOUR, PUMP_19: 9 * HOUR, PUMP_21: 3 * HOUR, LOBBY_CAMERA: 5 * HOUR}
    devices = (*PUMPS, LOBBY_CAMERA, DOCK_CAMERA)
    for slot in range(35, -1, -1):
        t = ago(25 * MINUTE + slot * 2 * HOUR)
        for position, device in enumerate(devices):
            at = t + 6 * position
            tcp = [443, 554] if device.thing_type == "ip-camera" else [8443]
            if device in starts and at >= ago(starts[device]):
                tcp.append(8081)
            usb = {8081: "usb0"} if device.thing_type == "water-pump" else None
            story.add(at, device_report(device.name, at, tcp=tcp, interfaces=usb))
    for device in devices:
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story


@dataset
def outbound_volume() -> Story:
    """Hourly network stats for a day: six pumps and three cameras, plus the inventory.

    Cameras upload ~60 MB an hour, pumps ~200 KB. In the last hour pump-0021 sends 48 MB in
    36,000 packets: far above its own baseline and above every other pump (same firmware).
    """
    story = Story()
    devices = (*PUMPS, LOBBY_CAMERA, DOCK_CAMERA, YARD_CAMERA)
    for hour in range(23, -1, -1):
        t = ago(15 * MINUTE + hour * HOUR)
        for position, device in enumerate(devices):
            at = t + 3 * position
            camera = device.thing_type == "ip-camera"
            bytes_out = (60_000_000 if camera else 200_000) * (
                1 + jitter(device.name, hour, "bytes", spread=0.1)
            )
            packets_out = (45_000 if camera else 1_500) * (
                1 + jitter(device.name, hour, "packets", spread=0.1)
            )
            if device is PUMP_21 and hour == 0:
                bytes_out, packets_out = 48_000_000, 36_000
            network = {"bytes_out": int(bytes_out), "packets_out": int(packets_out)}
            story.add(at, device_report(device.name, at, network=network))
    for collected in (ago(90 * MINUTE), ago(30 * MINUTE)):
        for device in devices:
            story.add(collected, inventory_record(device, collected))
    return story


@dataset
def destinations() -> Story:
    """Established connections every 2 h for 2 days; cam-lobby-2 then reaches an IRC server.

    Every device talks to the IoT endpoint (public, so outside the shipped allow list) and
    gw-berlin-03 also to PLCs on the plant network. In the last report cam-lobby-2 connects to
    203.0.113.77:6667 and gw-berlin-03 to a new PLC (private, so allowed); pump-0099 is new.
    """
    story = Story()
    endpoint = Connection(f"{IOT_ENDPOINT}:8883", 50412)
    for slot in range(23, -1, -1):
        t = ago(8 * MINUTE + slot * 2 * HOUR)
        latest = slot == 0
        pump = [Connection("10.20.0.1:443", 48110), endpoint]
        camera = [endpoint] + ([Connection("203.0.113.77:6667", 49201)] if latest else [])
        gateway = [endpoint, Connection("10.20.4.17:502", 40122, "eth1")]
        if latest:
            gateway.append(Connection("10.20.4.99:502", 40131, "eth1"))
        story.add(t, device_report(PUMP_17.name, t, connections=pump))
        story.add(t + 5, device_report(LOBBY_CAMERA.name, t + 5, connections=camera))
        story.add(t + 9, device_report(GATEWAY.name, t + 9, connections=gateway))
        if latest:
            story.add(t + 14, device_report(NEW_PUMP.name, t + 14, connections=[endpoint]))
    return story


@dataset
def exfiltration_to_new_destination() -> Story:
    """Hourly reports of six pumps; in the last hour pump-0020 sends 40 MB to a new address.

    Every pump talks to the plant's historian (private, allowed) and the IoT endpoint all day,
    sending about 200 KB an hour. In the last hour pump-0020 sends 40 MB in 30,000 packets and
    connects to 203.0.113.99:443, an address it never used: both signs in one hour. pump-0018
    connects to a new address with its usual volume, and pump-0021 sends 30 MB to its usual
    destinations: each is one sign alone.
    """
    story = Story()
    usual = [Connection("10.20.0.1:443", 48110), Connection(f"{IOT_ENDPOINT}:8883", 50412)]
    for hour in range(23, -1, -1):
        t = ago(15 * MINUTE + hour * HOUR)
        for position, device in enumerate(PUMPS):
            at = t + 3 * position
            bytes_out = 200_000 * (1 + jitter(device.name, hour, "bytes", spread=0.1))
            packets_out = 1_500 * (1 + jitter(device.name, hour, "packets", spread=0.1))
            connections = list(usual)
            if hour == 0 and device is PUMP_20:
                bytes_out, packets_out = 40_000_000, 30_000
                connections.append(Connection("203.0.113.99:443", 51944))
            elif hour == 0 and device is PUMP_21:
                bytes_out, packets_out = 30_000_000, 22_000
            elif hour == 0 and device is PUMP_18:
                connections.append(Connection("203.0.113.150:8080", 40880))
            network = {"bytes_out": int(bytes_out), "packets_out": int(packets_out)}
            story.add(at, device_report(device.name, at, connections=connections, network=network))
    for device in PUMPS:
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story


@dataset
def low_and_slow_exfiltration() -> Story:
    """Three pumps report every two hours for eight days; pump-0018 leaks 48 MB in the last day.

    Pumps send about 400 KB per report. For the last 24 hours pump-0018 sends 4 MB per report:
    below the 5 MB floor of a single datapoint's spike, ten times its usual day.
    """
    story = Story()
    devices = (PUMP_17, PUMP_18, PUMP_19)
    for slot in range(95, -1, -1):
        t = ago(40 * MINUTE + slot * 2 * HOUR)
        for position, device in enumerate(devices):
            at = t + 4 * position
            leaking = device is PUMP_18 and slot < 12
            bytes_out = (
                4_000_000 if leaking else 400_000 * (1 + jitter(device.name, slot, spread=0.1))
            )
            packets_out = 3_000 * (1 + jitter(device.name, slot, "packets", spread=0.1))
            network = {"bytes_out": int(bytes_out), "packets_out": int(packets_out)}
            story.add(at, device_report(device.name, at, network=network))
    for device in devices:
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story


@dataset
def established_connections() -> Story:
    """Three devices report their connections every 20 minutes; cam-yard-1 starts scanning.

    Each normally holds two or three connections (the IoT endpoint, a time server, a video
    relay for the camera). In its last report cam-yard-1 holds 180 connections to Telnet ports
    (23 and 2323) across 203.0.113.0/24: Mirai-style scanning.
    """
    story = Story()
    endpoint = Connection(f"{IOT_ENDPOINT}:8883", 50412)
    scan = [
        Connection(f"203.0.113.{host}:{port}", 41000 + 2 * host + (port == 2323))
        for host in range(1, 91)
        for port in (23, 2323)
    ]
    for slot in range(71, -1, -1):
        t = ago(7 * MINUTE + slot * 20 * MINUTE)
        camera = [endpoint, Connection("10.30.0.5:554", 50100)]
        if slot % 3 == 0:
            camera.append(Connection("10.30.0.9:123", 50210))
        if slot == 0:
            camera += scan
        gateway = [endpoint, Connection("10.20.4.17:502", 40122, "eth1")]
        for position, (device, connections) in enumerate(
            ((YARD_CAMERA, camera), (GATEWAY, gateway), (PUMP_17, [endpoint]))
        ):
            at = t + 5 * position
            story.add(at, device_report(device.name, at, connections=connections))
    for device in (YARD_CAMERA, GATEWAY, PUMP_17):
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story


def _log_records(story: Story, entries: list[LogEntry]) -> None:
    """Deliver IoT log entries as CloudWatch does: a payload per burst of up to a minute."""
    batch: list[LogEntry] = []
    for entry in sorted(entries, key=lambda item: item[0]):
        if batch and entry[0] - batch[0][0] > MINUTE:
            story.add(batch[-1][0] + 5, cloudwatch_logs(batch))
            batch = []
        batch.append(entry)
    if batch:
        story.add(batch[-1][0] + 5, cloudwatch_logs(batch))


def _refused(device: Device, t: float, event_type: str, topic: str) -> LogEntry:
    """An IoT Core log entry of a message or subscription refused for authorization."""
    return iot_log(
        t,
        event_type,
        "Failure",
        client_id=device.name,
        source_ip=device.ip,
        reason="AUTHORIZATION_FAILURE",
        topic=topic,
    )


def _misconfigured_pump() -> list[LogEntry]:
    """pump-0017 is refused twice every two hours on its own config topic, all day, as usual."""
    own_config = "plant-a/pumps/pump-0017/config/set"
    return [
        _refused(PUMP_17, ago(20 * MINUTE + slot * 2 * HOUR) + 4 * n, "Publish-In", own_config)
        for slot in range(11, -1, -1)
        for n in range(2)
    ]


@dataset
def auth_failures() -> Story:
    """IoT Core logs and CloudWatch metrics (no Detect) for a day of authorization failures.

    pump-0017 is misconfigured and is refused twice every two hours, as usual. In the last hour
    pump-0022 publishes to other pumps' command topics and subscribes to `#`: 46 refusals in
    eight minutes. Soon after, the fleet-wide AuthError metrics surge (certificate stuffing
    against the endpoint), while before that they held a handful of errors every few hours.
    """

    entries = _misconfigured_pump()
    entries += [
        iot_log(t, "Connect", "Success", client_id=GATEWAY.name, source_ip=GATEWAY.ip)
        for t in (ago(50 * MINUTE + slot * 3 * HOUR) for slot in range(7, -1, -1))
    ]
    entries += [
        _refused(PUMP_22, ago(35 * MINUTE - 12 * n), "Publish-In", f"plant-a/pumps/{target}/cmd")
        for n, target in enumerate(device.name for _ in range(8) for device in PUMPS[:5])
    ]
    entries += [_refused(PUMP_22, ago(33 * MINUTE - 40 * n), "Subscribe", "#") for n in range(6)]
    entries += [
        iot_log(
            ago(10 * MINUTE - 10 * n),
            "Connection.AuthNError",
            "Failure",
            source_ip=f"192.0.2.{200 + n % 8}",
            reason="AUTHENTICATION_FAILURE",
            details="Certificate is not registered with AWS IoT",
        )
        for n in range(24)
    ]
    story = Story()
    _log_records(story, entries)
    for slot in range(7, -1, -1):
        t = ago(40 * MINUTE + slot * 3 * HOUR)
        t -= t % MINUTE
        story.add(t + MINUTE, metric_stream([metric_datapoint("Connect.AuthError", t, 2)]))
    for minute in range(10, 5, -1):
        t = ago(minute * MINUTE)
        points = [
            metric_datapoint("Connection.AuthNError", t, 45 + 3 * (minute % 4)),
            metric_datapoint("Connect.AuthError", t, 12),
        ]
        story.add(t + MINUTE, metric_stream(points))
    return story


# A rogue MQTT client: mosquitto's old default client id, not shaped like a thing name.
ROGUE_CLIENT = Device("mosqsub|8712-kali", "-", "-", "-", (), "203.0.113.9")


@dataset
def auth_failures_rogue_client() -> Story:
    """Two authorization spikes in the last hour: a misconfigured pump's and a rogue client's.

    pump-0017 is refused twice every two hours on its own config topic, as usual; 40 minutes
    ago it starts writing other things' shadows: 30 refusals in ten minutes (the spike's
    evidence is the shadow topics, not the config topic of its whole day). A client whose id
    is not a thing name ("mosqsub|8712-kali", mosquitto's old default) connects with a stolen
    certificate from 203.0.113.9 and is refused 25 times in six minutes.
    """
    entries = _misconfigured_pump()
    entries += [
        _refused(PUMP_17, ago(40 * MINUTE - 20 * n), "Publish-In", shadow)
        for n, shadow in enumerate(
            f"$aws/things/{device.name}/shadow/update" for _ in range(6) for device in PUMPS[1:]
        )
    ]
    entries += [
        _refused(ROGUE_CLIENT, ago(25 * MINUTE - 15 * n), event_type, topic)
        for n, (event_type, topic) in enumerate(
            [("Subscribe", "#"), ("Publish-In", "plant-a/pumps/pump-0021/cmd")] * 12
            + [("Subscribe", "$aws/things/+/shadow/#")]
        )
    ]
    story = Story()
    _log_records(story, entries)
    return story


# A plant's NAT gateway: the pumps behind it all connect from this one public address.
PLANT_NAT = "198.51.100.200"


@dataset
def client_ids_from_one_source() -> Story:
    """One address tries eight client ids with one stolen certificate; a NAT's devices do not.

    The six pumps behind plant-a's NAT reconnect every four hours from its address, and a new
    pump (pump-0099) connects through it for the first time in the last hour. Between 40 and 30
    minutes ago 203.0.113.66 connects as eight different things with pump-0017's certificate
    and is refused each time (the policy binds client ids to their own certificates).
    """
    story = Story()
    for position, device in enumerate(PUMPS):
        for slot in range(5, -1, -1):
            t = ago(50 * MINUTE + position * 7 * MINUTE + slot * 4 * HOUR)
            story.add(t, lifecycle(device.name, t, "connected", PLANT_NAT, session=slot))
    t = ago(20 * MINUTE)
    story.add(t, lifecycle(NEW_PUMP.name, t, "connected", PLANT_NAT))
    targets = [*PUMPS, GATEWAY, LOBBY_CAMERA]
    entries = [
        iot_log(
            ago(40 * MINUTE - 75 * n),
            "Connect",
            "Failure",
            client_id=device.name,
            source_ip="203.0.113.66",
            reason="AUTHORIZATION_FAILURE",
            certificate=PUMP_17.name,
        )
        for n, device in enumerate(targets)
    ]
    _log_records(story, entries)
    return story


@dataset
def authentication_errors_by_source() -> Story:
    """Internet scanners probe the endpoint all day; one address bursts in the last quarter hour.

    Thirty scanners each hit the endpoint with an unregistered certificate a few times over the
    day (Connection.AuthNError, no client id). Twelve minutes ago 192.0.2.250 presents 45
    certificates in four minutes: certificate stuffing from one host.
    """
    entries = [
        iot_log(
            ago(30 * MINUTE + scanner * 47 * MINUTE + hit * 13),
            "Connection.AuthNError",
            "Failure",
            source_ip=f"203.0.113.{100 + scanner}",
            reason="AUTHENTICATION_FAILURE",
            details="Certificate is not registered with AWS IoT",
        )
        for scanner in range(30)
        for hit in range(1 + scanner % 4)
    ]
    entries += [
        iot_log(
            ago(12 * MINUTE - 5 * n),
            "Connection.AuthNError",
            "Failure",
            source_ip="192.0.2.250",
            reason="AUTHENTICATION_FAILURE",
            details="Certificate is not registered with AWS IoT",
        )
        for n in range(45)
    ]
    story = Story()
    _log_records(story, entries)
    return story


@dataset
def auth_failures_low_rate() -> Story:
    """pump-0019 probes two new topics every 40 minutes all day, always below the spike floor.

    Besides pump-0017's usual refusals on its own config topic, pump-0019 tries to publish to
    another valve's command topic and to read its shadow every 40 minutes for a day: 72
    refusals on 72 topics, never more than two in five minutes.
    """
    entries = _misconfigured_pump()
    for slot in range(35, -1, -1):
        t = ago(25 * MINUTE + slot * 40 * MINUTE)
        valve = f"valve-{slot:02d}"
        entries.append(_refused(PUMP_19, t, "Publish-In", f"plant-a/valves/{valve}/cmd"))
        entries.append(_refused(PUMP_19, t + 9, "Subscribe", f"$aws/things/{valve}/shadow/get"))
    story = Story()
    _log_records(story, entries)
    return story


@dataset
def auth_error_metrics() -> Story:
    """A day of internet noise in Connection.AuthNError; PublishOut.AuthError surges alone.

    Scanners and probes with unregistered certificates hit the endpoint in about a third of the
    minutes, 5 to 150 refusals a minute. Now and then the broker refuses to deliver a message
    to a device (PublishOut.AuthError, 1 or 2 a few times a day). Ten minutes ago a client
    subscribed with a broad topic filter is refused 15 deliveries a minute for six minutes:
    lost in the noise of a sum of every AuthError metric, plain in its own series.
    """
    story = Story()
    for minute in range(24 * 60, 0, -1):
        t = ago(minute * MINUTE)
        t -= t % MINUTE
        points = []
        if jitter("scan", minute, spread=1) > 0.35:
            noise = 78 + jitter("scan-size", minute, spread=73)
            points.append(metric_datapoint("Connection.AuthNError", t, round(noise)))
        if minute % 317 == 0:
            points.append(metric_datapoint("PublishOut.AuthError", t, 1 + minute % 2))
        if 5 <= minute <= 10:
            points.append(metric_datapoint("PublishOut.AuthError", t, 15))
        if points:
            story.add(t + MINUTE, metric_stream(points))
    return story


@dataset
def mqtt_publish_volume() -> Story:
    """Detect's cloud-side message metrics every 30 minutes; gw-berlin-03 publishes 48 MB.

    gw-berlin-03 forwards about 900 messages (1.2 MB) per period for its PLCs, the pumps about
    120 (60 KB). In the last period it publishes 9,000 messages and 48 MB: a device draining
    data over its own MQTT connection, which no network counter on the device has to show.
    """
    story = Story()
    usual = {GATEWAY: (900, 1_200_000), PUMP_17: (120, 60_000), PUMP_18: (120, 60_000)}
    for slot in range(47, -1, -1):
        t = ago(15 * MINUTE + slot * 30 * MINUTE)
        items = []
        for device, normal in usual.items():
            messages, size = (9_000, 48_000_000) if device is GATEWAY and slot == 0 else normal
            spread = 1 + jitter(device.name, slot, spread=0.1)
            items += [
                export_item(
                    device.name, "aws:num-messages-sent", t, {"count": round(messages * spread)}
                ),
                export_item(
                    device.name, "aws:message-byte-size", t, {"count": round(size * spread)}
                ),
            ]
        story.add(t + 2 * MINUTE, detect_export(items))
    for device in usual:
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story


@dataset
def auth_failures_detect() -> Story:
    """Detect's cloud-side `aws:num-authorization-failures` every 30 min; gw-berlin-03 spikes.

    Detect exports the spike's datapoint again four minutes later, in another invocation, as
    version 2 with 57 failures and its timestamp in seconds: the same datapoint (same thing,
    metric and time), whose highest version is the one that counts.
    """
    story = Story()
    for slot in range(47, -1, -1):
        t = ago(15 * MINUTE + slot * 30 * MINUTE)
        gateway = 54 if slot == 0 else round(1 + jitter(GATEWAY.name, slot, spread=1))
        items = [
            export_item(GATEWAY.name, "aws:num-authorization-failures", t, {"count": gateway}),
            export_item(
                PUMP_18.name, "aws:num-authorization-failures", t, {"count": 2 if slot == 0 else 1}
            ),
        ]
        story.add(t + 2 * MINUTE, detect_export(items))
    t = ago(15 * MINUTE)
    resent = export_item(GATEWAY.name, "aws:num-authorization-failures", t, {"count": 57})
    resent |= {"version": 2, "timestamp": int(t)}
    story.add(t + 6 * MINUTE, detect_export([resent]), alone=True)
    return story


@dataset
def connections() -> Story:
    """Lifecycle events and Connect logs; pump-0018's certificate is cloned and used elsewhere.

    Devices normally reconnect every four hours. In the last hour pump-0018's client id is
    connected from three addresses in turn, each connection knocking the previous one off
    (DUPLICATE_CLIENT_ID) every 30 seconds; one more address is refused by the broker.
    """
    story = Story()
    devices = (PUMP_17, GATEWAY, LOBBY_CAMERA, PUMP_18)
    for position, device in enumerate(devices):
        for slot in range(5, -1, -1):
            t = ago(2 * HOUR + position * 11 * MINUTE + slot * 4 * HOUR)
            story.add(
                t,
                lifecycle(
                    device.name,
                    t,
                    "disconnected",
                    device.ip,
                    reason="CONNECTION_LOST",
                    session=slot + 1,
                ),
            )
            story.add(t + 20, lifecycle(device.name, t + 20, "connected", device.ip, session=slot))
    addresses = (PUMP_18.ip, "203.0.113.45", "192.0.2.66")
    entries = []
    for n in range(60):
        t = ago(45 * MINUTE - 30 * n)
        ip = addresses[n % 3]
        previous = addresses[(n - 1) % 3]
        story.add(
            t - 0.2,
            lifecycle(
                PUMP_18.name,
                t - 0.2,
                "disconnected",
                previous,
                reason="DUPLICATE_CLIENT_ID",
                session=100 + n,
            ),
        )
        story.add(t, lifecycle(PUMP_18.name, t, "connected", ip, session=101 + n))
        if n % 10 == 0:
            entries.append(iot_log(t, "Connect", "Success", client_id=PUMP_18.name, source_ip=ip))
    entries.append(
        iot_log(
            ago(20 * MINUTE),
            "Connect",
            "Failure",
            client_id=PUMP_18.name,
            source_ip="192.0.2.99",
            reason="AUTHORIZATION_FAILURE",
        )
    )
    _log_records(story, entries)
    return story


@dataset
def connections_across_runs() -> Story:
    """pump-0020's client id connects from four addresses within 17 minutes, an hour ago.

    It normally reconnects every four hours from its own address. Between 75 and 58 minutes
    ago its cloned certificate connects from three more addresses, each connection knocking the
    previous one off: two addresses fall in the hour before, two in the hour after, of an
    hourly run's fixed window.
    """
    story = Story()
    for slot in range(5, -1, -1):
        t = ago(3 * HOUR + slot * 4 * HOUR)
        story.add(t, lifecycle(PUMP_20.name, t, "connected", PUMP_20.ip, session=slot))
    clone = (PUMP_20.ip, "203.0.113.45", "192.0.2.66", "203.0.113.201")
    for n, (minutes, ip) in enumerate(zip((75, 70, 62, 58), clone, strict=True)):
        t = ago(minutes * MINUTE)
        if n:
            previous = lifecycle(
                PUMP_20.name,
                t - 0.2,
                "disconnected",
                clone[n - 1],
                reason="DUPLICATE_CLIENT_ID",
                session=10 + n,
            )
            story.add(t - 0.2, previous)
        story.add(t, lifecycle(PUMP_20.name, t, "connected", ip, session=11 + n))
    return story


def _rule(
    operator: str, value: dict[str, Any], *, duration: int | None = 300, datapoints: int = 1
) -> dict[str, Any]:
    """A rule behavior's criteria (set comparisons take no duration)."""
    criteria: dict[str, Any] = {"comparisonOperator": operator, "value": value}
    if duration:
        criteria["durationSeconds"] = duration
    return criteria | {
        "consecutiveDatapointsToAlarm": datapoints,
        "consecutiveDatapointsToClear": datapoints,
    }


def _ml(confidence: str) -> dict[str, Any]:
    return {
        "consecutiveDatapointsToAlarm": 1,
        "consecutiveDatapointsToClear": 1,
        "mlDetectionConfig": {"confidenceLevel": confidence},
    }


# Behaviors of the security profiles: name -> (metric, criteria, profile, ML confidence).
BEHAVIORS: dict[str, tuple[str, dict[str, Any], str, str | None]] = {
    "listening-tcp-allowlist": (
        "aws:listening-tcp-ports",
        _rule("not-in-port-set", {"ports": [443, 8883]}, duration=None),
        "fleet-baseline",
        None,
    ),
    "auth-failures-high": (
        "aws:num-authorization-failures",
        _rule("greater-than", {"count": 5}),
        "fleet-baseline",
        None,
    ),
    "bytes-out-p90": (
        "aws:all-bytes-out",
        {
            "comparisonOperator": "greater-than",
            "statisticalThreshold": {"statistic": "p90"},
            "durationSeconds": 300,
            "consecutiveDatapointsToAlarm": 1,
            "consecutiveDatapointsToClear": 2,
        },
        "fleet-baseline",
        None,
    ),
    "cpu-usage-high": (
        "cpu_usage_pct",
        _rule("greater-than", {"number": 90}, datapoints=3),
        "fleet-baseline",
        None,
    ),
    "Authorization_failures_ML_Behavior": (
        "aws:num-authorization-failures",
        _ml("HIGH"),
        "fleet-ml-baseline",
        "HIGH",
    ),
    "Bytes_out_ML_Behavior": ("aws:all-bytes-out", _ml("LOW"), "fleet-ml-baseline", "LOW"),
}


@dataclass(frozen=True)
class Alarm:
    """One Detect alarm message; `episode` ties an alarm-cleared to its in-alarm."""

    seconds_ago: float
    thing: str
    event_type: str
    behavior: str
    value: dict[str, Any]
    episode: str = ""
    via_sns: bool = True

    def message(self) -> dict[str, Any]:
        metric, criteria, profile, confidence = BEHAVIORS[self.behavior]
        t = ago(self.seconds_ago)
        return violation(
            self.thing,
            t,
            event_type=self.event_type,
            behavior=self.behavior,
            metric=metric,
            criteria=criteria,
            value=self.value,
            profile=profile,
            confidence=confidence,
            violation_id=stable_id(self.episode) if self.episode else None,
        )


@dataset
def detect_violations() -> Story:
    """Detect alarms (SNS and raw): three raised in the last 15 minutes, one open for 30 hours.

    In the last quarter hour: an ML alarm (HIGH confidence) on pump-0018's authorization
    failures, a rule alarm on gw-berlin-03's, and an ML alarm with LOW confidence on pump-0017;
    cam-lobby-2's bytes-out alarm clears. Older: cam-dock-4 has been in alarm for a listening
    port outside its allow list for 30 hours; gw-berlin-03's earlier alarm cleared after five
    hours; pump-0022's CPU alarm is three hours old.
    """
    in_alarm, cleared = "in-alarm", "alarm-cleared"
    alarms = [
        Alarm(
            30 * HOUR,
            DOCK_CAMERA.name,
            in_alarm,
            "listening-tcp-allowlist",
            {"ports": [22, 443, 8883]},
        ),
        Alarm(40 * HOUR, GATEWAY.name, in_alarm, "auth-failures-high", {"count": 31}, "gw-1"),
        Alarm(35 * HOUR, GATEWAY.name, cleared, "auth-failures-high", {"count": 0}, "gw-1"),
        Alarm(3 * HOUR, PUMP_22.name, in_alarm, "cpu-usage-high", {"number": 97.8}, via_sns=False),
        Alarm(
            2 * HOUR, LOBBY_CAMERA.name, in_alarm, "bytes-out-p90", {"count": 734_003_200}, "cam-1"
        ),
        Alarm(
            9 * MINUTE, PUMP_18.name, in_alarm, "Authorization_failures_ML_Behavior", {"count": 37}
        ),
        Alarm(8 * MINUTE, GATEWAY.name, in_alarm, "auth-failures-high", {"count": 54}),
        Alarm(
            7 * MINUTE,
            PUMP_17.name,
            in_alarm,
            "Bytes_out_ML_Behavior",
            {"count": 412_993},
            via_sns=False,
        ),
        Alarm(
            6 * MINUTE, LOBBY_CAMERA.name, cleared, "bytes-out-p90", {"count": 18_220_114}, "cam-1"
        ),
    ]
    story = Story()
    for alarm in alarms:
        t, message = ago(alarm.seconds_ago), alarm.message()
        data = sns_envelope(ALERTS_TOPIC, message, t + 1) if alarm.via_sns else to_bytes(message)
        story.add(t + 30, data)
    return story


AUDIT_CHECKS = (
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "LOGGING_DISABLED_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
    "CA_CERTIFICATE_KEY_QUALITY_CHECK",
)


def _audit_checks(findings: Sequence[Finding] = ()) -> list[Check]:
    """Each audited check's result, non-compliant with as many resources as it has findings."""
    counts = {name: sum(1 for check, _ in findings if check == name) for name in AUDIT_CHECKS}
    return [
        Check(name, "COMPLETED_NON_COMPLIANT", counts[name], 14)
        if counts[name]
        else Check(name, total=14)
        for name in AUDIT_CHECKS
    ]


def _certificate(name: str, *clients: str) -> Resource:
    certificate_id = hashlib.sha256(name.encode()).hexdigest()
    return Resource("DEVICE_CERTIFICATE", {"deviceCertificateId": certificate_id}, clients)


def _policy(name: str, version: str) -> Resource:
    identifier = {"policyVersionIdentifier": {"policyName": name, "policyVersionId": version}}
    return Resource("IOT_POLICY", identifier)


def _add_audit(
    story: Story,
    start: float,
    findings: Sequence[Finding],
    suppressed: Sequence[Finding] = (),
    *,
    name: str = "daily-fleet-audit",
) -> None:
    """One scheduled audit: its completion notification and, if it found any, its findings page."""
    task = stable_id("audit", start)
    checks = _audit_checks([*findings, *suppressed])
    notification = audit_notification(task, start, checks, audit_name=name)
    story.add(start + 20 * MINUTE, sns_envelope(AUDIT_TOPIC, notification, start + 20 * MINUTE))
    items = [finding(task, start, check, resource) for check, resource in findings]
    items += [finding(task, start, *item, suppressed=True) for item in suppressed]
    if items:
        story.add(start + 30 * MINUTE, findings_page(items))


@dataset
def audit() -> Story:
    """Two daily audits with their findings pages; the latest finds new problems.

    Yesterday's audit (26 h ago) found a certificate shared by pump-0018 and a bench copy, an
    overly permissive legacy policy and an expiring certificate. Today's (2 h ago) finds those
    again plus a second shared certificate, gw-berlin-03's client id used by several devices
    and account logging switched off; a suppressed policy finding is left out of every count.
    """
    recurring: list[Finding] = [
        (
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            _certificate("cert-a", PUMP_18.name, "pump-0018-bench"),
        ),
        ("IOT_POLICY_OVERLY_PERMISSIVE_CHECK", _policy("legacy-device-policy", "4")),
        ("DEVICE_CERTIFICATE_EXPIRING_CHECK", _certificate("cert-c")),
    ]
    new: list[Finding] = [
        (
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            _certificate("cert-b", LOBBY_CAMERA.name, DOCK_CAMERA.name, "cam-test"),
        ),
        ("CONFLICTING_CLIENT_IDS_CHECK", Resource("CLIENT_ID", {"clientId": GATEWAY.name})),
        ("LOGGING_DISABLED_CHECK", Resource("ACCOUNT_SETTINGS", {"account": ACCOUNT})),
    ]
    suppressed: Finding = (
        "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
        _policy("camera-telemetry-policy", "2"),
    )
    story = Story()
    _add_audit(story, ago(26 * HOUR), recurring)
    _add_audit(story, ago(2 * HOUR), recurring + new, [suppressed])
    return story


@dataset
def audit_first_finding() -> Story:
    """Three clean daily audits, then the account's first findings ever, in today's audit.

    Audits 74, 50 and 26 hours ago found nothing. Today's (2 h ago) finds account logging
    switched off and a certificate shared by pump-0019 and a copy on an unknown client: new
    findings with a history of completed audits to compare them with, but no earlier finding.
    """
    story = Story()
    for hours in (74, 50, 26):
        _add_audit(story, ago(hours * HOUR), [])
    findings: list[Finding] = [
        ("LOGGING_DISABLED_CHECK", Resource("ACCOUNT_SETTINGS", {"account": ACCOUNT})),
        (
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            _certificate("cert-d", PUMP_19.name, "pump-0019-clone"),
        ),
    ]
    _add_audit(story, ago(2 * HOUR), findings)
    return story


@dataset
def audit_check_remediated() -> Story:
    """A shared certificate found yesterday is fixed and an on-demand audit shows it compliant.

    Last night's scheduled audit (20 h ago) found a certificate shared by pump-0021 and a clone,
    and gw-berlin-03's client id used by several devices. The certificate was replaced, and an
    on-demand audit 3 hours ago ran both checks again: the certificate check completed
    compliant; the client id check failed for lack of permissions, which says nothing about
    the client id, so yesterday's result stands.
    """
    story = Story()
    findings: list[Finding] = [
        (
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            _certificate("cert-e", PUMP_21.name, "pump-0021-clone"),
        ),
        ("CONFLICTING_CLIENT_IDS_CHECK", Resource("CLIENT_ID", {"clientId": GATEWAY.name})),
    ]
    _add_audit(story, ago(20 * HOUR), findings)
    start = ago(3 * HOUR)
    checks = [
        Check("DEVICE_CERTIFICATE_SHARED_CHECK", total=14),
        Check(
            "CONFLICTING_CLIENT_IDS_CHECK", "FAILED", total=0, error_code="INSUFFICIENT_PERMISSIONS"
        ),
    ]
    notification = audit_notification(
        stable_id("audit", start),
        start,
        checks,
        task_type="ON_DEMAND_AUDIT_TASK",
        audit_name=None,
    )
    story.add(start + 5 * MINUTE, sns_envelope(AUDIT_TOPIC, notification, start + 5 * MINUTE))
    return story


@dataset
def audit_heartbeat() -> Story:
    """The last completed audit is 30 h old; one since failed and an older one was canceled."""
    story = Story()
    completed, failed, canceled = ago(30 * HOUR), ago(5 * HOUR), ago(50 * HOUR)
    checks = _audit_checks()
    story.add(
        completed + 15 * MINUTE,
        sns_envelope(
            AUDIT_TOPIC,
            audit_notification(stable_id("audit", completed), completed, checks),
            completed + 15 * MINUTE,
        ),
    )
    failing = [
        Check(check.name, "FAILED", total=0, error_code="INSUFFICIENT_PERMISSIONS")
        if check.name.startswith("DEVICE_CERTIFICATE")
        else check
        for check in checks
    ]
    story.add(
        failed + 15 * MINUTE,
        sns_envelope(
            AUDIT_TOPIC,
            audit_notification(stable_id("audit", failed), failed, failing, status="FAILED"),
            failed + 15 * MINUTE,
        ),
    )
    partial = [Check(check.name, "CANCELED", total=0) for check in checks[:3]] + checks[3:]
    story.add(
        canceled + 10 * MINUTE,
        to_bytes(
            audit_notification(
                stable_id("audit", canceled),
                canceled,
                partial,
                status="CANCELED",
                task_type="ON_DEMAND_AUDIT_TASK",
                audit_name=None,
            )
        ),
    )
    return story


@dataset
def audit_weekly() -> Story:
    """A clean weekly audit every Friday at 03:00 UTC; the last one completed three days ago."""
    story = Story()
    for days in (17, 10, 3):
        _add_audit(story, ago(days * DAY - HOUR), [], name="weekly-fleet-audit")
    return story


@dataset
def audit_monthly() -> Story:
    """A clean monthly audit on the 3rd at 03:00 UTC; the last one completed 20 days ago."""
    story = Story()
    for days in (51, 20):
        _add_audit(story, ago(days * DAY - HOUR), [], name="monthly-fleet-audit")
    return story


@dataset
def pipeline_health() -> Story:
    """A day of steady flows; device metrics stop 50 minutes ago and three records fail to parse.

    Device reports (every 20 min), CloudWatch metrics (every 10 min, still flowing) and the
    hourly inventory arrive as usual, with a response action in between. Then the metrics stop,
    and in the last quarter hour a report put into the stream without the device-report rule, a
    CBOR report and a log batch holding plain text arrive: they become unparsed events.
    """
    story = Story()
    pumps = (PUMP_17, PUMP_18, PUMP_19)
    for slot in range(69, -1, -1):
        t = ago(50 * MINUTE + slot * 20 * MINUTE)
        for position, device in enumerate(pumps):
            at = t + 4 * position
            load = 30 + jitter(device.name, slot, spread=8)
            story.add(at, device_report(device.name, at, custom={"cpu_usage_pct": round(load, 1)}))
    for slot in range(143, -1, -1):
        t = ago(2 * MINUTE + slot * 10 * MINUTE)
        connects = 40 + jitter("connects", slot, spread=6)
        story.add(
            t + MINUTE, metric_stream([metric_datapoint("Connect.Success", t, round(connects))])
        )
    for slot in range(23, -1, -1):
        t = ago(50 * MINUTE + slot * HOUR)
        for device in pumps:
            story.add(t, inventory_record(device, t))
    quarantine = {
        "action": "quarantine_thing",
        "request_id": "soar-2204-quarantine-pump-0019",
        "thing_name": PUMP_19.name,
        "requested_by": "soar:iot_open_port_response:approved-by:jdoe",
        "reason": "Investigating a CPU alarm",
    }
    story.respond(ago(3 * HOUR), quarantine, [quarantined(PUMP_19)])
    forwarded = device_report(PUMP_17.name, ago(9 * MINUTE), custom={"cpu_usage_pct": 31.0})
    bare = base64.b64decode(json.loads(forwarded)["payload"])  # put into the stream directly
    story.add(ago(9 * MINUTE), bare, alone=True)
    cbor = b"\xa3cheda\x01cmet\xa1ccpu\xf9\x4e\x00"
    received = epoch_ms(ago(8 * MINUTE))
    cbor_report = rule_record("device-report", cbor, thing_name=PUMP_17.name, received_at=received)
    story.add(ago(8 * MINUTE), cbor_report, alone=True)
    text_line = (
        "2026-11-23 01:50:00.000 TRACEID:0 [INFO] EVENT:MQTT Client Connect ClientId: pump-0017"
    )
    story.add(ago(7 * MINUTE), cloudwatch_logs([], raw=(text_line,)), alone=True)
    return story


@dataset
def device_silent() -> Story:
    """Four devices report every 20 minutes for a day; pump-0022 goes quiet 3 hours ago."""
    story = Story()
    devices = (PUMP_17, PUMP_18, PUMP_22, GATEWAY)
    for slot in range(71, -1, -1):
        t = ago(10 * MINUTE + slot * 20 * MINUTE)
        for position, device in enumerate(devices):
            at = t + 5 * position
            if device is PUMP_22 and at > ago(3 * HOUR):
                continue
            load = 25 + jitter(device.name, slot, spread=5)
            story.add(at, device_report(device.name, at, custom={"cpu_usage_pct": round(load, 1)}))
    for device in devices:
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story


def _full_report(device: Device, t: float) -> bytes:
    """A report with every device-side metric: ten datapoints from one report."""
    return device_report(
        device.name,
        t,
        tcp=[443, 554],
        udp=[3702],
        connections=[Connection(f"{IOT_ENDPOINT}:8883", 50412)],
        network={"bytes_in": 5_200, "bytes_out": 31_000, "packets_in": 40, "packets_out": 61},
    )


@dataset
def device_cadence() -> Story:
    """Devices with different cadences: only cam-dock-4 has been silent for longer than usual.

    pump-0017 reports every 20 minutes up to now (the fleet still reports). Two cameras send
    network stats every 2 hours for three days: cam-yard-1's last report is 100 minutes old,
    normal for it; cam-dock-4's is 8 hours old, four reports missed. pump-0099 was provisioned
    yesterday, sent two full reports (20 datapoints) and has been on a shelf since.
    """
    story = Story()
    for slot in range(215, -1, -1):
        t = ago(7 * MINUTE + slot * 20 * MINUTE)
        load = 30 + jitter(PUMP_17.name, slot, spread=5)
        story.add(t, device_report(PUMP_17.name, t, custom={"cpu_usage_pct": round(load, 1)}))
    for device, last in ((YARD_CAMERA, 100 * MINUTE), (DOCK_CAMERA, 8 * HOUR)):
        t = ago(last)
        while t > ago(72 * HOUR):
            network = {
                "bytes_in": 48_000,
                "bytes_out": 2_400_000,
                "packets_in": 700,
                "packets_out": 1_900,
            }
            story.add(t, device_report(device.name, t, network=network))
            t -= 2 * HOUR
    for t in (ago(20 * HOUR), ago(19 * HOUR + 40 * MINUTE)):
        story.add(t, _full_report(NEW_PUMP, t))
    for device in (PUMP_17, YARD_CAMERA, DOCK_CAMERA, NEW_PUMP):
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story


# --- the responder's audit trail ------------------------------------------------------------

# Who asks: each playbook, with the analyst who approved the step.
OPEN_PORT_PLAYBOOK = "soar:iot_open_port_response:approved-by:jdoe"
EXFILTRATION_PLAYBOOK = "soar:iot_exfiltration_containment:approved-by:asmith"
AUDIT_PLAYBOOK = "soar:iot_audit_remediation"
RELEASE_PLAYBOOK = "soar:iot_device_release:approved-by:jdoe"
# The stack's mitigation action for certificate checks (MITIGATION_ACTIONS of the responder).
DEACTIVATE_CERTIFICATE_MITIGATION = "iot-defender-splunk-deactivate-certificate"


def _mitigation(key: dict[str, Any], request_id: str, check: str) -> Target:
    """A Device Defender mitigation actions task the responder started."""
    task = f"iot-defender-{request_id}"
    plan = {"task_id": task, "actions": {check: [DEACTIVATE_CERTIFICATE_MITIGATION]}}
    return Target(OK, f"started mitigation task {task}", key, None, plan)


def _certificate_target(name: str, users: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A certificate's target key and what the responder reads of it."""
    return {"certificate_id": certificate_id(name)}, {"status": "ACTIVE", "things": users}


@dataset
def response_actions() -> Story:
    """A day of the responder's work as the playbooks asked for it: every action, every outcome.

    cam-lobby-2 is quarantined for Telnet, asked again (no-op) and released; gw-berlin-03 is
    refused (protected group gateways). The pumps group is quarantined for pump-0021's upload:
    five pumps are, pump-0022 fails (throttled, undone); the group is released. Firmware 1.9.3's
    cameras are quarantined by version and released; a version request on another attribute is
    refused before any thing is named. A shared certificate is deactivated, audit findings are
    remediated by finding and by task and check; pump-0099 is refused release (a mitigation
    action quarantined it). In the last quarter hour three targets fail: pump-0021's new
    quarantine, pump-0018's certificate and a mitigation task; pump-0022's release is a no-op.
    """
    story = Story()
    version = {"attribute": "firmware_version", "value": "1.9.3", "expected_count": 3}
    shared = _certificate("cert-b", LOBBY_CAMERA.name, DOCK_CAMERA.name, "cam-test")
    shared_id = shared.identifier["deviceCertificateId"]
    audit_task = stable_id("audit", ago(26 * HOUR))
    pump_certificate, pump_certificate_state = _certificate_target(PUMP_18.name, [PUMP_18.name])
    requests: list[tuple[float, dict[str, Any], list[Target]]] = [
        (
            ago(20 * HOUR),
            {
                "action": "quarantine_thing",
                "request_id": "soar-4711-quarantine-cam-lobby-2",
                "thing_name": LOBBY_CAMERA.name,
                "requested_by": OPEN_PORT_PLAYBOOK,
                "reason": "Telnet listening on cam-lobby-2 (tcp/23, tcp/2323)",
            },
            [quarantined(LOBBY_CAMERA)],
        ),
        (
            ago(19 * HOUR),
            {
                "action": "quarantine_thing",
                "request_id": "soar-4725-quarantine-cam-lobby-2",
                "thing_name": LOBBY_CAMERA.name,
                "requested_by": OPEN_PORT_PLAYBOOK,
                "reason": "Telnet listening on cam-lobby-2 (tcp/23)",
            },
            [unchanged(LOBBY_CAMERA, "cam-lobby-2 is already quarantined", in_quarantine=True)],
        ),
        (
            ago(18 * HOUR),
            {
                "action": "quarantine_thing",
                "request_id": "soar-4730-quarantine-gw-berlin-03",
                "thing_name": GATEWAY.name,
                "requested_by": OPEN_PORT_PLAYBOOK,
                "reason": "tcp/4444 listening on gw-berlin-03",
            },
            [
                refused(
                    {"thing_name": GATEWAY.name},
                    "gw-berlin-03 is in protected thing group gateways: never quarantined",
                    thing_state(GATEWAY),
                )
            ],
        ),
        (
            ago(16 * HOUR),
            {
                "action": "quarantine_group",
                "request_id": "soar-4790-quarantine-pumps",
                "thing_group": "pumps",
                "expected_count": 6,
                "requested_by": EXFILTRATION_PLAYBOOK,
                "reason": "pump-0021 sent 48 MB to 203.0.113.99; containing its group",
            },
            [quarantined(pump) for pump in PUMPS[:5]]
            + [
                failed(
                    {"thing_name": PUMP_22.name},
                    "quarantine of pump-0022 failed; the steps taken were undone",
                    "ThrottlingException",
                    "Rate exceeded",
                    thing_state(PUMP_22),
                )
            ],
        ),
        (
            ago(12 * HOUR),
            {
                "action": "quarantine_version",
                "request_id": "soar-4802-quarantine-1-9-3",
                **version,
                "requested_by": OPEN_PORT_PLAYBOOK,
                "reason": "Telnet enabled by firmware 1.9.3",
            },
            [
                unchanged(LOBBY_CAMERA, "cam-lobby-2 is already quarantined", in_quarantine=True),
                quarantined(DOCK_CAMERA),
                quarantined(YARD_CAMERA),
            ],
        ),
        (
            ago(10 * HOUR),
            {
                "action": "quarantine_version",
                "request_id": "soar-4815-quarantine-plant-b",
                "attribute": "segment",
                "value": "plant-b",
                "expected_count": 4,
                "requested_by": EXFILTRATION_PLAYBOOK,
                "reason": "plant-b devices reaching 203.0.113.99",
            },
            [
                refused(
                    {"attribute": "segment", "value": "plant-b"},
                    "segment = plant-b holds 0 things, not expected_count 4",
                )
            ],
        ),
        (
            ago(8 * HOUR),
            {
                "action": "release_thing",
                "request_id": "soar-4850-release-cam-lobby-2",
                "thing_name": LOBBY_CAMERA.name,
                "requested_by": RELEASE_PLAYBOOK,
                "reason": "Telnet disabled by firmware 1.9.4; verified on the device",
            },
            [released(LOBBY_CAMERA)],
        ),
        (
            ago(6 * HOUR),
            {
                "action": "release_group",
                "request_id": "soar-4861-release-pumps",
                "thing_group": "pumps",
                "expected_count": 6,
                "requested_by": RELEASE_PLAYBOOK,
                "reason": "pump-0021 reimaged; the upload was a misconfigured backup job",
            },
            [released(pump) for pump in PUMPS[:5]]
            + [unchanged(PUMP_22, "pump-0022 is not quarantined")],
        ),
        (
            ago(5 * HOUR),
            {
                "action": "release_version",
                "request_id": "soar-4870-release-1-9-3",
                **version,
                "requested_by": RELEASE_PLAYBOOK,
                "reason": "firmware 1.9.4 rolled out to the cameras",
            },
            [
                unchanged(LOBBY_CAMERA, "cam-lobby-2 is not quarantined"),
                released(DOCK_CAMERA),
                released(YARD_CAMERA),
            ],
        ),
        (
            ago(4 * HOUR),
            {
                "action": "deactivate_certificate",
                "request_id": "soar-4901-deactivate-cert-b",
                "certificate_id": shared_id,
                "requested_by": AUDIT_PLAYBOOK,
                "reason": "DEVICE_CERTIFICATE_SHARED_CHECK: shared by three clients",
            },
            [
                Target(
                    OK,
                    f"deactivated certificate {shared_id[:12]}… used by 2 thing(s)",
                    {"certificate_id": shared_id},
                    {"status": "ACTIVE", "things": [LOBBY_CAMERA.name, DOCK_CAMERA.name]},
                    {"status": "INACTIVE", "things": [LOBBY_CAMERA.name, DOCK_CAMERA.name]},
                )
            ],
        ),
        (
            ago(3 * HOUR),
            {
                "action": "remediate_audit_finding",
                "request_id": "soar-4920-remediate-cert-b",
                "finding_ids": [stable_uuid(audit_task, "cert-b")],
                "requested_by": AUDIT_PLAYBOOK,
                "reason": "DEVICE_CERTIFICATE_SHARED_CHECK finding",
            },
            [
                _mitigation(
                    {"finding_ids": [stable_uuid(audit_task, "cert-b")]},
                    "soar-4920-remediate-cert-b",
                    "DEVICE_CERTIFICATE_SHARED_CHECK",
                )
            ],
        ),
        (
            ago(2 * HOUR),
            {
                "action": "remediate_audit_finding",
                "request_id": "soar-4933-remediate-expiring",
                "audit_task_id": audit_task,
                "check_name": "DEVICE_CERTIFICATE_EXPIRING_CHECK",
                "requested_by": AUDIT_PLAYBOOK,
                "reason": "DEVICE_CERTIFICATE_EXPIRING_CHECK findings of the daily audit",
            },
            [
                _mitigation(
                    {
                        "audit_task_id": audit_task,
                        "check_name": "DEVICE_CERTIFICATE_EXPIRING_CHECK",
                    },
                    "soar-4933-remediate-expiring",
                    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
                )
            ],
        ),
        (
            ago(HOUR),
            {
                "action": "release_thing",
                "request_id": "soar-4950-release-pump-0099",
                "thing_name": NEW_PUMP.name,
                "requested_by": RELEASE_PLAYBOOK,
                "reason": "provisioning test finished",
            },
            [
                refused(
                    {"thing_name": NEW_PUMP.name},
                    f"pump-0099 was put in {QUARANTINE_GROUP} by something other than the "
                    "responder (a mitigation action?): there is no record of what to restore; "
                    "remove it from the group there",
                    thing_state(NEW_PUMP, quarantined=True),
                )
            ],
        ),
        (
            ago(10 * MINUTE),
            {
                "action": "quarantine_thing",
                "request_id": "soar-4988-quarantine-pump-0021",
                "thing_name": PUMP_21.name,
                "requested_by": EXFILTRATION_PLAYBOOK,
                "reason": "pump-0021 sent 40 MB to 203.0.113.99 again",
            },
            [
                failed(
                    {"thing_name": PUMP_21.name},
                    "quarantine of pump-0021 failed; the steps taken were undone",
                    "ThrottlingException",
                    "Rate exceeded",
                    thing_state(PUMP_21),
                )
            ],
        ),
        (
            ago(9 * MINUTE),
            {
                "action": "deactivate_certificate",
                "request_id": "soar-4990-deactivate-pump-0018",
                **pump_certificate,
                "requested_by": AUDIT_PLAYBOOK,
                "reason": "DEVICE_CERTIFICATE_SHARED_CHECK: pump-0018 and a bench copy",
            },
            [
                failed(
                    pump_certificate,
                    f"cannot deactivate certificate {certificate_id(PUMP_18.name)}",
                    "InternalFailureException",
                    "An unexpected error has occurred.",
                    pump_certificate_state,
                )
            ],
        ),
        (
            ago(8 * MINUTE),
            {
                "action": "remediate_audit_finding",
                "request_id": "soar-4991-remediate-policy",
                "finding_ids": [stable_uuid(audit_task, "legacy-device-policy")],
                "requested_by": AUDIT_PLAYBOOK,
                "reason": "IOT_POLICY_OVERLY_PERMISSIVE_CHECK finding",
            },
            [
                failed(
                    {"finding_ids": [stable_uuid(audit_task, "legacy-device-policy")]},
                    "cannot start the mitigation task",
                    "InvalidRequestException",
                    "The audit finding has already been mitigated or suppressed.",
                )
            ],
        ),
        (
            ago(7 * MINUTE),
            {
                "action": "release_thing",
                "request_id": "soar-4995-release-pump-0022",
                "thing_name": PUMP_22.name,
                "requested_by": RELEASE_PLAYBOOK,
                "reason": "pump-0022 was never quarantined; closing the case",
            },
            [unchanged(PUMP_22, "pump-0022 is not quarantined")],
        ),
    ]
    for t, request, targets in requests:
        story.respond(t, request, targets)
    return story


def _telemetry_topic(device: Device) -> str:
    return f"{device.segment}/{device.thing_type}s/{device.name}/telemetry"


def _session(
    story: Story, entries: list[LogEntry], device: Device, t: float, *, publishes: int = 1
) -> None:
    """A device connects (lifecycle event and Connect log) and publishes telemetry, a minute
    apart."""
    story.add(t, lifecycle(device.name, t, "connected", device.ip, session=int(t)))
    entries.append(iot_log(t, "Connect", "Success", client_id=device.name, source_ip=device.ip))
    entries += [
        iot_log(
            t + MINUTE * (n + 1),
            "Publish-In",
            "Success",
            client_id=device.name,
            source_ip=device.ip,
            topic=_telemetry_topic(device),
        )
        for n in range(publishes)
    ]


def _refused_connect(device: Device, t: float) -> LogEntry:
    """A connection the quarantine's deny-all policy refuses."""
    return iot_log(
        t,
        "Connect",
        "Failure",
        client_id=device.name,
        source_ip=device.ip,
        reason="AUTHORIZATION_FAILURE",
    )


def _quarantine_request(action: str, request_id: str, reason: str, **keys: Any) -> dict[str, Any]:
    return {
        "action": action,
        "request_id": request_id,
        **keys,
        "requested_by": EXFILTRATION_PLAYBOOK
        if action.startswith("quarantine_")
        else RELEASE_PLAYBOOK,
        "reason": reason,
    }


@dataset
def quarantine_still_connecting() -> Story:
    """Three quarantined things still connect or publish; the other quarantines hold.

    The pumps group (pump-0017, pump-0018) is quarantined 5 hours ago, but pump-0018's session
    could not be ended (throttled) and it keeps publishing every 10 minutes; pump-0017's
    reconnects are refused. cam-lobby-2 is quarantined alone 3 hours ago (its certificate,
    shared with cam-dock-4, stays active) and connects and publishes again twice, the last time
    8 minutes ago. Firmware 1.9.3's cameras are quarantined by version 4 hours ago; cam-yard-1
    is released 2 hours ago and reconnects (as it may), cam-dock-4's release fails an hour ago
    (undone, so it stays quarantined) and it connects 9 minutes ago. gw-berlin-03's quarantine
    fails 2 hours ago: it goes on connecting, as it may.
    """
    story = Story()
    entries: list[LogEntry] = []
    pumps, cameras = (PUMP_17, PUMP_18), (DOCK_CAMERA, YARD_CAMERA)
    version = {"attribute": "firmware_version", "value": "1.9.3", "expected_count": 2}
    for device in (*pumps, LOBBY_CAMERA, *cameras, GATEWAY):  # as usual, before
        for slot in range(3):
            _session(story, entries, device, ago(14 * HOUR - slot * 4 * HOUR) + len(device.name))
    story.respond(
        ago(5 * HOUR),
        _quarantine_request(
            "quarantine_group",
            "soar-5100-quarantine-pumps",
            "pump-0018 uploading to 203.0.113.99",
            thing_group="pumps",
            expected_count=2,
        ),
        [quarantined(PUMP_17), quarantined(PUMP_18, session="not ended (ThrottlingException)")],
    )
    entries += [_refused_connect(PUMP_17, ago(5 * HOUR) + n * 30 * MINUTE + 40) for n in range(10)]
    entries += [
        iot_log(
            ago(8 * MINUTE) - n * 10 * MINUTE,
            "Publish-In",
            "Success",
            client_id=PUMP_18.name,
            source_ip=PUMP_18.ip,
            topic=_telemetry_topic(PUMP_18),
        )
        for n in range(29)
    ]
    story.respond(
        ago(4 * HOUR),
        _quarantine_request(
            "quarantine_version",
            "soar-5120-quarantine-1-9-3",
            "Telnet enabled by firmware 1.9.3",
            **version,
        ),
        [quarantined(DOCK_CAMERA), quarantined(YARD_CAMERA)],
    )
    story.respond(
        ago(3 * HOUR),
        _quarantine_request(
            "quarantine_thing",
            "soar-5130-quarantine-cam-lobby-2",
            "Telnet listening on cam-lobby-2",
            thing_name=LOBBY_CAMERA.name,
        ),
        [quarantined(LOBBY_CAMERA, shared_with=(DOCK_CAMERA.name,))],
    )
    for t in (ago(2 * HOUR + 50 * MINUTE), ago(10 * MINUTE)):
        _session(story, entries, LOBBY_CAMERA, t, publishes=2)
    story.respond(
        ago(2 * HOUR),
        _quarantine_request(
            "release_thing",
            "soar-5140-release-cam-yard-1",
            "cam-yard-1 runs firmware 1.9.4",
            thing_name=YARD_CAMERA.name,
        ),
        [released(YARD_CAMERA)],
    )
    _session(story, entries, YARD_CAMERA, ago(HOUR + 55 * MINUTE), publishes=3)
    story.respond(
        ago(2 * HOUR) + 30,
        _quarantine_request(
            "quarantine_thing",
            "soar-5145-quarantine-gw-berlin-03",
            "tcp/4444 on gw-berlin-03",
            thing_name=GATEWAY.name,
        ),
        [
            failed(
                {"thing_name": GATEWAY.name},
                "quarantine of gw-berlin-03 failed; the steps taken were undone",
                "AccessDeniedException",
                "User is not authorized to perform: iot:UpdateCertificate",
                thing_state(GATEWAY),
            )
        ],
    )
    _session(story, entries, GATEWAY, ago(9 * MINUTE), publishes=2)
    story.respond(
        ago(HOUR),
        _quarantine_request(
            "release_thing",
            "soar-5160-release-cam-dock-4",
            "cam-dock-4 runs firmware 1.9.4",
            thing_name=DOCK_CAMERA.name,
        ),
        [
            failed(
                {"thing_name": DOCK_CAMERA.name},
                "release of cam-dock-4 failed; the steps taken were undone",
                "ThrottlingException",
                "Rate exceeded",
                thing_state(DOCK_CAMERA, quarantined=True, certificate="INACTIVE"),
            )
        ],
    )
    _session(story, entries, DOCK_CAMERA, ago(9 * MINUTE) + 20)
    _log_records(story, entries)
    return story


@dataset
def quarantine_holds() -> Story:
    """Quarantines that hold: quarantined things are refused, released ones reconnect.

    The pumps group (pump-0017, pump-0018) is quarantined 5 hours ago; both are refused every
    half hour since. cam-yard-1 is quarantined 4 hours ago and released an hour ago, then
    connects and publishes. cam-lobby-2 connects 40 minutes ago and is quarantined 30 minutes
    ago; its reconnects are refused. gw-berlin-03's quarantine fails 2 hours ago and it connects
    as usual. In the last quarter hour the responder skips two requests: gw-berlin-03 is refused
    (protected group gateways) and pump-0022's release is a no-op.
    """
    story = Story()
    entries: list[LogEntry] = []
    pumps = (PUMP_17, PUMP_18)
    for device in (*pumps, LOBBY_CAMERA, YARD_CAMERA, GATEWAY):
        for slot in range(3):
            _session(story, entries, device, ago(14 * HOUR - slot * 4 * HOUR) + len(device.name))
    story.respond(
        ago(5 * HOUR),
        _quarantine_request(
            "quarantine_group",
            "soar-5200-quarantine-pumps",
            "pump-0018 uploading to 203.0.113.99",
            thing_group="pumps",
            expected_count=2,
        ),
        [quarantined(device) for device in pumps],
    )
    entries += [
        _refused_connect(device, ago(5 * HOUR) + n * 30 * MINUTE + 40)
        for device in pumps
        for n in range(10)
    ]
    story.respond(
        ago(4 * HOUR),
        _quarantine_request(
            "quarantine_thing",
            "soar-5210-quarantine-cam-yard-1",
            "Telnet on cam-yard-1",
            thing_name=YARD_CAMERA.name,
        ),
        [quarantined(YARD_CAMERA)],
    )
    story.respond(
        ago(HOUR),
        _quarantine_request(
            "release_thing",
            "soar-5220-release-cam-yard-1",
            "cam-yard-1 runs firmware 1.9.4",
            thing_name=YARD_CAMERA.name,
        ),
        [released(YARD_CAMERA)],
    )
    _session(story, entries, YARD_CAMERA, ago(9 * MINUTE), publishes=2)
    _session(story, entries, LOBBY_CAMERA, ago(40 * MINUTE), publishes=3)
    story.respond(
        ago(30 * MINUTE),
        _quarantine_request(
            "quarantine_thing",
            "soar-5230-quarantine-cam-lobby-2",
            "Telnet on cam-lobby-2",
            thing_name=LOBBY_CAMERA.name,
        ),
        [quarantined(LOBBY_CAMERA)],
    )
    entries += [_refused_connect(LOBBY_CAMERA, ago(29 * MINUTE) + n * 5 * MINUTE) for n in range(4)]
    story.respond(
        ago(2 * HOUR),
        _quarantine_request(
            "quarantine_thing",
            "soar-5240-quarantine-gw-berlin-03",
            "tcp/4444 on gw-berlin-03",
            thing_name=GATEWAY.name,
        ),
        [
            failed(
                {"thing_name": GATEWAY.name},
                "quarantine of gw-berlin-03 failed; the steps taken were undone",
                "AccessDeniedException",
                "User is not authorized to perform: iot:UpdateCertificate",
                thing_state(GATEWAY),
            )
        ],
    )
    _session(story, entries, GATEWAY, ago(9 * MINUTE), publishes=2)
    story.respond(
        ago(9 * MINUTE),
        _quarantine_request(
            "quarantine_thing",
            "soar-5250-quarantine-gw-berlin-03",
            "tcp/4444 on gw-berlin-03",
            thing_name=GATEWAY.name,
        ),
        [
            refused(
                {"thing_name": GATEWAY.name},
                "gw-berlin-03 is in protected thing group gateways: never quarantined",
                thing_state(GATEWAY),
            )
        ],
    )
    story.respond(
        ago(8 * MINUTE),
        _quarantine_request(
            "release_thing",
            "soar-5260-release-pump-0022",
            "closing the case",
            thing_name=PUMP_22.name,
        ),
        [unchanged(PUMP_22, "pump-0022 is not quarantined")],
    )
    _log_records(story, entries)
    return story


@dataclass(frozen=True)
class Relapse:
    """A device of the release story: what it reports, and its quarantine and release."""

    device: Device
    quarantined: float
    released: float
    tcp: tuple[int, ...] = ()
    connections: tuple[Connection, ...] = ()
    bytes_out: int = 0


def _release_report(
    entry: Relapse,
    t: float,
    slot: int,
    *,
    port: int | None = None,
    dest: Connection | None = None,
    bytes_out: int | None = None,
) -> bytes:
    """The device's usual report (its ports, connections or network stats), with a sign added."""
    network = None
    if entry.bytes_out:
        usual = entry.bytes_out * (1 + jitter(entry.device.name, slot, "bytes", spread=0.1))
        packets = 1_500 * (1 + jitter(entry.device.name, slot, "packets", spread=0.1))
        network = {"bytes_out": int(bytes_out or usual), "packets_out": int(packets)}
    return device_report(
        entry.device.name,
        t,
        tcp=[*entry.tcp, *([port] if port else [])] if entry.tcp else None,
        connections=[*entry.connections, *([dest] if dest else [])] if entry.connections else None,
        network=network,
    )


def _release_story(*, relapse: bool) -> Story:
    """Eight days of four-hourly reports of devices quarantined for one sign and released.

    gw-berlin-03 (ports) listens on tcp/4444 40 hours ago, is quarantined 39 hours ago and
    released 12 hours ago. pump-0021 (network stats) sends 48 MB 32 hours ago; the pumps group
    (with pump-0017) is quarantined 30 hours ago and released 10 hours ago. cam-lobby-2
    (connections) reaches 203.0.113.77:6667 52 hours ago; firmware 1.9.3 (with cam-dock-4) is
    quarantined 50 hours ago and released 20 hours ago. No report arrives in quarantine (its
    policy denies publishing). After the release cam-dock-4 reaches a new private address, as
    it may. With `relapse`, each shows its sign again: tcp/4444 in the last two reports, 40 MB
    4 hours ago, 203.0.113.77 in the last report; and cam-yard-1 (ports), released 3 days ago
    after 2 days in quarantine, starts Telnet.
    """
    endpoint = Connection(f"{IOT_ENDPOINT}:8883", 50412)
    entries = [
        Relapse(GATEWAY, ago(39 * HOUR), ago(12 * HOUR), tcp=(22, 8443)),
        Relapse(PUMP_17, ago(30 * HOUR), ago(10 * HOUR), bytes_out=400_000),
        Relapse(PUMP_21, ago(30 * HOUR), ago(10 * HOUR), bytes_out=400_000),
        Relapse(LOBBY_CAMERA, ago(50 * HOUR), ago(20 * HOUR), connections=(endpoint,)),
        Relapse(DOCK_CAMERA, ago(50 * HOUR), ago(20 * HOUR), connections=(endpoint,)),
        Relapse(YARD_CAMERA, ago(5 * DAY), ago(3 * DAY), tcp=(443, 554)),
    ]
    story = Story()
    for slot in range(47, -1, -1):
        t = ago(20 * MINUTE + slot * 4 * HOUR)
        for position, entry in enumerate(entries):
            at = t + 5 * position
            if entry.quarantined <= at < entry.released:
                continue
            incident = entry.quarantined - 4 * HOUR <= at < entry.quarantined
            again = relapse and at > entry.released
            signs: dict[str, Any] = {}
            if entry.device is GATEWAY and (incident or (again and slot < 2)):
                signs["port"] = 4444
            if entry.device is PUMP_21 and (incident or (again and slot == 1)):
                signs["bytes_out"] = 40_000_000 if again else 48_000_000
            if entry.device is LOBBY_CAMERA and (incident or (again and slot == 0)):
                signs["dest"] = Connection("203.0.113.77:6667", 49201)
            if entry.device is DOCK_CAMERA and at > entry.released:
                signs["dest"] = Connection("10.30.0.9:554", 50100)
            if entry.device is YARD_CAMERA and again and slot < 2:
                signs["port"] = 23
            story.add(at, _release_report(entry, at, slot, **signs))
    requests: list[tuple[str, dict[str, Any], tuple[Relapse, ...]]] = [
        ("thing", {"thing_name": GATEWAY.name}, (entries[0],)),
        ("group", {"thing_group": "pumps", "expected_count": 2}, tuple(entries[1:3])),
        (
            "version",
            {"attribute": "firmware_version", "value": "1.9.3", "expected_count": 2},
            tuple(entries[3:5]),
        ),
        ("thing", {"thing_name": YARD_CAMERA.name}, (entries[5],)),
    ]
    for number, (scope, keys, contained) in enumerate(requests):
        first = contained[0]
        for step, t, target, why in (
            ("quarantine", first.quarantined, quarantined, "a sign of compromise"),
            ("release", first.released, released, "reimaged"),
        ):
            request = _quarantine_request(
                f"{step}_{scope}",
                f"soar-61{number}-{step}-{first.device.name}",
                f"{first.device.name}: {why}",
                **keys,
            )
            story.respond(t, request, [target(entry.device) for entry in contained])
    return story


@dataset
def released_thing_misbehaving() -> Story:
    """Released devices show the sign they were quarantined for again (see _release_story)."""
    return _release_story(relapse=True)


@dataset
def released_thing_behaving() -> Story:
    """Released devices behave as before their incident (see _release_story)."""
    return _release_story(relapse=False)


# --- running the real handler -------------------------------------------------------------------


class DatasetError(RuntimeError):
    """The transform did not deliver every record of a dataset."""


def invocations(records: list[Record]) -> list[list[Record]]:
    """Firehose batches in arrival order; a record marked `alone` gets an invocation to itself."""
    batches: list[list[Record]] = []
    current: list[Record] = []
    for record in sorted(records, key=lambda r: r.arrival):
        if record.alone:
            if current:
                batches.append(current)
                current = []
            batches.append([record])
            continue
        current.append(record)
        if len(current) == RECORDS_PER_INVOCATION:
            batches.append(current)
            current = []
    if current:
        batches.append(current)
    return batches


@contextlib.contextmanager
def _lambda_environment() -> Iterator[Any]:
    """The handler with this project's index, its logs and EMF output kept off stdout.

    The index is pinned here, not read from the environment: datasets must not depend on the
    environment of whoever builds them.
    """
    from transform import handler  # noqa: PLC0415 - the Lambda module, loaded on use

    sink = io.StringIO()
    stream = handler.logger.registered_handler
    old_stream = stream.setStream(sink) if isinstance(stream, logging.StreamHandler) else None
    try:
        with contextlib.redirect_stdout(sink):
            yield handler.make_handler(handler.Runtime(load_settings({"SPLUNK_INDEX": INDEX})))
    finally:
        if isinstance(stream, logging.StreamHandler):
            stream.setStream(old_stream or sys.stdout)


def hec_lines(records: list[Record]) -> list[bytes]:
    """The HEC events (one JSON object per line, as emitted) the handler makes of the records."""
    lines: list[bytes] = []
    with _lambda_environment() as lambda_handler:
        for batch in invocations(records):
            arrival = max(record.arrival for record in batch)
            event = firehose_event(
                [record.data for record in batch],
                stream_arn=STREAM_ARN,
                arrival_ms=epoch_ms(arrival),
            )
            response = lambda_handler(event, LocalLambdaContext())
            for result in response["records"]:
                if result["result"] != "Ok":
                    raise DatasetError(f"record {result['recordId']} was {result['result']}")
                data = base64.b64decode(result["data"])
                lines.extend(line for line in data.split(b"\n") if line)
    return lines


def build(name: str) -> bytes:
    """One dataset's NDJSON: the handler's events in time order."""
    lines = hec_lines(DATASETS[name]().records)
    lines.sort(key=lambda line: float(json.loads(line)["time"]))
    return b"".join(line + b"\n" for line in lines)


def dataset_path(name: str) -> Path:
    return DATA_DIR / f"{name}.ndjson"


def main(argv: list[str] | None = None) -> int:
    names = argv if argv else sorted(DATASETS)
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        print(f"unknown dataset(s): {', '.join(unknown)}; known: {', '.join(sorted(DATASETS))}")
        return 2
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        data = build(name)
        dataset_path(name).write_bytes(data)
        events = data.count(b"\n")
        print(f"{dataset_path(name).relative_to(REPO)}: {events} events, {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
