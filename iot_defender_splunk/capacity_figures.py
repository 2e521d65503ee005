"""The measured figures ``capacity`` sizes a fleet with, and the command that measures them.

Two kinds of figure, both from running the real transform:

- what one representative message of each source becomes: bytes into Firehose, HEC events,
  bytes towards HEC, and the ``_raw`` bytes Splunk licenses (the ``event`` object of each HEC
  envelope, which the event endpoint indexes as the event's text). These are deterministic;
  ``tests/test_capacity_figures.py`` pins the committed file to what the transform makes now.
- how long the transform handler takes per MB of input, each kind alone, on a batch of the
  stack's default buffer size. That depends on the machine, so the file says which one.

``python -m iot_defender_splunk.capacity_figures`` (``make capacity-figures``) rewrites
``iot_defender_splunk/data/measured.json``. The messages are the fleet simulator's builders'
(the one home of AWS message shapes); only what each representative message holds is chosen
here.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from iot_defender_splunk.local_lambda import LocalLambdaContext, quiet_stdout
from iot_defender_splunk.simulator import audit, detect, inventory, iot_logs
from iot_defender_splunk.simulator import device_report as reports
from iot_defender_splunk.simulator import lifecycle as presence
from iot_defender_splunk.simulator import metric_stream as stream
from iot_defender_splunk.simulator.delivery import STREAM_ARN, Message, firehose_event
from iot_defender_splunk.simulator.device_report import Connection
from iot_defender_splunk.simulator.stamps import HOUR, MINUTE, certificate_id, stable_id
from transform import handler
from transform.batch import InputRecord, transform_batch
from transform.config import Settings

FIGURES_PATH: Final = Path(__file__).resolve().parent / "data" / "measured.json"
COMMAND: Final = "make capacity-figures"
INDEX: Final = "iot_security"
BATCH_BYTES: Final = 500_000  # the stack's TransformBufferSizeMB default, in decoded bytes
REPEATS: Final = 9
MB: Final = 1_000_000

NOW_MS: Final = 1_795_300_000_000  # 2026-11-21: every message below is stamped before it
NOW: Final = NOW_MS / 1000
PERIOD_START: Final = NOW - 100  # a Detect 5-minute period's start, the export's stamp
DEVICE_IP: Final = "198.51.100.23"

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
    ("aws:source-ip-address", {"cidrs": [f"{DEVICE_IP}/32"]}),
    ("aws:message-byte-size", {"count": 1834}),
    ("aws:num-messages-received", {"count": 96}),
    ("aws:num-messages-sent", {"count": 412}),
)
# The checks the stack's scheduled audit runs (device certificate age included), and the one
# the representative audit finds non-compliant (its finding is the audit_finding message).
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
NONCOMPLIANT_CHECK: Final = "DEVICE_CERTIFICATE_SHARED_CHECK"
AUDITED_RESOURCES: Final = 1248
AUDIT_START: Final = NOW - 2 * HOUR

Doc = dict[str, Any]


def _thing(n: int) -> str:
    return f"pump-{n:05d}"


def _data(*messages: Message) -> list[bytes]:
    return [message.data for message in messages]


def detect_export(n: int) -> list[bytes]:
    """One Detect export holding every metric the stack exports, for one device."""
    items = [
        detect.export_item(_thing(n), name, PERIOD_START, value)
        for name, value in DEVICE_SIDE_EXPORTS + CLOUD_SIDE_EXPORTS
    ]
    return _data(detect.export_message(items))


def empty_detect_export() -> bytes:
    """An export with no datapoints: the bytes every export message costs on top of them."""
    return detect.export_message([]).data


def device_report(n: int) -> list[bytes]:
    """A device-side agent report with ports, connections and network stats, long key names."""
    received = NOW - MINUTE
    document = reports.report(
        int(received) - n,
        tcp=[443, 8883],
        udp=[123],
        connections=[
            Connection("198.51.100.40:8883", 48112),
            Connection("10.20.4.17:443", 40122),
        ],
        network={"bytes_in": 482113, "bytes_out": 1288311, "packets_in": 4120, "packets_out": 5377},
    )
    return _data(reports.forwarded(document, _thing(n), received))


def lifecycle(n: int) -> list[bytes]:
    """One connect and one disconnect (connection lost) of a device, as presence publishes them."""
    thing = _thing(n)
    connected = presence.presence(thing, NOW - HOUR, "connected", DEVICE_IP, session=1)
    disconnected = presence.presence(
        thing, NOW - MINUTE, "disconnected", DEVICE_IP, reason="CONNECTION_LOST", session=1
    )
    return _data(presence.forwarded(connected), presence.forwarded(disconnected))


def violation(n: int) -> list[bytes]:
    """A Detect alarm for an unexpected listening port, through the alert topic."""
    alarmed = NOW - 2 * MINUTE
    alarm = detect.violation(
        _thing(n),
        alarmed,
        event_type="in-alarm",
        behavior="ListeningTcpPortNotAllowed",
        metric="aws:listening-tcp-ports",
        criteria={
            "comparisonOperator": "not-in-port-set",
            "value": {"ports": [443, 8883]},
            "consecutiveDatapointsToAlarm": 1,
            "consecutiveDatapointsToClear": 1,
        },
        value={"ports": [22, 443, 8883]},
        profile="iot-defender-splunk-open-ports-and-exfiltration",
    )
    return _data(detect.alarm_message(alarm, alarmed + 1))


def _audit_task(n: int) -> str:
    return stable_id("scheduled audit", n)


def audit_notification(n: int) -> list[bytes]:
    """A scheduled audit's completion: every check the stack schedules, one non-compliant."""
    checks = [
        audit.Check(check, "COMPLETED_NON_COMPLIANT", 1, AUDITED_RESOURCES)
        if check == NONCOMPLIANT_CHECK
        else audit.Check(check, total=AUDITED_RESOURCES)
        for check in AUDIT_CHECKS
    ]
    message = audit.notification(
        _audit_task(n), AUDIT_START, checks, audit_name="iot-defender-splunk-audit"
    )
    return _data(audit.notification_message(message, AUDIT_START + 20 * MINUTE))


def audit_finding(n: int) -> list[bytes]:
    """One finding of that audit's non-compliant check, as the findings collector puts it."""
    thing = _thing(n)
    resource = audit.device_certificate(certificate_id(thing), thing)
    finding = audit.finding(_audit_task(0), AUDIT_START, NONCOMPLIANT_CHECK, resource)
    return _data(audit.finding_record(finding))


def thing(n: int) -> list[bytes]:
    """One thing as the inventory collector puts it, from the fleet index."""
    record = inventory.thing_message(
        _thing(n),
        NOW - 30,
        thing_type="water-pump",
        attributes={"firmware_version": "3.2.0", "segment": "plant-a"},
        groups=["pumps", "plant-a"],
    )
    return _data(record)


def iot_log(n: int) -> list[bytes]:
    """One AWSIotLogsV2 ERROR entry in its own CloudWatch Logs subscription record (gzip)."""
    logged = NOW - MINUTE
    entry = iot_logs.entry(
        logged,
        "Connect",
        "Failure",
        client_id=_thing(n),
        source_ip=DEVICE_IP,
        reason="AUTHORIZATION_FAILURE",
        details="Authorization Failure",
    )
    return _data(iot_logs.batch_message([entry], first=logged))


def metric_stream(n: int) -> list[bytes]:
    """One AWS/IoT datapoint as the CloudWatch metric stream's JSON output format writes it;
    ``n`` picks its minute, so a batch holds no two alike."""
    point = stream.datapoint("Connect.Success", NOW - MINUTE * (1 + n), 38)
    return _data(stream.lines_message([point]))


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
        with quiet_stdout():
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
