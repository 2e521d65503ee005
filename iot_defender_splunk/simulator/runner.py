"""Simulated Firehose batches through the real transform Lambda, as Firehose invokes it.

What the handler re-puts into the stream (a response that would pass Lambda's 6 MB limit)
comes back in a later invocation, as it would from Firehose, so nothing is lost.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from iot_defender_splunk.local_lambda import LocalLambdaContext
from iot_defender_splunk.simulator.delivery import (
    STREAM_ARN,
    Batch,
    Buffering,
    Record,
    firehose_batches,
)

# The index the app's iot_defender_index macro searches.
DEFAULT_INDEX = "iot_security"
REPUT_KIND = "reingested"


@dataclass(frozen=True)
class BatchOutcome:
    """One invocation: how many records, their results (Ok, Dropped, ProcessingFailed) and
    how many HEC events its response holds."""

    records: int
    results: Counter[str]
    events: int


@dataclass
class TransformRun:
    """The HEC events of a whole run (one serialized JSON object each) and each invocation."""

    events: list[bytes] = field(default_factory=list)
    outcomes: list[BatchOutcome] = field(default_factory=list)

    def results(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for outcome in self.outcomes:
            total.update(outcome.results)
        return total


class LocalStream:
    """The delivery stream, for the handler's re-puts: every record is accepted and kept."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []

    def put_record_batch(self, *, DeliveryStreamName: str, Records: Any) -> Any:  # noqa: N803
        self.pending += [entry["Data"] for entry in Records]
        return {
            "FailedPutCount": 0,
            "RequestResponses": [{"RecordId": f"local-{n}"} for n in range(len(Records))],
        }


@dataclass
class LocalLambda:
    """The transform handler built for a local run, and the stream it re-puts into."""

    invoke: Callable[[dict[str, Any], LocalLambdaContext], dict[str, Any]]
    stream: LocalStream


class _Discarded(io.TextIOBase):
    """Where a run's Lambda output goes when nobody asked for it: nowhere, so a long run's
    logs do not pile up in memory."""

    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def lambda_environment(index: str | None, log: TextIO | None = None) -> Iterator[LocalLambda]:
    """The transform handler with ``index`` as its SPLUNK_INDEX and the local stream for
    re-puts; what Lambda would print (logs, EMF metrics) goes to ``log`` (else nowhere).
    Standard output is redirected only during an invocation, so whoever consumes a run's
    events between invocations can still write them there.

    The settings are given to the handler, not read from the environment, so a simulation
    does not depend on the environment of whoever runs it.
    """
    from transform import handler  # noqa: PLC0415 - the Lambda module, loaded on use
    from transform.config import load_settings  # noqa: PLC0415

    sink = log or _Discarded()
    stream = LocalStream()
    settings = load_settings({"SPLUNK_INDEX": index} if index else {})
    lambda_handler = handler.make_handler(handler.Runtime(settings, firehose=stream))

    def invoke(event: dict[str, Any], context: LocalLambdaContext) -> dict[str, Any]:
        with contextlib.redirect_stdout(sink):
            return lambda_handler(event, context)

    logging_stream = handler.logger.registered_handler
    previous = (
        logging_stream.setStream(sink)
        if isinstance(logging_stream, logging.StreamHandler)
        else None
    )
    try:
        yield LocalLambda(invoke, stream)
    finally:
        if isinstance(logging_stream, logging.StreamHandler) and previous is not None:
            logging_stream.setStream(previous)


def response_events(response: dict[str, Any]) -> list[bytes]:
    """The HEC events (one JSON object each) in a handler response's Ok records."""
    events: list[bytes] = []
    for record in response["records"]:
        data = base64.b64decode(record["data"]) if record["data"] else b""
        events += [line for line in data.split(b"\n") if line]
    return events


@dataclass(frozen=True)
class Invocation:
    """One batch through the transform: the batch, its outcome and its response's events."""

    batch: Batch
    outcome: BatchOutcome
    events: list[bytes]


def stream_transform(
    batches: Iterable[Batch],
    *,
    index: str | None = DEFAULT_INDEX,
    buffering: Buffering | None = None,
    log: TextIO | None = None,
) -> Generator[Invocation, None, None]:
    """Every batch through ``transform.handler.lambda_handler`` as it comes, each batch taken
    only once the last one's invocation has been handed on; records it re-put are buffered
    again after the last batch, so the invocations are ``run_transform``'s, in its order."""
    with lambda_environment(index, log) as local:
        queue: Iterable[Batch] = batches
        numbered = 0
        arrival = 0.0
        while True:
            for batch in queue:
                yield _invoke(local, batch)
                numbered += len(batch.records)
                arrival = batch.records[-1].arrival
            if not local.stream.pending:
                return
            again = [Record(arrival, REPUT_KIND, data) for data in local.stream.pending]
            local.stream.pending = []
            queue = firehose_batches(again, buffering, stream_arn=STREAM_ARN, first=numbered)


def _invoke(local: LocalLambda, batch: Batch) -> Invocation:
    response = local.invoke(batch.event, LocalLambdaContext())
    events = response_events(response)
    results = Counter(record["result"] for record in response["records"])
    return Invocation(batch, BatchOutcome(len(batch.records), results, len(events)), events)


def run_transform(
    batches: Sequence[Batch],
    *,
    index: str | None = DEFAULT_INDEX,
    buffering: Buffering | None = None,
    log: TextIO | None = None,
    progress: Callable[[int], None] | None = None,
) -> TransformRun:
    """Every batch through ``transform.handler.lambda_handler``, in order; records it re-put
    are buffered again after the last batch. ``progress`` hears each batch's record count."""
    run = TransformRun()
    for invocation in stream_transform(batches, index=index, buffering=buffering, log=log):
        run.events += invocation.events
        run.outcomes.append(invocation.outcome)
        if progress:
            progress(invocation.outcome.records)
    return run
