"""Pipeline and device health: flows stopping, unparsed records, silent devices."""

from __future__ import annotations

import base64
import json

from appbuild.datasets.cast import (
    DOCK_CAMERA,
    GATEWAY,
    NEW_PUMP,
    PUMP_17,
    PUMP_18,
    PUMP_19,
    PUMP_22,
    YARD_CAMERA,
    Connection,
    Device,
    inventory_record,
    report,
)
from appbuild.datasets.responder import quarantined
from appbuild.datasets.story import REFERENCE_TIME, Story, ago, dataset
from iot_defender_splunk.simulator import iot_logs, metric_stream
from iot_defender_splunk.simulator.delivery import Message, rule_record
from iot_defender_splunk.simulator.stamps import HOUR, IOT_ENDPOINT, MINUTE, epoch_ms, jitter


@dataset
def pipeline_health() -> Story:
    """A day of steady flows; device metrics stop 50 minutes ago and three records fail to parse.

    Device reports (every 20 min), CloudWatch metrics (every 10 min, still flowing) and the
    hourly inventory arrive as usual, with a response action in between. Then the metrics stop,
    and in the last quarter hour a report put into the stream without the device-report rule, a
    CBOR report and a log batch holding plain text arrive: they become unparsed events.
    """
    story = Story()
    pumps = (PUMP_17, PUMP_18, PUMP_19)
    for slot in range(69, -1, -1):
        t = ago(50 * MINUTE + slot * 20 * MINUTE)
        for position, device in enumerate(pumps):
            at = t + 4 * position
            load = 30 + jitter(device.name, slot, spread=8)
            story.add(at, report(device.name, at, custom={"cpu_usage_pct": round(load, 1)}))
    for slot in range(143, -1, -1):
        t = ago(2 * MINUTE + slot * 10 * MINUTE)
        connects = 40 + jitter("connects", slot, spread=6)
        story.add(
            t + MINUTE,
            metric_stream.lines_message(
                [metric_stream.datapoint("Connect.Success", t, round(connects))]
            ),
        )
    for slot in range(23, -1, -1):
        t = ago(50 * MINUTE + slot * HOUR)
        for device in pumps:
            story.add(t, inventory_record(device, t))
    quarantine = {
        "action": "quarantine_thing",
        "request_id": "soar-2204-quarantine-pump-0019",
        "thing_name": PUMP_19.name,
        "requested_by": "soar:iot_open_port_response:approved-by:jdoe",
        "reason": "Investigating a CPU alarm",
    }
    story.respond(ago(3 * HOUR), quarantine, [quarantined(PUMP_19)])
    forwarded = report(PUMP_17.name, ago(9 * MINUTE), custom={"cpu_usage_pct": 31.0})
    bare = base64.b64decode(json.loads(forwarded.data)["payload"])  # put into the stream directly
    story.add(ago(9 * MINUTE), Message("device_report", bare))
    cbor = b"\xa3cheda\x01cmet\xa1ccpu\xf9\x4e\x00"
    received = epoch_ms(ago(8 * MINUTE))
    cbor_report = rule_record("device-report", cbor, thing_name=PUMP_17.name, received_at=received)
    story.add(ago(8 * MINUTE), Message("device_report", cbor_report))
    text_line = (
        "2026-11-23 01:50:00.000 TRACEID:0 [INFO] EVENT:MQTT Client Connect ClientId: pump-0017"
    )
    story.add(ago(7 * MINUTE), iot_logs.batch_message([], first=REFERENCE_TIME, raw=(text_line,)))
    return story


@dataset
def device_silent() -> Story:
    """Four devices report every 20 minutes for a day; pump-0022 goes quiet 3 hours ago."""
    story = Story()
    devices = (PUMP_17, PUMP_18, PUMP_22, GATEWAY)
    for slot in range(71, -1, -1):
        t = ago(10 * MINUTE + slot * 20 * MINUTE)
        for position, device in enumerate(devices):
            at = t + 5 * position
            if device is PUMP_22 and at > ago(3 * HOUR):
                continue
            load = 25 + jitter(device.name, slot, spread=5)
            story.add(at, report(device.name, at, custom={"cpu_usage_pct": round(load, 1)}))
    for device in devices:
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story


def _full_report(device: Device, t: float) -> Message:
    """A report with every device-side metric: ten datapoints from one report."""
    return report(
        device.name,
        t,
        tcp=[443, 554],
        udp=[3702],
        connections=[Connection(f"{IOT_ENDPOINT}:8883", 50412)],
        network={"bytes_in": 5_200, "bytes_out": 31_000, "packets_in": 40, "packets_out": 61},
    )


@dataset
def device_cadence() -> Story:
    """Devices with different cadences: only cam-dock-4 has been silent for longer than usual.

    pump-0017 reports every 20 minutes up to now (the fleet still reports). Two cameras send
    network stats every 2 hours for three days: cam-yard-1's last report is 100 minutes old,
    normal for it; cam-dock-4's is 8 hours old, four reports missed. pump-0099 was provisioned
    yesterday, sent two full reports (20 datapoints) and has been on a shelf since.
    """
    story = Story()
    for slot in range(215, -1, -1):
        t = ago(7 * MINUTE + slot * 20 * MINUTE)
        load = 30 + jitter(PUMP_17.name, slot, spread=5)
        story.add(t, report(PUMP_17.name, t, custom={"cpu_usage_pct": round(load, 1)}))
    for device, last in ((YARD_CAMERA, 100 * MINUTE), (DOCK_CAMERA, 8 * HOUR)):
        t = ago(last)
        while t > ago(72 * HOUR):
            network = {
                "bytes_in": 48_000,
                "bytes_out": 2_400_000,
                "packets_in": 700,
                "packets_out": 1_900,
            }
            story.add(t, report(device.name, t, network=network))
            t -= 2 * HOUR
    for t in (ago(20 * HOUR), ago(19 * HOUR + 40 * MINUTE)):
        story.add(t, _full_report(NEW_PUMP, t))
    for device in (PUMP_17, YARD_CAMERA, DOCK_CAMERA, NEW_PUMP):
        story.add(ago(30 * MINUTE), inventory_record(device, ago(30 * MINUTE)))
    return story
