"""Putting collector records into the pipeline's Firehose stream in full batches, or failing loudly.

Also the collectors' AWS clients, built per run for the time the invocation has left
(``collect.deadline``): short timeouts, adaptive retries that fit, and hooks that stop a call
rather than let it run into the Lambda timeout.

The retrying PutRecordBatch lives once, in ``shared.firehose``, which every function's build
ships beside its own package.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

import boto3

from collect.deadline import ATTEMPT_SECONDS, Deadline, OutOfTimeError, client_config, guard_client
from shared.firehose import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    MAX_RECORD_BYTES,
    FirehoseClient,
    encode,
    encode_cleaned,
    put_records,
)

__all__ = [
    "NOT_PUT_RECORD_TYPE",
    "PUT_MAX_ATTEMPTS",
    "DeliveryError",
    "RecordBuffer",
    "encode",
    "firehose_client",
    "iot_client",
    "stream_name",
]

# Firehose rejects entries (ServiceUnavailableException) while a stream is over its throughput:
# a collector's burst can outlast the transform's few seconds of retries, so entries are
# retried for as long as the deadline allows, up to about two minutes of backoff.
PUT_MAX_ATTEMPTS: Final = 20
PUT_BASE_DELAY: Final = 0.1
PUT_MAX_DELAY: Final = 10.0

NO_DEADLINE: Final = Deadline(math.inf)

# The record sent in place of an item that cannot be put. The transform knows no such record
# type, so it becomes an ``aws:iot:defender:unparsed`` event (``unknown_shape``) whose payload
# is this record: the reason and what identifies the item, so a search finds what is missing.
NOT_PUT_RECORD_TYPE: Final = "aws:iot:collector:not-put"
_IDENTITY_CHARS = 256

Identity = Callable[[dict[str, Any]], dict[str, Any]]
# Told the mark of the last record of each batch Firehose accepted whole: where to resume.
OnPut = Callable[[Any], None]


class DeliveryError(RuntimeError):
    """Some records could not be put after every retry; the invocation must fail and be retried."""


def stream_name() -> str:
    """The delivery stream named by the stack (environment variable ``DELIVERY_STREAM_NAME``)."""
    name = os.environ.get("DELIVERY_STREAM_NAME", "").strip()
    if not name:
        raise DeliveryError("DELIVERY_STREAM_NAME is not set; the stack sets it on every collector")
    return name


def iot_client(deadline: Deadline) -> Any:
    """An IoT client whose calls end before the run must stop reading (``reads_end``).

    Typed loosely: boto3-stubs is installed with the firehose extra only.
    """
    return _client("iot", deadline, deadline.reads_end)


def firehose_client(deadline: Deadline) -> FirehoseClient:
    """A Firehose client whose calls end before the run must stop putting (``puts_end``)."""
    client: FirehoseClient = _client("firehose", deadline, deadline.puts_end)
    return client


def _client(service: str, deadline: Deadline, end: float) -> Any:
    config = client_config(end - deadline.clock())
    return guard_client(boto3.client(service, config=config), end, deadline.clock)  # type: ignore[call-overload]


class RecordBuffer:
    """Records held until one PutRecordBatch is full (500 records or 4 MiB), then put at once.

    Used as a context manager: leaving the block puts what is held, also when reading failed,
    so nothing already read is lost. One item never fails the run: lone surrogates are
    replaced (``cleaned`` counts the items), and an item over Firehose's per-record limit is
    sent as a small ``NOT_PUT_RECORD_TYPE`` record naming it by ``identity`` and saying why.
    ``put`` counts the items Firehose accepted, ``not_put`` the stand-ins it accepted.

    Each record may carry a ``mark`` (its position in a listing); once a batch is accepted
    whole, ``on_put`` gets the mark of its last record, so a checkpoint never runs ahead of
    what was put.
    """

    def __init__(
        self,
        client: FirehoseClient,
        deadline: Deadline = NO_DEADLINE,
        *,
        collector: str = "collector",
        identity: Identity = lambda _: {},
        on_put: OnPut = lambda _: None,
    ) -> None:
        self.client = client
        self.deadline = deadline
        self.collector = collector
        self.identity = identity
        self.on_put = on_put
        self.mark: Any = None
        self.stream = stream_name()
        self.payloads: list[bytes] = []
        self.stand_ins: set[int] = set()
        self.size = 0
        self.put = 0
        self.not_put = 0
        self.cleaned = 0

    def add(self, record: dict[str, Any], mark: Any = None) -> None:
        payload, replaced = encode_cleaned(record)
        self.cleaned += replaced > 0
        stand_in = len(payload) > MAX_RECORD_BYTES
        if stand_in:
            payload = self._not_put(record, len(payload))
        if self.size + len(payload) > MAX_BATCH_BYTES:
            self.flush()
        if stand_in:
            self.stand_ins.add(len(self.payloads))
        self.payloads.append(payload)
        self.size += len(payload)
        self.mark = mark
        if len(self.payloads) == MAX_BATCH_RECORDS:
            self.flush()

    def _not_put(self, record: dict[str, Any], size: int) -> bytes:
        identity = {
            key: value[:_IDENTITY_CHARS] if isinstance(value, str) else value
            for key, value in self.identity(record).items()
        }
        stand_in = {
            "recordType": NOT_PUT_RECORD_TYPE,
            "schemaVersion": 1,
            "collector": self.collector,
            "reasonCode": "record_too_large",
            "reason": (
                f"the item encodes to {size:,} bytes, over Firehose's {MAX_RECORD_BYTES:,}-byte "
                "record limit; it was not put"
            ),
            "item": identity,
        }
        return encode_cleaned(stand_in)[0]

    def flush(self) -> None:
        """Put what is held; OutOfTimeError or DeliveryError when some of it was not accepted."""
        if not self.payloads:
            return
        payloads, self.payloads, self.size = self.payloads, [], 0
        stand_ins, self.stand_ins = self.stand_ins, set()
        failed = put_records(
            self.client,
            self.stream,
            payloads,
            max_attempts=PUT_MAX_ATTEMPTS,
            base_delay=PUT_BASE_DELAY,
            max_delay=PUT_MAX_DELAY,
            sleep=self.deadline.sleep,
            clock=self.deadline.clock,
            deadline=self.deadline.puts_end,
            call_seconds=ATTEMPT_SECONDS,
        )
        accepted = set(range(len(payloads))).difference(failed)
        self.not_put += len(accepted & stand_ins)
        self.put += len(accepted - stand_ins)
        if not failed:
            self.on_put(self.mark)
            return
        problem = (
            f"{len(failed)} of {len(payloads)} records were not accepted by Firehose "
            f"(first index {failed[0]})"
        )
        # put_records stops early when its next backoff and attempt would not fit.
        if self.deadline.clock() + PUT_MAX_DELAY + ATTEMPT_SECONDS > self.deadline.puts_end:
            raise OutOfTimeError(f"{problem} before the deadline")
        raise DeliveryError(problem)

    def __enter__(self) -> RecordBuffer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.flush()
