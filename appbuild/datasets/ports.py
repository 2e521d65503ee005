"""Listening ports: new ports on one device, and a release opening one on several peers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from appbuild.datasets.cast import (
    DOCK_CAMERA,
    GATEWAY,
    LOBBY_CAMERA,
    NEW_PUMP,
    PUMP_17,
    PUMP_18,
    PUMP_19,
    PUMP_21,
    PUMPS,
    Device,
    inventory_record,
    report,
)
from appbuild.datasets.story import Story, ago, dataset
from iot_defender_splunk.simulator import detect
from iot_defender_splunk.simulator.stamps import HOUR, MINUTE


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
        story.add(t, report(device.name, t, tcp=tcp, udp=udp))
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
                detect.export_item(
                    device.name, "aws:listening-tcp-ports", at, {"ports": sorted(tcp)}
                ),
                detect.export_item(
                    device.name, "aws:listening-udp-ports", at, {"ports": sorted(udp)}
                ),
                detect.export_item(
                    device.name, "aws:num-listening-tcp-ports", at, {"count": len(tcp)}
                ),
                detect.export_item(
                    device.name, "aws:num-listening-udp-ports", at, {"count": len(udp)}
                ),
            ]
        )
    for at, items in slots.items():
        story.add(at + 2 * MINUTE, detect.export_message(items))
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
            story.add(at, report(device.name, at, tcp=tcp, interfaces=usb))
    for device in devices:
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story
