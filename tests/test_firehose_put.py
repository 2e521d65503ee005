"""PutRecordBatch with limits, partial-failure retries and backoff."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from shared.firehose import (
    MAX_BATCH_BYTES,
    MAX_RECORD_BYTES,
    put_records,
    stream_name_from_arn,
)
from tests.fakes import FakeFirehose

STREAM = "iot-defender-splunk"


def _put(client: Any, payloads: list[bytes], **kwargs: Any) -> tuple[list[int], list[float]]:
    sleeps: list[float] = []
    failed = put_records(client, "iot-defender-splunk", payloads, sleep=sleeps.append, **kwargs)
    return failed, sleeps


def test_batches_respect_the_500_record_limit() -> None:
    client = FakeFirehose(STREAM)
    failed, _ = _put(client, [b"x%d" % i for i in range(1201)])
    assert failed == []
    assert [len(call) for call in client.calls] == [500, 500, 201]


def test_batches_respect_the_4_mib_limit() -> None:
    client = FakeFirehose(STREAM)
    payloads = [bytes([65 + i]) * 900_000 for i in range(10)]
    failed, _ = _put(client, payloads)
    assert failed == []
    assert all(sum(map(len, call)) <= MAX_BATCH_BYTES for call in client.calls)
    assert [len(call) for call in client.calls] == [4, 4, 2]
    assert [p for call in client.calls for p in call] == payloads


def test_only_failed_entries_are_retried_with_growing_jittered_backoff() -> None:
    client = FakeFirehose(STREAM, failures={b"b": 2, b"d": 1})
    failed, sleeps = _put(client, [b"a", b"b", b"c", b"d"], base_delay=0.1)
    assert failed == []
    assert client.calls == [[b"a", b"b", b"c", b"d"], [b"b", b"d"], [b"b"]]
    assert len(sleeps) == 2
    assert 0.1 <= sleeps[0] <= 0.2
    assert 0.2 <= sleeps[1] <= 0.4


def test_a_failed_call_retries_the_whole_chunk() -> None:
    client = FakeFirehose(STREAM, raises=1)
    failed, _ = _put(client, [b"a", b"b"])
    assert failed == []
    assert client.calls == [[b"a", b"b"], [b"a", b"b"]]


def test_gives_up_after_max_attempts_and_says_which() -> None:
    client = FakeFirehose(STREAM, failures={b"b": 100})
    failed, sleeps = _put(client, [b"a", b"b", b"c"], max_attempts=4)
    assert failed == [1]
    assert len(client.calls) == 4
    assert len(sleeps) == 3


def test_a_record_over_the_firehose_limit_is_never_sent() -> None:
    client = FakeFirehose(STREAM)
    failed, _ = _put(client, [b"a", b"x" * (MAX_RECORD_BYTES + 1), b"c"])
    assert failed == [1]
    assert client.calls == [[b"a", b"c"]]


def test_real_client_request_shape_and_partial_failure() -> None:
    client = boto3.client(
        "firehose",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        stubber.add_response(
            "put_record_batch",
            {
                "FailedPutCount": 1,
                "RequestResponses": [
                    {"RecordId": "49546986683135544286507457936321625675700192471156785154"},
                    {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."},
                ],
            },
            {
                "DeliveryStreamName": "iot-defender-splunk",
                "Records": [{"Data": b"a"}, {"Data": b"b"}],
            },
        )
        stubber.add_response(
            "put_record_batch",
            {
                "FailedPutCount": 0,
                "RequestResponses": [{"RecordId": "4954698668313554428650745793"}],
            },
            {"DeliveryStreamName": "iot-defender-splunk", "Records": [{"Data": b"b"}]},
        )
        failed, _ = _put(client, [b"a", b"b"])
        stubber.assert_no_pending_responses()
    assert failed == []


def test_against_moto_every_record_is_accepted() -> None:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="backup")
        client = boto3.client("firehose", region_name="eu-west-1")
        client.create_delivery_stream(
            DeliveryStreamName="iot-defender-splunk",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::backup",
            },
        )
        failed, sleeps = _put(client, [b"%d" % i for i in range(700)])
    assert failed == []
    assert sleeps == []


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        (
            "arn:aws:firehose:eu-west-1:123456789012:deliverystream/iot-defender-splunk",
            "iot-defender-splunk",
        ),
        ("arn:aws-cn:firehose:cn-north-1:123456789012:deliverystream/s", "s"),
        ("arn:aws:firehose:eu-west-1:123456789012:deliverystream/", None),
        ("iot-defender-splunk", None),
        ("", None),
    ],
)
def test_stream_name_from_arn(arn: str, name: str | None) -> None:
    assert stream_name_from_arn(arn) == name
