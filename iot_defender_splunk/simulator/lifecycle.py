"""Lifecycle (presence) events from ``$aws/events/presence/...``, as the lifecycle rule
forwards them."""

from __future__ import annotations

from typing import Any

from iot_defender_splunk.simulator.delivery import Message, rule_record
from iot_defender_splunk.simulator.stamps import certificate_id, compact, epoch_ms, stable_uuid


def presence(
    client_id: str,
    t: float,
    event_type: str,
    ip: str,
    *,
    reason: str | None = None,
    session: int = 0,
    certificate: str | None = None,
) -> dict[str, Any]:
    """A connected or disconnected event; a disconnect without ``reason`` is the client's own.
    The principal is the client's own certificate unless ``certificate`` names another."""
    event: dict[str, Any] = {
        "clientId": client_id,
        "timestamp": epoch_ms(t),
        "eventType": event_type,
    }
    if event_type == "disconnected":
        event["clientInitiatedDisconnect"] = reason is None
    event |= {
        "sessionIdentifier": stable_uuid("session", client_id, session),
        "principalIdentifier": certificate_id(certificate or client_id),
        "ipAddress": ip,
    }
    if reason:
        event["disconnectReason"] = reason
    event["versionNumber"] = session
    return event


def forwarded(event: dict[str, Any]) -> Message:
    """A lifecycle event as the stack's lifecycle rule forwards it."""
    return Message("lifecycle", rule_record("lifecycle", compact(event)))
