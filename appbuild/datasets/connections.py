"""Connections: a cloned certificate knocking the device off, within and across runs."""

from __future__ import annotations

from appbuild.datasets.cast import GATEWAY, LOBBY_CAMERA, PUMP_17, PUMP_18, PUMP_20, presence
from appbuild.datasets.story import Story, ago, dataset
from iot_defender_splunk.simulator import iot_logs
from iot_defender_splunk.simulator.stamps import HOUR, MINUTE


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
                presence(
                    device.name,
                    t,
                    "disconnected",
                    device.ip,
                    reason="CONNECTION_LOST",
                    session=slot + 1,
                ),
            )
            story.add(t + 20, presence(device.name, t + 20, "connected", device.ip, session=slot))
    addresses = (PUMP_18.ip, "203.0.113.45", "192.0.2.66")
    entries = []
    for n in range(60):
        t = ago(45 * MINUTE - 30 * n)
        ip = addresses[n % 3]
        previous = addresses[(n - 1) % 3]
        story.add(
            t - 0.2,
            presence(
                PUMP_18.name,
                t - 0.2,
                "disconnected",
                previous,
                reason="DUPLICATE_CLIENT_ID",
                session=100 + n,
            ),
        )
        story.add(t, presence(PUMP_18.name, t, "connected", ip, session=101 + n))
        if n % 10 == 0:
            entries.append(
                iot_logs.entry(t, "Connect", "Success", client_id=PUMP_18.name, source_ip=ip)
            )
    entries.append(
        iot_logs.entry(
            ago(20 * MINUTE),
            "Connect",
            "Failure",
            client_id=PUMP_18.name,
            source_ip="192.0.2.99",
            reason="AUTHORIZATION_FAILURE",
        )
    )
    story.add_logs(entries)
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
        story.add(t, presence(PUMP_20.name, t, "connected", PUMP_20.ip, session=slot))
    clone = (PUMP_20.ip, "203.0.113.45", "192.0.2.66", "203.0.113.201")
    for n, (minutes, ip) in enumerate(zip((75, 70, 62, 58), clone, strict=True)):
        t = ago(minutes * MINUTE)
        if n:
            previous = presence(
                PUMP_20.name,
                t - 0.2,
                "disconnected",
                clone[n - 1],
                reason="DUPLICATE_CLIENT_ID",
                session=10 + n,
            )
            story.add(t - 0.2, previous)
        story.add(t, presence(PUMP_20.name, t, "connected", ip, session=11 + n))
    return story
