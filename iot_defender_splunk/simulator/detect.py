"""Device Defender Detect messages: metrics exports (through the export rule) and violations.

Shapes: the metrics export JSON schema and API_ViolationEvent (docs/events.md, "Inputs").
"""

from __future__ import annotations

from typing import Any

from iot_defender_splunk.simulator.delivery import Message, rule_record
from iot_defender_splunk.simulator.sns import notification
from iot_defender_splunk.simulator.stamps import ACCOUNT, REGION, compact, epoch_ms, stable_id

ALERTS_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:iot-defender-alerts"
# Detect aggregates cloud-side metrics over 5-minute periods; datapoints fall on their starts.
PERIOD_SECONDS = 300


def export_item(
    thing: str,
    name: str,
    t: float,
    value: dict[str, Any],
    *,
    version: int = 1,
    dimension: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One datapoint of a metrics export (Detect stamps datapoints in epoch ms)."""
    item = {"name": name, "thing": thing, "value": value, "version": version}
    item["timestamp"] = epoch_ms(t)
    if dimension:
        item["dimension"] = dimension
    return item


def export(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A metrics export message, as Detect publishes it to the export topic."""
    return {"version": "1.0", "metrics": items}


def export_message(items: list[dict[str, Any]]) -> Message:
    """A metrics export as the stack's export rule forwards it."""
    return Message("metrics_export", rule_record("detect-export", compact(export(items))))


def violation(
    thing: str,
    t: float,
    *,
    event_type: str,
    behavior: str,
    metric: str,
    criteria: dict[str, Any],
    value: dict[str, Any] | None = None,
    profile: str = "fleet-baseline",
    confidence: str | None = None,
    violation_id: str | None = None,
) -> dict[str, Any]:
    """A Detect ``ViolationEvent`` message (violationEventTime in epoch ms, as SNS sends it)."""
    message: dict[str, Any] = {
        "violationId": violation_id or stable_id(thing, behavior, t),
        "thingName": thing,
        "securityProfileName": profile,
        "behavior": {
            "name": behavior,
            "metric": metric,
            "criteria": criteria,
            "suppressAlerts": False,
        },
    }
    if value is not None:
        message["metricValue"] = value
    message["violationEventType"] = event_type
    message["violationEventTime"] = epoch_ms(t)
    if confidence:
        message["violationEventAdditionalInfo"] = {"confidenceLevel": confidence}
    return message


def alarm_message(violation_event: dict[str, Any], sent: float, *, via_sns: bool = True) -> Message:
    """A violation as Firehose receives it: SNS-wrapped from the alert topic, or raw."""
    if via_sns:
        return Message("violation", compact(notification(ALERTS_TOPIC, violation_event, sent)))
    return Message("violation", compact(violation_event))
