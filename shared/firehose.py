"""Putting records into a Firehose stream despite throttling and partial batch failures.

Shared by the transform (re-ingesting what does not fit in a response) and the collectors.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

# PutRecordBatch limits (Firehose API reference).
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1_000 * 1024

# The client a Lambda gives put_records: short timeouts and no retries inside botocore
# (put_records retries only the failed entries itself), so one call ends within
# PUT_CALL_SECONDS: its connect and read timeouts and a second for signing and TLS set-up.
PUT_CONNECT_TIMEOUT_SECONDS = 2
PUT_READ_TIMEOUT_SECONDS = 5
PUT_CALL_SECONDS = PUT_CONNECT_TIMEOUT_SECONDS + PUT_READ_TIMEOUT_SECONDS + 1

_log = logging.getLogger(__name__)


# A str code point in the surrogate range is always a lone surrogate (a pair is one code point).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def put_client_options() -> dict[str, Any]:
    """The botocore ``Config`` arguments for that client (shared/ imports no botocore)."""
    return {
        "connect_timeout": PUT_CONNECT_TIMEOUT_SECONDS,
        "read_timeout": PUT_READ_TIMEOUT_SECONDS,
        "retries": {"mode": "standard", "total_max_attempts": 1},
    }


def encode(record: dict[str, Any]) -> bytes:
    """One record as compact JSON; datetimes (boto3 gives them) become epoch seconds."""
    return _json_text(record).encode("utf-8")


def encode_cleaned(record: dict[str, Any]) -> tuple[bytes, int]:
    """``encode``, with each lone surrogate (which UTF-8 cannot carry) replaced by U+FFFD.

    Returns the bytes and how many were replaced; without any, the bytes equal ``encode``'s.
    """
    text, replaced = _LONE_SURROGATE.subn("\ufffd", _json_text(record))
    return text.encode("utf-8"), replaced


def _json_text(record: dict[str, Any]) -> str:
    return json.dumps(record, default=_epoch_seconds, separators=(",", ":"), ensure_ascii=False)


def _epoch_seconds(value: Any) -> float:
    timestamp = getattr(value, "timestamp", None)
    if callable(timestamp):
        return float(timestamp())
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


class FirehoseClient(Protocol):
    def put_record_batch(self, *, DeliveryStreamName: str, Records: Any) -> Any: ...  # noqa: N803


_STREAM_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:firehose:[a-z]{2}(?:-[a-z]+)+-[0-9]+:[0-9]{12}"
    r":deliverystream/(?P<name>[a-zA-Z0-9_.-]{1,64})"
)


def stream_name_from_arn(arn: object) -> str | None:
    """'arn:aws:firehose:<region>:<account>:deliverystream/<name>' to '<name>'; None for
    anything else, so a malformed ARN never becomes a stream to write to."""
    match = _STREAM_ARN.fullmatch(arn) if isinstance(arn, str) else None
    return match["name"] if match else None


def put_records(
    client: FirehoseClient,
    stream_name: str,
    payloads: Sequence[bytes],
    *,
    max_attempts: int = 8,
    base_delay: float = 0.05,
    max_delay: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
    call_seconds: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> list[int]:
    """Put every payload; return the indices still not accepted after ``max_attempts``.

    Only the entries Firehose reports as failed are retried, with jittered exponential backoff.
    A payload over the per-record limit can never succeed and is returned at once. With a
    ``deadline`` (a ``clock`` reading), no call or backoff starts unless it can end before
    it: ``call_seconds`` is the longest one call may take (the client's connect and read
    timeouts). What is still pending then is returned as not accepted, never waited for.
    """
    too_big = [i for i, payload in enumerate(payloads) if len(payload) > MAX_RECORD_BYTES]
    pending = [i for i, payload in enumerate(payloads) if len(payload) <= MAX_RECORD_BYTES]

    def time_for(seconds: float) -> bool:
        return deadline is None or clock() + seconds <= deadline

    for attempt in range(max_attempts):
        if not pending:
            break
        if attempt:
            backoff = min(max_delay, base_delay * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311 - jitter
            if not time_for(backoff + call_seconds):
                break
            sleep(backoff)
        still: list[int] = []
        for chunk in _chunks(pending, payloads):
            if time_for(call_seconds):
                still.extend(_put_chunk(client, stream_name, chunk, payloads))
            else:
                still.extend(chunk)
        pending = still
    return sorted(too_big + pending)


def _chunks(indices: list[int], payloads: Sequence[bytes]) -> Iterator[list[int]]:
    chunk: list[int] = []
    size = 0
    for index in indices:
        length = len(payloads[index])
        if chunk and (len(chunk) == MAX_BATCH_RECORDS or size + length > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(index)
        size += length
    if chunk:
        yield chunk


def _put_chunk(
    client: FirehoseClient, stream_name: str, chunk: list[int], payloads: Sequence[bytes]
) -> list[int]:
    """The indices of ``chunk`` not accepted; all of them when the call or its answer failed.

    An entry is accepted only when it carries a ``RecordId`` and no ``ErrorCode``, and the
    count is trusted over the entries: when ``FailedPutCount`` names more failures than the
    entries show, which ones failed is unknown, so the whole chunk is tried again (a
    duplicate is better than a record reported delivered that never was).
    """
    try:
        response = client.put_record_batch(
            DeliveryStreamName=stream_name, Records=[{"Data": payloads[i]} for i in chunk]
        )
    except Exception as error:  # throttling, network, service errors: all worth another attempt
        _log.warning("PutRecordBatch of %d records failed: %s", len(chunk), error)
        return chunk
    if not isinstance(response, dict):
        _log.warning("PutRecordBatch answered %s, not a response", type(response).__name__)
        return chunk
    count = response.get("FailedPutCount")
    count = count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None
    entries = response.get("RequestResponses")
    if not isinstance(entries, list) or len(entries) != len(chunk):
        return [] if count == 0 else chunk
    failed = [
        index
        for index, entry in zip(chunk, entries, strict=True)
        if not isinstance(entry, dict) or entry.get("ErrorCode") or not entry.get("RecordId")
    ]
    if count is not None and count > len(failed):
        _log.warning(
            "PutRecordBatch reported %s failed but %d entries show it; retrying all %d",
            count,
            len(failed),
            len(chunk),
        )
        return chunk
    return failed
