"""What the stack's producers put into Firehose, and the transformation events Firehose sends.

The one home of those envelopes, for the simulator, the demo, the datasets, the bench and the
tests: the IoT rules' record (route, base64 payload and what the rule adds), CloudWatch Logs'
gzip framing, and Firehose's data-transformation event, built as Firehose buffers records into
invocations of the transform Lambda.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from iot_defender_splunk.simulator.stamps import REGION, epoch_ms, stable_uuid

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
# CloudWatch Logs compresses subscription data at gzip level 6 (PutSubscriptionFilter).
CLOUDWATCH_GZIP_LEVEL = 6
# Lambda's synchronous request limit: a transformation event is never larger.
LAMBDA_REQUEST_LIMIT = 6_000_000
MB = 1_000_000
_INVOCATION_ID = "3c5d7a6e-2b7f-4f0e-9d8b-6a1f0f2d9e41"
_RECORD_ID_PREFIX = "49546986683135544286507457936321625675700192471156785154"


@dataclass(frozen=True)
class Message:
    """One record's bytes as its producer puts them into Firehose, and its input kind (the
    samples/ folder of its shape)."""

    kind: str
    data: bytes

    def arriving(self, arrival: float) -> Record:
        return Record(arrival, self.kind, self.data)


@dataclass(frozen=True)
class Record:
    """A message as Firehose receives it: ``arrival`` in epoch seconds."""

    arrival: float
    kind: str
    data: bytes


@dataclass(frozen=True)
class Buffering:
    """The transform processor's buffering hints (the stack's TransformBufferSizeMB and
    TransformBufferIntervalSeconds): an invocation starts when either is reached."""

    size_mb: float = 0.5
    interval_seconds: float = 60.0


@dataclass(frozen=True)
class Batch:
    """One invocation of the transform Lambda: its records and the event Firehose sends."""

    records: tuple[Record, ...]
    event: dict[str, Any]


def rule_record(route: str, message: bytes, **added: object) -> bytes:
    """What an IoT rule of the stack puts into Firehose for one matched MQTT message.

    The same record the rule's SQL builds: ``SELECT '<route>' AS route, encode(*, 'base64') AS
    payload`` plus, for device reports, ``topic(n) AS thing_name, timestamp() AS received_at``.
    """
    record = {"route": route, "payload": base64.b64encode(message).decode("ascii"), **added}
    return json.dumps(record, separators=(",", ":")).encode()


def published_rule_record(route: str, message: dict[str, Any]) -> bytes:
    """The rule record for a message as its producer publishes it: compact UTF-8 JSON, the way
    AWS services write theirs. What the rule itself adds (``RULE_ADDED_KEYS``) moves from the
    message into the record."""
    body = dict(message)
    added = {key: body.pop(key) for key in RULE_ADDED_KEYS if key in body}
    published = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return rule_record(route, published, **added)


def gzipped(data: bytes) -> bytes:
    """Bytes framed as a CloudWatch Logs subscription frames them: gzip (mtime 0, so a
    simulation is reproducible)."""
    return gzip.compress(data, CLOUDWATCH_GZIP_LEVEL, mtime=0)


def cloudwatch_gzip(payload: object) -> bytes:
    """A CloudWatch Logs subscription payload as Firehose receives it: gzipped JSON."""
    return gzipped(json.dumps(payload).encode())


def record_id(sequence: int) -> str:
    """A Firehose recordId (Firehose's are long digit strings, unique within the stream)."""
    return f"{_RECORD_ID_PREFIX}{sequence:04d}"


def _entry(sequence: int, arrival_ms: int, data: bytes) -> dict[str, Any]:
    return {
        "recordId": record_id(sequence),
        "approximateArrivalTimestamp": arrival_ms,
        "data": base64.b64encode(data).decode("ascii"),
    }


def _event(invocation_id: str, stream_arn: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "invocationId": invocation_id,
        "deliveryStreamArn": stream_arn,
        "region": REGION,
        "records": entries,
    }


def firehose_event(
    payloads: list[bytes], *, stream_arn: str = STREAM_ARN, arrival_ms: int = ARRIVAL_MS
) -> dict[str, Any]:
    """A Firehose data-transformation event with one record per payload, all arrived at once."""
    entries = [_entry(i, arrival_ms, payload) for i, payload in enumerate(payloads)]
    return _event(_INVOCATION_ID, stream_arn, entries)


# A transformation event without records, and what each record adds, as json.dumps writes them.
EVENT_SHELL_BYTES = len(json.dumps(_event(_INVOCATION_ID, STREAM_ARN, [])))
_ENTRY_SHELL = len(json.dumps(_entry(0, ARRIVAL_MS, b""))) + len(", ") - len(record_id(0))


def by_arrival(record: Record) -> float:
    """The sort key of records in the order Firehose receives them."""
    return record.arrival


def request_bytes(sequence: int, data: bytes) -> int:
    """What the record numbered ``sequence`` adds to a transformation event's JSON."""
    return _ENTRY_SHELL + len(record_id(sequence)) + 4 * ((len(data) + 2) // 3)


def buffered(
    records: Sequence[Record], buffering: Buffering, *, first: int = 0
) -> Iterator[list[Record]]:
    """Records grouped as Firehose buffers them for the transform, in arrival order.

    A buffer opens with the first record after the last invocation and is handed over once it
    holds ``size_mb`` of data or ``interval_seconds`` have passed since it opened, and always
    before its event would pass Lambda's 6 MB request limit. Records are numbered (for their
    recordIds) in arrival order from ``first``.
    """
    return _buffers(sorted(records, key=by_arrival), buffering, first=first)


def _buffers(
    in_order: Iterable[Record], buffering: Buffering, *, first: int
) -> Iterator[list[Record]]:
    """``buffered`` for records that already come in arrival order, taken one at a time, so a
    buffer is handed over before the next record is asked for."""
    limit = buffering.size_mb * MB
    current: list[Record] = []
    opened = held = request = last = 0.0
    for sequence, record in enumerate(in_order, start=first):
        if record.arrival < last:
            raise ValueError(f"record {sequence} arrives before the one ahead of it")
        last = record.arrival
        size = request_bytes(sequence, record.data)
        late = current and record.arrival >= opened + buffering.interval_seconds
        if late or (current and request + size > LAMBDA_REQUEST_LIMIT - EVENT_SHELL_BYTES):
            yield current
            current = []
        if not current:
            opened, held, request = record.arrival, 0.0, 0.0
        current.append(record)
        held += len(record.data)
        request += size
        if held >= limit:
            yield current
            current = []
    if current:
        yield current


def firehose_batches(
    records: Sequence[Record],
    buffering: Buffering | None = None,
    *,
    stream_arn: str = STREAM_ARN,
    first: int = 0,
) -> list[Batch]:
    """The transformation events Firehose sends for ``records``: buffered as it buffers them,
    every record with its own recordId (numbered from ``first``) and arrival timestamp."""
    in_order = sorted(records, key=by_arrival)
    return list(stream_batches(in_order, buffering, stream_arn=stream_arn, first=first))


def stream_batches(
    in_order: Iterable[Record],
    buffering: Buffering | None = None,
    *,
    stream_arn: str = STREAM_ARN,
    first: int = 0,
) -> Iterator[Batch]:
    """``firehose_batches`` for records that come in arrival order (ValueError if one does
    not), each event built once its buffer closes: a long simulation never holds them all."""
    sequence = first
    for group in _buffers(in_order, buffering or Buffering(), first=first):
        entries = []
        for record in group:
            entries.append(_entry(sequence, epoch_ms(record.arrival), record.data))
            sequence += 1
        event = _event(stable_uuid("invocation", stream_arn, sequence), stream_arn, entries)
        yield Batch(tuple(group), event)
