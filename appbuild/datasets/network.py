"""Network volume and destinations: spikes, exfiltration, scanning and publish volume."""

from __future__ import annotations

from appbuild.datasets.cast import (
    DOCK_CAMERA,
    GATEWAY,
    LOBBY_CAMERA,
    NEW_PUMP,
    PUMP_17,
    PUMP_18,
    PUMP_19,
    PUMP_20,
    PUMP_21,
    PUMPS,
    YARD_CAMERA,
    Connection,
    inventory_record,
    report,
)
from appbuild.datasets.story import Story, ago, dataset
from iot_defender_splunk.simulator import detect
from iot_defender_splunk.simulator.stamps import HOUR, IOT_ENDPOINT, MINUTE, jitter


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
            story.add(at, report(device.name, at, network=network))
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
        story.add(t, report(PUMP_17.name, t, connections=pump))
        story.add(t + 5, report(LOBBY_CAMERA.name, t + 5, connections=camera))
        story.add(t + 9, report(GATEWAY.name, t + 9, connections=gateway))
        if latest:
            story.add(t + 14, report(NEW_PUMP.name, t + 14, connections=[endpoint]))
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
            story.add(at, report(device.name, at, connections=connections, network=network))
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
            story.add(at, report(device.name, at, network=network))
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
            story.add(at, report(device.name, at, connections=connections))
    for device in (YARD_CAMERA, GATEWAY, PUMP_17):
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
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
                detect.export_item(
                    device.name, "aws:num-messages-sent", t, {"count": round(messages * spread)}
                ),
                detect.export_item(
                    device.name, "aws:message-byte-size", t, {"count": round(size * spread)}
                ),
            ]
        story.add(t + 2 * MINUTE, detect.export_message(items))
    for device in usual:
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story
