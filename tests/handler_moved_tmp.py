"""tmp"""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.firehose import put_records
from tests.fakes import FakeFirehose
from tests.support import (
    FakeLambdaContext,
    firehose_event,
    fixture,
    outcome_events,
    routed,
    transform,
)
from transform import handler, reingest
from transform.batch import SLICE_BYTES, BatchReport
from transform.config import Settings
from transform.reingest import Untagged


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
    firehose_into_s3: Any,
) -> None:
    firehose, s3 = firehose_into_s3
    lambda_handler = handler.make_handler(handler.Runtime(Settings(), firehose=firehose))
    # Each record is ~0.7 MB in and ~2 MB of base64 HEC events out: five cannot all fit.
    payloads = [_export(f"pump-{i:04d}", 3000) for i in range(5)]
    event = firehose_event(payloads)

    response = lambda_handler(event, FakeLambdaContext())

    assert len(json.dumps(response)) <= 6_000_000
    assert [r["recordId"] for r in response["records"]] == [r["recordId"] for r in event["records"]]
    dropped = [i for i, r in enumerate(response["records"]) if r["result"] == "Dropped"]
    assert dropped
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


def test_no_reput_starts_when_the_invocation_has_no_time_left() -> None:
    """Less time left than the answer margin: nothing is re-put, the overflow fails at once
    (Firehose backs it up to S3) and the response still goes out before the timeout."""
    firehose = FakeFirehose("iot-defender-splunk")
    lambda_handler = handler.make_handler(handler.Runtime(Settings(), firehose=firehose))
    payloads = [_export(f"pump-{i:04d}", 3000) for i in range(5)]
    context = FakeLambdaContext(remaining_ms=int(handler.ANSWER_MARGIN_SECONDS * 1000) + 500)

    response = lambda_handler(firehose_event(payloads), context)

    results = Counter(r["result"] for r in response["records"])
    assert results["Ok"] >= 1
    assert results["ProcessingFailed"] == len(payloads) - results["Ok"]
    assert firehose.calls == []
