"""CloudWatch metric-stream datapoints (JSON output format) of the AWS/IoT namespace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from iot_defender_splunk.simulator.delivery import Message
from iot_defender_splunk.simulator.stamps import ACCOUNT, REGION, compact, epoch_ms

METRIC_STREAM = "iot-defender-splunk-iot-metrics"


def datapoint(
    metric_name: str, t: float, total: float, *, dimensions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One minute's datapoint of an AWS/IoT count metric (``total`` events in it)."""
    return {
        "metric_stream_name": METRIC_STREAM,
        "account_id": ACCOUNT,
        "region": REGION,
        "namespace": "AWS/IoT",
        "metric_name": metric_name,
        "dimensions": dict(dimensions or {"Protocol": "MQTT"}),
        "timestamp": epoch_ms(t),
        "value": {"max": 1.0, "min": 1.0, "sum": float(total), "count": float(total)},
        "unit": "None",
    }


def lines_message(datapoints: Sequence[dict[str, Any]]) -> Message:
    """A metric stream's Firehose record: newline-separated JSON datapoints."""
    return Message("cloudwatch_metric_stream", b"".join(compact(p) + b"\n" for p in datapoints))
