"""The named devices the datasets' stories are told with, and their messages.

Each story needs particular characters (a gateway that opens tcp/4444, a pump whose
certificate is cloned), so these are fixed by name rather than drawn like the simulator's fleet;
every message they send is built by the simulator's builders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from iot_defender_splunk.simulator import device_report, inventory, lifecycle
from iot_defender_splunk.simulator.delivery import Message
from iot_defender_splunk.simulator.device_report import Connection

__all__ = ["Connection", "Device", "inventory_record", "presence", "report"]


@dataclass(frozen=True)
class Device:
    """A thing as the inventory knows it."""

    name: str
    thing_type: str
    firmware: str
    segment: str
    groups: tuple[str, ...]
    ip: str


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
# A rogue MQTT client: mosquitto's old default client id, not shaped like a thing name.
ROGUE_CLIENT = Device("mosqsub|8712-kali", "-", "-", "-", (), "203.0.113.9")
# A plant's NAT gateway: the pumps behind it all connect from this one public address.
PLANT_NAT = "198.51.100.200"


def report(
    thing: str,
    t: float,
    *,
    tcp: Sequence[int] | None = None,
    udp: Sequence[int] | None = None,
    connections: Sequence[Connection] | None = None,
    network: Mapping[str, int] | None = None,
    custom: Mapping[str, float] | None = None,
    interfaces: Mapping[int, str] | None = None,
) -> Message:
    """A device-side report made at `t`, as the device-report rule forwards it; `custom`
    metrics are numbers. Ports listen on eth0 unless `interfaces` names another for a port."""
    document = device_report.report(
        int(t),
        tcp=tcp,
        udp=udp,
        connections=connections,
        network=network,
        custom={name: device_report.number(value) for name, value in (custom or {}).items()},
        interfaces=interfaces,
    )
    return device_report.forwarded(document, thing, t)


def inventory_record(device: Device, t: float, *, connected: bool = True) -> Message:
    """What the inventory collector puts into Firehose for the device, collected at `t`."""
    attributes = {"firmware_version": device.firmware, "segment": device.segment}
    return inventory.thing_message(
        device.name,
        t,
        thing_type=device.thing_type,
        attributes=attributes,
        groups=device.groups,
        connected=connected,
    )


def presence(
    client_id: str,
    t: float,
    event_type: str,
    ip: str,
    *,
    reason: str | None = None,
    session: int = 0,
) -> Message:
    """A lifecycle event of the client's own certificate, as the lifecycle rule forwards it."""
    event = lifecycle.presence(client_id, t, event_type, ip, reason=reason, session=session)
    return lifecycle.forwarded(event)
