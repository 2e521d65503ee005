"""Detect alarms: rule, statistical and ML behaviors, via SNS and raw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appbuild.datasets.cast import DOCK_CAMERA, GATEWAY, LOBBY_CAMERA, PUMP_17, PUMP_18, PUMP_22
from appbuild.datasets.story import Story, ago, dataset
from iot_defender_splunk.simulator import detect
from iot_defender_splunk.simulator.stamps import HOUR, MINUTE, stable_id


def _rule(
    operator: str, value: dict[str, Any], *, duration: int | None = 300, datapoints: int = 1
) -> dict[str, Any]:
    """A rule behavior's criteria (set comparisons take no duration)."""
    criteria: dict[str, Any] = {"comparisonOperator": operator, "value": value}
    if duration:
        criteria["durationSeconds"] = duration
    return criteria | {
        "consecutiveDatapointsToAlarm": datapoints,
        "consecutiveDatapointsToClear": datapoints,
    }


def _ml(confidence: str) -> dict[str, Any]:
    return {
        "consecutiveDatapointsToAlarm": 1,
        "consecutiveDatapointsToClear": 1,
        "mlDetectionConfig": {"confidenceLevel": confidence},
    }


# Behaviors of the security profiles: name -> (metric, criteria, profile, ML confidence).
BEHAVIORS: dict[str, tuple[str, dict[str, Any], str, str | None]] = {
    "listening-tcp-allowlist": (
        "aws:listening-tcp-ports",
        _rule("not-in-port-set", {"ports": [443, 8883]}, duration=None),
        "fleet-baseline",
        None,
    ),
    "auth-failures-high": (
        "aws:num-authorization-failures",
        _rule("greater-than", {"count": 5}),
        "fleet-baseline",
        None,
    ),
    "bytes-out-p90": (
        "aws:all-bytes-out",
        {
            "comparisonOperator": "greater-than",
            "statisticalThreshold": {"statistic": "p90"},
            "durationSeconds": 300,
            "consecutiveDatapointsToAlarm": 1,
            "consecutiveDatapointsToClear": 2,
        },
        "fleet-baseline",
        None,
    ),
    "cpu-usage-high": (
        "cpu_usage_pct",
        _rule("greater-than", {"number": 90}, datapoints=3),
        "fleet-baseline",
        None,
    ),
    "Authorization_failures_ML_Behavior": (
        "aws:num-authorization-failures",
        _ml("HIGH"),
        "fleet-ml-baseline",
        "HIGH",
    ),
    "Bytes_out_ML_Behavior": ("aws:all-bytes-out", _ml("LOW"), "fleet-ml-baseline", "LOW"),
}


@dataclass(frozen=True)
class Alarm:
    """One Detect alarm message; `episode` ties an alarm-cleared to its in-alarm."""

    seconds_ago: float
    thing: str
    event_type: str
    behavior: str
    value: dict[str, Any]
    episode: str = ""
    via_sns: bool = True

    def message(self) -> dict[str, Any]:
        metric, criteria, profile, confidence = BEHAVIORS[self.behavior]
        t = ago(self.seconds_ago)
        return detect.violation(
            self.thing,
            t,
            event_type=self.event_type,
            behavior=self.behavior,
            metric=metric,
            criteria=criteria,
            value=self.value,
            profile=profile,
            confidence=confidence,
            violation_id=stable_id(self.episode) if self.episode else None,
        )


@dataset
def detect_violations() -> Story:
    """Detect alarms (SNS and raw): three raised in the last 15 minutes, one open for 30 hours.

    In the last quarter hour: an ML alarm (HIGH confidence) on pump-0018's authorization
    failures, a rule alarm on gw-berlin-03's, and an ML alarm with LOW confidence on pump-0017;
    cam-lobby-2's bytes-out alarm clears. Older: cam-dock-4 has been in alarm for a listening
    port outside its allow list for 30 hours; gw-berlin-03's earlier alarm cleared after five
    hours; pump-0022's CPU alarm is three hours old.
    """
    in_alarm, cleared = "in-alarm", "alarm-cleared"
    alarms = [
        Alarm(
            30 * HOUR,
            DOCK_CAMERA.name,
            in_alarm,
            "listening-tcp-allowlist",
            {"ports": [22, 443, 8883]},
        ),
        Alarm(40 * HOUR, GATEWAY.name, in_alarm, "auth-failures-high", {"count": 31}, "gw-1"),
        Alarm(35 * HOUR, GATEWAY.name, cleared, "auth-failures-high", {"count": 0}, "gw-1"),
        Alarm(3 * HOUR, PUMP_22.name, in_alarm, "cpu-usage-high", {"number": 97.8}, via_sns=False),
        Alarm(
            2 * HOUR, LOBBY_CAMERA.name, in_alarm, "bytes-out-p90", {"count": 734_003_200}, "cam-1"
        ),
        Alarm(
            9 * MINUTE, PUMP_18.name, in_alarm, "Authorization_failures_ML_Behavior", {"count": 37}
        ),
        Alarm(8 * MINUTE, GATEWAY.name, in_alarm, "auth-failures-high", {"count": 54}),
        Alarm(
            7 * MINUTE,
            PUMP_17.name,
            in_alarm,
            "Bytes_out_ML_Behavior",
            {"count": 412_993},
            via_sns=False,
        ),
        Alarm(
            6 * MINUTE, LOBBY_CAMERA.name, cleared, "bytes-out-p90", {"count": 18_220_114}, "cam-1"
        ),
    ]
    story = Story()
    for alarm in alarms:
        t, message = ago(alarm.seconds_ago), alarm.message()
        story.add(t + 30, detect.alarm_message(message, t + 1, via_sns=alarm.via_sns))
    return story
