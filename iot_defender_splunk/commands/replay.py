"""Replay the records Firehose backed up to S3 when it could not deliver them.

splunk-failed/ holds what HEC did not take (after Firehose's retries): its rawData are HEC
events, sent again to HEC. processing-failed/ holds what the transform Lambda failed on: its
rawData are the original records, put back into the delivery stream (PutRecordBatch) so the
transform runs on them again. --to hec or --to stream replays only one of the two.

Objects are read in key order (their YYYY/MM/DD/HH path is the UTC hour of their oldest record);
--since/--until pick objects by that hour and records by their arrival time. --checkpoint FILE
records the last object key and line replayed (written atomically after every chunk), so a
rerun after a failure resumes there instead of sending everything again. --dry-run counts what
would be replayed, per folder and error code, and sends nothing.

Lines that cannot be replayed (not a backup record, rawData not base64, not HEC events) are
counted and listed, and make the exit status 1; the rest is still replayed. Replay is at least
once, like Firehose itself: a chunk interrupted part-way is sent again on the next run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from iot_defender_splunk import cli
from iot_defender_splunk.aws import CONFIG, add_aws_arguments, describe_error, session
from iot_defender_splunk.backup import (
    FOLDERS,
    PROCESSING_FAILED,
    SPLUNK_FAILED,
    BackupRecord,
    Unreadable,
    hec_events,
    list_keys,
    read_object,
)
from iot_defender_splunk.commands.send import add_hec_arguments, hec_client
from iot_defender_splunk.console import progress
from iot_defender_splunk.hec import HecClient, HecError
from shared.firehose import put_records

NAME = "replay"
SUMMARY = "replay Firehose's S3 backups: splunk-failed to HEC, processing-failed into the stream"

DESTINATION = {SPLUNK_FAILED: "hec", PROCESSING_FAILED: "stream"}
# Records replayed, then checkpointed, at a time: a failure re-sends at most this many.
CHUNK_RECORDS = 1000
# Unreadable lines named in the summary; all are counted.
_SHOWN = 10


@dataclass
class Checkpoint:
    """Per folder, the last object key and line fully replayed from one bucket and prefix."""

    path: Path | None
    bucket: str
    prefix: str
    done: dict[str, tuple[str, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None, bucket: str, prefix: str) -> Checkpoint:
        checkpoint = cls(path, bucket, prefix)
        if path is not None and not path.parent.is_dir():
            raise cli.CommandError(f"cannot write checkpoint {path}: no folder {path.parent}")
        if path is None or not path.exists():
            return checkpoint
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if (saved["bucket"], saved["prefix"]) != (bucket, prefix):
                raise cli.CommandError(
                    f"checkpoint {path} is for s3://{saved['bucket']}/{saved['prefix']}, "
                    f"not s3://{bucket}/{prefix}"
                )
            checkpoint.done = {
                folder: (str(mark["key"]), int(mark["line"]))
                for folder, mark in saved["folders"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise cli.CommandError(f"checkpoint {path} is unreadable: {error}") from None
        return checkpoint

    def is_done(self, folder: str, key: str, line: int) -> bool:
        mark = self.done.get(folder)
        return mark is not None and (key, line) <= mark

    def passed(self, folder: str, key: str) -> bool:
        """Whether every line of this object was replayed (objects go in key order)."""
        mark = self.done.get(folder)
        return mark is not None and key < mark[0]

    def advance(self, folder: str, key: str, line: int) -> None:
        """Record progress and, with a file, replace it atomically (never half written)."""
        self.done[folder] = (key, line)
        if self.path is None:
            return
        document = {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "folders": {name: {"key": k, "line": n} for name, (k, n) in self.done.items()},
        }
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        temporary = Path(name)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2)
                out.flush()
                os.fsync(out.fileno())
            temporary.replace(self.path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise cli.CommandError(f"cannot write checkpoint {self.path}: {error}") from None


@dataclass
class Tally:
    """What one folder's replay read and delivered."""

    objects: int = 0
    records: Counter[str] = field(default_factory=Counter)  # by error code
    delivered: int = 0  # HEC events or stream records
    possible_duplicates: int = 0
    outside_range: int = 0
    unreadable: list[Unreadable] = field(default_factory=list)


@dataclass
class _Replay:
    """One run's settings and state, shared by the folders it replays."""

    args: argparse.Namespace
    since: datetime.datetime | None
    until: datetime.datetime | None
    checkpoint: Checkpoint
    hec: HecClient | None
    firehose: Any
    tallies: dict[str, Tally] = field(default_factory=dict)

    def folder(self, s3: Any, folder: str) -> None:
        tally = self.tallies.setdefault(folder, Tally())
        folder_prefix = f"{self.args.prefix}{folder}/"
        keys = list_keys(s3, self.args.bucket, folder_prefix, since=self.since, until=self.until)
        keys = [key for key in keys if not self.checkpoint.passed(folder, key)]
        with progress(f"{folder} objects", total=len(keys)) as advance:
            for key in keys:
                body = s3.get_object(Bucket=self.args.bucket, Key=key)["Body"].read()
                tally.objects += 1
                for chunk in _chunks(self._fresh(folder, key, body, tally)):
                    self._deliver(folder, chunk, tally)
                    self.checkpoint.advance(folder, key, chunk[-1].record.line)
                advance(1)

    def _fresh(self, folder: str, key: str, body: bytes, tally: Tally) -> Iterator[_Replayable]:
        """The object's records not yet replayed and in range; unreadable ones are tallied."""
        for item in read_object(key, body):
            if self.checkpoint.is_done(folder, key, item.line):
                continue
            if isinstance(item, BackupRecord) and not self._in_range(item.arrival):
                tally.outside_range += 1
                continue
            payloads = _payloads(folder, item) if isinstance(item, BackupRecord) else item
            if isinstance(payloads, Unreadable):
                tally.unreadable.append(payloads)
                continue
            assert isinstance(item, BackupRecord)  # noqa: S101 - for mypy, as above
            tally.records[item.error_code] += 1
            yield _Replayable(item, payloads)

    def _in_range(self, when: datetime.datetime | None) -> bool:
        """Records without an arrival time are judged by their object's hour alone."""
        return when is None or (
            (self.since is None or when >= self.since) and (self.until is None or when < self.until)
        )

    def _deliver(self, folder: str, chunk: list[_Replayable], tally: Tally) -> None:
        payloads = [payload for item in chunk for payload in item.payloads]
        if not self.args.dry_run:
            if DESTINATION[folder] == "hec":
                self._send(payloads, tally)
            else:
                self._put(payloads, chunk)
        tally.delivered += len(payloads)

    def _send(self, events: list[bytes], tally: Tally) -> None:
        assert self.hec is not None  # noqa: S101 - built whenever splunk-failed is replayed
        try:
            report = self.hec.send(events)
        except HecError as error:
            print(self.summary())
            raise cli.CommandError(f"HEC: {error}; rerun to resume") from None
        tally.possible_duplicates += report.possible_duplicates

    def _put(self, payloads: list[bytes], chunk: list[_Replayable]) -> None:
        failed = put_records(self.firehose, self.args.stream, payloads)
        if failed:
            first = chunk[failed[0]].record  # one payload per processing-failed record
            print(self.summary())
            raise cli.CommandError(
                f"Firehose did not accept {len(failed)} of {len(chunk)} records (first: "
                f"{first.key} line {first.line}); rerun to resume"
            )

    def summary(self) -> str:
        verb = "would " if self.args.dry_run else ""
        lines = []
        for folder, tally in self.tallies.items():
            codes = ", ".join(f"{code} {count}" for code, count in sorted(tally.records.items()))
            target = (
                f"{verb}send {tally.delivered} events to HEC"
                if DESTINATION[folder] == "hec"
                else f"{verb}put {tally.delivered} records into {self.args.stream or 'the stream'}"
            )
            lines.append(
                f"{folder}: {tally.objects} objects, {sum(tally.records.values())} records "
                f"({codes or 'none'}): {target}"
            )
            if tally.outside_range:
                lines.append(f"  {tally.outside_range} records outside --since/--until")
            if tally.possible_duplicates:
                lines.append(f"  possible duplicates: up to {tally.possible_duplicates} events")
        return "\n".join(lines)

    def unreadable(self) -> list[Unreadable]:
        return [item for tally in self.tallies.values() for item in tally.unreadable]


@dataclass(frozen=True)
class _Replayable:
    record: BackupRecord
    payloads: list[bytes]  # what goes to the destination: HEC events, or the original record


def _payloads(folder: str, record: BackupRecord) -> list[bytes] | Unreadable:
    return hec_events(record) if DESTINATION[folder] == "hec" else [record.data]


def _chunks(records: Iterator[_Replayable]) -> Iterator[list[_Replayable]]:
    chunk: list[_Replayable] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == CHUNK_RECORDS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("what to replay")
    source.add_argument("--bucket", required=True, help="the stack's Firehose backup bucket")
    source.add_argument(
        "--prefix", default="", help="the S3 backup prefix, if the stream has one (default: none)"
    )
    source.add_argument(
        "--since", type=utc_time, help="from this UTC time (ISO 8601, e.g. 2026-05-01)"
    )
    source.add_argument("--until", type=utc_time, help="up to, not including, this UTC time")
    source.add_argument(
        "--to",
        choices=("hec", "stream"),
        help="replay only splunk-failed (hec) or only processing-failed (stream) records",
    )
    source.add_argument(
        "--stream", help="the delivery stream that processing-failed records go back into"
    )
    source.add_argument(
        "--checkpoint", type=Path, help="file recording progress, so a rerun resumes"
    )
    source.add_argument("--dry-run", action="store_true", help="count, send nothing")
    add_hec_arguments(parser)
    add_aws_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.since and args.until and args.since >= args.until:
        raise cli.CommandError("--since must be before --until")
    folders = [folder for folder in FOLDERS if args.to in (None, DESTINATION[folder])]
    replaying_hec = SPLUNK_FAILED in folders and not args.dry_run
    if PROCESSING_FAILED in folders and not args.dry_run and not args.stream:
        raise cli.CommandError(
            "processing-failed records go back into the stream: give --stream (or --to hec)"
        )
    checkpoint = Checkpoint.load(args.checkpoint, args.bucket, args.prefix)
    hec = hec_client(args, NAME) if replaying_hec else None
    try:
        aws = session(args)
        s3 = aws.client("s3", config=CONFIG)
        firehose = aws.client("firehose", config=CONFIG) if PROCESSING_FAILED in folders else None
    except BotoCoreError as error:  # no Region, an unknown profile
        raise cli.CommandError(f"AWS: {describe_error(error)}") from None
    replay = _Replay(
        args=args,
        since=args.since,
        until=args.until,
        checkpoint=checkpoint,
        hec=hec,
        firehose=firehose,
    )
    try:
        for folder in folders:
            replay.folder(s3, folder)
    except (BotoCoreError, ClientError) as error:
        print(replay.summary())
        raise cli.CommandError(f"AWS: {describe_error(error)}") from None
    finally:
        if replay.hec is not None:
            replay.hec.close()
    print(replay.summary())
    unreadable = replay.unreadable()
    if unreadable:
        shown = "; ".join(f"{u.key} line {u.line}: {u.reason}" for u in unreadable[:_SHOWN])
        more = f"; and {len(unreadable) - _SHOWN} more" if len(unreadable) > _SHOWN else ""
        raise cli.CommandError(f"{len(unreadable)} unreadable lines not replayed: {shown}{more}")
    return 0


def utc_time(text: str) -> datetime.datetime:
    """An ISO 8601 option value as an aware time; no zone means UTC, a bare date its midnight."""
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)
