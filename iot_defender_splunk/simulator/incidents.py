"""Scripted incidents: data saying which device each one hits, what changes and when, and
which detections (detections/<stem>.yml) are meant to fire on it.

A script is placed on a fleet as an ``Incident``: the demo prints, per incident, its evidence
and the detections that target it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from iot_defender_splunk.simulator.fleet import Device, Fleet
from iot_defender_splunk.simulator.stamps import HOUR, MINUTE


@dataclass(frozen=True)
class OpenPorts:
    """TCP ports the device starts listening on, each at its time (seconds before the end)."""

    ports: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class Exfiltration:
    """Bytes and packets out multiplied by ``factor``, with a connection to ``destination``."""

    factor: float
    destination: str  # "ip:port"


@dataclass(frozen=True)
class AuthenticationStorm:
    """One address presenting unregistered certificates, ``per_minute`` for ``minutes``."""

    source_ip: str
    per_minute: int
    minutes: int


@dataclass(frozen=True)
class ClonedCertificate:
    """The device's client id and certificate connecting from its own address and the clones'
    in turn, every ``every`` seconds for ``minutes``: each connection knocks the last off."""

    addresses: tuple[str, ...]
    every: float
    minutes: int


@dataclass(frozen=True)
class AuditFindings:
    """The daily audit at the incident's start finds these checks non-compliant (the device's
    certificate for certificate checks, the account for LOGGING_DISABLED_CHECK)."""

    checks: tuple[str, ...]


Change = OpenPorts | Exfiltration | AuthenticationStorm | ClonedCertificate | AuditFindings


@dataclass(frozen=True)
class Target:
    """A detection meant to fire, the simulated history it needs (its baselines) and whether
    only Detect's data shows it."""

    detection: str
    history_hours: float = 0.0
    detect_only: bool = False


@dataclass(frozen=True)
class Script:
    id: str
    title: str
    thing_type: str | None  # the kind of device it hits; None: no device (an outsider)
    before_end: float  # seconds before the simulation's end it starts
    change: Change
    changes: str  # what changes, in words
    targets: tuple[Target, ...]
    same_device_as: str | None = None


SCRIPTS: tuple[Script, ...] = (
    Script(
        "open-port",
        "A camera opens FTP (tcp/21), then Telnet (tcp/23)",
        "ip-camera",
        50 * MINUTE,
        OpenPorts(((21, 50 * MINUTE), (23, 25 * MINUTE))),
        "listens on tcp/21 from 50 minutes before the end and on tcp/23 from 25 minutes",
        (
            Target("risky_port_listening"),
            Target("listening_port_count_changed", history_hours=2),
            Target("new_listening_port_on_device_inline_baseline", history_hours=26),
            Target("detect_violation_in_alarm", detect_only=True),
        ),
    ),
    Script(
        "exfiltration",
        "A gateway sends 50 times its usual bytes and packets to a new address",
        "edge-gateway",
        40 * MINUTE,
        Exfiltration(50, "203.0.113.99:443"),
        "bytes and packets out x50 and connections to 203.0.113.99:443 for the last 40 minutes",
        (
            Target("outbound_volume_spike_vs_device_baseline", history_hours=3),
            Target("outbound_spike_to_new_destination", history_hours=14),
            Target("new_destination_outside_allowed_cidrs", history_hours=14),
            Target("detect_violation_in_alarm", detect_only=True),
        ),
    ),
    Script(
        "auth-storm",
        "One address presents 240 unregistered certificates in four minutes",
        None,
        14 * MINUTE,
        AuthenticationStorm("192.0.2.250", per_minute=60, minutes=4),
        "Connection.AuthNError from 192.0.2.250, 60 a minute for 4 minutes, 14 minutes before "
        "the end",
        (
            Target("authentication_error_burst_from_source_ip"),
            Target("fleet_wide_authentication_error_surge", history_hours=1),
        ),
    ),
    Script(
        "cloned-certificate",
        "A pump's certificate is used from three more addresses at once",
        "water-pump",
        35 * MINUTE,
        ClonedCertificate(("203.0.113.45", "192.0.2.66", "203.0.113.201"), 30, 20),
        "its client id connects from four addresses in turn every 30 s for 20 minutes",
        (
            Target("client_id_connecting_from_many_source_ips"),
            Target("connection_flapping", history_hours=2),
        ),
    ),
    Script(
        "audit-findings",
        "The daily audit finds the pump's certificate shared and IoT logging disabled",
        "water-pump",
        2 * HOUR,
        AuditFindings(("DEVICE_CERTIFICATE_SHARED_CHECK", "LOGGING_DISABLED_CHECK")),
        "the audit 2 hours before the end reports both checks non-compliant",
        (
            Target("audit_device_certificate_shared"),
            Target("audit_iot_logging_disabled"),
            Target("audit_critical_or_high_check_non_compliant"),
            Target("audit_new_non_compliant_finding", history_hours=28),
        ),
        same_device_as="cloned-certificate",
    ),
)


@dataclass(frozen=True)
class Incident:
    """A script placed on a fleet: the devices it hits and when it starts (epoch seconds)."""

    script: Script
    devices: tuple[Device, ...]
    start: float

    @property
    def id(self) -> str:
        return self.script.id

    @property
    def title(self) -> str:
        return self.script.title

    @property
    def changes(self) -> str:
        return self.script.changes

    @property
    def device_names(self) -> tuple[str, ...]:
        return tuple(device.name for device in self.devices)

    @property
    def detections(self) -> tuple[str, ...]:
        """Every detection that targets this incident."""
        return tuple(target.detection for target in self.script.targets)

    def expected_detections(self, *, hours: float, detect: bool) -> tuple[str, ...]:
        """The detections meant to fire on a simulation of ``hours`` (with Detect or not)."""
        return tuple(
            target.detection
            for target in self.script.targets
            if target.history_hours <= hours and (detect or not target.detect_only)
        )


def place(scripts: Sequence[Script], fleet: Fleet, *, end: float) -> tuple[Incident, ...]:
    """Each script on a device of its type not yet hit (any device when none is left)."""
    placed: dict[str, Incident] = {}
    used: set[str] = set()
    for script in scripts:
        devices: tuple[Device, ...] = ()
        if script.same_device_as in placed:
            devices = placed[script.same_device_as].devices
        elif script.thing_type is not None:
            devices = (_pick(fleet, script.thing_type, used),)
        used.update(device.name for device in devices)
        placed[script.id] = Incident(script, devices, end - script.before_end)
    return tuple(placed.values())


def _pick(fleet: Fleet, thing_type: str, used: set[str]) -> Device:
    fresh = [device for device in fleet.devices if device.name not in used]
    preferred = [device for device in fresh if device.thing_type.name == thing_type]
    return (preferred or fresh or list(fleet.devices))[0]
