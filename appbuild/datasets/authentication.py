"""Authentication and authorization failures: IoT Core logs, CloudWatch metrics and Detect."""

from __future__ import annotations

from appbuild.datasets.cast import (
    GATEWAY,
    LOBBY_CAMERA,
    NEW_PUMP,
    PLANT_NAT,
    PUMP_17,
    PUMP_18,
    PUMP_19,
    PUMP_22,
    PUMPS,
    ROGUE_CLIENT,
    Device,
    presence,
)
from appbuild.datasets.story import Story, ago, dataset
from iot_defender_splunk.simulator import detect, iot_logs, metric_stream
from iot_defender_splunk.simulator.iot_logs import LogEntry
from iot_defender_splunk.simulator.stamps import HOUR, MINUTE, jitter


def _refused(device: Device, t: float, event_type: str, topic: str) -> LogEntry:
    """An IoT Core log entry of a message or subscription refused for authorization."""
    return iot_logs.entry(
        t,
        event_type,
        "Failure",
        client_id=device.name,
        source_ip=device.ip,
        reason="AUTHORIZATION_FAILURE",
        topic=topic,
    )


def _misconfigured_pump() -> list[LogEntry]:
    """pump-0017 is refused twice every two hours on its own config topic, all day, as usual."""
    own_config = "plant-a/pumps/pump-0017/config/set"
    return [
        _refused(PUMP_17, ago(20 * MINUTE + slot * 2 * HOUR) + 4 * n, "Publish-In", own_config)
        for slot in range(11, -1, -1)
        for n in range(2)
    ]


@dataset
def auth_failures() -> Story:
    """IoT Core logs and CloudWatch metrics (no Detect) for a day of authorization failures.

    pump-0017 is misconfigured and is refused twice every two hours, as usual. In the last hour
    pump-0022 publishes to other pumps' command topics and subscribes to `#`: 46 refusals in
    eight minutes. Soon after, the fleet-wide AuthError metrics surge (certificate stuffing
    against the endpoint), while before that they held a handful of errors every few hours.
    """

    entries = _misconfigured_pump()
    entries += [
        iot_logs.entry(t, "Connect", "Success", client_id=GATEWAY.name, source_ip=GATEWAY.ip)
        for t in (ago(50 * MINUTE + slot * 3 * HOUR) for slot in range(7, -1, -1))
    ]
    entries += [
        _refused(PUMP_22, ago(35 * MINUTE - 12 * n), "Publish-In", f"plant-a/pumps/{target}/cmd")
        for n, target in enumerate(device.name for _ in range(8) for device in PUMPS[:5])
    ]
    entries += [_refused(PUMP_22, ago(33 * MINUTE - 40 * n), "Subscribe", "#") for n in range(6)]
    entries += [
        iot_logs.entry(
            ago(10 * MINUTE - 10 * n),
            "Connection.AuthNError",
            "Failure",
            source_ip=f"192.0.2.{200 + n % 8}",
            reason="AUTHENTICATION_FAILURE",
            details="Certificate is not registered with AWS IoT",
        )
        for n in range(24)
    ]
    story = Story()
    story.add_logs(entries)
    for slot in range(7, -1, -1):
        t = ago(40 * MINUTE + slot * 3 * HOUR)
        t -= t % MINUTE
        story.add(
            t + MINUTE,
            metric_stream.lines_message([metric_stream.datapoint("Connect.AuthError", t, 2)]),
        )
    for minute in range(10, 5, -1):
        t = ago(minute * MINUTE)
        points = [
            metric_stream.datapoint("Connection.AuthNError", t, 45 + 3 * (minute % 4)),
            metric_stream.datapoint("Connect.AuthError", t, 12),
        ]
        story.add(t + MINUTE, metric_stream.lines_message(points))
    return story


@dataset
def auth_failures_rogue_client() -> Story:
    """Two authorization spikes in the last hour: a misconfigured pump's and a rogue client's.

    pump-0017 is refused twice every two hours on its own config topic, as usual; 40 minutes
    ago it starts writing other things' shadows: 30 refusals in ten minutes (the spike's
    evidence is the shadow topics, not the config topic of its whole day). A client whose id
    is not a thing name ("mosqsub|8712-kali", mosquitto's old default) connects with a stolen
    certificate from 203.0.113.9 and is refused 25 times in six minutes.
    """
    entries = _misconfigured_pump()
    entries += [
        _refused(PUMP_17, ago(40 * MINUTE - 20 * n), "Publish-In", shadow)
        for n, shadow in enumerate(
            f"$aws/things/{device.name}/shadow/update" for _ in range(6) for device in PUMPS[1:]
        )
    ]
    entries += [
        _refused(ROGUE_CLIENT, ago(25 * MINUTE - 15 * n), event_type, topic)
        for n, (event_type, topic) in enumerate(
            [("Subscribe", "#"), ("Publish-In", "plant-a/pumps/pump-0021/cmd")] * 12
            + [("Subscribe", "$aws/things/+/shadow/#")]
        )
    ]
    story = Story()
    story.add_logs(entries)
    return story


@dataset
def client_ids_from_one_source() -> Story:
    """One address tries eight client ids with one stolen certificate; a NAT's devices do not.

    The six pumps behind plant-a's NAT reconnect every four hours from its address, and a new
    pump (pump-0099) connects through it for the first time in the last hour. Between 40 and 30
    minutes ago 203.0.113.66 connects as eight different things with pump-0017's certificate
    and is refused each time (the policy binds client ids to their own certificates).
    """
    story = Story()
    for position, device in enumerate(PUMPS):
        for slot in range(5, -1, -1):
            t = ago(50 * MINUTE + position * 7 * MINUTE + slot * 4 * HOUR)
            story.add(t, presence(device.name, t, "connected", PLANT_NAT, session=slot))
    t = ago(20 * MINUTE)
    story.add(t, presence(NEW_PUMP.name, t, "connected", PLANT_NAT))
    targets = [*PUMPS, GATEWAY, LOBBY_CAMERA]
    entries = [
        iot_logs.entry(
            ago(40 * MINUTE - 75 * n),
            "Connect",
            "Failure",
            client_id=device.name,
            source_ip="203.0.113.66",
            reason="AUTHORIZATION_FAILURE",
            certificate=PUMP_17.name,
        )
        for n, device in enumerate(targets)
    ]
    story.add_logs(entries)
    return story


@dataset
def authentication_errors_by_source() -> Story:
    """Internet scanners probe the endpoint all day; one address bursts in the last quarter hour.

    Thirty scanners each hit the endpoint with an unregistered certificate a few times over the
    day (Connection.AuthNError, no client id). Twelve minutes ago 192.0.2.250 presents 45
    certificates in four minutes: certificate stuffing from one host.
    """
    entries = [
        iot_logs.entry(
            ago(30 * MINUTE + scanner * 47 * MINUTE + hit * 13),
            "Connection.AuthNError",
            "Failure",
            source_ip=f"203.0.113.{100 + scanner}",
            reason="AUTHENTICATION_FAILURE",
            details="Certificate is not registered with AWS IoT",
        )
        for scanner in range(30)
        for hit in range(1 + scanner % 4)
    ]
    entries += [
        iot_logs.entry(
            ago(12 * MINUTE - 5 * n),
            "Connection.AuthNError",
            "Failure",
            source_ip="192.0.2.250",
            reason="AUTHENTICATION_FAILURE",
            details="Certificate is not registered with AWS IoT",
        )
        for n in range(45)
    ]
    story = Story()
    story.add_logs(entries)
    return story


@dataset
def auth_failures_low_rate() -> Story:
    """pump-0019 probes two new topics every 40 minutes all day, always below the spike floor.

    Besides pump-0017's usual refusals on its own config topic, pump-0019 tries to publish to
    another valve's command topic and to read its shadow every 40 minutes for a day: 72
    refusals on 72 topics, never more than two in five minutes.
    """
    entries = _misconfigured_pump()
    for slot in range(35, -1, -1):
        t = ago(25 * MINUTE + slot * 40 * MINUTE)
        valve = f"valve-{slot:02d}"
        entries.append(_refused(PUMP_19, t, "Publish-In", f"plant-a/valves/{valve}/cmd"))
        entries.append(_refused(PUMP_19, t + 9, "Subscribe", f"$aws/things/{valve}/shadow/get"))
    story = Story()
    story.add_logs(entries)
    return story


@dataset
def auth_error_metrics() -> Story:
    """A day of internet noise in Connection.AuthNError; PublishOut.AuthError surges alone.

    Scanners and probes with unregistered certificates hit the endpoint in about a third of the
    minutes, 5 to 150 refusals a minute. Now and then the broker refuses to deliver a message
    to a device (PublishOut.AuthError, 1 or 2 a few times a day). Ten minutes ago a client
    subscribed with a broad topic filter is refused 15 deliveries a minute for six minutes:
    lost in the noise of a sum of every AuthError metric, plain in its own series.
    """
    story = Story()
    for minute in range(24 * 60, 0, -1):
        t = ago(minute * MINUTE)
        t -= t % MINUTE
        points = []
        if jitter("scan", minute, spread=1) > 0.35:
            noise = 78 + jitter("scan-size", minute, spread=73)
            points.append(metric_stream.datapoint("Connection.AuthNError", t, round(noise)))
        if minute % 317 == 0:
            points.append(metric_stream.datapoint("PublishOut.AuthError", t, 1 + minute % 2))
        if 5 <= minute <= 10:
            points.append(metric_stream.datapoint("PublishOut.AuthError", t, 15))
        if points:
            story.add(t + MINUTE, metric_stream.lines_message(points))
    return story


@dataset
def auth_failures_detect() -> Story:
    """Detect's cloud-side `aws:num-authorization-failures` every 30 min; gw-berlin-03 spikes.

    Detect exports the spike's datapoint again four minutes later, in another invocation, as
    version 2 with 57 failures and its timestamp in seconds: the same datapoint (same thing,
    metric and time), whose highest version is the one that counts.
    """
    story = Story()
    for slot in range(47, -1, -1):
        t = ago(15 * MINUTE + slot * 30 * MINUTE)
        gateway = 54 if slot == 0 else round(1 + jitter(GATEWAY.name, slot, spread=1))
        items = [
            detect.export_item(
                GATEWAY.name, "aws:num-authorization-failures", t, {"count": gateway}
            ),
            detect.export_item(
                PUMP_18.name, "aws:num-authorization-failures", t, {"count": 2 if slot == 0 else 1}
            ),
        ]
        story.add(t + 2 * MINUTE, detect.export_message(items))
    t = ago(15 * MINUTE)
    resent = detect.export_item(GATEWAY.name, "aws:num-authorization-failures", t, {"count": 57})
    resent |= {"version": 2, "timestamp": int(t)}
    story.add(t + 6 * MINUTE, detect.export_message([resent]))
    return story
