"""The 6,000,000-byte response limit: overflow is re-ingested, bounded, and never lost."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support import (
    FakeLambdaContext,
    firehose_event,
    fixture,
    outcome_events,
    routed,
    transform,
)
from transform import handler, reingest
from transform.batch import BatchReport
from transform.config import Settings

SMALL_LIMIT = Settings(response_limit_bytes=40_000)


def _export(thing: str, metrics: int) -> bytes:
    """A Detect export whose HEC output is several times its own size."""
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


def _response(report: BatchReport) -> dict[str, Any]:
    """The response as the handler returns it."""
    return {
        "records": [
            {"recordId": o.record_id, "result": o.result, "data": o.data} for o in report.outcomes
        ]
    }


class RecordingReput:
    def __init__(self, fail: set[int] | None = None) -> None:
        self.payloads: list[bytes] = []
        self.fail = fail or set()

    def __call__(self, payloads: list[bytes]) -> list[int]:
        self.payloads.extend(payloads)
        return sorted(self.fail)


def test_overflow_is_reingested_and_the_response_stays_within_the_limit() -> None:
    payloads = [_export(f"pump-{i:04d}", 20) for i in range(10)]
    reput = RecordingReput()

    report = transform(payloads, settings=SMALL_LIMIT, reput=reput)

    results = [o.result for o in report.outcomes]
    assert results[0] == "Ok"
    assert "Dropped" in results
    first_dropped = results.index("Dropped")
    assert set(results[:first_dropped]) == {"Ok"}
    assert set(results[first_dropped:]) == {"Dropped"}, "once full, the rest is re-put in order"
    assert len(json.dumps(_response(report))) <= SMALL_LIMIT.response_limit_bytes
    assert report.reingested == len(reput.payloads) == results.count("Dropped")
    assert [reingest.untag(p) for p in reput.payloads] == [
        (payload, 1) for payload in payloads[first_dropped:]
    ]


def test_a_reingested_record_is_processed_again_like_the_original() -> None:
    original = _export("pump-0001", 5)
    expected = [e["event"] for e in outcome_events(transform([original]).outcomes[0])]

    report = transform([reingest.tag(original, 1)])

    assert [e["event"] for e in outcome_events(report.outcomes[0])] == expected


def test_reingested_records_go_first_so_every_trip_makes_progress() -> None:
    fresh = [_export(f"pump-{i:04d}", 20) for i in range(10)]
    returning = reingest.tag(_export("pump-9999", 20), 2)
    reput = RecordingReput()

    report = transform([*fresh, returning], settings=SMALL_LIMIT, reput=reput)

    assert report.outcomes[-1].result == "Ok"
    assert outcome_events(report.outcomes[-1])[0]["host"] == "pump-9999"
    assert "Dropped" in {o.result for o in report.outcomes[:-1]}, "it jumped the queue"


def test_reingest_attempts_are_bounded() -> None:
    payloads = [reingest.tag(_export(f"pump-{i:04d}", 20), 3) for i in range(10)]
    reput = RecordingReput()

    report = transform(payloads, settings=SMALL_LIMIT, reput=reput)

    failed = [o for o in report.outcomes if o.result == "ProcessingFailed"]
    assert failed
    assert all("3 re-ingest attempts" in (o.reason or "") for o in failed)
    assert reput.payloads == []
    assert "Dropped" not in {o.result for o in report.outcomes}


def test_records_that_cannot_be_reput_fail_instead_of_vanishing() -> None:
    payloads = [_export(f"pump-{i:04d}", 20) for i in range(10)]
    reput = RecordingReput(fail={0})

    report = transform(payloads, settings=SMALL_LIMIT, reput=reput)

    overflow = [o for o in report.outcomes if o.result != "Ok"]
    assert overflow[0].result == "ProcessingFailed"
    assert overflow[0].reason == "response full and re-put failed"
    assert {o.result for o in overflow[1:]} == {"Dropped"}


def test_without_a_stream_to_reput_into_the_overflow_fails() -> None:
    payloads = [_export(f"pump-{i:04d}", 20) for i in range(10)]
    report = transform(payloads, settings=SMALL_LIMIT, reput=None)
    results = {o.result for o in report.outcomes}
    assert results == {"Ok", "ProcessingFailed"}


def test_a_record_whose_output_can_never_fit_fails_alone() -> None:
    huge = _export("pump-0001", 400)
    small = fixture("lifecycle", "connected.json")
    reput = RecordingReput()

    report = transform([small, huge, small], settings=SMALL_LIMIT, reput=reput)

    assert [o.result for o in report.outcomes] == ["Ok", "ProcessingFailed", "Ok"]
    assert "can never fit" in (report.outcomes[1].reason or "")
    assert reput.payloads == []


@pytest.fixture
def firehose_into_s3() -> Any:
    """A real (moto) delivery stream into S3, so re-put records can be read back."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket="reingest-check",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        firehose = boto3.client("firehose", region_name="eu-west-1")
        firehose.create_delivery_stream(
            DeliveryStreamName="iot-defender-splunk",
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::reingest-check",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
            },
        )
        yield firehose, s3


def test_handler_reputs_overflow_into_its_own_stream_with_the_real_limit(
    firehose_into_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    firehose, s3 = firehose_into_s3
    monkeypatch.setattr(handler, "_firehose_client", firehose)
    # Each record is ~0.7 MB in and ~2 MB of base64 HEC events out: five cannot all fit.
    payloads = [_export(f"pump-{i:04d}", 3000) for i in range(5)]
    event = firehose_event(payloads)

    response = handler.lambda_handler(event, FakeLambdaContext())

    assert len(json.dumps(response)) <= 6_000_000
    assert [r["recordId"] for r in response["records"]] == [r["recordId"] for r in event["records"]]
    dropped = [i for i, r in enumerate(response["records"]) if r["result"] == "Dropped"]
    assert dropped
    assert all(response["records"][i]["result"] == "Ok" for i in range(dropped[0]))
    landed = b"".join(
        s3.get_object(Bucket="reingest-check", Key=obj["Key"])["Body"].read()
        for obj in s3.list_objects_v2(Bucket="reingest-check").get("Contents", [])
    )
    for i in dropped:
        assert reingest.tag(payloads[i], 1) in landed
    ok_events = sum(
        len(base64.b64decode(r["data"]).splitlines()) for r in response["records"] if r["data"]
    )
    assert ok_events == 3000 * (len(payloads) - len(dropped))
