"""One Firehose invocation: every record in, exactly one result per record out, in order.

Pure logic (no powertools, no boto3) so it is easy to test and to benchmark; the handler wires
it to Lambda. The response must stay within Lambda's 6 MB limit: records whose output does not
fit are re-put into the stream (tagged, and given priority next time) and returned Dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from transform import reingest
from transform.config import Settings
from transform.context import Event, Invocation, RecordContext, serialize
from transform.decoders import decode_record
from transform.timestamps import epoch_seconds

OK = "Ok"
DROPPED = "Dropped"
FAILED = "ProcessingFailed"

# Putting payloads back into the stream; returns the indices that could not be put.
Reput = Callable[[list[bytes]], list[int]]

_sourcetype_of = operator.itemgetter("sourcetype")
_RESPONSE_SHELL = len(json.dumps({"records": []}))
_ENTRY_SHELL = len(json.dumps({"recordId": "", "result": FAILED, "data": ""})) + len(", ")


@dataclass(frozen=True)
class InputRecord:
    record_id: str
    data: str
    approximate_arrival_timestamp: object = None


@dataclass
class Outcome:
    record_id: str
    result: str = OK
    data: str = ""
    reason: str | None = None


@dataclass
class BatchReport:
    outcomes: list[Outcome]
    events_by_sourcetype: Counter[str] = field(default_factory=Counter)
    reingested: int = 0
    duplicates_removed: int = 0
    time_fallbacks: int = 0
    decoder_errors: list[str] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.result == result)


@dataclass
class _Record:
    position: int
    record_id: str
    arrival: float
    raw: bytes | None
    attempts: int
    undecodable: str = ""


def transform_batch(
    records: Sequence[InputRecord],
    *,
    settings: Settings,
    stream_source: str,
    now: float,
    reput: Reput | None,
) -> BatchReport:
    """Transform a batch; ``reput`` is None when the stream is unknown (nothing can be re-put)."""
    invocation = Invocation(settings=settings, now=now, stream_source=stream_source)
    prepared = [_prepare(position, record, now) for position, record in enumerate(records)]
    report = BatchReport(outcomes=[Outcome(record.record_id) for record in records])
    budget = settings.response_limit_bytes - _RESPONSE_SHELL
    budget -= sum(_ENTRY_SHELL + _json_length(record.record_id) for record in records)
    overflow: list[_Record] = []
    # Records already re-ingested go first, so each trip through the stream makes progress.
    for record in sorted(prepared, key=lambda r: -r.attempts):
        outcome = report.outcomes[record.position]
        if overflow:
            overflow.append(record)
            continue
        events, payload, error = _transform(record, invocation)
        if error:
            report.decoder_errors.append(error)
        if not events:
            outcome.result, outcome.reason = (
                DROPPED,
                "nothing to send (control message, duplicates or empty)",
            )
            continue
        data = base64.b64encode(payload).decode("ascii")
        if len(data) <= budget:
            budget -= len(data)
            outcome.data = data
            report.events_by_sourcetype.update(map(_sourcetype_of, events))
        elif len(data) > _alone_budget(settings, record.record_id):
            outcome.result = FAILED
            outcome.reason = f"output of {len(data)} bytes can never fit in a Lambda response"
        else:
            overflow.append(record)
    _reingest(overflow, report, settings, reput)
    report.duplicates_removed = invocation.duplicates_removed
    report.time_fallbacks = invocation.time_fallbacks
    return report


def _prepare(position: int, record: InputRecord, now: float) -> _Record:
    arrival = epoch_seconds(record.approximate_arrival_timestamp) or now
    try:
        raw = base64.b64decode(record.data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return _Record(position, record.record_id, arrival, None, 0, str(record.data))
    data, attempts = reingest.untag(raw)
    return _Record(position, record.record_id, arrival, data, attempts)


def _transform(record: _Record, invocation: Invocation) -> tuple[list[Event], bytes, str]:
    """The record's events and their HEC serialization, and a traceback if a decoder failed.

    Whatever goes wrong inside costs this record alone: it becomes one unparsed event.
    """
    ctx = RecordContext(invocation, record.record_id, record.arrival, record.raw or b"")
    if record.raw is None:
        ctx.unparsed("invalid_base64", "record data is not valid base64", record.undecodable)
        return ctx.events, serialize(ctx.events), ""
    try:
        decode_record(record.raw, ctx)
        return ctx.events, serialize(ctx.events) if ctx.events else b"", ""
    except RecursionError:  # nesting too deep even for the stdlib encoder: keep it raw
        ctx.events.clear()
        ctx.unparsed("too_deeply_nested", "record nests too deeply to re-encode as an event")
        return ctx.events, serialize(ctx.events), ""
    except Exception as error:
        ctx.events.clear()
        ctx.unparsed("internal_error", f"transform failed: {type(error).__name__}: {error}")
        return ctx.events, serialize(ctx.events), traceback.format_exc()


def _reingest(
    overflow: list[_Record], report: BatchReport, settings: Settings, reput: Reput | None
) -> None:
    """Re-put what did not fit; whatever cannot be re-put fails (Firehose backs it up to S3)."""
    retry: list[_Record] = []
    for record in overflow:
        outcome = report.outcomes[record.position]
        if reput is None or record.raw is None:
            outcome.result, outcome.reason = FAILED, "response full and record cannot be re-put"
        elif record.attempts >= settings.max_reingest_attempts:
            outcome.result = FAILED
            outcome.reason = f"response full after {record.attempts} re-ingest attempts"
        else:
            retry.append(record)
    if not retry or reput is None:
        return
    payloads = [reingest.tag(record.raw or b"", record.attempts + 1) for record in retry]
    failed = set(reput(payloads))
    for index, record in enumerate(retry):
        outcome = report.outcomes[record.position]
        if index in failed:
            outcome.result, outcome.reason = FAILED, "response full and re-put failed"
        else:
            outcome.result, outcome.reason = DROPPED, "re-ingested: response size limit"
            report.reingested += 1


def _alone_budget(settings: Settings, record_id: str) -> int:
    """The most data one record could ever return: the response holding it alone."""
    entry = _ENTRY_SHELL + _json_length(record_id)
    return settings.response_limit_bytes - _RESPONSE_SHELL - entry


def _json_length(text: str) -> int:
    """Length of ``text`` as the Lambda runtime will encode it in the JSON response."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return len(text) + 2
    return len(json.dumps(text))
