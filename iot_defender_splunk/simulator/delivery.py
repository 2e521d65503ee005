"""What the stack's producers put into Firehose, and the transformation event Firehose sends.

The one home of those envelopes: the IoT rules' record (route, base64 payload and what the rule
adds) and Firehose's data-transformation event, for the simulator, the demo, the bench and tests.
"""

from __future__ import annotations

import base64
import json
from typing import Any

STREAM_ARN = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/iot-defender-splunk"
ARRIVAL_MS = 1_795_400_000_000  # 2026-11-22T23:33Z, after every sample's own timestamp
# Input kinds whose record bytes are gzip, as CloudWatch Logs subscriptions deliver them.
GZIPPED_KINDS = frozenset({"iot_logs"})
# Input kinds an IoT rule forwards, and the route its SQL names. A device report's record also
# holds what the rule adds (``thing_name`` from the topic, ``received_at`` from timestamp()).
RULE_ROUTES = {
    "metrics_export": "detect-export",
    "device_report": "device-report",
    "lifecycle": "lifecycle",
}
RULE_ADDED_KEYS = ("thing_name", "received_at")


def rule_record(route: str, message: bytes, **added: object) -> bytes:
    """What an IoT rule of the stack puts into Firehose for one matched MQTT message.

    The same record the rule's SQL builds: ``SELECT '<route>' AS route, encode(*, 'base64') AS
    payload`` plus, for device reports, ``topic(n) AS thing_name, timestamp() AS received_at``.
    """
    record = {"route": route, "payload": base64.b64encode(message).decode("ascii"), **added}
    return json.dumps(record, separators=(",", ":")).encode()


def firehose_event(
    payloads: list[bytes], *, stream_arn: str = STREAM_ARN, arrival_ms: int = ARRIVAL_MS
) -> dict[str, Any]:
    """A Firehose data-transformation event with one record per payload."""
    return {
        "invocationId": "3c5d7a6e-2b7f-4f0e-9d8b-6a1f0f2d9e41",
        "deliveryStreamArn": stream_arn,
        "region": "eu-west-1",
        "records": [
            {
                "recordId": f"49546986683135544286507457936321625675700192471156785154{i:04d}",
                "approximateArrivalTimestamp": arrival_ms,
                "data": base64.b64encode(payload).decode("ascii"),
            }
            for i, payload in enumerate(payloads)
        ],
    }
