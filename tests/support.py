"""Helpers shared by the tests: fixtures as Firehose records, reading the handler's output."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from devtools.samples import SAMPLES_DIR, record_bytes
from devtools.samples import sample_paths as fixture_paths
from iot_defender_splunk.local_lambda import LocalLambdaContext as FakeLambdaContext
from iot_defender_splunk.simulator.delivery import (
    ARRIVAL_MS,
    RULE_ROUTES,
    STREAM_ARN,
    firehose_event,
    published_rule_record,
)
from transform.batch import BatchReport, InputRecord, Outcome, Reput, transform_batch
from transform.config import Settings

__all__ = [
    "ARRIVAL_MS",
    "NOW",
    "SAMPLES_DIR",
    "STREAM_ARN",
    "FakeLambdaContext",
    "all_events",
    "by_sourcetype",
    "firehose_event",
    "fixture",
    "fixture_id",
    "fixture_json",
    "fixture_paths",
    "hec_events",
    "outcome_events",
    "record_bytes",
    "report_events",
    "routed",
    "transform",
    "transform_fixture",
]


def fixture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def fixture(kind: str, name: str) -> bytes:
    return record_bytes(SAMPLES_DIR / kind / name)


def fixture_json(kind: str, name: str) -> Any:
    return json.loads((SAMPLES_DIR / kind / name).read_text(encoding="utf-8"))


def routed(kind: str, message: dict[str, Any]) -> bytes:
    """A message of a rule-fed kind as its producer publishes it and its rule forwards it."""
    return published_rule_record(RULE_ROUTES[kind], message)


def hec_events(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The HEC events inside one output record (newline-separated JSON objects)."""
    data = base64.b64decode(record["data"]) if record.get("data") else b""
    # Split on b"\n" only: orjson leaves U+2028 and friends unescaped inside strings.
    return [json.loads(line) for line in data.split(b"\n") if line]


def all_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for record in response["records"] for event in hec_events(record)]


def by_sourcetype(events: list[dict[str, Any]], sourcetype: str) -> list[dict[str, Any]]:
    return [event for event in events if event["sourcetype"] == sourcetype]


NOW = 1_795_410_000.0  # "processing time" for tests calling the batch directly: after arrival


def transform(
    payloads: list[bytes],
    *,
    settings: Settings | None = None,
    reput: Reput | None = None,
    now: float = NOW,
) -> BatchReport:
    """Run payloads through the batch transform (no powertools), as the handler would."""
    event = firehose_event(payloads)
    records = [
        InputRecord(r["recordId"], r["data"], r["approximateArrivalTimestamp"])
        for r in event["records"]
    ]
    return transform_batch(
        records, settings=settings or Settings(), stream_source=STREAM_ARN, now=now, reput=reput
    )


def outcome_events(outcome: Outcome) -> list[dict[str, Any]]:
    return hec_events({"data": outcome.data})


def report_events(report: BatchReport) -> list[dict[str, Any]]:
    return [event for outcome in report.outcomes for event in outcome_events(outcome)]


def transform_fixture(kind: str, name: str, **kwargs: Any) -> list[dict[str, Any]]:
    """The HEC events one fixture turns into."""
    return report_events(transform([fixture(kind, name)], **kwargs))


def large_metrics_export(thing: str, metrics: int) -> bytes:
    """A Detect export whose HEC output is several times its own size: fills a response fast."""
    items = [
        {
            "name": "aws:all-bytes-out",
            "thing": thing,
            "value": {"count": i},
            "version": 1,
            "timestamp": 1795165961000 + i * 300_000,
        }
        for i in range(metrics)
    ]
    return routed("metrics_export", {"version": "1.0", "metrics": items})
