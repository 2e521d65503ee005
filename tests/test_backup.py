"""Reading Firehose's S3 backup objects: layout, compression, records, and what is unreadable."""

from __future__ import annotations

import base64
import datetime
import gzip
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from iot_defender_splunk.backup import (
    BackupRecord,
    Unreadable,
    hec_events,
    key_hour,
    list_keys,
    read_object,
)
from tests.backup_bucket import BACKUPS, backup_lines, put_backup

BUCKET = "iot-defender-backup"
UTC = datetime.UTC


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


def records(name: str, *, compress: bool) -> list[BackupRecord | Unreadable]:
    body = (BACKUPS / name).read_bytes()
    return list(read_object("k", gzip.compress(body) if compress else body))


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
def test_a_splunk_failed_object_gives_each_record_with_its_raw_data(compress):
    found = records("splunk_failed_ack_timeout.ndjson", compress=compress)
    lines = backup_lines("splunk_failed_ack_timeout.ndjson")
    assert [type(item) for item in found] == [BackupRecord] * 3
    assert [item.line for item in found] == [1, 2, 3]
    assert {item.error_code for item in found if isinstance(item, BackupRecord)} == {
        "Splunk.AckTimeout"
    }
    assert [item.data for item in found if isinstance(item, BackupRecord)] == [
        base64.b64decode(line["rawData"]) for line in lines
    ]
    first = found[0]
    assert isinstance(first, BackupRecord)
    assert first.arrival == datetime.datetime.fromtimestamp(
        lines[0]["arrivalTimestamp"] / 1000, tz=UTC
    )


def test_a_processing_failed_record_holds_the_original_record():
    (first, *_) = records("processing_failed_function_error.ndjson", compress=True)
    assert isinstance(first, BackupRecord)
    assert first.error_code == "Lambda.FunctionError"
    assert first.data.startswith(b'{\n  "Type": "Notification"')  # the SNS envelope, as sent


def test_unreadable_lines_say_which_and_why_and_the_rest_still_reads():
    found = records("splunk_failed_with_unreadable_lines.ndjson", compress=True)
    assert [(type(item).__name__, item.line) for item in found] == [
        ("BackupRecord", 1),
        ("Unreadable", 2),
        ("Unreadable", 3),
        ("BackupRecord", 4),
        ("BackupRecord", 5),
    ]
    assert [item.reason for item in found if isinstance(item, Unreadable)] == [
        "not JSON",
        "rawData is not base64",
    ]


def test_a_corrupt_gzip_object_is_unreadable_as_a_whole():
    (only,) = read_object("k", b"\x1f\x8b" + b"\x00" * 20)
    assert isinstance(only, Unreadable)
    assert only.line == 0
    assert only.reason.startswith("object is not valid gzip")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"[1, 2]", "JSON list, not an object"),
        (b'{"errorCode": "Splunk.AckTimeout"}', "no rawData string"),
        (b'{"rawData": 7}', "no rawData string"),
    ],
)
def test_a_line_that_is_not_a_backup_record_is_unreadable(line, reason):
    (only,) = read_object("k", line)
    assert only == Unreadable("k", 1, reason)


def record_with(data: bytes) -> BackupRecord:
    return BackupRecord(key="k", line=4, error_code="Splunk.AckTimeout", arrival=None, data=data)


def test_hec_events_splits_a_record_into_its_envelopes():
    events = hec_events(record_with(b'{"event":1}\n{"event":{"a":2}}{"event":"3"}\n'))
    assert events == [b'{"event":1}', b'{"event":{"a":2}}', b'{"event":"3"}']


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"time=1795316400 host=pump-0018 count=3", "rawData is not HEC event JSON"),
        (b'{"event":1}\n{"host":"x"}', "rawData holds a non-event JSON value"),
        (b'{"event":1}\n{"event":', "rawData is not HEC event JSON"),
        (b"\xff\xfe", "rawData is not UTF-8"),
        (b"  \n", "rawData is empty"),
    ],
)
def test_hec_events_refuses_a_record_it_would_send_only_half_of(data, reason):
    assert hec_events(record_with(data)) == Unreadable("k", 4, reason)


HOUR_8 = datetime.datetime(2026, 11, 23, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("folder_prefix", "key", "hour"),
    [
        ("splunk-failed/", "splunk-failed/2026/11/23/08/s-1-2026-11-23-08-00-01-x.gz", HOUR_8),
        ("logs/splunk-failed", "logs/splunk-failed2026/11/23/08/s-1-x", HOUR_8),
        ("splunk-failed/", "splunk-failed/manual-upload.json", None),
        ("splunk-failed/", "splunk-failed/2026/13/01/00/x", None),
    ],
)
def test_key_hour_reads_the_time_path_after_the_folder(folder_prefix, key, hour):
    assert key_hour(key, folder_prefix) == hour


def test_list_keys_keeps_the_hours_in_range_in_order(s3):
    day = datetime.timedelta(days=1)
    keys = [
        put_backup(s3, BUCKET, "splunk-failed", "splunk_failed_ack_timeout.ndjson", shift=k * day)
        for k in (2, 0, 1)
    ]
    put_backup(s3, BUCKET, "processing-failed", "processing_failed_function_error.ndjson")
    s3.put_object(Bucket=BUCKET, Key="splunk-failed/manual-upload.json", Body=b"")
    first_hour = key_hour(keys[1], "splunk-failed/")
    assert first_hour is not None

    everything = list_keys(s3, BUCKET, "splunk-failed/", since=None, until=None)
    from_day_1 = list_keys(s3, BUCKET, "splunk-failed/", since=first_hour + day, until=None)
    only_day_1 = list_keys(
        s3, BUCKET, "splunk-failed/", since=first_hour + day, until=first_hour + 2 * day
    )

    assert everything == [keys[1], keys[2], keys[0], "splunk-failed/manual-upload.json"]
    assert from_day_1 == [keys[2], keys[0], "splunk-failed/manual-upload.json"]
    assert only_day_1 == [keys[2], "splunk-failed/manual-upload.json"]


def test_an_hour_that_overlaps_since_is_kept(s3):
    key = put_backup(s3, BUCKET, "splunk-failed", "splunk_failed_ack_timeout.ndjson")
    hour = key_hour(key, "splunk-failed/")
    assert hour is not None
    half_past = hour + datetime.timedelta(minutes=30)
    assert list_keys(s3, BUCKET, "splunk-failed/", since=half_past, until=None) == [key]
    assert list_keys(s3, BUCKET, "splunk-failed/", since=None, until=hour) == []
