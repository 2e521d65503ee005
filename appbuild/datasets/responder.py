"""What the responder records, written by the responder's own code (respond.records), for the
stories of quarantines and releases."""

from __future__ import annotations

from typing import Any

from appbuild.datasets.cast import Device
from iot_defender_splunk.simulator.stamps import certificate_id, stable_uuid
from respond.actions import ERROR, NOOP, OK, REFUSED, Target
from respond.records import response_records
from respond.requests import parse_request
from respond.things import Certificate, ThingState

# The stack's quarantine thing group (`<stack>-quarantine`, stack iot-defender-splunk).
QUARANTINE_GROUP = "iot-defender-splunk-quarantine"


def thing_state(
    device: Device,
    *,
    quarantined: bool = False,
    certificate: str = "ACTIVE",
    shared_with: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A thing's groups and certificate as the responder reads and records them."""
    groups = [*device.groups, QUARANTINE_GROUP] if quarantined else list(device.groups)
    return ThingState(
        sorted(groups),
        [Certificate(certificate_id(device.name), certificate, list(shared_with))],
        [],
        QUARANTINE_GROUP,
    ).as_dict()


def quarantined(
    device: Device, *, session: str = "ended", shared_with: tuple[str, ...] = ()
) -> Target:
    """A thing the responder quarantined: added to the group, its certificate deactivated (left
    active when other things share it) and its session ended (or not, as `session` says)."""
    status = "ACTIVE" if shared_with else "INACTIVE"
    after = thing_state(device, quarantined=True, certificate=status, shared_with=shared_with)
    after["session"] = session
    parts = [f"quarantined {device.name}: added to {QUARANTINE_GROUP}"]
    if shared_with:
        parts += [
            "0 certificate(s) deactivated",
            f"1 shared certificate(s) left active ({certificate_id(device.name)[:12]})",
        ]
    else:
        parts.append("1 certificate(s) deactivated")
    message = ", ".join(parts) + f", session {session}"
    before = thing_state(device, shared_with=shared_with)
    return Target(OK, message, {"thing_name": device.name}, before, after)


def released(device: Device) -> Target:
    """A thing the responder released: out of the group, its certificate active again."""
    before = thing_state(device, quarantined=True, certificate="INACTIVE")
    message = (
        f"released {device.name}: removed from {QUARANTINE_GROUP}, 1 certificate(s) reactivated"
    )
    return Target(OK, message, {"thing_name": device.name}, before, thing_state(device))


def unchanged(device: Device, message: str, *, in_quarantine: bool = False) -> Target:
    """A thing that already was as asked (a no-op)."""
    status = "INACTIVE" if in_quarantine else "ACTIVE"
    state = thing_state(device, quarantined=in_quarantine, certificate=status)
    return Target(NOOP, message, {"thing_name": device.name}, state, state)


def refused(key: dict[str, Any], message: str, before: dict[str, Any] | None = None) -> Target:
    """A target a guard rail refused."""
    return Target(REFUSED, message, key, before)


def failed(
    key: dict[str, Any], message: str, code: str, text: str, before: dict[str, Any] | None = None
) -> Target:
    """A target whose AWS call failed, with the AWS error code and message."""
    return Target(ERROR, message, key, before, error={"code": code, "message": text})


def responses(request: dict[str, Any], targets: list[Target], t: float) -> list[bytes]:
    """The records the responder writes for one request it executed (its own code writes them),
    completed at `t`."""
    parsed = parse_request(request)
    return response_records(
        parsed,
        stable_uuid("response", parsed.request_id, t),
        targets,
        requested_at=t - 1.3,
        completed_at=t,
    )
