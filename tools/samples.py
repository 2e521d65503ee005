"""The bundled sample AWS messages (tests/events/) as Firehose transformation events.

Used by `make demo`, the bench and the tests, so all three feed the handler the same way.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "tests" / "events"
STREAM_ARN = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/iot-defender-splunk"
ARRIVAL_MS = 1_795_400_000_000  # 2026-11-22T23:33Z, after every sample's own timestamp
# Sample kinds whose record bytes are gzip, as CloudWatch Logs subscriptions deliver them.
GZIPPED_KINDS = frozenset({"iot_logs"})
# Sample kinds an IoT rule forwards, and the route its SQL names. Their samples are the MQTT
# messages as published; a device report sample also holds what the rule adds to its record
# (``thing_name`` from the topic, ``received_at`` from timestamp()), lifted out into the record.
RULE_ROUTES = {
    "metrics_export": "detect-export",
    "device_report": "device-report",
    "lifecycle": "lifecycle",
}
RULE_ADDED_KEYS = ("thing_name", "received_at")
# Folders of tests/events/ holding messages as producers put them into Firehose. The others
# (audit_collector, inventory_collector, custom_resource) hold what other Lambdas receive.
TRANSFORM_KINDS = (
    "audit_finding",
    "audit_notification",
    "cloudwatch_metric_stream",
    "device_report",
    "iot_logs",
    "lifecycle",
    "metrics_export",
    "response",
    "thing",
    "violation",
)


def sample_paths(kind: str | None = None) -> list[Path]:
    """Every transform input sample, or those of one input kind (a folder under tests/events)."""
    kinds = (kind,) if kind else TRANSFORM_KINDS
    return sorted(
        path for name in kinds for path in (EVENTS_DIR / name).iterdir() if path.is_file()
    )


def record_bytes(path: Path) -> bytes:
    """The bytes the producer puts into Firehose for this sample."""
    data = path.read_bytes()
    kind = path.parent.name
    if kind in GZIPPED_KINDS:
        return gzip.compress(data)
    route = RULE_ROUTES.get(kind)
    if route is None:
        return data
    message = json.loads(data)
    added = {key: message.pop(key) for key in RULE_ADDED_KEYS if key in message}
    return rule_record(route, json.dumps(message).encode(), **added)


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


@dataclass
class LocalLambdaContext:
    """The LambdaContext attributes powertools reads, for running the handler outside Lambda."""

    function_name: str = "iot-defender-splunk-transform"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:eu-west-1:123456789012:function:iot-defender-splunk-transform"
    )
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    remaining_ms: int = 300_000  # the transform's timeout, as at the start of an invocation

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
