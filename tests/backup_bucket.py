"""Firehose backup objects in a moto S3 bucket, laid out and compressed as Firehose writes them.

Each fixture in samples/firehose_backup/ is the content of one backup object. It is stored under
``<prefix><folder>/YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>.gz``, the hour and time
being those of its oldest record's arrival, as the stack's GZIP-compressed Splunk backup does.
"""

from __future__ import annotations

import datetime
import gzip
import json
import uuid
from pathlib import Path
from typing import Any

from tests.support import SAMPLES_DIR

__all__ = ["BACKUPS", "backup_lines", "put_backup"]

BACKUPS = SAMPLES_DIR / "firehose_backup"
STREAM = "iot-defender-splunk-splunk"


def backup_lines(name: str) -> list[dict[str, Any]]:
    """The fixture's lines that are JSON (a fixture of unreadable lines has others too)."""
    parsed = []
    for line in (BACKUPS / name).read_text().splitlines():
        try:
            parsed.append(json.loads(line))
        except ValueError:
            continue
    return parsed


def put_backup(
    s3: Any,
    bucket: str,
    folder: str,
    name: str,
    *,
    prefix: str = "",
    compress: bool = True,
    shift: datetime.timedelta = datetime.timedelta(0),
) -> str:
    """Store one fixture as a backup object; returns its key. ``shift`` moves its hour."""
    path: Path = BACKUPS / name
    oldest = min(line["arrivalTimestamp"] for line in backup_lines(name))
    when = datetime.datetime.fromtimestamp(oldest / 1000, tz=datetime.UTC) + shift
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"{name}{shift}")
    key = f"{prefix}{folder}/{when:%Y/%m/%d/%H}/{STREAM}-1-{when:%Y-%m-%d-%H-%M-%S}-{token}" + (
        ".gz" if compress else ""
    )
    body = path.read_bytes()
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body) if compress else body)
    return key
