"""Firehose's S3 backup of records it could not deliver: where they are and what they hold.

The stack's Splunk destination backs up failed records only (``S3BackupMode: FailedEventsOnly``)
in its backup bucket, GZIP-compressed, with no ``Prefix``, so Firehose's default layout applies
(Firehose developer guide, "Custom Prefixes for Amazon S3 Objects"): objects under
``<prefix><error-output-type>/YYYY/MM/DD/HH/`` (UTC hour of the oldest record), named
``<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>``. Two error output types matter here:

* ``splunk-failed``: HEC delivery failed after Firehose's retries. One JSON object a line with
  ``attemptsMade``, ``arrivalTimestamp`` (epoch ms), ``errorCode`` (e.g. ``Splunk.AckTimeout``),
  ``errorMessage``, ``attemptEndingTimestamp``, ``EventId`` and ``rawData``: base64 of what went
  to HEC, here the transform's HEC event envelopes. They go back to HEC.
* ``processing-failed``: the transform Lambda failed. The same fields with ``lambdaArn`` instead
  of ``EventId``, and ``rawData`` is the *original* record: it goes back into the stream, so
  the transform runs on it again.

An object is read whole (gzip or not, told by its magic bytes, not its name). A line that is not
such a record, or whose rawData is not base64, is :class:`Unreadable`: counted and reported by
the caller, never skipped silently.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "FOLDERS",
    "BackupRecord",
    "Unreadable",
    "hec_events",
    "key_hour",
    "list_keys",
    "read_object",
]

SPLUNK_FAILED: Final = "splunk-failed"
PROCESSING_FAILED: Final = "processing-failed"
FOLDERS: Final = (SPLUNK_FAILED, PROCESSING_FAILED)

_GZIP_MAGIC: Final = b"\x1f\x8b"
# The time path right after the folder: /YYYY/MM/DD/HH/
_HOUR_PATH: Final = re.compile(r"/?(\d{4})/(\d{2})/(\d{2})/(\d{2})/")


@dataclass(frozen=True)
class BackupRecord:
    """One failed record of a backup object; ``line`` is 1-based in the decompressed object."""

    key: str
    line: int
    error_code: str
    arrival: datetime.datetime | None
    data: bytes


@dataclass(frozen=True)
class Unreadable:
    """A line of a backup object that cannot be replayed, and why."""

    key: str
    line: int
    reason: str


def key_hour(key: str, folder_prefix: str) -> datetime.datetime | None:
    """The UTC hour in a backup object's key, or None when the key has no time path."""
    match = _HOUR_PATH.match(key, len(folder_prefix))
    if match is None:
        return None
    year, month, day, hour = (int(part) for part in match.groups())
    try:
        return datetime.datetime(year, month, day, hour, tzinfo=datetime.UTC)
    except ValueError:
        return None


def list_keys(
    s3: Any,
    bucket: str,
    folder_prefix: str,
    *,
    since: datetime.datetime | None,
    until: datetime.datetime | None,
) -> list[str]:
    """Keys under ``folder_prefix`` whose hour can hold records in [since, until), in order.

    The time path sorts as it reads, so S3's lexicographic listing is chronological, and the
    listing starts at ``since``'s hour instead of the beginning. A key without a time path is
    kept: only its records' arrival times can say whether they are in range.
    """
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket,
        Prefix=folder_prefix,
        **({"StartAfter": f"{folder_prefix}{since:%Y/%m/%d/%H}"} if since else {}),
    )
    keys: list[str] = []
    for page in pages:
        for item in page.get("Contents", []):
            key = item["Key"]
            hour = key_hour(key, folder_prefix)
            if hour is not None and not _hour_in_range(hour, since, until):
                continue
            keys.append(key)
    return sorted(keys)


def _hour_in_range(
    hour: datetime.datetime, since: datetime.datetime | None, until: datetime.datetime | None
) -> bool:
    ends = hour + datetime.timedelta(hours=1)
    return (since is None or ends > since) and (until is None or hour < until)


def read_object(key: str, body: bytes) -> Iterator[BackupRecord | Unreadable]:
    """Every line of one backup object, as a record or as unreadable."""
    if body.startswith(_GZIP_MAGIC):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as error:
            yield Unreadable(key, 0, f"object is not valid gzip: {error}")
            return
    for number, line in enumerate(body.splitlines(), start=1):
        if line.strip():
            yield _record(key, number, line)


def _record(key: str, line: int, raw: bytes) -> BackupRecord | Unreadable:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return Unreadable(key, line, "not JSON")
    if not isinstance(document, dict):
        return Unreadable(key, line, f"JSON {type(document).__name__}, not an object")
    encoded = document.get("rawData")
    if not isinstance(encoded, str):
        return Unreadable(key, line, "no rawData string")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return Unreadable(key, line, "rawData is not base64")
    code = document.get("errorCode")
    return BackupRecord(
        key=key,
        line=line,
        error_code=code if isinstance(code, str) and code else "(no errorCode)",
        arrival=_epoch_ms(document.get("arrivalTimestamp")),
        data=data,
    )


def _epoch_ms(value: object) -> datetime.datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.datetime.fromtimestamp(value / 1000, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def hec_events(record: BackupRecord) -> list[bytes] | Unreadable:
    """The HEC event envelopes in a splunk-failed record's rawData, each as its own bytes.

    One Firehose record can hold several envelopes (the transform joins them with newlines; HEC
    also takes them back to back): each must be a JSON object with an "event", or the record
    is unreadable rather than half sent.
    """
    try:
        text = record.data.decode("utf-8")
    except UnicodeDecodeError:
        return Unreadable(record.key, record.line, "rawData is not UTF-8")
    decoder = json.JSONDecoder()
    events: list[bytes] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            break
        try:
            envelope, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return Unreadable(record.key, record.line, "rawData is not HEC event JSON")
        if not isinstance(envelope, dict) or "event" not in envelope:
            return Unreadable(record.key, record.line, "rawData holds a non-event JSON value")
        events.append(text[position:end].encode("utf-8"))
        position = end
    if not events:
        return Unreadable(record.key, record.line, "rawData is empty")
    return events
