"""The responder at work: every action and outcome, quarantines that hold or not, relapses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appbuild.datasets.audits import certificate
from appbuild.datasets.cast import (
    DOCK_CAMERA,
    GATEWAY,
    LOBBY_CAMERA,
    NEW_PUMP,
    PUMP_17,
    PUMP_18,
    PUMP_21,
    PUMP_22,
    PUMPS,
    YARD_CAMERA,
    Connection,
    Device,
    presence,
    report,
)
from appbuild.datasets.responder import (
    QUARANTINE_GROUP,
    failed,
    quarantined,
    refused,
    released,
    thing_state,
    unchanged,
)
from appbuild.datasets.story import Story, ago, dataset
from iot_defender_splunk.simulator import iot_logs
from iot_defender_splunk.simulator.delivery import Message
from iot_defender_splunk.simulator.iot_logs import LogEntry
from iot_defender_splunk.simulator.stamps import (
    DAY,
    HOUR,
    IOT_ENDPOINT,
    MINUTE,
    certificate_id,
    jitter,
    stable_id,
    stable_uuid,
)
from respond.actions import OK, Target

# --- the responder's audit trail ------------------------------------------------------------

# Who asks: each playbook, with the analyst who approved the step.
OPEN_PORT_PLAYBOOK = "soar:iot_open_port_response:approved-by:jdoe"
EXFILTRATION_PLAYBOOK = "soar:iot_exfiltration_containment:approved-by:asmith"
AUDIT_PLAYBOOK = "soar:iot_audit_remediation"
RELEASE_PLAYBOOK = "soar:iot_device_release:approved-by:jdoe"
# The stack's mitigation action for certificate checks (MITIGATION_ACTIONS of the responder).
DEACTIVATE_CERTIFICATE_MITIGATION = "iot-defender-splunk-deactivate-certificate"


def _mitigation(key: dict[str, Any], request_id: str, check: str) -> Target:
    """A Device Defender mitigation actions task the responder started."""
    task = f"iot-defender-{request_id}"
    plan = {"task_id": task, "actions": {check: [DEACTIVATE_CERTIFICATE_MITIGATION]}}
    return Target(OK, f"started mitigation task {task}", key, None, plan)


def _certificate_target(name: str, users: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A certificate's target key and what the responder reads of it."""
    return {"certificate_id": certificate_id(name)}, {"status": "ACTIVE", "things": users}


@dataset
def response_actions() -> Story:
    """A day of the responder's work as the playbooks asked for it: every action, every outcome.

    cam-lobby-2 is quarantined for Telnet, asked again (no-op) and released; gw-berlin-03 is
    refused (protected group gateways). The pumps group is quarantined for pump-0021's upload:
    five pumps are, pump-0022 fails (throttled, undone); the group is released. Firmware 1.9.3's
    cameras are quarantined by version and released; a version request on another attribute is
    refused before any thing is named. A shared certificate is deactivated, audit findings are
    remediated by finding and by task and check; pump-0099 is refused release (a mitigation
    action quarantined it). In the last quarter hour three targets fail: pump-0021's new
    quarantine, pump-0018's certificate and a mitigation task; pump-0022's release is a no-op.
    """
    story = Story()
    version = {"attribute": "firmware_version", "value": "1.9.3", "expected_count": 3}
    shared = certificate("cert-b", LOBBY_CAMERA.name, DOCK_CAMERA.name, "cam-test")
    shared_id = shared.identifier["deviceCertificateId"]
    audit_task = stable_id("audit", ago(26 * HOUR))
    pump_certificate, pump_certificate_state = _certificate_target(PUMP_18.name, [PUMP_18.name])
    requests: list[tuple[float, dict[str, Any], list[Target]]] = [
        (
            ago(20 * HOUR),
            {
                "action": "quarantine_thing",
                "request_id": "soar-4711-quarantine-cam-lobby-2",
                "thing_name": LOBBY_CAMERA.name,
                "requested_by": OPEN_PORT_PLAYBOOK,
                "reason": "Telnet listening on cam-lobby-2 (tcp/23, tcp/2323)",
            },
            [quarantined(LOBBY_CAMERA)],
        ),
        (
            ago(19 * HOUR),
            {
                "action": "quarantine_thing",
                "request_id": "soar-4725-quarantine-cam-lobby-2",
                "thing_name": LOBBY_CAMERA.name,
                "requested_by": OPEN_PORT_PLAYBOOK,
                "reason": "Telnet listening on cam-lobby-2 (tcp/23)",
            },
            [unchanged(LOBBY_CAMERA, "cam-lobby-2 is already quarantined", in_quarantine=True)],
        ),
        (
            ago(18 * HOUR),
            {
                "action": "quarantine_thing",
                "request_id": "soar-4730-quarantine-gw-berlin-03",
                "thing_name": GATEWAY.name,
                "requested_by": OPEN_PORT_PLAYBOOK,
                "reason": "tcp/4444 listening on gw-berlin-03",
            },
            [
                refused(
                    {"thing_name": GATEWAY.name},
                    "gw-berlin-03 is in protected thing group gateways: never quarantined",
                    thing_state(GATEWAY),
                )
            ],
        ),
        (
            ago(16 * HOUR),
            {
                "action": "quarantine_group",
                "request_id": "soar-4790-quarantine-pumps",
                "thing_group": "pumps",
                "expected_count": 6,
                "requested_by": EXFILTRATION_PLAYBOOK,
                "reason": "pump-0021 sent 48 MB to 203.0.113.99; containing its group",
            },
            [quarantined(pump) for pump in PUMPS[:5]]
            + [
                failed(
                    {"thing_name": PUMP_22.name},
                    "quarantine of pump-0022 failed; the steps taken were undone",
                    "ThrottlingException",
                    "Rate exceeded",
                    thing_state(PUMP_22),
                )
            ],
        ),
        (
            ago(12 * HOUR),
            {
                "action": "quarantine_version",
                "request_id": "soar-4802-quarantine-1-9-3",
                **version,
                "requested_by": OPEN_PORT_PLAYBOOK,
                "reason": "Telnet enabled by firmware 1.9.3",
            },
            [
                unchanged(LOBBY_CAMERA, "cam-lobby-2 is already quarantined", in_quarantine=True),
                quarantined(DOCK_CAMERA),
                quarantined(YARD_CAMERA),
            ],
        ),
        (
            ago(10 * HOUR),
            {
                "action": "quarantine_version",
                "request_id": "soar-4815-quarantine-plant-b",
                "attribute": "segment",
                "value": "plant-b",
                "expected_count": 4,
                "requested_by": EXFILTRATION_PLAYBOOK,
                "reason": "plant-b devices reaching 203.0.113.99",
            },
            [
                refused(
                    {"attribute": "segment", "value": "plant-b"},
                    "segment = plant-b holds 0 things, not expected_count 4",
                )
            ],
        ),
        (
            ago(8 * HOUR),
            {
                "action": "release_thing",
                "request_id": "soar-4850-release-cam-lobby-2",
                "thing_name": LOBBY_CAMERA.name,
                "requested_by": RELEASE_PLAYBOOK,
                "reason": "Telnet disabled by firmware 1.9.4; verified on the device",
            },
            [released(LOBBY_CAMERA)],
        ),
        (
            ago(6 * HOUR),
            {
                "action": "release_group",
                "request_id": "soar-4861-release-pumps",
                "thing_group": "pumps",
                "expected_count": 6,
                "requested_by": RELEASE_PLAYBOOK,
                "reason": "pump-0021 reimaged; the upload was a misconfigured backup job",
            },
            [released(pump) for pump in PUMPS[:5]]
            + [unchanged(PUMP_22, "pump-0022 is not quarantined")],
        ),
        (
            ago(5 * HOUR),
            {
                "action": "release_version",
                "request_id": "soar-4870-release-1-9-3",
                **version,
                "requested_by": RELEASE_PLAYBOOK,
                "reason": "firmware 1.9.4 rolled out to the cameras",
            },
            [
                unchanged(LOBBY_CAMERA, "cam-lobby-2 is not quarantined"),
                released(DOCK_CAMERA),
                released(YARD_CAMERA),
            ],
        ),
        (
            ago(4 * HOUR),
            {
                "action": "deactivate_certificate",
                "request_id": "soar-4901-deactivate-cert-b",
                "certificate_id": shared_id,
                "requested_by": AUDIT_PLAYBOOK,
                "reason": "DEVICE_CERTIFICATE_SHARED_CHECK: shared by three clients",
            },
            [
                Target(
                    OK,
                    f"deactivated certificate {shared_id[:12]}… used by 2 thing(s)",
                    {"certificate_id": shared_id},
                    {"status": "ACTIVE", "things": [LOBBY_CAMERA.name, DOCK_CAMERA.name]},
                    {"status": "INACTIVE", "things": [LOBBY_CAMERA.name, DOCK_CAMERA.name]},
                )
            ],
        ),
        (
            ago(3 * HOUR),
            {
                "action": "remediate_audit_finding",
                "request_id": "soar-4920-remediate-cert-b",
                "finding_ids": [stable_uuid(audit_task, "cert-b")],
                "requested_by": AUDIT_PLAYBOOK,
                "reason": "DEVICE_CERTIFICATE_SHARED_CHECK finding",
            },
            [
                _mitigation(
                    {"finding_ids": [stable_uuid(audit_task, "cert-b")]},
                    "soar-4920-remediate-cert-b",
                    "DEVICE_CERTIFICATE_SHARED_CHECK",
                )
            ],
        ),
        (
            ago(2 * HOUR),
            {
                "action": "remediate_audit_finding",
                "request_id": "soar-4933-remediate-expiring",
                "audit_task_id": audit_task,
                "check_name": "DEVICE_CERTIFICATE_EXPIRING_CHECK",
                "requested_by": AUDIT_PLAYBOOK,
                "reason": "DEVICE_CERTIFICATE_EXPIRING_CHECK findings of the daily audit",
            },
            [
                _mitigation(
                    {
                        "audit_task_id": audit_task,
                        "check_name": "DEVICE_CERTIFICATE_EXPIRING_CHECK",
                    },
                    "soar-4933-remediate-expiring",
                    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
                )
            ],
        ),
        (
            ago(HOUR),
            {
                "action": "release_thing",
                "request_id": "soar-4950-release-pump-0099",
                "thing_name": NEW_PUMP.name,
                "requested_by": RELEASE_PLAYBOOK,
                "reason": "provisioning test finished",
            },
            [
                refused(
                    {"thing_name": NEW_PUMP.name},
                    f"pump-0099 was put in {QUARANTINE_GROUP} by something other than the "
                    "responder (a mitigation action?): there is no record of what to restore; "
                    "remove it from the group there",
                    thing_state(NEW_PUMP, quarantined=True),
                )
            ],
        ),
        (
            ago(10 * MINUTE),
            {
                "action": "quarantine_thing",
                "request_id": "soar-4988-quarantine-pump-0021",
                "thing_name": PUMP_21.name,
                "requested_by": EXFILTRATION_PLAYBOOK,
                "reason": "pump-0021 sent 40 MB to 203.0.113.99 again",
            },
            [
                failed(
                    {"thing_name": PUMP_21.name},
                    "quarantine of pump-0021 failed; the steps taken were undone",
                    "ThrottlingException",
                    "Rate exceeded",
                    thing_state(PUMP_21),
                )
            ],
        ),
        (
            ago(9 * MINUTE),
            {
                "action": "deactivate_certificate",
                "request_id": "soar-4990-deactivate-pump-0018",
                **pump_certificate,
                "requested_by": AUDIT_PLAYBOOK,
                "reason": "DEVICE_CERTIFICATE_SHARED_CHECK: pump-0018 and a bench copy",
            },
            [
                failed(
                    pump_certificate,
                    f"cannot deactivate certificate {certificate_id(PUMP_18.name)}",
                    "InternalFailureException",
                    "An unexpected error has occurred.",
                    pump_certificate_state,
                )
            ],
        ),
        (
            ago(8 * MINUTE),
            {
                "action": "remediate_audit_finding",
                "request_id": "soar-4991-remediate-policy",
                "finding_ids": [stable_uuid(audit_task, "legacy-device-policy")],
                "requested_by": AUDIT_PLAYBOOK,
                "reason": "IOT_POLICY_OVERLY_PERMISSIVE_CHECK finding",
            },
            [
                failed(
                    {"finding_ids": [stable_uuid(audit_task, "legacy-device-policy")]},
                    "cannot start the mitigation task",
                    "InvalidRequestException",
                    "The audit finding has already been mitigated or suppressed.",
                )
            ],
        ),
        (
            ago(7 * MINUTE),
            {
                "action": "release_thing",
                "request_id": "soar-4995-release-pump-0022",
                "thing_name": PUMP_22.name,
                "requested_by": RELEASE_PLAYBOOK,
                "reason": "pump-0022 was never quarantined; closing the case",
            },
            [unchanged(PUMP_22, "pump-0022 is not quarantined")],
        ),
    ]
    for t, request, targets in requests:
        story.respond(t, request, targets)
    return story


def _telemetry_topic(device: Device) -> str:
    return f"{device.segment}/{device.thing_type}s/{device.name}/telemetry"


def _session(
    story: Story, entries: list[LogEntry], device: Device, t: float, *, publishes: int = 1
) -> None:
    """A device connects (lifecycle event and Connect log) and publishes telemetry, a minute
    apart."""
    story.add(t, presence(device.name, t, "connected", device.ip, session=int(t)))
    entries.append(
        iot_logs.entry(t, "Connect", "Success", client_id=device.name, source_ip=device.ip)
    )
    entries += [
        iot_logs.entry(
            t + MINUTE * (n + 1),
            "Publish-In",
            "Success",
            client_id=device.name,
            source_ip=device.ip,
            topic=_telemetry_topic(device),
        )
        for n in range(publishes)
    ]


def _refused_connect(device: Device, t: float) -> LogEntry:
    """A connection the quarantine's deny-all policy refuses."""
    return iot_logs.entry(
        t,
        "Connect",
        "Failure",
        client_id=device.name,
        source_ip=device.ip,
        reason="AUTHORIZATION_FAILURE",
    )


def _quarantine_request(action: str, request_id: str, reason: str, **keys: Any) -> dict[str, Any]:
    return {
        "action": action,
        "request_id": request_id,
        **keys,
        "requested_by": EXFILTRATION_PLAYBOOK
        if action.startswith("quarantine_")
        else RELEASE_PLAYBOOK,
        "reason": reason,
    }


@dataset
def quarantine_still_connecting() -> Story:
    """Three quarantined things still connect or publish; the other quarantines hold.

    The pumps group (pump-0017, pump-0018) is quarantined 5 hours ago, but pump-0018's session
    could not be ended (throttled) and it keeps publishing every 10 minutes; pump-0017's
    reconnects are refused. cam-lobby-2 is quarantined alone 3 hours ago (its certificate,
    shared with cam-dock-4, stays active) and connects and publishes again twice, the last time
    8 minutes ago. Firmware 1.9.3's cameras are quarantined by version 4 hours ago; cam-yard-1
    is released 2 hours ago and reconnects (as it may), cam-dock-4's release fails an hour ago
    (undone, so it stays quarantined) and it connects 9 minutes ago. gw-berlin-03's quarantine
    fails 2 hours ago: it goes on connecting, as it may.
    """
    story = Story()
    entries: list[LogEntry] = []
    pumps, cameras = (PUMP_17, PUMP_18), (DOCK_CAMERA, YARD_CAMERA)
    version = {"attribute": "firmware_version", "value": "1.9.3", "expected_count": 2}
    for device in (*pumps, LOBBY_CAMERA, *cameras, GATEWAY):  # as usual, before
        for slot in range(3):
            _session(story, entries, device, ago(14 * HOUR - slot * 4 * HOUR) + len(device.name))
    story.respond(
        ago(5 * HOUR),
        _quarantine_request(
            "quarantine_group",
            "soar-5100-quarantine-pumps",
            "pump-0018 uploading to 203.0.113.99",
            thing_group="pumps",
            expected_count=2,
        ),
        [quarantined(PUMP_17), quarantined(PUMP_18, session="not ended (ThrottlingException)")],
    )
    entries += [_refused_connect(PUMP_17, ago(5 * HOUR) + n * 30 * MINUTE + 40) for n in range(10)]
    entries += [
        iot_logs.entry(
            ago(8 * MINUTE) - n * 10 * MINUTE,
            "Publish-In",
            "Success",
            client_id=PUMP_18.name,
            source_ip=PUMP_18.ip,
            topic=_telemetry_topic(PUMP_18),
        )
        for n in range(29)
    ]
    story.respond(
        ago(4 * HOUR),
        _quarantine_request(
            "quarantine_version",
            "soar-5120-quarantine-1-9-3",
            "Telnet enabled by firmware 1.9.3",
            **version,
        ),
        [quarantined(DOCK_CAMERA), quarantined(YARD_CAMERA)],
    )
    story.respond(
        ago(3 * HOUR),
        _quarantine_request(
            "quarantine_thing",
            "soar-5130-quarantine-cam-lobby-2",
            "Telnet listening on cam-lobby-2",
            thing_name=LOBBY_CAMERA.name,
        ),
        [quarantined(LOBBY_CAMERA, shared_with=(DOCK_CAMERA.name,))],
    )
    for t in (ago(2 * HOUR + 50 * MINUTE), ago(10 * MINUTE)):
        _session(story, entries, LOBBY_CAMERA, t, publishes=2)
    story.respond(
        ago(2 * HOUR),
        _quarantine_request(
            "release_thing",
            "soar-5140-release-cam-yard-1",
            "cam-yard-1 runs firmware 1.9.4",
            thing_name=YARD_CAMERA.name,
        ),
        [released(YARD_CAMERA)],
    )
    _session(story, entries, YARD_CAMERA, ago(HOUR + 55 * MINUTE), publishes=3)
    story.respond(
        ago(2 * HOUR) + 30,
        _quarantine_request(
            "quarantine_thing",
            "soar-5145-quarantine-gw-berlin-03",
            "tcp/4444 on gw-berlin-03",
            thing_name=GATEWAY.name,
        ),
        [
            failed(
                {"thing_name": GATEWAY.name},
                "quarantine of gw-berlin-03 failed; the steps taken were undone",
                "AccessDeniedException",
                "User is not authorized to perform: iot:UpdateCertificate",
                thing_state(GATEWAY),
            )
        ],
    )
    _session(story, entries, GATEWAY, ago(9 * MINUTE), publishes=2)
    story.respond(
        ago(HOUR),
        _quarantine_request(
            "release_thing",
            "soar-5160-release-cam-dock-4",
            "cam-dock-4 runs firmware 1.9.4",
            thing_name=DOCK_CAMERA.name,
        ),
        [
            failed(
                {"thing_name": DOCK_CAMERA.name},
                "release of cam-dock-4 failed; the steps taken were undone",
                "ThrottlingException",
                "Rate exceeded",
                thing_state(DOCK_CAMERA, quarantined=True, certificate="INACTIVE"),
            )
        ],
    )
    _session(story, entries, DOCK_CAMERA, ago(9 * MINUTE) + 20)
    story.add_logs(entries)
    return story


@dataset
def quarantine_holds() -> Story:
    """Quarantines that hold: quarantined things are refused, released ones reconnect.

    The pumps group (pump-0017, pump-0018) is quarantined 5 hours ago; both are refused every
    half hour since. cam-yard-1 is quarantined 4 hours ago and released an hour ago, then
    connects and publishes. cam-lobby-2 connects 40 minutes ago and is quarantined 30 minutes
    ago; its reconnects are refused. gw-berlin-03's quarantine fails 2 hours ago and it connects
    as usual. In the last quarter hour the responder skips two requests: gw-berlin-03 is refused
    (protected group gateways) and pump-0022's release is a no-op.
    """
    story = Story()
    entries: list[LogEntry] = []
    pumps = (PUMP_17, PUMP_18)
    for device in (*pumps, LOBBY_CAMERA, YARD_CAMERA, GATEWAY):
        for slot in range(3):
            _session(story, entries, device, ago(14 * HOUR - slot * 4 * HOUR) + len(device.name))
    story.respond(
        ago(5 * HOUR),
        _quarantine_request(
            "quarantine_group",
            "soar-5200-quarantine-pumps",
            "pump-0018 uploading to 203.0.113.99",
            thing_group="pumps",
            expected_count=2,
        ),
        [quarantined(device) for device in pumps],
    )
    entries += [
        _refused_connect(device, ago(5 * HOUR) + n * 30 * MINUTE + 40)
        for device in pumps
        for n in range(10)
    ]
    story.respond(
        ago(4 * HOUR),
        _quarantine_request(
            "quarantine_thing",
            "soar-5210-quarantine-cam-yard-1",
            "Telnet on cam-yard-1",
            thing_name=YARD_CAMERA.name,
        ),
        [quarantined(YARD_CAMERA)],
    )
    story.respond(
        ago(HOUR),
        _quarantine_request(
            "release_thing",
            "soar-5220-release-cam-yard-1",
            "cam-yard-1 runs firmware 1.9.4",
            thing_name=YARD_CAMERA.name,
        ),
        [released(YARD_CAMERA)],
    )
    _session(story, entries, YARD_CAMERA, ago(9 * MINUTE), publishes=2)
    _session(story, entries, LOBBY_CAMERA, ago(40 * MINUTE), publishes=3)
    story.respond(
        ago(30 * MINUTE),
        _quarantine_request(
            "quarantine_thing",
            "soar-5230-quarantine-cam-lobby-2",
            "Telnet on cam-lobby-2",
            thing_name=LOBBY_CAMERA.name,
        ),
        [quarantined(LOBBY_CAMERA)],
    )
    entries += [_refused_connect(LOBBY_CAMERA, ago(29 * MINUTE) + n * 5 * MINUTE) for n in range(4)]
    story.respond(
        ago(2 * HOUR),
        _quarantine_request(
            "quarantine_thing",
            "soar-5240-quarantine-gw-berlin-03",
            "tcp/4444 on gw-berlin-03",
            thing_name=GATEWAY.name,
        ),
        [
            failed(
                {"thing_name": GATEWAY.name},
                "quarantine of gw-berlin-03 failed; the steps taken were undone",
                "AccessDeniedException",
                "User is not authorized to perform: iot:UpdateCertificate",
                thing_state(GATEWAY),
            )
        ],
    )
    _session(story, entries, GATEWAY, ago(9 * MINUTE), publishes=2)
    story.respond(
        ago(9 * MINUTE),
        _quarantine_request(
            "quarantine_thing",
            "soar-5250-quarantine-gw-berlin-03",
            "tcp/4444 on gw-berlin-03",
            thing_name=GATEWAY.name,
        ),
        [
            refused(
                {"thing_name": GATEWAY.name},
                "gw-berlin-03 is in protected thing group gateways: never quarantined",
                thing_state(GATEWAY),
            )
        ],
    )
    story.respond(
        ago(8 * MINUTE),
        _quarantine_request(
            "release_thing",
            "soar-5260-release-pump-0022",
            "closing the case",
            thing_name=PUMP_22.name,
        ),
        [unchanged(PUMP_22, "pump-0022 is not quarantined")],
    )
    story.add_logs(entries)
    return story


@dataclass(frozen=True)
class Relapse:
    """A device of the release story: what it reports, and its quarantine and release."""

    device: Device
    quarantined: float
    released: float
    tcp: tuple[int, ...] = ()
    connections: tuple[Connection, ...] = ()
    bytes_out: int = 0


def _release_report(
    entry: Relapse,
    t: float,
    slot: int,
    *,
    port: int | None = None,
    dest: Connection | None = None,
    bytes_out: int | None = None,
) -> Message:
    """The device's usual report (its ports, connections or network stats), with a sign added."""
    network = None
    if entry.bytes_out:
        usual = entry.bytes_out * (1 + jitter(entry.device.name, slot, "bytes", spread=0.1))
        packets = 1_500 * (1 + jitter(entry.device.name, slot, "packets", spread=0.1))
        network = {"bytes_out": int(bytes_out or usual), "packets_out": int(packets)}
    return report(
        entry.device.name,
        t,
        tcp=[*entry.tcp, *([port] if port else [])] if entry.tcp else None,
        connections=[*entry.connections, *([dest] if dest else [])] if entry.connections else None,
        network=network,
    )


def _release_story(*, relapse: bool) -> Story:
    """Eight days of four-hourly reports of devices quarantined for one sign and released.

    gw-berlin-03 (ports) listens on tcp/4444 40 hours ago, is quarantined 39 hours ago and
    released 12 hours ago. pump-0021 (network stats) sends 48 MB 32 hours ago; the pumps group
    (with pump-0017) is quarantined 30 hours ago and released 10 hours ago. cam-lobby-2
    (connections) reaches 203.0.113.77:6667 52 hours ago; firmware 1.9.3 (with cam-dock-4) is
    quarantined 50 hours ago and released 20 hours ago. No report arrives in quarantine (its
    policy denies publishing). After the release cam-dock-4 reaches a new private address, as
    it may. With `relapse`, each shows its sign again: tcp/4444 in the last two reports, 40 MB
    4 hours ago, 203.0.113.77 in the last report; and cam-yard-1 (ports), released 3 days ago
    after 2 days in quarantine, starts Telnet.
    """
    endpoint = Connection(f"{IOT_ENDPOINT}:8883", 50412)
    entries = [
        Relapse(GATEWAY, ago(39 * HOUR), ago(12 * HOUR), tcp=(22, 8443)),
        Relapse(PUMP_17, ago(30 * HOUR), ago(10 * HOUR), bytes_out=400_000),
        Relapse(PUMP_21, ago(30 * HOUR), ago(10 * HOUR), bytes_out=400_000),
        Relapse(LOBBY_CAMERA, ago(50 * HOUR), ago(20 * HOUR), connections=(endpoint,)),
        Relapse(DOCK_CAMERA, ago(50 * HOUR), ago(20 * HOUR), connections=(endpoint,)),
        Relapse(YARD_CAMERA, ago(5 * DAY), ago(3 * DAY), tcp=(443, 554)),
    ]
    story = Story()
    for slot in range(47, -1, -1):
        t = ago(20 * MINUTE + slot * 4 * HOUR)
        for position, entry in enumerate(entries):
            at = t + 5 * position
            if entry.quarantined <= at < entry.released:
                continue
            incident = entry.quarantined - 4 * HOUR <= at < entry.quarantined
            again = relapse and at > entry.released
            signs: dict[str, Any] = {}
            if entry.device is GATEWAY and (incident or (again and slot < 2)):
                signs["port"] = 4444
            if entry.device is PUMP_21 and (incident or (again and slot == 1)):
                signs["bytes_out"] = 40_000_000 if again else 48_000_000
            if entry.device is LOBBY_CAMERA and (incident or (again and slot == 0)):
                signs["dest"] = Connection("203.0.113.77:6667", 49201)
            if entry.device is DOCK_CAMERA and at > entry.released:
                signs["dest"] = Connection("10.30.0.9:554", 50100)
            if entry.device is YARD_CAMERA and again and slot < 2:
                signs["port"] = 23
            story.add(at, _release_report(entry, at, slot, **signs))
    requests: list[tuple[str, dict[str, Any], tuple[Relapse, ...]]] = [
        ("thing", {"thing_name": GATEWAY.name}, (entries[0],)),
        ("group", {"thing_group": "pumps", "expected_count": 2}, tuple(entries[1:3])),
        (
            "version",
            {"attribute": "firmware_version", "value": "1.9.3", "expected_count": 2},
            tuple(entries[3:5]),
        ),
        ("thing", {"thing_name": YARD_CAMERA.name}, (entries[5],)),
    ]
    for number, (scope, keys, contained) in enumerate(requests):
        first = contained[0]
        for step, t, target, why in (
            ("quarantine", first.quarantined, quarantined, "a sign of compromise"),
            ("release", first.released, released, "reimaged"),
        ):
            request = _quarantine_request(
                f"{step}_{scope}",
                f"soar-61{number}-{step}-{first.device.name}",
                f"{first.device.name}: {why}",
                **keys,
            )
            story.respond(t, request, [target(entry.device) for entry in contained])
    return story


@dataset
def released_thing_misbehaving() -> Story:
    """Released devices show the sign they were quarantined for again (see _release_story)."""
    return _release_story(relapse=True)


@dataset
def released_thing_behaving() -> Story:
    """Released devices behave as before their incident (see _release_story)."""
    return _release_story(relapse=False)
