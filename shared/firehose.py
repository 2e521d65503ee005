"""Putting records into a Firehose stream despite throttling and partial batch failures.

Shared by the transform (re-ingesting what does not fit in a response) and the collectors.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

# PutRecordBatch limits (Firehose API reference).
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1_000 * 1024

_log = logging.getLogger(__name__)


class FirehoseClient(Protocol):
    def put_record_batch(self, *, DeliveryStreamName: str, Records: Any) -> Any: ...  # noqa: N803


def stream_name_from_arn(arn: str) -> str | None:
    """'arn:aws:firehose:<region>:<account>:deliverystream/<name>' to '<name>'."""
    prefix, sep, name = arn.rpartition(":deliverystream/")
    return name if sep and prefix.startswith("arn:") and name else None


def put_records(
    client: FirehoseClient,
    stream_name: str,
    payloads: Sequence[bytes],
    *,
    max_attempts: int = 8,
    base_delay: float = 0.05,
    max_delay: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[int]:
    """Put every payload; return the indices still not accepted after ``max_attempts``.

    Only the entries Firehose reports as failed are retried, with jittered exponential backoff.
    A payload over the per-record limit can never succeed and is returned at once.
    """
    too_big = [i for i, payload in enumerate(payloads) if len(payload) > MAX_RECORD_BYTES]
    pending = [i for i, payload in enumerate(payloads) if len(payload) <= MAX_RECORD_BYTES]
    for attempt in range(max_attempts):
        if not pending:
            break
        if attempt:
            backoff = min(max_delay, base_delay * 2**attempt)
            sleep(backoff * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not crypto
        pending = [
            failed
            for chunk in _chunks(pending, payloads)
            for failed in _put_chunk(client, stream_name, chunk, payloads)
        ]
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
    """The indices of ``chunk`` that failed; all of them when the call itself failed."""
    try:
        response = client.put_record_batch(
            DeliveryStreamName=stream_name, Records=[{"Data": payloads[i]} for i in chunk]
        )
    except Exception as error:  # throttling, network, service errors: all worth another attempt
        _log.warning("PutRecordBatch of %d records failed: %s", len(chunk), error)
        return chunk
    if not response.get("FailedPutCount"):
        return []
    results = response.get("RequestResponses") or []
    if len(results) != len(chunk):
        return chunk
    return [index for index, result in zip(chunk, results, strict=True) if result.get("ErrorCode")]
