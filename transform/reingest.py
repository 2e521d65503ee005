"""Tagging records re-put into the stream, so re-ingestion is prioritised and bounded.

A tag is a short prefix no producer can send: IoT rules and collectors write JSON ('{'),
CloudWatch writes gzip (0x1f), and 0x1e starts neither. Two kinds of record are re-put:

- ``reingest``: an input record that fitted in a response on its own but not in this one; it
  is transformed again next time, like the original.
- ``events``: a slice of the HEC events of a record whose output could never fit in any one
  response (a CloudWatch Logs batch inflating to many MB, say). The slices are already
  transformed; next time each is sent as it is, and each fits a response alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

_PREFIX: Final = b"\x1eiot-defender-splunk:"
_RECORD: Final = b"reingest"
_EVENTS: Final = b"events"
# The longest tag: prefix, kind, ':', a 3-digit count and the newline.
TAG_BYTES: Final = len(_PREFIX) + len(_RECORD) + 1 + 3 + 1


@dataclass(frozen=True)
class Untagged:
    data: bytes
    attempts: int = 0
    events: bool = False  # the data is HEC events this Lambda already made


def tag(data: bytes, attempts: int) -> bytes:
    """An input record's original bytes, prefixed with how many times it has been re-put."""
    return _PREFIX + _RECORD + b":" + str(attempts).encode("ascii") + b"\n" + data


def tag_events(lines: bytes, attempts: int) -> bytes:
    """Newline-terminated HEC events of one slice, prefixed as already transformed."""
    return _PREFIX + _EVENTS + b":" + str(attempts).encode("ascii") + b"\n" + lines


def untag(data: bytes) -> Untagged:
    """The original bytes and what the tag says (nothing for a record seen the first time)."""
    if not data.startswith(_PREFIX):
        return Untagged(data)
    kind, colon, rest = data[len(_PREFIX) :].partition(b":")
    count, newline, original = rest.partition(b"\n")
    if kind not in (_RECORD, _EVENTS) or not colon or not newline:
        return Untagged(data)
    if not count.isdigit() or len(count) > 3:  # bytes.isdigit: ASCII digits only
        return Untagged(data)
    return Untagged(original, int(count), events=kind == _EVENTS)
