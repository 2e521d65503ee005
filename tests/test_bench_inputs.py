"""The bench's inputs: what its figures are computed on must be what it claims to be."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bench.inputs import KINDS, SIZES, build_batch, tiny_event
from bench.naive import naive_events, naive_handler
from tests.support import transform
from transform.config import Settings

UNLIMITED = Settings(response_limit_bytes=10**12)  # every record transformed in one call


def _payloads(event: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(record["data"]) for record in event["records"]]


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_fills_its_size_and_never_passes_it(kind: str) -> None:
    batch = build_batch(kind, "3MB")
    assert batch.request_bytes == len(json.dumps(batch.event))
    assert SIZES["3MB"] - 2_000 <= batch.request_bytes < SIZES["3MB"]
    assert batch.records == len(batch.event["records"])
    assert batch.input_bytes == sum(map(len, _payloads(batch.event)))


@pytest.mark.parametrize("kind", KINDS)
def test_every_record_of_a_batch_transforms(kind: str) -> None:
    report = transform(_payloads(build_batch(kind, "3MB").event), settings=UNLIMITED)
    assert {outcome.result for outcome in report.outcomes} == {"Ok"}
    assert report.decoder_errors == []
    assert sum(report.events_by_sourcetype.values()) > len(report.outcomes)


def test_ours_and_naive_agree_on_the_datapoints_once_reexports_are_kept_once() -> None:
    """Naive wraps every item; ours keeps one event per datapoint, its highest version."""
    event = build_batch("metrics_export", "3MB").event
    naive, _ = naive_handler(event)
    naive_count = sum(naive_events(base64.b64decode(r["data"])) for r in naive["records"])
    report = transform(_payloads(event), settings=UNLIMITED)
    ours = report.events_by_sourcetype["aws:iot:defender:metric"]
    assert report.duplicates_removed > 0
    assert ours == naive_count - report.duplicates_removed


def test_the_first_call_input_holds_one_record_of_each_kind() -> None:
    event = tiny_event()
    assert event == tiny_event()
    report = transform(_payloads(event), settings=UNLIMITED)
    assert len(report.outcomes) == len(KINDS)
    assert {outcome.result for outcome in report.outcomes} == {"Ok"}
    assert len(report.events_by_sourcetype) >= len(KINDS)
