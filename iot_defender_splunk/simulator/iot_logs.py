"""AWS IoT Core logs v2 entries, delivered as a CloudWatch Logs subscription delivers them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from iot_defender_splunk.simulator.delivery import Message, cloudwatch_gzip
from iot_defender_splunk.simulator.stamps import (
    ACCOUNT,
    MINUTE,
    certificate_id,
    epoch_ms,
    iso_utc,
    jitter,
    stable_id,
    stable_uuid,
)

LOG_GROUP = "AWSIotLogsV2"
SUBSCRIPTION_FILTER = "iot-defender-splunk-logs"
# One log entry and the moment (epoch seconds) CloudWatch stamps it with.
LogEntry = tuple[float, dict[str, Any]]


def entry(
    t: float,
    event_type: str,
    status: str,
    *,
    client_id: str | None = None,
    source_ip: str | None = None,
    reason: str | None = None,
    details: str | None = None,
    topic: str | None = None,
    certificate: str | None = None,
) -> LogEntry:
    """One message-broker log entry; the principal is the client's own certificate unless
    ``certificate`` names another (a certificate used with client ids not its own)."""
    document: dict[str, Any] = {
        "timestamp": iso_utc(t, sep=" ", millis=True),
        "logLevel": "ERROR" if status == "Failure" else "INFO",
        "traceId": stable_uuid("trace", t, event_type, client_id, topic),
        "accountId": ACCOUNT,
        "status": status,
        "eventType": event_type,
        "protocol": "MQTT",
    }
    if client_id:
        document["clientId"] = client_id
        document["principalId"] = certificate_id(certificate or client_id)
    if topic:
        document["topicName"] = topic
    if source_ip:
        document["sourceIp"] = source_ip
        document["sourcePort"] = 30000 + int(jitter("port", t, spread=20000) + 20000)
    if reason:
        document["reason"] = reason
        document["details"] = details or reason.replace("_", " ").title()
    return t, document


def subscription_payload(
    log_events: list[dict[str, Any]],
    *,
    log_stream: str,
    log_group: str = LOG_GROUP,
    message_type: str = "DATA_MESSAGE",
) -> dict[str, Any]:
    """What a CloudWatch Logs subscription sends (before gzip)."""
    return {
        "messageType": message_type,
        "owner": ACCOUNT,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": [SUBSCRIPTION_FILTER],
        "logEvents": log_events,
    }


def log_events(entries: Sequence[LogEntry], *, raw: Sequence[tuple[float, str]] = ()) -> list[Any]:
    """CloudWatch log events of entries (their message is the entry's JSON) and of raw lines."""
    events = [
        {
            "id": str(int(stable_id("log", t, document)[:18], 16)),
            "timestamp": epoch_ms(t),
            "message": json.dumps(document),
        }
        for t, document in entries
    ]
    events += [
        {"id": str(int(stable_id("raw", line)[:18], 16)), "timestamp": epoch_ms(t), "message": line}
        for t, line in raw
    ]
    return events


def batch_message(entries: Sequence[LogEntry], *, first: float, raw: Sequence[str] = ()) -> Message:
    """One gzipped subscription payload of entries (and raw lines, stamped ``first``)."""
    payload = subscription_payload(
        log_events(entries, raw=[(first, line) for line in raw]),
        log_stream=stable_uuid("stream", first),
    )
    return Message("iot_logs", cloudwatch_gzip(payload))


def bursts(entries: Sequence[LogEntry], *, span: float = MINUTE) -> Iterator[list[LogEntry]]:
    """Entries in time order, grouped as CloudWatch delivers them: one payload per burst of at
    most ``span`` seconds."""
    batch: list[LogEntry] = []
    for item in sorted(entries, key=lambda pair: pair[0]):
        if batch and item[0] - batch[0][0] > span:
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch
