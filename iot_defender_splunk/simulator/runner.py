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
from collections.abc import Callable, Iterator, Sequence
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


@contextlib.contextmanager
def lambda_environment(index: str | None, log: TextIO | None = None) -> Iterator[LocalLambda]:
    """The transform handler with ``index`` as its SPLUNK_INDEX and the local stream for
    re-puts; what Lambda would print (logs, EMF metrics) goes to ``log`` (else nowhere).

    The settings are given to the handler, not read from the environment, so a simulation
    does not depend on the environment of whoever runs it.
    """
    from transform import handler  # noqa: PLC0415 - the Lambda module, loaded on use
    from transform.config import load_settings  # noqa: PLC0415

    sink = log or io.StringIO()
    stream = LocalStream()
    settings = load_settings({"SPLUNK_INDEX": index} if index else {})
    invoke = handler.make_handler(handler.Runtime(settings, firehose=stream))
    logging_stream = handler.logger.registered_handler
    previous = (
        logging_stream.setStream(sink)
        if isinstance(logging_stream, logging.StreamHandler)
        else None
    )
    try:
        with contextlib.redirect_stdout(sink):
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
    with lambda_environment(index, log) as local:
        stream = local.stream
        queue = list(batches)
        numbered = 0
        while queue:
            for batch in queue:
                response = local.invoke(batch.event, LocalLambdaContext())
                events = response_events(response)
                run.events += events
                results = Counter(record["result"] for record in response["records"])
                run.outcomes.append(BatchOutcome(len(batch.records), results, len(events)))
                numbered += len(batch.records)
                if progress:
                    progress(len(batch.records))
            arrival = queue[-1].records[-1].arrival
            again = [Record(arrival, REPUT_KIND, data) for data in stream.pending]
            stream.pending = []
            queue = firehose_batches(again, buffering, stream_arn=STREAM_ARN, first=numbered)
    return run
