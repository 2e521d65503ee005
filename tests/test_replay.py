"""`iot-defender-splunk replay`: backup objects in moto S3 back to the loopback HEC and into
the stream (moto Firehose, or the in-memory fake where a rejection is scripted)."""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from iot_defender_splunk import cli
from iot_defender_splunk.backup import hec_events, read_object
from iot_defender_splunk.commands import replay
from tests.backup_bucket import BACKUPS, backup_lines, put_backup
from tests.fakes import FakeFirehose
from tests.hec_server import HecStub

TOKEN = "2b7e1516-28ae-4d2a-a6f7-15880976cf4f"
REGION = "eu-west-1"
BUCKET = "iot-defender-backup"
STREAM = "iot-defender-splunk"
DELIVERED = "delivered-records"
ACK_TIMEOUT = "splunk_failed_ack_timeout.ndjson"
SERVER_ERROR = "splunk_failed_server_error.ndjson"
FUNCTION_ERROR = "processing_failed_function_error.ndjson"
UNREADABLE = "splunk_failed_with_unreadable_lines.ndjson"


def raw_data(name: str) -> list[bytes]:
    return [base64.b64decode(line["rawData"]) for line in backup_lines(name)]


def events_of(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for data in raw_data(name) for line in data.splitlines()]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto S3 with the backup bucket, and a moto stream delivering to a bucket of its own."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (BUCKET, DELIVERED):
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        boto3.client("firehose", region_name=REGION).create_delivery_stream(
            DeliveryStreamName=STREAM,
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose-delivery",
                "BucketARN": f"arn:aws:s3:::{DELIVERED}",
            },
        )
        yield s3


@pytest.fixture
def hec(monkeypatch: pytest.MonkeyPatch) -> Iterator[HecStub]:
    with HecStub(TOKEN) as stub:
        monkeypatch.setenv("SPLUNK_HEC_URL", stub.url)
        monkeypatch.setenv("SPLUNK_HEC_TOKEN", TOKEN)
        yield stub


def streamed(s3: Any) -> bytes:
    """What the moto stream delivered, in order (it writes one object per PutRecordBatch)."""
    listed = s3.list_objects_v2(Bucket=DELIVERED).get("Contents", [])
    keys = sorted(listed, key=lambda item: (item["LastModified"], item["Key"]))
    return b"".join(s3.get_object(Bucket=DELIVERED, Key=k["Key"])["Body"].read() for k in keys)


def fake_stream(monkeypatch: pytest.MonkeyPatch, fake: FakeFirehose) -> None:
    """Firehose calls go to ``fake``; S3 calls still go to moto."""
    real: Any = boto3.Session.client

    def client(self: boto3.Session, name: str, **kwargs: Any) -> Any:
        return fake if name == "firehose" else real(self, name, **kwargs)

    monkeypatch.setattr(boto3.Session, "client", client)


def one_line(text: str) -> str:
    assert text.count("\n") == 1, text
    assert "Traceback" not in text
    return text


def main(*argv: str) -> int:
    return cli.main(["replay", "--bucket", BUCKET, *argv])


def test_a_dry_run_counts_per_folder_and_error_code_and_sends_nothing(aws, hec, capsys):
    put_backup(aws, BUCKET, "splunk-failed", ACK_TIMEOUT)
    put_backup(aws, BUCKET, "splunk-failed", SERVER_ERROR)
    put_backup(aws, BUCKET, "processing-failed", FUNCTION_ERROR)

    assert main("--dry-run") == 0

    assert capsys.readouterr().out.splitlines() == [
        "splunk-failed: 2 objects, 5 records (Splunk.AckTimeout 3, Splunk.ServerError 2): "
        "would send 10 events to HEC",
        "processing-failed: 1 objects, 3 records (Lambda.FunctionError 3): "
        "would put 3 records into the stream",
    ]
    assert hec.requests == []
    assert streamed(aws) == b""


def test_splunk_failed_goes_to_hec_and_processing_failed_back_into_the_stream(aws, hec, capsys):
    put_backup(aws, BUCKET, "splunk-failed", ACK_TIMEOUT)
    put_backup(aws, BUCKET, "splunk-failed", SERVER_ERROR, compress=False)
    put_backup(aws, BUCKET, "processing-failed", FUNCTION_ERROR)

    assert main("--stream", STREAM) == 0

    assert hec.events == events_of(ACK_TIMEOUT) + events_of(SERVER_ERROR)
    # The original records, byte for byte, so the transform sees what it failed on.
    assert streamed(aws) == b"".join(raw_data(FUNCTION_ERROR))
    out = capsys.readouterr().out
    assert "send 10 events to HEC" in out
    assert f"put 3 records into {STREAM}" in out


def test_to_hec_replays_only_splunk_failed_and_needs_no_stream(aws, hec):
    put_backup(aws, BUCKET, "splunk-failed", SERVER_ERROR)
    put_backup(aws, BUCKET, "processing-failed", FUNCTION_ERROR)
    assert main("--to", "hec") == 0
    assert hec.events == events_of(SERVER_ERROR)
    assert streamed(aws) == b""


def test_to_stream_replays_only_processing_failed_and_needs_no_hec(aws, monkeypatch):
    monkeypatch.delenv("SPLUNK_HEC_URL", raising=False)
    put_backup(aws, BUCKET, "splunk-failed", SERVER_ERROR)
    put_backup(aws, BUCKET, "processing-failed", FUNCTION_ERROR)
    assert main("--to", "stream", "--stream", STREAM) == 0
    assert streamed(aws) == b"".join(raw_data(FUNCTION_ERROR))


def test_processing_failed_without_a_stream_is_one_clear_line(aws, hec, capsys):
    assert main() == 1
    assert one_line(capsys.readouterr().err) == (
        "iot-defender-splunk replay: error: processing-failed records go back into the stream: "
        "give --stream (or --to hec)\n"
    )


def test_a_prefix_is_where_the_folders_are(aws, hec):
    put_backup(aws, BUCKET, "splunk-failed", SERVER_ERROR, prefix="iot/")
    put_backup(aws, BUCKET, "splunk-failed", ACK_TIMEOUT)  # outside the prefix
    assert main("--to", "hec", "--prefix", "iot/") == 0
    assert hec.events == events_of(SERVER_ERROR)


def test_since_and_until_pick_objects_by_hour_and_records_by_arrival(aws, hec, capsys):
    # The server-error object is three days later than the ack-timeout one.
    put_backup(aws, BUCKET, "splunk-failed", ACK_TIMEOUT)
    put_backup(aws, BUCKET, "splunk-failed", SERVER_ERROR, shift=datetime.timedelta(days=3))
    arrivals = [line["arrivalTimestamp"] for line in backup_lines(ACK_TIMEOUT)]
    second = datetime.datetime.fromtimestamp(arrivals[1] / 1000, tz=datetime.UTC)
    until = second + datetime.timedelta(days=1)

    assert main("--to", "hec", "--since", second.isoformat(), "--until", until.isoformat()) == 0

    # Records 2 and 3 of the first object; the later object is past --until.
    assert hec.events == events_of(ACK_TIMEOUT)[3:]
    out = capsys.readouterr().out
    assert "splunk-failed: 1 objects, 2 records (Splunk.AckTimeout 2)" in out
    assert "1 records outside --since/--until" in out


def test_unreadable_lines_are_listed_and_fail_the_run_after_the_rest_is_sent(aws, hec, capsys):
    key = put_backup(aws, BUCKET, "splunk-failed", UNREADABLE)
    assert main("--to", "hec") == 1
    lines = (BACKUPS / UNREADABLE).read_bytes().splitlines()
    good = [json.loads(base64.b64decode(json.loads(lines[n])["rawData"])) for n in (0, 4)]
    assert hec.events == good
    captured = capsys.readouterr()
    assert (
        "splunk-failed: 1 objects, 2 records (Splunk.AckTimeout 2): send 2 events" in captured.out
    )
    assert one_line(captured.err) == (
        f"iot-defender-splunk replay: error: 3 unreadable lines not replayed: {key} line 2: "
        f"not JSON; {key} line 3: rawData is not base64; {key} line 4: rawData is not HEC "
        "event JSON\n"
    )


def test_a_rerun_with_the_checkpoint_resumes_where_a_failure_stopped(
    aws, tmp_path, monkeypatch, capsys
):
    """Chunks of one record: the second record is rejected until the first run gives up."""
    put_backup(aws, BUCKET, "processing-failed", FUNCTION_ERROR)
    originals = raw_data(FUNCTION_ERROR)
    checkpoint = tmp_path / "replay.json"
    monkeypatch.setattr(replay, "CHUNK_RECORDS", 1)
    first = FakeFirehose(STREAM, failures={originals[1]: 100})
    fake_stream(monkeypatch, first)
    args = ["--to", "stream", "--stream", STREAM, "--checkpoint", str(checkpoint)]

    assert main(*args) == 1
    assert "Firehose did not accept 1 of 1 records" in one_line(capsys.readouterr().err)
    assert first.accepted == originals[:1]
    saved = json.loads(checkpoint.read_text())
    assert saved["folders"]["processing-failed"]["line"] == 1

    second = FakeFirehose(STREAM)
    fake_stream(monkeypatch, second)
    assert main(*args) == 0
    assert second.accepted == originals[1:]  # nothing sent twice, nothing left out
    assert json.loads(checkpoint.read_text())["folders"]["processing-failed"]["line"] == 3
    assert main(*args) == 0
    assert second.accepted == originals[1:]  # a finished replay replays nothing


def test_a_checkpoint_for_another_bucket_is_refused(aws, tmp_path, capsys):
    checkpoint = tmp_path / "replay.json"
    checkpoint.write_text(json.dumps({"bucket": "other", "prefix": "", "folders": {}}))
    assert main("--dry-run", "--checkpoint", str(checkpoint)) == 1
    assert "is for s3://other/, not s3://iot-defender-backup/" in one_line(capsys.readouterr().err)


def test_an_unreadable_checkpoint_is_refused(aws, tmp_path, capsys):
    checkpoint = tmp_path / "replay.json"
    checkpoint.write_text("{half")
    assert main("--dry-run", "--checkpoint", str(checkpoint)) == 1
    assert f"checkpoint {checkpoint} is unreadable" in one_line(capsys.readouterr().err)


def test_the_checkpoint_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "replay.json"
    checkpoint = replay.Checkpoint(path, BUCKET, "")
    checkpoint.advance("splunk-failed", "splunk-failed/2026/11/23/08/a.gz", 3)
    before = path.read_text()

    def interrupted(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", interrupted)
    with pytest.raises(cli.CommandError, match=f"cannot write checkpoint {path}: disk full"):
        checkpoint.advance("splunk-failed", "splunk-failed/2026/11/23/09/b.gz", 1)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["replay.json"]  # no half-written file left


def test_a_missing_bucket_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        assert main("--dry-run") == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("iot-defender-splunk replay: error: AWS: ListObjectsV2: NoSuchBucket")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "AWS: You must specify a region."),
        (("--profile", "nosuch", "--region", REGION), "AWS: The config profile (nosuch) could"),
    ],
    ids=["no-region", "unknown-profile"],
)
def test_an_unusable_aws_session_is_one_clear_line(argv, message, tmp_path, monkeypatch, capsys):
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with mock_aws():
        assert main("--dry-run", *argv) == 1
    assert one_line(capsys.readouterr().err).startswith(
        f"iot-defender-splunk replay: error: {message}"
    )


def test_since_after_until_is_refused(aws, capsys):
    assert main("--dry-run", "--since", "2026-11-02", "--until", "2026-11-01") == 1
    assert "--since must be before --until" in one_line(capsys.readouterr().err)


def test_a_time_that_is_not_iso_8601_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main("--since", "yesterday")
    assert exited.value.code == 2
    assert "not an ISO 8601 date or time: 'yesterday'" in capsys.readouterr().err


def test_help_describes_both_folders(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["replay", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "splunk-failed" in out
    assert "processing-failed" in out


def test_every_fixture_is_a_realistic_backup_object():
    """Each fixture reads as backup records whose rawData is what its folder promises."""
    for path in sorted(BACKUPS.glob("*.ndjson")):
        items = list(read_object(path.name, path.read_bytes()))
        assert items, path
        if path.name.startswith("processing_failed"):
            assert all(b"lambdaArn" in line for line in path.read_bytes().splitlines())
        elif path.name != UNREADABLE:
            assert all(isinstance(hec_events(item), list) for item in items)  # type: ignore[arg-type]


def test_checkpoint_path_parent_must_exist(aws, hec, tmp_path, capsys):
    put_backup(aws, BUCKET, "splunk-failed", SERVER_ERROR)
    missing: Path = tmp_path / "no-such-dir" / "replay.json"
    assert main("--to", "hec", "--checkpoint", str(missing)) == 1
    assert "cannot write checkpoint" in one_line(capsys.readouterr().err)
    assert hec.requests == []  # refused before anything was sent
