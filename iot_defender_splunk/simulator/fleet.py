"""A realistic fleet: things of a few types, each with its firmware, groups, certificate and
normal daily pattern, drawn from one seeded ``random.Random``.

Normal activity stays below every detection's floor (iot_defender_spike_floor: 5 MB or 5,000
packets out, 600 messages or 1 MB of messages, 50 connections per datapoint) whatever the time
of day, so only the scripted incidents stand out.
"""

from __future__ import annotations

import ipaddress
import math
import random
from dataclasses import dataclass

from iot_defender_splunk.simulator.stamps import HOUR, certificate_id

# Source addresses AWS sees for the devices: the benchmarking range (RFC 2544), one each.
_DEVICE_NETWORK = ipaddress.ip_network("198.18.0.0/15")


@dataclass(frozen=True)
class ThingType:
    """What every thing of a type shares: its services, destinations and volumes.

    Volumes are per hour at the daily mean; the daily pattern swings them by ``swing`` (a
    fraction) around a peak at ``peak_hour`` UTC.
    """

    name: str
    prefix: str
    group: str
    segments: tuple[str, ...]
    firmware: tuple[str, ...]
    tcp: tuple[int, ...]
    udp: tuple[int, ...]
    peers: tuple[str, ...]  # usual destinations besides the IoT endpoint ("ip:port")
    bytes_out: float
    packets_out: float
    bytes_in: float
    packets_in: float
    messages: float
    message_bytes: float
    swing: float
    peak_hour: float


THING_TYPES = (
    ThingType(
        "water-pump", "pump", "pumps", ("plant-a", "plant-b"), ("3.2.0", "3.1.4"),
        tcp=(8443,), udp=(), peers=("10.20.0.1:443",),
        bytes_out=240_000, packets_out=1_800, bytes_in=60_000, packets_in=900,
        messages=120, message_bytes=500, swing=0.2, peak_hour=10,
    ),
    ThingType(
        "ip-camera", "cam", "cameras", ("office", "plant-a"), ("1.9.3", "1.9.4"),
        tcp=(443, 554), udp=(3702,), peers=("10.30.0.5:554",),
        bytes_out=24_000_000, packets_out=24_000, bytes_in=600_000, packets_in=9_000,
        messages=60, message_bytes=800, swing=0.4, peak_hour=14,
    ),
    ThingType(
        "edge-gateway", "gw", "gateways", ("plant-a", "plant-b"), ("2.4.1",),
        tcp=(22, 8443), udp=(123,), peers=("10.20.4.17:502", "10.20.4.18:502"),
        bytes_out=2_400_000, packets_out=1_800, bytes_in=800_000, packets_in=1_200,
        messages=900, message_bytes=1_300, swing=0.3, peak_hour=11,
    ),
    ThingType(
        "smart-meter", "meter", "meters", ("site-north", "site-south"), ("5.0.2", "5.1.0"),
        tcp=(), udp=(123,), peers=(),
        bytes_out=40_000, packets_out=300, bytes_in=12_000, packets_in=200,
        messages=12, message_bytes=400, swing=0.5, peak_hour=19,
    ),
    ThingType(
        "hvac-controller", "hvac", "hvac", ("office",), ("1.2.7",),
        tcp=(8443,), udp=(), peers=("10.40.0.1:443",),
        bytes_out=90_000, packets_out=700, bytes_in=30_000, packets_in=400,
        messages=40, message_bytes=600, swing=0.35, peak_hour=8,
    ),
)  # fmt: skip
# The order types join a fleet: every type is present from five devices on, then pumps,
# cameras and meters outnumber gateways and HVAC controllers as in a plant.
_JOIN_ORDER = (0, 1, 2, 3, 4, 0, 1, 3, 0, 1, 0, 3, 1, 0, 2, 0, 1, 3, 4, 0)


@dataclass(frozen=True)
class Device:
    """One thing: its registry entry, its source address and its own rhythm."""

    name: str
    thing_type: ThingType
    firmware: str
    segment: str
    ip: str
    report_offset: float  # seconds into each 5-minute period at which it reports
    reconnect_every: float  # seconds between its MQTT reconnects
    phase: float  # seconds its daily pattern is ahead of its type's

    @property
    def groups(self) -> tuple[str, ...]:
        return (self.thing_type.group, self.segment)

    @property
    def certificate(self) -> str:
        return certificate_id(self.name)

    @property
    def attributes(self) -> dict[str, str]:
        return {"firmware_version": self.firmware, "segment": self.segment}

    def daily_factor(self, t: float) -> float:
        """Its activity at ``t`` relative to its daily mean (1 +- swing)."""
        kind = self.thing_type
        hours = ((t + self.phase) / HOUR - kind.peak_hour) % 24
        return 1 + kind.swing * math.cos(2 * math.pi * hours / 24)


@dataclass(frozen=True)
class Fleet:
    devices: tuple[Device, ...]

    def of_type(self, type_name: str) -> list[Device]:
        return [device for device in self.devices if device.thing_type.name == type_name]


def build_fleet(size: int, rng: random.Random) -> Fleet:
    """``size`` devices named ``<prefix>-<nnnn>`` per type, attributes drawn from ``rng``."""
    counts = dict.fromkeys(range(len(THING_TYPES)), 0)
    devices = []
    for position in range(size):
        index = _JOIN_ORDER[position % len(_JOIN_ORDER)]
        kind = THING_TYPES[index]
        counts[index] += 1
        devices.append(
            Device(
                name=f"{kind.prefix}-{counts[index]:04d}",
                thing_type=kind,
                firmware=rng.choice(kind.firmware),
                segment=rng.choice(kind.segments),
                ip=str(_DEVICE_NETWORK[position + 1]),
                report_offset=rng.uniform(5, 295),
                reconnect_every=rng.uniform(3, 6) * HOUR,
                phase=rng.uniform(-HOUR, HOUR),
            )
        )
    return Fleet(tuple(devices))
