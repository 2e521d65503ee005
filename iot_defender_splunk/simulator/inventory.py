"""What the inventory collector puts into Firehose for one thing (fleet-index collector)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from iot_defender_splunk.simulator.delivery import Message
from iot_defender_splunk.simulator.stamps import HOUR, compact, epoch_ms, stable_uuid


def thing_message(
    name: str,
    t: float,
    *,
    thing_type: str,
    attributes: Mapping[str, str],
    groups: Sequence[str],
    connected: bool = True,
) -> Message:
    """The thing's record collected at ``t``; connectivity changed six hours before."""
    record = {
        "recordType": "aws:iot:thing",
        "schemaVersion": 1,
        "collectedAt": epoch_ms(t),
        "collector": "fleet-index",
        "thing": {
            "thingName": name,
            "thingId": stable_uuid("thing", name),
            "thingTypeName": thing_type,
            "attributes": dict(attributes),
            "thingGroupNames": list(groups),
            "connectivity": {"connected": connected, "timestamp": epoch_ms(t - 6 * HOUR)},
        },
    }
    return Message("thing", compact(record))
