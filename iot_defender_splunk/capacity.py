"""Sizing a fleet's pipeline before ``sam deploy``: Firehose quotas, Lambda, HEC, Splunk license.

Rates are averages over a day: message rates come from the fleet's inputs, byte and event
counts per message from ``data/measured.json`` (the real transform on representative
messages), and transform duration from its measured ms per MB. Where AWS does not document a
batching factor the model takes the upper bound (one record, and one request, per message)
and says so in :data:`ASSUMPTIONS`.

Firehose Direct PUT quotas, per delivery stream, PutRecord and PutRecordBatch combined
(https://docs.aws.amazon.com/firehose/latest/dev/limits.html): US East (N. Virginia), US West
(Oregon) and Europe (Ireland) 500,000 records/s, 2,000 requests/s and 5 MiB/s; other Regions
100,000 records/s, 1,000 requests/s and 1 MiB/s. The three scale together when raised.

The stack's IoT rules use the Firehose action without ``batchMode``
(https://docs.aws.amazon.com/iot/latest/developerguide/kinesis-firehose-rule-action.html):
each matched message is one PutRecord call, so requests/s equals messages/s. ``batchMode`` only
splits one message whose SQL result is an array into up to 500 records; it never joins
messages, so it could not lower the request rate here.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Final

from shared.firehose import MAX_BATCH_RECORDS

DAY: Final = 86_400.0
HOUR: Final = 3_600.0
MB: Final = 1_000_000  # Firehose buffer sizes and the bench's ms per MB
MIB: Final = 1_048_576  # Firehose's throughput quota
GB: Final = 1_000_000_000
LAMBDA_RESPONSE_LIMIT: Final = 6_000_000  # the transform's response budget (Lambda's 6 MB)

# Detect's evaluation period for cloud-side metrics, and the shortest device report interval
# Device Defender accepts without throttling (its device-side metrics documentation).
DETECT_PERIOD_SECONDS: Final = 300.0
MIN_REPORT_INTERVAL: Final = 300.0
MQTT_PAYLOAD_LIMIT: Final = 128 * 1024  # AWS IoT Core's largest message: one export at most
DEVICE_SIDE_METRICS: Final = 10  # the rule profile's exported device-side metrics
CLOUD_SIDE_METRICS: Final = 8  # ... and cloud-side ones (tests pin both to the template)
PUT_RECORD_BATCH_RECORDS: Final = 500
# The collectors buffer records across API pages and put full PutRecordBatch calls
# (collect/delivery.py RecordBuffer); their records are far below 4 MiB / 500 each.
COLLECTOR_BATCH: Final = MAX_BATCH_RECORDS
AUDIT_RUNS_PER_DAY: Final = {
    "DAILY": 1.0,
    "WEEKLY": 1 / 7,
    "BIWEEKLY": 1 / 14,
    "MONTHLY": 12 / 365,
    "NONE": 0.0,
}


@dataclass(frozen=True)
class Quota:
    """Firehose Direct PUT throughput for one delivery stream."""

    records_per_s: float
    requests_per_s: float
    mib_per_s: float


QUOTAS: Final = {
    "high": Quota(500_000, 2_000, 5),  # us-east-1, us-west-2, eu-west-1
    "standard": Quota(100_000, 1_000, 1),  # every other Region
}


@dataclass(frozen=True)
class Fleet:
    """What the fleet does and which of the stack's sources are on (template defaults)."""

    devices: int
    report_interval: float = 300.0
    device_reports: bool = True
    detect: bool = False
    detect_datapoints_per_message: int = 1
    violations_per_device_day: float = 0.0
    lifecycle_per_device_day: float = 2.0
    iot_log_events_per_device_hour: float = 0.0
    metric_stream_series: int = 50
    audit_frequency: str = "DAILY"
    audit_findings_per_run: int = 0
    inventory_interval: float | None = 3_600.0
    region_class: str = "standard"


@dataclass(frozen=True)
class Buffering:
    """The delivery stream's buffering (sam/template.yaml parameter defaults)."""

    transform_mb: float = 0.5
    transform_interval: float = 60.0
    splunk_mb: float = 5.0
    splunk_interval: float = 60.0


@dataclass(frozen=True)
class Flow:
    """One producer's average traffic into the delivery stream and out of the transform."""

    source: str
    producer: str
    kind: str
    messages_per_s: float
    records_per_s: float
    requests_per_s: float
    bytes_per_s: float
    hec_bytes_per_s: float
    events_per_s: Mapping[str, float]
    raw_bytes_per_s: Mapping[str, float]


@dataclass(frozen=True)
class Usage:
    """One Firehose quota: what the fleet needs of it."""

    name: str
    needed: float
    quota: float

    @property
    def share(self) -> float:
        return self.needed / self.quota

    @property
    def over(self) -> bool:
        return self.needed > self.quota


@dataclass(frozen=True)
class Sizing:
    flows: list[Flow]
    quota_usage: list[Usage]
    transform_invocations_per_s: float
    mb_per_invocation: float
    ms_per_invocation: float
    concurrency: float
    response_bytes_per_invocation: float
    hec_requests_per_s: float
    hec_events_per_s: float
    hec_mb_per_s: float
    events_per_day: Mapping[str, float] = field(default_factory=dict)
    license_gb_per_day: Mapping[str, float] = field(default_factory=dict)

    @property
    def over_quota(self) -> list[Usage]:
        return [usage for usage in self.quota_usage if usage.over]

    @property
    def response_over_limit(self) -> bool:
        return self.response_bytes_per_invocation > LAMBDA_RESPONSE_LIMIT


ASSUMPTIONS: Final = (
    "Rates are daily averages; the inventory export and audits arrive as bursts at each run.",
    "Detect exports one datapoint per cloud-side metric per device every 5 minutes and each "
    "device-side metric once per report; AWS does not document how many datapoints one "
    "export message holds, so --detect-datapoints-per-message defaults to the upper bound of "
    "messages (1).",
    "SNS, CloudWatch Logs and the metric stream: one record and one request per message, "
    "log event or datapoint (an upper bound: they may batch).",
    "Collectors put records with PutRecordBatch, 500 per call, buffered across API pages.",
    "Transform duration is the measured ms per MB of each kind on the machine named in "
    "data/measured.json, weighted by its share of the bytes; the Lambda's own CPU differs, "
    "so compare with the function's Duration metric once deployed.",
    "Concurrency is invocations/s x duration (Little's law).",
    "License volume is each event's _raw: the event object as the transform serialises it. "
    "Index-time fields are not part of _raw; Splunk's documentation does not say whether "
    "HEC indexed fields count toward the license (make bench shows both figures).",
)


class CapacityError(ValueError):
    """An impossible fleet or buffering, said in one line."""


@cache
def figures() -> dict[str, Any]:
    """The committed measurements (``python -m iot_defender_splunk.capacity_figures``)."""
    text = resources.files("iot_defender_splunk").joinpath("data", "measured.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _per_message(kind: str) -> dict[str, Any]:
    return dict(figures()["messages"][kind])


def max_detect_datapoints_per_message() -> int:
    """How many exported datapoints fit one MQTT message (AWS IoT's 128 KB limit)."""
    export = _per_message("detect_export")
    per_datapoint = (export["record_bytes"] - export["empty_record_bytes"]) / export["datapoints"]
    return int((MQTT_PAYLOAD_LIMIT - export["empty_record_bytes"]) // per_datapoint)


def validate(fleet: Fleet, buffering: Buffering) -> None:
    """Refuse what cannot be deployed or would be throttled, with the reason."""
    if fleet.devices < 1:
        raise CapacityError("--devices must be at least 1")
    if fleet.report_interval < MIN_REPORT_INTERVAL:
        raise CapacityError(
            f"--report-interval must be at least {MIN_REPORT_INTERVAL:.0f} s: Device Defender "
            "throttles device metric reports sent more often"
        )
    largest = max_detect_datapoints_per_message()
    if not 1 <= fleet.detect_datapoints_per_message <= largest:
        raise CapacityError(
            f"--detect-datapoints-per-message must be 1 to {largest}: more do not fit one "
            "128 KB MQTT message"
        )
    if fleet.audit_frequency not in AUDIT_RUNS_PER_DAY:
        raise CapacityError(f"--audit must be one of {', '.join(AUDIT_RUNS_PER_DAY)}")
    if fleet.region_class not in QUOTAS:
        raise CapacityError(f"--region-class must be one of {', '.join(QUOTAS)}")
    if fleet.inventory_interval is not None and fleet.inventory_interval < 60:
        raise CapacityError("--inventory-interval must be at least 60 s (EventBridge's rate)")
    if not 0.2 <= buffering.transform_mb <= 3:
        raise CapacityError("--transform-buffer-mb must be 0.2 to 3 (Firehose's processor range)")
    if not 1 <= buffering.transform_interval <= 900:
        raise CapacityError("--transform-buffer-interval must be 1 to 900 s")
    if not 1 <= buffering.splunk_interval <= 60:
        raise CapacityError("--splunk-buffer-interval must be 1 to 60 s")


def _flow(
    source: str, producer: str, kind: str, messages: float, *, requests: float | None = None
) -> Flow:
    """``messages`` per second of the kind's representative message, one record each."""
    figure = _per_message(kind)
    per = 1 / figure["messages"]
    return Flow(
        source=source,
        producer=producer,
        kind=kind,
        messages_per_s=messages,
        records_per_s=messages,
        requests_per_s=messages if requests is None else requests,
        bytes_per_s=messages * figure["record_bytes"] * per,
        hec_bytes_per_s=messages * figure["hec_bytes"] * per,
        events_per_s={st: messages * n * per for st, n in figure["events"].items()},
        raw_bytes_per_s={st: messages * n * per for st, n in figure["raw_bytes"].items()},
    )


def _detect_flow(fleet: Fleet) -> Flow:
    """Detect's export: bytes per message are its envelope plus its datapoints."""
    figure = _per_message("detect_export")
    device_side = DEVICE_SIDE_METRICS / fleet.report_interval if fleet.device_reports else 0.0
    datapoints = fleet.devices * (device_side + CLOUD_SIDE_METRICS / DETECT_PERIOD_SECONDS)
    messages = datapoints / fleet.detect_datapoints_per_message
    per_datapoint = datapoints / figure["datapoints"]
    envelope = figure["empty_record_bytes"]
    return Flow(
        source="Detect metrics export",
        producer="IoT rule DetectExportRule",
        kind="detect_export",
        messages_per_s=messages,
        records_per_s=messages,
        requests_per_s=messages,
        bytes_per_s=messages * envelope + per_datapoint * (figure["record_bytes"] - envelope),
        hec_bytes_per_s=per_datapoint * figure["hec_bytes"],
        events_per_s={st: per_datapoint * n for st, n in figure["events"].items()},
        raw_bytes_per_s={st: per_datapoint * n for st, n in figure["raw_bytes"].items()},
    )


def flows(fleet: Fleet) -> list[Flow]:
    """Every enabled producer's traffic, in the order of the stack's sources."""
    devices = fleet.devices
    result: list[Flow] = []
    if fleet.detect:
        result.append(_detect_flow(fleet))
        if fleet.violations_per_device_day:
            alarms = devices * fleet.violations_per_device_day / DAY
            result.append(_flow("Detect alarms", "SNS alert topic", "violation", alarms))
    if fleet.device_reports:
        reports = devices / fleet.report_interval
        result.append(
            _flow("Device reports", "IoT rule DeviceReportRule", "device_report", reports)
        )
    if fleet.lifecycle_per_device_day:
        presence = devices * fleet.lifecycle_per_device_day / DAY
        result.append(_flow("Lifecycle events", "IoT rule LifecycleRule", "lifecycle", presence))
    runs = AUDIT_RUNS_PER_DAY[fleet.audit_frequency] / DAY
    if runs:
        result.append(_flow("Audit notifications", "SNS audit topic", "audit_notification", runs))
        if fleet.audit_findings_per_run:
            findings = fleet.audit_findings_per_run
            calls = runs * math.ceil(findings / COLLECTOR_BATCH)
            result.append(
                _flow(
                    "Audit findings",
                    "findings collector",
                    "audit_finding",
                    runs * findings,
                    requests=calls,
                )
            )
    if fleet.iot_log_events_per_device_hour:
        logs = devices * fleet.iot_log_events_per_device_hour / HOUR
        result.append(_flow("IoT Core logs", "CloudWatch Logs subscription", "iot_log", logs))
    if fleet.metric_stream_series:
        points = fleet.metric_stream_series / 60
        result.append(_flow("AWS/IoT metrics", "CloudWatch metric stream", "metric_stream", points))
    if fleet.inventory_interval is not None:
        things = devices / fleet.inventory_interval
        calls = math.ceil(devices / COLLECTOR_BATCH) / fleet.inventory_interval
        result.append(
            _flow("Thing inventory", "inventory collector", "thing", things, requests=calls)
        )
    return result


def _transform_ms_per_mb(traffic: list[Flow]) -> float:
    """The measured ms per MB of each kind, weighted by its share of the input bytes."""
    timing: dict[str, float] = figures()["transform"]["ms_per_mb"]
    total = sum(flow.bytes_per_s for flow in traffic)
    return sum(flow.bytes_per_s / total * timing[flow.kind] for flow in traffic)


def _buffered_deliveries(bytes_per_s: float, size_mb: float, interval: float) -> float:
    """Deliveries per second of a Firehose buffer: whichever of size or interval comes first."""
    return max(bytes_per_s / (size_mb * MB), 1 / interval) if bytes_per_s else 0.0


def size(fleet: Fleet, buffering: Buffering | None = None) -> Sizing:
    """Everything the fleet needs of the pipeline, checked against the stream's quotas."""
    buffering = buffering or Buffering()
    validate(fleet, buffering)
    traffic = flows(fleet)
    quota = QUOTAS[fleet.region_class]
    bytes_in = sum(flow.bytes_per_s for flow in traffic)
    hec_bytes = sum(flow.hec_bytes_per_s for flow in traffic)
    usage = [
        Usage("records/s", sum(flow.records_per_s for flow in traffic), quota.records_per_s),
        Usage("requests/s", sum(flow.requests_per_s for flow in traffic), quota.requests_per_s),
        Usage("MiB/s", bytes_in / MIB, quota.mib_per_s),
    ]
    invocations = _buffered_deliveries(
        bytes_in, buffering.transform_mb, buffering.transform_interval
    )
    mb_each = bytes_in / MB / invocations if invocations else 0.0
    ms_each = mb_each * _transform_ms_per_mb(traffic) if traffic else 0.0
    raw: Counter[str] = Counter()
    events: Counter[str] = Counter()
    for flow in traffic:
        raw.update(flow.raw_bytes_per_s)
        events.update(flow.events_per_s)
    return Sizing(
        flows=traffic,
        quota_usage=usage,
        transform_invocations_per_s=invocations,
        mb_per_invocation=mb_each,
        ms_per_invocation=ms_each,
        concurrency=invocations * ms_each / 1000,
        # Lambda answers base64 data: 4 bytes for every 3 the events take.
        response_bytes_per_invocation=hec_bytes / invocations * 4 / 3 if invocations else 0.0,
        hec_requests_per_s=_buffered_deliveries(
            hec_bytes, buffering.splunk_mb, buffering.splunk_interval
        ),
        hec_events_per_s=sum(events.values()),
        hec_mb_per_s=hec_bytes / MB,
        events_per_day={st: n * DAY for st, n in sorted(events.items())},
        license_gb_per_day={st: b * DAY / GB for st, b in sorted(raw.items())},
    )
