"""Tagging records re-put into the stream, so re-ingestion is prioritised and bounded.

A tag is a short prefix no producer can send: IoT rules and collectors write JSON ('{'),
CloudWatch writes gzip (0x1f), and 0x1e starts neither.
"""

from __future__ import annotations

_TAG = b"\x1eiot-defender-splunk:reingest:"


def tag(data: bytes, attempts: int) -> bytes:
    """The original bytes prefixed with how many times they have been re-ingested."""
    return _TAG + str(attempts).encode("ascii") + b"\n" + data


def untag(data: bytes) -> tuple[bytes, int]:
    """The original bytes and the re-ingest count (0 for a record seen for the first time)."""
    if not data.startswith(_TAG):
        return data, 0
    count, newline, original = data[len(_TAG) :].partition(b"\n")
    if not newline or not count.isdigit() or len(count) > 3:
        return data, 0
    return original, int(count)
