"""The measured figures ``capacity`` sizes a fleet with, and the command that measures them.

Two kinds of figure, both from running the real transform:

- what one representative message of each source becomes: bytes into Firehose, HEC events,
  bytes towards HEC, and the ``_raw`` bytes Splunk licenses (the ``event`` object of each HEC
  envelope, which the event endpoint indexes as the event's text). These are deterministic;
  ``tests/test_capacity_figures.py`` pins the committed file to what the transform makes now.
- how long the transform handler takes per MB of input, each kind alone, on a batch of the
  stack's default buffer size. That depends on the machine, so the file says which one.

``python -m iot_defender_splunk.capacity_figures`` (``make capacity-figures``) rewrites
``iot_defender_splunk/data/measured.json``. The messages are built here until the fleet
simulator is their one home: swap ``REPRESENTATIVE`` for it then, and re-measure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import gzip
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from iot_defender_splunk.local_lambda import LocalLambdaContext
from iot_defender_splunk.simulator.delivery import STREAM_ARN, firehose_event, rule_record
from transform import handler
from transform.batch import InputRecord, transform_batch
from transform.config import Settings

FIGURES_PATH: Final = Path(__file__).resolve().parent / "data" / "measured.json"
COMMAND: Final = "make capacity-figures"
INDEX: Final = "iot_security"
BATCH_BYTES: Final = 1_000_000  # the stack's TransformBufferSizeMB default, in decoded bytes
REPEATS: Final = 9
MB: Final = 1_000_000

NOW_MS: Final = 1_795_300_000_000  # 2026-11-21: every message below is stamped before it
_PERIOD_MS: Final = 1_795_299_900_000  # a Detect 5-minute period start
_ACCOUNT: Final = "123456789012"
_SNS: Final = "https://sns.eu-west-1.amazonaws.com"

# The Detect metrics the stack's rule-based security profile exports (sam/template.yaml):
# device-side ones arrive with each device report, cloud-side ones once per 5-minute period.
DEVICE_SIDE_EXPORTS: Final = (
    ("aws:listening-tcp-ports", {"ports": [443, 8883, 22]}),
    ("aws:listening-udp-ports", {"ports": [68, 123]}),
    ("aws:num-listening-tcp-ports", {"count": 3}),
    ("aws:num-listening-udp-ports", {"count": 2}),
    ("aws:all-bytes-out", {"count": 1288311}),
    ("aws:all-packets-out", {"count": 5377}),
    ("aws:all-bytes-in", {"count": 482113}),
    ("aws:all-packets-in", {"count": 4120}),
    ("aws:destination-ip-addresses", {"cidrs": ["10.20.4.17/32", "198.51.100.40/32"]}),
    ("aws:num-established-tcp-connections", {"count": 2}),
)
CLOUD_SIDE_EXPORTS: Final = (
    ("aws:num-authorization-failures", {"count": 0}),
    ("aws:num-connection-attempts", {"count": 1}),
    ("aws:num-disconnects", {"count": 0}),
    ("aws:disconnect-duration", {"count": 0}),
    ("aws:source-ip-address", {"cidrs": ["198.51.100.23/32"]}),
    ("aws:message-byte-size", {"count": 1834}),
    ("aws:num-messages-received", {"count": 96}),
    ("aws:num-messages-sent", {"count": 412}),
)
# The checks the stack's scheduled audit runs (device certificate age included).
AUDIT_CHECKS: Final = (
    "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
    "CA_CERTIFICATE_EXPIRING_CHECK",
    "CA_CERTIFICATE_KEY_QUALITY_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
    "DEVICE_CERTIFICATE_AGE_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK",
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
    "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK",
    "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK",
    "LOGGING_DISABLED_CHECK",
    "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
    "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
)

Doc = dict[str, Any]


def _compact(document: object) -> bytes:
    return orjson.dumps(document)


def _thing(n: int) -> str:
    return f"pump-{n:05d}"


def _sns(topic: str, message: Doc, n: int) -> bytes:
    """SNS's envelope as a Firehose subscription without raw delivery puts it."""
    subscription = f"arn:aws:sns:eu-west-1:{_ACCOUNT}:{topic}:919ac4c4-9549-4349-84c3-dd91bb14773d"
    return _compact(
        {
            "Type": "Notification",
            "MessageId": f"5eaed759-6237-459e-b27b-{n:012d}",
            "TopicArn": f"arn:aws:sns:eu-west-1:{_ACCOUNT}:{topic}",
            "Message": _compact(message).decode(),
            "Timestamp": "2026-11-21T09:45:00.410Z",
            "SignatureVersion": "1",
            "Signature": base64.b64encode(bytes(range(256))).decode(),
            "SigningCertURL": f"{_SNS}/SimpleNotificationService-{'e681a5575b6f0564' * 2}.pem",
            "UnsubscribeURL": f"{_SNS}/?Action=Unsubscribe&SubscriptionArn={subscription}",
        }
    )


def _export(n: int, metrics: tuple[tuple[str, Doc], ...]) -> Doc:
    items = [
        {"name": name, "thing": _thing(n), "value": value, "version": 1, "timestamp": _PERIOD_MS}
        for name, value in metrics
    ]
    return {"version": "1.0", "metrics": items}


def detect_export(n: int) -> list[bytes]:
    """One Detect export holding every metric the stack exports, for one device."""
    export = _export(n, DEVICE_SIDE_EXPORTS + CLOUD_SIDE_EXPORTS)
    return [rule_record("detect-export", _compact(export))]


def empty_detect_export() -> bytes:
    """An export with no datapoints: the bytes every export message costs on top of them."""
    return rule_record("detect-export", _compact(_export(0, ())))


def device_report(n: int) -> list[bytes]:
    """A device-side agent report with ports, connections and network stats, long key names."""
    report = {
        "header": {"report_id": NOW_MS // 1000 - n, "version": "1.0"},
        "metrics": {
            "listening_tcp_ports": {
                "ports": [{"port": 443, "interface": "eth0"}, {"port": 8883, "interface": "eth0"}],
                "total": 2,
            },
            "listening_udp_ports": {"ports": [{"port": 123, "interface": "eth0"}], "total": 1},
            "tcp_connections": {
                "established_connections": {
                    "connections": [
                        {"remote_addr": "198.51.100.40:8883", "local_port": 48112},
                        {"remote_addr": "10.20.4.17:443", "local_port": 40122},
                    ],
                    "total": 2,
                }
            },
            "network_stats": {
                "bytes_in": 482113,
                "bytes_out": 1288311,
                "packets_in": 4120,
                "packets_out": 5377,
            },
        },
    }
    added = {"thing_name": _thing(n), "received_at": NOW_MS - 60_000 - n}
    return [rule_record("device-report", _compact(report), **added)]


def lifecycle(n: int) -> list[bytes]:
    """One connect and one disconnect of a device, as the presence topics publish them."""
    common = {
        "clientId": _thing(n),
        "sessionIdentifier": f"b8dc72fc-d74a-4b53-921e-{n:012d}",
        "principalIdentifier": "fac0e7d6401448cdbbcfc8cbbc80dce4da6447470c0863676d595f009f9d5a57",
        "ipAddress": "198.51.100.23",
        "versionNumber": 42,
    }
    connected = {**common, "timestamp": NOW_MS - 3_600_000, "eventType": "connected"}
    disconnected = {
        **common,
        "timestamp": NOW_MS - 60_000,
        "eventType": "disconnected",
        "clientInitiatedDisconnect": True,
        "disconnectReason": "CLIENT_INITIATED_DISCONNECT",
    }
    return [rule_record("lifecycle", _compact(event)) for event in (connected, disconnected)]


def violation(n: int) -> list[bytes]:
    """A Detect alarm for an unexpected listening port, through the alert topic."""
    alarm = {
        "violationId": f"19063b8d0b3203c72cd917e5{n:08x}",
        "thingName": _thing(n),
        "securityProfileName": "iot-defender-splunk-open-ports-and-exfiltration",
        "behavior": {
            "name": "ListeningTcpPortNotAllowed",
            "metric": "aws:listening-tcp-ports",
            "criteria": {
                "comparisonOperator": "not-in-port-set",
                "value": {"ports": [443, 8883]},
                "consecutiveDatapointsToAlarm": 1,
                "consecutiveDatapointsToClear": 1,
            },
            "suppressAlerts": False,
        },
        "metricValue": {"ports": [22, 443, 8883]},
        "violationEventType": "in-alarm",
        "violationEventTime": NOW_MS - 120_000,
    }
    return [_sns("iot-defender-splunk-alerts", alarm, n)]


def audit_notification(n: int) -> list[bytes]:
    """A scheduled audit's completion: every check the stack schedules, one non-compliant."""
    details = [
        {
            "checkName": check,
            "checkRunStatus": "COMPLETED_COMPLIANT",
            "nonCompliantResourcesCount": 0,
            "totalResourcesCount": 1248,
        }
        for check in AUDIT_CHECKS
    ]
    details[7] |= {"checkRunStatus": "COMPLETED_NON_COMPLIANT", "nonCompliantResourcesCount": 1}
    message = {
        "accountId": _ACCOUNT,
        "taskId": f"1da65ff6040bc44fdffa2b9b{n:08x}",
        "taskStatus": "COMPLETED",
        "taskType": "SCHEDULED_AUDIT_TASK",
        "scheduledAuditName": "iot-defender-splunk-audit",
        "failedChecksCount": 0,
        "canceledChecksCount": 0,
        "nonCompliantChecksCount": 1,
        "compliantChecksCount": len(details) - 1,
        "totalChecksCount": len(details),
        "taskStartTime": NOW_MS - 7_200_000,
        "auditDetails": details,
    }
    return [_sns("iot-defender-splunk-audit", message, n)]


def audit_finding(n: int) -> list[bytes]:
    """One non-compliant finding as the findings collector puts it (ListAuditFindings item)."""
    finding = {
        "findingId": f"c5b29ebc-ecb8-4c81-8ec8-{n:012d}",
        "taskId": "1da65ff6040bc44fdffa2b9b6e4a0277",
        "checkName": "DEVICE_CERTIFICATE_SHARED_CHECK",
        "taskStartTime": (NOW_MS - 7_200_000) / 1000,
        "findingTime": (NOW_MS - 7_100_000) / 1000,
        "severity": "CRITICAL",
        "nonCompliantResource": {
            "resourceType": "DEVICE_CERTIFICATE",
            "resourceIdentifier": {
                "deviceCertificateId": "7e5575db454c6c0b9e11efccd91737aa34074c6304ea966bd8350a0e"
            },
        },
        "relatedResources": [
            {"resourceType": "CLIENT_ID", "resourceIdentifier": {"clientId": _thing(n)}},
        ],
        "reasonForNonCompliance": "Certificate shared by one or more devices.",
        "reasonForNonComplianceCode": "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES",
        "isSuppressed": False,
    }
    return [_compact(finding)]


def thing(n: int) -> list[bytes]:
    """One thing as the inventory collector puts it, from the fleet index."""
    record = {
        "recordType": "aws:iot:thing",
        "schemaVersion": 1,
        "collectedAt": NOW_MS - 30_000,
        "collector": "fleet-index",
        "thing": {
            "thingName": _thing(n),
            "thingId": f"ca2f0360-280d-4615-b18d-{n:012d}",
            "thingTypeName": "water-pump",
            "attributes": {"firmware_version": "3.2.0", "segment": "plant-a"},
            "thingGroupNames": ["pumps", "plant-a"],
            "connectivity": {"connected": True, "timestamp": NOW_MS - 3_600_000},
        },
    }
    return [_compact(record)]


def iot_log(n: int) -> list[bytes]:
    """One AWSIotLogsV2 ERROR entry in its own CloudWatch Logs subscription record (gzip)."""
    entry = {
        "timestamp": "2026-11-21 09:46:40.000",
        "logLevel": "ERROR",
        "traceId": f"3c7de19d-7b3e-4c51-b07f-{n:012d}",
        "accountId": _ACCOUNT,
        "status": "Failure",
        "eventType": "Connect",
        "protocol": "MQTT",
        "clientId": _thing(n),
        "principalId": "fac0e7d6401448cdbbcfc8cbbc80dce4da6447470c0863676d595f009f9d5a57",
        "sourceIp": "198.51.100.23",
        "sourcePort": 54761,
        "reason": "AUTHORIZATION_FAILURE",
        "details": "Authorization Failure",
    }
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": _ACCOUNT,
        "logGroup": "AWSIotLogsV2",
        "logStream": "d010e406-3c72-4341-a2d7-315c2d02cf63",
        "subscriptionFilters": ["iot-defender-splunk-to-splunk"],
        "logEvents": [
            {"id": f"3266529253575400841560014922274747925654449505934{n:07d}",
             "timestamp": NOW_MS - 60_000, "message": json.dumps(entry)},
        ],
    }  # fmt: skip
    return [gzip.compress(_compact(payload), mtime=0)]


def metric_stream(n: int) -> list[bytes]:
    """One AWS/IoT datapoint as the CloudWatch metric stream's JSON output format writes it."""
    datapoint = {
        "metric_stream_name": "iot-defender-splunk-aws-iot",
        "account_id": _ACCOUNT,
        "region": "eu-west-1",
        "namespace": "AWS/IoT",
        "metric_name": "Connect.Success",
        "dimensions": {"Protocol": "MQTT"},
        "timestamp": NOW_MS - 60_000 * (1 + n % 1000),
        "value": {"max": 1.0, "min": 1.0, "sum": 38.0, "count": 38.0},
        "unit": "None",
    }
    return [_compact(datapoint) + b"\n"]


Builder = Callable[[int], list[bytes]]

# Each source's representative message(s), as its producer puts them into Firehose; ``n``
# varies identities so that a batch of them holds no duplicate Detect datapoints.
REPRESENTATIVE: Final[dict[str, Builder]] = {
    "detect_export": detect_export,
    "device_report": device_report,
    "lifecycle": lifecycle,
    "violation": violation,
    "audit_notification": audit_notification,
    "audit_finding": audit_finding,
    "thing": thing,
    "iot_log": iot_log,
    "metric_stream": metric_stream,
}


def _transformed(records: list[bytes]) -> list[Doc]:
    """The HEC envelopes the transform makes of these records, in one invocation."""
    inputs = [
        InputRecord(f"{i:056d}", base64.b64encode(record).decode(), NOW_MS)
        for i, record in enumerate(records)
    ]
    report = transform_batch(
        inputs,
        settings=Settings(default_index=INDEX),
        stream_source=STREAM_ARN,
        now=NOW_MS / 1000,
        reput=None,
    )
    data = b"".join(base64.b64decode(outcome.data) for outcome in report.outcomes)
    return [json.loads(line) for line in data.splitlines()]


def message_figures(kind: str) -> Doc:
    """What the kind's representative message(s) become: all exact byte and event counts."""
    records = REPRESENTATIVE[kind](0)
    envelopes = _transformed(records)
    events: Counter[str] = Counter()
    raw: Counter[str] = Counter()
    for envelope in envelopes:
        events[envelope["sourcetype"]] += 1
        raw[envelope["sourcetype"]] += len(orjson.dumps(envelope["event"]))
    figures: Doc = {
        "messages": len(records),
        "record_bytes": sum(map(len, records)),
        "hec_bytes": sum(len(orjson.dumps(envelope)) + 1 for envelope in envelopes),
        "events": dict(sorted(events.items())),
        "raw_bytes": dict(sorted(raw.items())),
    }
    if kind == "detect_export":
        figures["datapoints"] = len(DEVICE_SIDE_EXPORTS + CLOUD_SIDE_EXPORTS)
        figures["empty_record_bytes"] = len(empty_detect_export())
    return figures


def all_message_figures() -> Doc:
    return {kind: message_figures(kind) for kind in REPRESENTATIVE}


# --- timing (machine-dependent) ----------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Send fd 1 to /dev/null while the handler runs: its logger and metrics write there."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def batch_of(kind: str, size: int = BATCH_BYTES) -> list[bytes]:
    """Records of one kind, distinct identities, until their bytes reach ``size``."""
    records: list[bytes] = []
    total = 0
    n = 0
    while total < size:
        for record in REPRESENTATIVE[kind](n):
            records.append(record)
            total += len(record)
        n += 1
    return records


def ms_per_mb(kind: str, repeats: int = REPEATS) -> float:
    """Best wall-clock of the handler on a buffer-sized batch of one kind, per MB of input."""
    records = batch_of(kind)
    event = firehose_event(records, arrival_ms=NOW_MS)
    lambda_handler = handler.make_handler(handler.Runtime(Settings(default_index=INDEX)))
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        with _quiet():
            start = time.perf_counter()
            lambda_handler(event, LocalLambdaContext())
            best = min(best, time.perf_counter() - start)
    return round(best * 1000 / (sum(map(len, records)) / MB), 2)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure() -> Doc:
    """Every figure: the deterministic ones, then the handler's timing on this machine."""
    return {
        "command": COMMAND,
        "measured_on": datetime.now(UTC).date().isoformat(),
        "machine": {
            "python": f"{platform.python_version()} ({platform.python_implementation()})",
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "platform": f"{platform.system()} {platform.machine()}",
        },
        "messages": all_message_figures(),
        "transform": {
            "batch_bytes": BATCH_BYTES,
            "repeats": REPEATS,
            "ms_per_mb": {kind: ms_per_mb(kind) for kind in REPRESENTATIVE},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iot_defender_splunk.capacity_figures",
        description="Measure the figures `iot-defender-splunk capacity` sizes a fleet with.",
    )
    parser.add_argument("--out", type=Path, default=FIGURES_PATH, help="JSON file to write")
    args = parser.parse_args(argv)
    figures = measure()
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
