"""The messages a simulated fleet makes AWS send: normal days, with the incidents in them.

Every device reports its device-side metrics every 5 minutes (Device Defender's shortest
period). With Detect they reach Firehose as Detect's metrics exports (with the cloud-side
metrics and alarms only Detect has); without it, as the reports themselves through the
device-report rule. Beside them: lifecycle events and Connect logs of each MQTT session,
internet scanners' authentication errors, the AWS/IoT metric stream counting them, the daily
audit and the hourly inventory.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from iot_defender_splunk.simulator import (
    audit,
    detect,
    device_report,
    inventory,
    iot_logs,
    lifecycle,
    metric_stream,
)
from iot_defender_splunk.simulator.delivery import Record, by_arrival
from iot_defender_splunk.simulator.device_report import Connection
from iot_defender_splunk.simulator.fleet import Device, Fleet
from iot_defender_splunk.simulator.incidents import (
    AuditFindings,
    AuthenticationStorm,
    ClonedCertificate,
    Exfiltration,
    Incident,
    OpenPorts,
)
from iot_defender_splunk.simulator.stamps import DAY, HOUR, IOT_ENDPOINT, MINUTE, stable_id

PERIOD = detect.PERIOD_SECONDS
REPORT_LATENCY = 1.0  # from a device's report to its record in Firehose
EXPORT_DELAY = 90.0  # Detect exports a period's datapoints this long after the period ends
EXPORT_THINGS = 20  # things per export message, well under MQTT's 128 KB
LOG_DELAY = 5.0  # CloudWatch Logs delivers a burst of entries this long after its last
STREAM_DELAY = 120.0  # the metric stream delivers a minute's datapoints this long after it
AUDIT_DELAYS = (20 * MINUTE, 30 * MINUTE)  # notification, then the collector's findings page
SCANS_PER_HOUR = (2, 8)  # internet scanners presenting unknown certificates, fleet-wide
AUDIT_CHECKS = (
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "LOGGING_DISABLED_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
    "CA_CERTIFICATE_KEY_QUALITY_CHECK",
)
_UNKNOWN_CERTIFICATE = "Certificate is not registered with AWS IoT"


@dataclass(frozen=True)
class Reading:
    """What one device-side report holds."""

    t: float
    tcp: tuple[int, ...]
    udp: tuple[int, ...]
    connections: tuple[Connection, ...]
    network: dict[str, int]


@dataclass
class _Sessions:
    """A device's MQTT connections: lifecycle events, Connect logs and per-period counts."""

    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    logs: list[iot_logs.LogEntry] = field(default_factory=list)
    attempts: Counter[float] = field(default_factory=Counter)
    disconnects: Counter[float] = field(default_factory=Counter)
    addresses: dict[float, set[str]] = field(default_factory=lambda: defaultdict(set))

    def connect(self, device: Device, t: float, ip: str, session: int, *, log: bool) -> None:
        self.events.append(
            (t, lifecycle.presence(device.name, t, "connected", ip, session=session))
        )
        if log:
            self.logs.append(
                iot_logs.entry(t, "Connect", "Success", client_id=device.name, source_ip=ip)
            )
        period = t - t % PERIOD
        self.attempts[period] += 1
        self.addresses[period].add(ip)

    def disconnect(self, device: Device, t: float, ip: str, session: int, reason: str) -> None:
        event = lifecycle.presence(
            device.name, t, "disconnected", ip, reason=reason, session=session
        )
        self.events.append((t, event))
        self.disconnects[t - t % PERIOD] += 1


class Traffic:
    """The records a fleet's day sends into Firehose between ``start`` and ``end``."""

    def __init__(
        self,
        fleet: Fleet,
        incidents: Sequence[Incident],
        *,
        start: float,
        end: float,
        detect: bool,
        seed: int,
    ) -> None:
        self.fleet = fleet
        self.incidents = incidents
        self.start = start
        self.end = end
        self.detect = detect
        self.seed = seed
        self.periods = list(range(math.ceil(start / PERIOD) * PERIOD, math.ceil(end), PERIOD))

    def _rng(self, *parts: object) -> random.Random:
        return random.Random("|".join(map(str, (self.seed, *parts))))

    def _changes(self, device: Device) -> list[tuple[Incident, Any]]:
        return [
            (incident, incident.script.change)
            for incident in self.incidents
            if device in incident.devices
        ]

    def records(self) -> list[Record]:
        """Every record, producer by producer (not in arrival order: ``simulate_fleet`` sorts
        them, and equal arrivals keep this order)."""
        return list(itertools.chain.from_iterable(self._producers()))

    def arrivals(self) -> Iterator[Record]:
        """Every record in arrival order, built as it is reached: the order a stable sort of
        ``records()`` gives, while only the producers' current state is held."""
        return heapq.merge(*self._producers(), key=by_arrival)

    def _producers(self) -> list[Iterable[Record]]:
        """Each producer's records in arrival order, listed in the order ``records()`` has
        always had (which settles equal arrivals). The bulky ones (device reports, Detect's
        exports, the inventory) are generators; the rest are short lists."""
        sessions = {device.name: self._sessions(device) for device in self.fleet.devices}
        producers: list[Iterable[Record]] = []
        for device in self.fleet.devices:
            events = sessions[device.name].events
            lifecycles = (lifecycle.forwarded(e).arriving(t + REPORT_LATENCY) for t, e in events)
            producers.append(sorted(lifecycles, key=by_arrival))
            if self.detect:
                producers.append(sorted(self._alarms(device), key=by_arrival))
            else:
                producers.append(self._reports(device))
        if self.detect:
            producers.append(self._exports(sessions))
        logs = list(self._scans())
        for device in self.fleet.devices:
            logs += sessions[device.name].logs
        producers.append(sorted(self._log_records(logs), key=by_arrival))
        producers.append(self._stream_records(logs))
        producers.append(self._inventory())
        producers.append(sorted(self._audits(), key=by_arrival))
        return producers

    # --- device-side metrics -----------------------------------------------------------------

    def readings(self, device: Device) -> Iterator[Reading]:
        """The device's reports, one per period, with its incidents' changes."""
        kind = device.thing_type
        rng = self._rng("readings", device.name)
        local_ports = [rng.randrange(32768, 61000) for _ in range(len(kind.peers) + 2)]
        usual = [Connection(f"{IOT_ENDPOINT}:8883", local_ports[0])]
        usual += [
            Connection(peer, port) for peer, port in zip(kind.peers, local_ports[1:], strict=False)
        ]
        changes = self._changes(device)
        for period in self.periods:
            t = period + device.report_offset
            if not self.start <= t < self.end:
                continue
            level = device.daily_factor(t) / (HOUR / PERIOD)
            tcp = list(kind.tcp)
            connections = list(usual)
            factor = 1.0
            for incident, change in changes:
                if isinstance(change, OpenPorts):
                    tcp += [port for port, before in change.ports if t >= self.end - before]
                elif isinstance(change, Exfiltration) and t >= incident.start:
                    factor = change.factor
                    connections.append(Connection(change.destination, local_ports[-1]))
            network = {
                "bytes_in": round(kind.bytes_in * level * rng.uniform(0.9, 1.1)),
                "bytes_out": round(kind.bytes_out * level * rng.uniform(0.9, 1.1) * factor),
                "packets_in": round(kind.packets_in * level * rng.uniform(0.9, 1.1)),
                "packets_out": round(kind.packets_out * level * rng.uniform(0.9, 1.1) * factor),
            }
            yield Reading(t, tuple(tcp), kind.udp, tuple(connections), network)

    def _reports(self, device: Device) -> Iterator[Record]:
        """The device's reports as the device-report rule forwards them (without Detect)."""
        for reading in self.readings(device):
            yield report_record(device, reading)

    def _cloud_side_items(
        self, device: Device, period: float, sessions: _Sessions
    ) -> list[dict[str, Any]]:
        """Detect's cloud-side metrics of one period, stamped with its start."""
        kind = device.thing_type
        rng = self._rng("cloud", device.name, period)
        level = device.daily_factor(period) / (HOUR / PERIOD)
        messages = round(kind.messages * level * rng.uniform(0.9, 1.1))
        addresses = sorted(sessions.addresses.get(period, ())) or [device.ip]
        counts = {
            "aws:num-messages-sent": messages,
            "aws:num-messages-received": round(messages * 0.2),
            "aws:message-byte-size": round(messages * kind.message_bytes),
            "aws:num-authorization-failures": 0,
            "aws:num-connection-attempts": sessions.attempts[period],
            "aws:num-disconnects": sessions.disconnects[period],
        }
        items = [
            detect.export_item(device.name, name, period, {"count": count})
            for name, count in counts.items()
        ]
        cidrs = {"cidrs": [f"{ip}/32" for ip in addresses]}
        items.append(detect.export_item(device.name, "aws:source-ip-address", period, cidrs))
        return items

    def _exports(self, sessions: dict[str, _Sessions]) -> Iterator[Record]:
        """Each period's datapoints as Detect exports them, a few things per message, built a
        period at a time: every device's report of the period, then its cloud-side metrics."""
        devices = self.fleet.devices
        # A device reports in every period from the first; only the last may lack one.
        reports = [itertools.chain(self.readings(d), itertools.repeat(None)) for d in devices]
        for period in self.periods:
            items: list[dict[str, Any]] = []
            for device, readings in zip(devices, reports, strict=True):
                reading = next(readings)
                if reading is not None:
                    items += device_side_items(device, reading)
                items += self._cloud_side_items(device, period, sessions[device.name])
            yield from _export_messages(period, items)

    def _alarms(self, device: Device) -> list[Record]:
        """Detect's alarms on the device's incidents: the allow list of its listening ports,
        and bytes out over 5 MB in a period (the first report that breaks each rule)."""
        changes = self._changes(device)
        readings = list(self.readings(device)) if changes else []
        allowed = set(device.thing_type.tcp)
        records = []
        for incident, change in changes:
            if isinstance(change, OpenPorts):
                opened = next((r for r in readings if set(r.tcp) - allowed), None)
                if opened:
                    value: dict[str, Any] = {"ports": sorted(opened.tcp)}
                    criteria = _set_rule("not-in-port-set", {"ports": sorted(allowed)})
                    records.append(
                        _alarm(device, opened, "listening-tcp-allowlist", criteria, value)
                    )
            elif isinstance(change, Exfiltration):
                spike = next((r for r in readings if r.t >= incident.start), None)
                if spike:
                    value = {"count": spike.network["bytes_out"]}
                    criteria = _count_rule("greater-than", 5_000_000)
                    records.append(_alarm(device, spike, "bytes-out-high", criteria, value))
        return records

    # --- connections, logs and the metric stream ------------------------------------------

    def _sessions(self, device: Device) -> _Sessions:
        """Reconnects every few hours from the device's address, and a clone's storm."""
        sessions = _Sessions()
        rng = self._rng("sessions", device.name)
        t = self.start + rng.uniform(0, device.reconnect_every)
        session = 1
        while t < self.end - 20:
            sessions.disconnect(device, t, device.ip, session, "CONNECTION_LOST")
            session += 1
            sessions.connect(device, t + 20, device.ip, session, log=True)
            t += device.reconnect_every * rng.uniform(0.9, 1.1)
        for incident, change in self._changes(device):
            if isinstance(change, ClonedCertificate):
                self._clones(device, incident.start, change, sessions)
        return sessions

    @staticmethod
    def _clones(
        device: Device, start: float, clone: ClonedCertificate, sessions: _Sessions
    ) -> None:
        addresses = (device.ip, *clone.addresses)
        for n in range(round(clone.minutes * MINUTE / clone.every)):
            t = start + n * clone.every
            if n:
                previous = addresses[(n - 1) % len(addresses)]
                sessions.disconnect(device, t - 0.2, previous, 1000 + n, "DUPLICATE_CLIENT_ID")
            sessions.connect(device, t, addresses[n % len(addresses)], 1001 + n, log=n % 5 == 0)

    def _scans(self) -> Iterator[iot_logs.LogEntry]:
        """Internet scanners' unknown certificates every hour, and any authentication storm."""
        rng = self._rng("scans")
        for hour in range(math.floor(self.start / HOUR), math.ceil(self.end / HOUR)):
            for _ in range(rng.randint(*SCANS_PER_HOUR)):
                t = hour * HOUR + rng.uniform(0, HOUR)
                if self.start <= t < self.end:
                    yield _authn_error(t, f"203.0.113.{rng.randrange(100, 200)}")
        for incident in self.incidents:
            storm = incident.script.change
            if isinstance(storm, AuthenticationStorm):
                for n in range(storm.per_minute * storm.minutes):
                    yield _authn_error(
                        incident.start + n * MINUTE / storm.per_minute, storm.source_ip
                    )

    @staticmethod
    def _log_records(logs: list[iot_logs.LogEntry]) -> list[Record]:
        return [
            iot_logs.batch_message(burst, first=burst[0][0]).arriving(burst[-1][0] + LOG_DELAY)
            for burst in iot_logs.bursts(logs)
        ]

    @staticmethod
    def _stream_records(logs: list[iot_logs.LogEntry]) -> list[Record]:
        """The AWS/IoT metrics counting what the logs show, one record per minute."""
        names = {"Connect": "Connect.Success", "Connection.AuthNError": "Connection.AuthNError"}
        counts: Counter[tuple[float, str]] = Counter(
            (t - t % MINUTE, names[entry["eventType"]]) for t, entry in logs
        )
        minutes: dict[float, list[dict[str, Any]]] = defaultdict(list)
        for (minute, name), total in sorted(counts.items()):
            minutes[minute].append(metric_stream.datapoint(name, minute, total))
        return [
            metric_stream.lines_message(points).arriving(minute + MINUTE + STREAM_DELAY)
            for minute, points in minutes.items()
        ]

    # --- inventory and audit ---------------------------------------------------------------

    def _inventory(self) -> Iterator[Record]:
        """The inventory collector's hourly run."""
        collected = self.start + 5 * MINUTE
        while collected < self.end:
            for device in self.fleet.devices:
                yield inventory.thing_message(
                    device.name,
                    collected,
                    thing_type=device.thing_type.name,
                    attributes=device.attributes,
                    groups=device.groups,
                ).arriving(collected + 2)
            collected += HOUR

    def _audits(self) -> Iterator[Record]:
        """The daily scheduled audit; the latest finds what an audit incident says."""
        findings = [
            (incident, change)
            for incident in self.incidents
            if isinstance(change := incident.script.change, AuditFindings)
        ]
        latest = findings[0][0].start if findings else self.end - 2 * HOUR
        started = latest
        while started >= self.start and started + AUDIT_DELAYS[1] <= self.end:
            found = findings if started == latest else []
            yield from self._audit(started, found)
            started -= DAY

    def _audit(
        self, started: float, found: list[tuple[Incident, AuditFindings]]
    ) -> Iterator[Record]:
        task = stable_id("audit", self.seed, started)
        items = [
            audit.finding(task, started, check, _resource(check, incident))
            for incident, change in found
            for check in change.checks
        ]
        counts = Counter(item["checkName"] for item in items)
        total = len(self.fleet.devices)
        checks = [
            audit.Check(name, "COMPLETED_NON_COMPLIANT", counts[name], total)
            if counts[name]
            else audit.Check(name, total=total)
            for name in AUDIT_CHECKS
        ]
        sent = started + AUDIT_DELAYS[0]
        message = audit.notification(task, started, checks)
        yield audit.notification_message(message, sent).arriving(sent + 1)
        if items:
            yield audit.findings_page(items).arriving(started + AUDIT_DELAYS[1])


def _export_messages(period: float, items: list[dict[str, Any]]) -> Iterator[Record]:
    """A period's datapoints in messages of at most ``EXPORT_THINGS`` things, as exported."""
    things = sorted({item["thing"] for item in items})
    for first in range(0, len(things), EXPORT_THINGS):
        chunk = set(things[first : first + EXPORT_THINGS])
        message = detect.export_message([i for i in items if i["thing"] in chunk])
        yield message.arriving(period + PERIOD + EXPORT_DELAY)


def device_side_items(device: Device, reading: Reading) -> list[dict[str, Any]]:
    """A report's metrics as Detect exports them, stamped with the report's time."""
    cidrs = list(
        dict.fromkeys(c.remote_addr.rpartition(":")[0] + "/32" for c in reading.connections)
    )
    values: dict[str, dict[str, Any]] = {
        "aws:listening-tcp-ports": {"ports": sorted(set(reading.tcp))},
        "aws:num-listening-tcp-ports": {"count": len(reading.tcp)},
        "aws:listening-udp-ports": {"ports": sorted(set(reading.udp))},
        "aws:num-listening-udp-ports": {"count": len(reading.udp)},
        "aws:destination-ip-addresses": {"cidrs": cidrs},
        "aws:num-established-tcp-connections": {"count": len(reading.connections)},
    }
    for key, name in NETWORK_METRICS.items():
        values[name] = {"count": reading.network[key]}
    return [
        detect.export_item(device.name, name, reading.t, value) for name, value in values.items()
    ]


NETWORK_METRICS = {
    "bytes_in": "aws:all-bytes-in",
    "bytes_out": "aws:all-bytes-out",
    "packets_in": "aws:all-packets-in",
    "packets_out": "aws:all-packets-out",
}


def report_record(device: Device, reading: Reading) -> Record:
    """The device's report as the device-report rule forwards it."""
    document = device_report.report(
        int(reading.t),
        tcp=reading.tcp,
        udp=reading.udp,
        connections=reading.connections,
        network=reading.network,
    )
    message = device_report.forwarded(document, device.name, reading.t)
    return message.arriving(reading.t + REPORT_LATENCY)


def _authn_error(t: float, ip: str) -> iot_logs.LogEntry:
    return iot_logs.entry(
        t,
        "Connection.AuthNError",
        "Failure",
        source_ip=ip,
        reason="AUTHENTICATION_FAILURE",
        details=_UNKNOWN_CERTIFICATE,
    )


def _resource(check: str, incident: Incident) -> audit.Resource:
    if check == "LOGGING_DISABLED_CHECK" or not incident.devices:
        return audit.account_settings()
    device = incident.devices[0]
    return audit.device_certificate(device.certificate, device.name, f"{device.name}-clone")


def _set_rule(operator: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "comparisonOperator": operator,
        "value": value,
        "consecutiveDatapointsToAlarm": 1,
        "consecutiveDatapointsToClear": 1,
    }


def _count_rule(operator: str, count: int) -> dict[str, Any]:
    return {**_set_rule(operator, {"count": count}), "durationSeconds": PERIOD}


def _alarm(
    device: Device,
    reading: Reading,
    behavior: str,
    criteria: dict[str, Any],
    value: dict[str, Any],
) -> Record:
    """The in-alarm violation Detect sends (via SNS) half a minute after the report."""
    metric = "aws:listening-tcp-ports" if "ports" in value else "aws:all-bytes-out"
    t = reading.t
    event = detect.violation(
        device.name,
        t,
        event_type="in-alarm",
        behavior=behavior,
        metric=metric,
        criteria=criteria,
        value=value,
    )
    return detect.alarm_message(event, t + 30).arriving(t + 31)
