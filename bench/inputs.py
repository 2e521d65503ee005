"""The benchmark's inputs: deterministic Firehose batches of one input kind, just under a size.

Every message is built by the simulator's builders (the one home of AWS message shapes); the
values come from one seeded generator, spread wider than a fleet's normal day so each batch
holds every value kind, dimensions, IPv6 peers and re-exported datapoints.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from iot_defender_splunk.simulator import audit, detect, device_report
from iot_defender_splunk.simulator.audit import AUDIT_TOPIC
from iot_defender_splunk.simulator.delivery import (
    EVENT_SHELL_BYTES,
    STREAM_ARN,
    firehose_event,
    request_bytes,
)
from iot_defender_splunk.simulator.device_report import Connection
from iot_defender_splunk.simulator.sns import notification
from iot_defender_splunk.simulator.stamps import compact

Doc = dict[str, Any]

SEED: Final = 20261121
KINDS: Final = ("metrics_export", "device_report", "audit_notification")
# 1 MB is the stack's default transform buffer (TransformBufferSizeMB); 6 MB is Lambda's limit.
SIZES: Final = {"1MB": 1_000_000, "3MB": 3_000_000, "6MB": 6_000_000}
ARRIVAL_MS: Final = 1_795_300_000_000  # 2026-11-21, after every generated timestamp
_MAX_MISSES: Final = 100  # candidates that did not fit before a batch counts as full

_NOV_START: Final = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
_FIVE_MIN: Final = 300
_NOV_SLOTS: Final = 20 * 86_400 // _FIVE_MIN  # 1-20 November, 5-minute Detect periods
_THING_PREFIXES: Final = ("pump", "gw-berlin", "camera-lobby", "meter", "hvac-ctrl", "valve")
_TCP_PORTS: Final = (22, 23, 80, 443, 502, 1883, 2323, 4840, 8080, 8443, 8883)
_UDP_PORTS: Final = (53, 67, 123, 161, 500, 1900, 5353, 5683)
_PROCESSES: Final = (
    "sshd",
    "pumpctl",
    "mosquitto",
    "greengrass",
    "modbus-bridge",
    "aws-iot-device-client",
    "dropbear",
    "busybox",
    "ntpd",
    "telnetd",
)
_INTERFACES: Final = ("eth0", "eth1", "wlan0")
_METRIC_KINDS: Final = {
    "aws:num-authorization-failures": "count",
    "aws:num-connection-attempts": "count",
    "aws:num-disconnects": "count",
    "aws:num-messages-sent": "count",
    "aws:num-messages-received": "count",
    "aws:message-byte-size": "count",
    "aws:all-bytes-in": "count",
    "aws:all-bytes-out": "count",
    "aws:all-packets-in": "count",
    "aws:all-packets-out": "count",
    "aws:num-established-tcp-connections": "count",
    "aws:num-listening-tcp-ports": "count",
    "aws:num-listening-udp-ports": "count",
    "aws:listening-tcp-ports": "ports",
    "aws:listening-udp-ports": "ports",
    "aws:source-ip-address": "cidrs",
    "aws:destination-ip-addresses": "cidrs",
    "cpu_usage_pct": "number",
    "free_memory_mb": "number",
    "temperature_readings": "numbers",
    "queue_depths": "numbers",
    "running_processes": "strings",
    "loaded_kernel_modules": "strings",
}
# Cloud-side metrics are stamped with the 5-minute period; device-side ones with report time.
_CLOUD_SIDE: Final = frozenset(
    {
        "aws:num-authorization-failures",
        "aws:num-connection-attempts",
        "aws:num-disconnects",
        "aws:num-messages-sent",
        "aws:num-messages-received",
        "aws:message-byte-size",
        "aws:source-ip-address",
    }
)
_AUDIT_CHECKS: Final = (
    "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
    "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
    "CA_CERTIFICATE_KEY_QUALITY_CHECK",
    "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK",
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK",
    "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
    "CA_CERTIFICATE_EXPIRING_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
    "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
    "LOGGING_DISABLED_CHECK",
    "DEVICE_CERTIFICATE_AGE_CHECK",
)
_MIN_EXPORT_ITEMS: Final = 20
_MAX_EXPORT_ITEMS: Final = 60


@dataclass
class Draft:
    """A message still being shaped: its document, how its producer encodes it for Firehose,
    and how to make it smaller (the last record of a batch may have to shrink to fit)."""

    document: Doc
    encode: Callable[[Doc], bytes]
    trim: Callable[[Doc], bool] | None = None


Maker = Callable[[random.Random], Draft]


def _november(rng: random.Random) -> float:
    """A 5-minute period start in November 2026, before the batch's arrival time."""
    return _NOV_START + rng.randrange(_NOV_SLOTS) * _FIVE_MIN


def _thing(rng: random.Random) -> str:
    return f"{rng.choice(_THING_PREFIXES)}-{rng.randrange(10_000):04d}"


def _ipv4(rng: random.Random) -> str:
    first = rng.choice((10, 172, 192, 198, 203))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _metric_value(kind: str, rng: random.Random) -> Doc:
    """One Detect ``value`` object of the given kind, with realistic magnitudes."""
    if kind == "count":
        return {"count": rng.randrange(10 ** rng.randint(1, 7))}
    if kind == "ports":
        return {"ports": sorted(rng.sample(_TCP_PORTS, rng.randint(1, 6)))}
    if kind == "cidrs":
        return {"cidrs": [f"{_ipv4(rng)}/32" for _ in range(rng.randint(1, 5))]}
    if kind == "number":
        return {"number": round(rng.uniform(0, 100), 1)}
    if kind == "numbers":
        return {"numbers": [round(rng.uniform(20, 90), 1) for _ in range(rng.randint(2, 8))]}
    return {"strings": rng.sample(_PROCESSES, rng.randint(2, 6))}


def _metric_pairs(rng: random.Random, things: list[str], count: int) -> list[tuple[str, str]]:
    """Distinct (thing, metric) pairs, every value kind first so each export holds all six."""
    first: list[tuple[str, str]] = []
    for kind in dict.fromkeys(_METRIC_KINDS.values()):
        names = [name for name, k in _METRIC_KINDS.items() if k == kind]
        first.append((rng.choice(things), rng.choice(names)))
    rest = [
        (thing, name) for thing in things for name in _METRIC_KINDS if (thing, name) not in first
    ]
    return first + rng.sample(rest, count - len(first))


def _metric_item(rng: random.Random, thing: str, name: str, period: float, report: float) -> Doc:
    value = _metric_value(_METRIC_KINDS[name], rng)
    dimension = None
    if name == "aws:num-authorization-failures" and rng.random() < 0.3:
        dimension = {"name": "TopicFilterCommands", "operator": rng.choice(("IN", "NOT_IN"))}
    t = period if name in _CLOUD_SIDE else report
    return detect.export_item(thing, name, t, value, dimension=dimension)


def _trim_export(doc: Doc) -> bool:
    """Drop the last datapoint, so the final record of a batch can fill the remaining room."""
    if len(doc["metrics"]) <= _MIN_EXPORT_ITEMS:
        return False
    doc["metrics"].pop()
    return True


def metrics_export(rng: random.Random) -> Draft:
    """One Detect export message; about 3% of datapoints arrive again as a higher version."""
    things = [_thing(rng) for _ in range(rng.randint(4, 8))]
    period = _november(rng)
    report = period + rng.randrange(1, 300)
    total = rng.randint(_MIN_EXPORT_ITEMS, _MAX_EXPORT_ITEMS)
    again = sum(rng.random() < 0.03 for _ in range(total))
    pairs = _metric_pairs(rng, things, total - again)
    items = [_metric_item(rng, thing, name, period, report) for thing, name in pairs]
    for original in rng.sample(items, again):
        value = _metric_value(_METRIC_KINDS[original["name"]], rng)
        items.append({**original, "value": value, "version": 2})
    return Draft(
        detect.export(items), lambda doc: detect.export_message(doc["metrics"]).data, _trim_export
    )


def _ports(rng: random.Random, ports: tuple[int, ...], low: int, high: int) -> list[int]:
    return sorted(rng.sample(ports, rng.randint(low, high)))


def _connections(rng: random.Random) -> list[Connection]:
    connections = []
    for _ in range(rng.randint(0, 10)):
        host = f"[2001:db8::{rng.randrange(1, 0xFFFF):x}]" if rng.random() < 0.05 else _ipv4(rng)
        address = f"{host}:{rng.choice(_TCP_PORTS)}"
        local_port = rng.randrange(32768, 61000)
        connections.append(Connection(address, local_port, rng.choice(_INTERFACES)))
    return connections


def _custom_metrics(rng: random.Random) -> dict[str, device_report.CustomValue]:
    return {
        "cpu_usage_pct": device_report.number(round(rng.uniform(0, 100), 1)),
        "temperature_readings": device_report.numbers(
            [round(rng.uniform(30, 70), 1) for _ in range(rng.randint(2, 6))]
        ),
        "running_processes": device_report.strings(rng.sample(_PROCESSES, rng.randint(2, 6))),
        "peer_addresses": device_report.addresses([_ipv4(rng) for _ in range(rng.randint(1, 4))]),
    }


def device_report_message(rng: random.Random) -> Draft:
    """A device-side report with long key names, as the device-report rule forwards it."""
    received = _november(rng) + rng.randrange(_FIVE_MIN * 1000) / 1000
    connections = _connections(rng)
    tcp = _ports(rng, _TCP_PORTS, 1, 8)
    udp = _ports(rng, _UDP_PORTS, 0, 4)
    interfaces = {port: rng.choice(_INTERFACES) for port in (*tcp, *udp)}
    document = device_report.report(
        int(received),
        tcp=tcp,
        udp=udp,
        connections=connections,
        network={
            "bytes_in": rng.randrange(10**7),
            "bytes_out": rng.randrange(10**7),
            "packets_in": rng.randrange(10**5),
            "packets_out": rng.randrange(10**5),
        },
        custom=_custom_metrics(rng),
        interfaces=interfaces,
    )
    thing = _thing(rng)
    return Draft(document, lambda doc: device_report.forwarded(doc, thing, received).data)


def _audit_check(rng: random.Random, name: str) -> audit.Check:
    total = rng.choice((1, 2, 14, 1187, 1248, 25_000))
    if rng.random() >= 0.35:
        return audit.Check(name, total=total)
    noncompliant = rng.randint(1, min(total, 60))
    suppressed = rng.randint(0, 3) if rng.random() < 0.3 else None
    return audit.Check(name, "COMPLETED_NON_COMPLIANT", noncompliant, total, suppressed=suppressed)


def audit_notification(rng: random.Random) -> Draft:
    """An audit completion notification inside the SNS envelope (Message is JSON text)."""
    started = _november(rng) + rng.randrange(_FIVE_MIN)
    checks = [_audit_check(rng, name) for name in _AUDIT_CHECKS]
    task_type = rng.choice(("SCHEDULED_AUDIT_TASK", "ON_DEMAND_AUDIT_TASK"))
    name = rng.choice(("daily-fleet-audit", "weekly-full-audit"))
    message = audit.notification(
        f"{rng.getrandbits(128):032x}",
        started,
        checks,
        task_type=task_type,
        audit_name=name if task_type == "SCHEDULED_AUDIT_TASK" else None,
    )
    sent = started + rng.randrange(60, 1800)
    return Draft(message, lambda doc: compact(notification(AUDIT_TOPIC, doc, sent)))


MAKERS: Final[dict[str, Maker]] = {
    "metrics_export": metrics_export,
    "device_report": device_report_message,
    "audit_notification": audit_notification,
}


@dataclass(frozen=True)
class Batch:
    """One generated Firehose invocation and the sizes the figures are computed from."""

    kind: str
    size: str
    event: Doc
    records: int
    input_bytes: int  # decoded record bytes: what ms/MB is measured on
    request_bytes: int  # json.dumps(event): what Lambda receives


def _fit(draft: Draft, sequence: int, room: int) -> bytes | None:
    """The message's bytes when they fit in ``room``, trimming it first if it can be."""
    while True:
        payload = draft.encode(draft.document)
        if request_bytes(sequence, payload) <= room:
            return payload
        if draft.trim is None or not draft.trim(draft.document):
            return None


def _fill(kind: str, rng: random.Random, limit: int) -> list[bytes]:
    """Payloads whose request stays at or under ``limit``, as close to it as the shapes allow.

    Near the end, candidates that do not fit are skipped (smaller ones may follow) and export
    messages are trimmed; other kinds keep their shape and may end up to a record short.
    """
    payloads: list[bytes] = []
    room = limit - EVENT_SHELL_BYTES + len(", ")  # n records are joined by n - 1 separators
    misses = 0
    while misses < _MAX_MISSES and room > request_bytes(len(payloads), b""):
        payload = _fit(MAKERS[kind](rng), len(payloads), room)
        if payload is None:
            misses += 1
            continue
        room -= request_bytes(len(payloads), payload)
        payloads.append(payload)
    return payloads


def event_of(payloads: list[bytes]) -> Doc:
    """The Firehose transformation event of the payloads, all arrived at ARRIVAL_MS."""
    return firehose_event(payloads, stream_arn=STREAM_ARN, arrival_ms=ARRIVAL_MS)


def build_batch(kind: str, size: str) -> Batch:
    """The deterministic batch of one kind whose request is just below ``SIZES[size]``."""
    rng = random.Random(f"{SEED}:{kind}:{size}")
    payloads = _fill(kind, rng, SIZES[size] - 1)
    event = event_of(payloads)
    return Batch(
        kind=kind,
        size=size,
        event=event,
        records=len(payloads),
        input_bytes=sum(map(len, payloads)),
        request_bytes=len(json.dumps(event)),
    )


def tiny_event() -> Doc:
    """One record of each kind: the first call compiles each kind's schema once."""
    rng = random.Random(SEED)
    drafts = [MAKERS[kind](rng) for kind in KINDS]
    return event_of([draft.encode(draft.document) for draft in drafts])
