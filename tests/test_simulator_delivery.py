"""Firehose's buffering of records into transform invocations, and the producers' framing."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools.cfn_template import load_template
from iot_defender_splunk.simulator.delivery import (
    LAMBDA_REQUEST_LIMIT,
    MB,
    Buffering,
    Record,
    buffered,
    cloudwatch_gzip,
    firehose_batches,
    rule_record,
    stream_batches,
)

T0 = 1_795_399_200.0


def _record(arrival: float, size: int = 100) -> Record:
    return Record(arrival, "thing", b"x" * size)


def test_a_batch_closes_when_its_interval_has_passed_since_it_opened() -> None:
    records = [_record(T0 + offset) for offset in (0, 30, 59.9, 60, 61, 200)]
    groups = [[round(r.arrival - T0, 3) for r in group] for group in buffered(records, Buffering())]
    assert groups == [[0, 30, 59.9], [60, 61], [200]]


def test_a_batch_closes_once_it_holds_the_buffer_size() -> None:
    records = [_record(T0 + n, 400_000) for n in range(5)]
    groups = [len(group) for group in buffered(records, Buffering(size_mb=1))]
    assert groups == [3, 2]


def test_a_batch_never_passes_lambdas_request_limit() -> None:
    # 3 MB of tiny records would be 7.6 MB of event JSON: Firehose hands them over earlier.
    records = [_record(T0, 50) for _ in range(60_000)]
    batches = firehose_batches(records, Buffering(size_mb=3, interval_seconds=900))
    sizes = [len(json.dumps(batch.event)) for batch in batches]
    assert len(batches) > 1
    assert max(sizes) <= LAMBDA_REQUEST_LIMIT
    assert sum(len(batch.records) for batch in batches) == 60_000


def test_each_record_keeps_its_own_arrival_and_a_unique_record_id() -> None:
    records = [_record(T0 + 0.25), _record(T0 + 100.5), _record(T0 + 100.75)]
    batches = firehose_batches(records)
    entries = [entry for batch in batches for entry in batch.event["records"]]
    assert [e["approximateArrivalTimestamp"] for e in entries] == [
        1_795_399_200_250,
        1_795_399_300_500,
        1_795_399_300_750,
    ]
    assert len({e["recordId"] for e in entries}) == 3
    assert len({batch.event["invocationId"] for batch in batches}) == 2
    assert [base64.b64decode(e["data"]) for e in entries] == [r.data for r in records]


arrivals = st.lists(st.floats(min_value=0, max_value=3600), max_size=60)
sizes = st.integers(min_value=0, max_value=300_000)


@given(arrivals, st.lists(sizes, min_size=60, max_size=60), st.sampled_from([0.2, 1.0, 3.0]))
def test_buffering_keeps_every_record_once_in_arrival_order(
    offsets: list[float], lengths: list[int], size_mb: float
) -> None:
    records = [
        _record(T0 + offset, length) for offset, length in zip(offsets, lengths, strict=False)
    ]
    buffering = Buffering(size_mb=size_mb, interval_seconds=60)
    groups = list(buffered(records, buffering))
    flat = [record for group in groups for record in group]
    assert flat == sorted(records, key=lambda r: r.arrival)
    for group in groups:
        assert group[-1].arrival - group[0].arrival < 60
        held = sum(len(r.data) for r in group)
        assert held - len(group[-1].data) < size_mb * MB, "only the last record may fill it"


@given(arrivals, st.lists(sizes, min_size=60, max_size=60), st.integers(0, 10_000))
def test_streamed_batches_are_the_listed_ones(
    offsets: list[float], lengths: list[int], first: int
) -> None:
    records = [_record(T0 + o, n) for o, n in zip(offsets, lengths, strict=False)]
    in_order = iter(sorted(records, key=lambda r: r.arrival))
    listed = firehose_batches(records, Buffering(size_mb=0.5), first=first)
    assert list(stream_batches(in_order, Buffering(size_mb=0.5), first=first)) == listed


def test_a_stream_out_of_arrival_order_is_refused_not_misbuffered() -> None:
    records = [_record(T0), _record(T0 + 5), _record(T0 + 2)]
    with pytest.raises(ValueError, match="record 12 arrives before the one ahead of it"):
        list(stream_batches(records, first=10))


def test_cloudwatch_framing_is_gzip_of_the_subscription_json() -> None:
    payload = {"messageType": "CONTROL_MESSAGE", "logEvents": []}
    data = cloudwatch_gzip(payload)
    assert data[:2] == b"\x1f\x8b"
    assert json.loads(gzip.decompress(data)) == payload
    assert cloudwatch_gzip(payload) == data, "reproducible (no timestamp in the header)"


def test_a_rule_record_carries_the_message_base64_beside_what_the_rule_adds() -> None:
    record = json.loads(rule_record("device-report", b'{"a":1}', thing_name="pump-0001"))
    assert record == {
        "route": "device-report",
        "payload": "eyJhIjoxfQ==",
        "thing_name": "pump-0001",
    }


def test_the_default_buffering_is_the_stacks() -> None:
    parameters = load_template()["Parameters"]
    assert Buffering().size_mb == parameters["TransformBufferSizeMB"]["Default"]
    assert Buffering().interval_seconds == parameters["TransformBufferIntervalSeconds"]["Default"]
