"""Running one batch through the fast and the reference paths, for the differential tests."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from iot_defender_splunk.simulator.delivery import STREAM_ARN, firehose_event
from tests.support import NOW
from transform.batch import BatchReport, InputRecord, transform_batch
from transform.config import Settings

# A response limit that a few records overflow, so re-put and slicing get compared too.
SMALL_LIMIT = 2_500


def compact(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def run(
    payloads: list[bytes], settings: Settings, *, damage_data: int | None = None
) -> tuple[BatchReport, list[bytes]]:
    """One invocation; ``damage_data`` spoils one record's Firehose base64."""
    event = firehose_event(payloads)
    records = [
        InputRecord(r["recordId"], r["data"], r["approximateArrivalTimestamp"])
        for r in event["records"]
    ]
    if damage_data is not None and records:
        at = damage_data % len(records)
        records[at] = dataclasses.replace(records[at], data=str(records[at].data) + "*")
    reput: list[bytes] = []

    def put(batch: list[bytes]) -> list[int]:
        reput.extend(batch)
        return []

    report = transform_batch(
        records, settings=settings, stream_source=STREAM_ARN, now=NOW, reput=put
    )
    return report, reput


def assert_paths_agree(payloads: list[bytes], settings: Settings, **kwargs: Any) -> BatchReport:
    fast = run(payloads, dataclasses.replace(settings, fast_path=True), **kwargs)
    reference = run(payloads, dataclasses.replace(settings, fast_path=False), **kwargs)
    assert fast[0].outcomes == reference[0].outcomes  # results, reasons and data, in order
    assert fast[0] == reference[0]  # and every counter the metrics are made of
    assert fast[1] == reference[1]  # the re-put payloads
    return fast[0]
