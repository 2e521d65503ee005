"""One Firehose invocation: every record in, exactly one result per record out, in order.

Pure logic (no powertools, no boto3) so it is easy to test and to benchmark; the handler wires
it to Lambda. The response must stay within Lambda's 6 MB limit, and one record's volume must
never push another record out:

- records are transformed smallest first (records already re-put before them), and every
  output that still fits the remaining budget is answered now, wherever it sits in the batch;
- a record that fits a response on its own but not this one is re-put into the stream (tagged,
  given priority next time, bounded by ``max_reingest_attempts``) and returned Dropped;
- a record whose output could never fit any response is split: its events are re-put as
  slices that each fit, and it is returned Dropped;
- whatever cannot be re-put (no stream, an error, no time left) is ProcessingFailed, which
  Firehose backs up to S3: nothing is lost.
"""

from __future__ import annotations

import binascii
import contextlib
import gc
import json
import operator
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import orjson

from shared.firehose import MAX_RECORD_BYTES
from transform import reingest
from transform.config import Settings
from transform.context import Event, Invocation, RecordContext, serialize
from transform.decoders import decode_record
from transform.fast import audit_notification as fast_audit_notification
from transform.fast import codec
from transform.fast import metrics_export as fast_metrics_export
from transform.sourcetypes import ALL_SOURCETYPES, METRIC
from transform.timestamps import EARLIEST_PLAUSIBLE, epoch_seconds

OK = "Ok"
DROPPED = "Dropped"
FAILED = "ProcessingFailed"

# Putting payloads back into the stream; returns the indices that could not be put.
Reput = Callable[[list[bytes]], list[int]]

_sourcetype_of = operator.itemgetter("sourcetype")
_RESPONSE_SHELL = len(json.dumps({"records": []}))
# One response entry but its recordId's JSON text (counted by _json_length, quotes included):
# the longest result, empty data and a separator (one more than the response holds).
_ENTRY_SHELL = (
    len(json.dumps({"recordId": "", "result": FAILED, "data": ""})) - len('""') + len(", ")
)
# The most HEC event bytes one re-put slice may hold: a Firehose record, less the tag.
SLICE_BYTES = MAX_RECORD_BYTES - reingest.TAG_BYTES
# Room kept for a slice's recordId as JSON text when it comes back (Firehose's are ~58 bytes).
_RECORD_ID_ROOM = 1024


@dataclass(frozen=True)
class InputRecord:
    """One Firehose record as received; any field may be missing or of the wrong type."""

    record_id: object
    data: object
    approximate_arrival_timestamp: object = None


@dataclass
class Outcome:
    record_id: object
    result: str = OK
    data: str = ""
    reason: str | None = None


@dataclass
class BatchReport:
    outcomes: list[Outcome]
    events_by_sourcetype: Counter[str] = field(default_factory=Counter)
    reingested: int = 0
    split: int = 0
    duplicates_removed: int = 0
    time_fallbacks: int = 0
    decoder_errors: list[str] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.result == result)


@dataclass
class _Record:
    position: int
    record_id: object
    arrival: float
    raw: bytes | None
    attempts: int = 0
    events: bool = False  # a slice of events already transformed (reingest.tag_events)
    problem: tuple[str, str, object] | None = None  # why ``raw`` is None: code, reason, data


@dataclass
class _Deferred:
    """What leaves by re-put: the record's own bytes again, or slices of its events."""

    record: _Record
    payloads: list[bytes]  # empty: it cannot be re-put at all
    why: str
    split: bool = False


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during a batch, restored however it ends.

    A batch allocates tens of thousands of short-lived objects that reference counting frees;
    the collector's passes over them cost ~8% of a 3 MB Detect-export batch and grow with it.
    What a batch leaves in cycles (a traceback or two) is collected once it is enabled again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def transform_batch(
    records: Sequence[InputRecord],
    *,
    settings: Settings,
    stream_source: str,
    now: float,
    reput: Reput | None,
) -> BatchReport:
    """Transform a batch; ``reput`` is None when the stream is unknown (nothing can be re-put)."""
    with _collector_paused():
        invocation = Invocation(settings=settings, now=now, stream_source=stream_source)
        if settings.fast_path:
            decode64, encode64 = codec.fast_b64decode, codec.fast_b64encode
        else:
            decode64, encode64 = codec.stdlib_b64decode, codec.stdlib_b64encode
        prepared = [
            _prepare(position, record, invocation, decode64)
            for position, record in enumerate(records)
        ]
        report = BatchReport(outcomes=[Outcome(record.record_id) for record in records])
        budget = settings.response_limit_bytes - _RESPONSE_SHELL
        budget -= sum(_ENTRY_SHELL + _json_length(record.record_id) for record in records)
        deferred: list[_Deferred] = []
        # Records that already waited go first, so every trip through the stream makes progress;
        # then small before large, so a flood of big records cannot crowd small ones out.
        for record in sorted(prepared, key=lambda r: (-r.attempts, len(r.raw or b""))):
            outcome = report.outcomes[record.position]
            counts, payload, error = _transformed(record, invocation)
            if error:
                report.decoder_errors.append(error)
            if not counts:
                outcome.result = DROPPED
                outcome.reason = "nothing to send (control message, duplicates or empty)"
                continue
            data = encode64(payload)
            if len(data) <= budget:
                budget -= len(data)
                outcome.data = data
                report.events_by_sourcetype.update(counts)
            elif len(data) <= _alone_budget(settings, record.record_id):
                deferred.append(_again(record, payload))
            else:
                deferred.append(_sliced(record, payload, _slice_bytes(settings)))
        _reingest(deferred, report, settings, reput)
        report.duplicates_removed = invocation.duplicates_removed
        report.time_fallbacks = invocation.time_fallbacks
        return report


def _prepare(
    position: int, record: InputRecord, invocation: Invocation, decode64: codec.Decode
) -> _Record:
    arrival = epoch_seconds(record.approximate_arrival_timestamp)
    if arrival is None or not EARLIEST_PLAUSIBLE <= arrival <= invocation.latest_plausible:
        arrival = invocation.now  # Firehose's docs: the Lambda clock when it is absent or odd
    if not isinstance(record.data, str):
        reason = f"Firehose record has no data string ({type(record.data).__name__})"
        missing: tuple[str, str, object] = ("invalid_record", reason, b"")
        return _Record(position, record.record_id, arrival, None, problem=missing)
    try:
        raw = decode64(record.data)
    except (binascii.Error, ValueError):
        problem: tuple[str, str, object] = (
            "invalid_base64",
            "data is not valid base64",
            record.data,
        )
        return _Record(position, record.record_id, arrival, None, problem=problem)
    untagged = reingest.untag(raw)
    return _Record(
        position, record.record_id, arrival, untagged.data, untagged.attempts, untagged.events
    )


def _transformed(record: _Record, invocation: Invocation) -> tuple[dict[str, int], bytes, str]:
    """Events per sourcetype, their HEC serialization, and a traceback if a decoder failed:
    from the fast path when it takes the record, else from the reference decoders."""
    if invocation.settings.fast_path and record.raw is not None and not record.events:
        fast = fast_metrics_export.transform(record.raw, invocation)
        if fast is not None:
            lines, count = fast
            return ({METRIC: count} if count else {}), lines, ""
        audit = fast_audit_notification.transform(record.raw, invocation)
        if audit is not None:
            lines, counts = audit
            return counts, lines, ""
    events, payload, error = _transform(record, invocation)
    return Counter(map(_sourcetype_of, events)), payload, error


def _transform(record: _Record, invocation: Invocation) -> tuple[list[Event], bytes, str]:
    """The record's events and their HEC serialization, and a traceback if a decoder failed.

    Whatever goes wrong inside costs this record alone: it becomes one unparsed event.
    """
    ctx = RecordContext(invocation, record.record_id, record.arrival, record.raw or b"")
    if record.raw is None:
        assert record.problem is not None  # noqa: S101 - set together by _prepare
        code, reason, data = record.problem
        ctx.unparsed(code, reason, data)
        return ctx.events, serialize(ctx.events), ""
    if record.events:
        return _reingested_events(record.raw, ctx)
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


def _reingested_events(lines: bytes, ctx: RecordContext) -> tuple[list[Event], bytes, str]:
    """A slice this Lambda made and re-put: its events are sent exactly as they were made."""
    try:
        events = [orjson.loads(line) for line in lines.split(b"\n")[:-1]]
    except orjson.JSONDecodeError:
        events = []
    known = all(isinstance(e, dict) and e.get("sourcetype") in ALL_SOURCETYPES for e in events)
    if events and known and lines.endswith(b"\n"):
        return events, lines, ""
    ctx.unparsed("internal_error", "a re-put slice of events is not the HEC events it was")
    return ctx.events, serialize(ctx.events), ""


def _again(record: _Record, payload: bytes) -> _Deferred:
    """A record that would fit a response of its own: re-put its bytes as they came.

    Data that never decoded has no bytes to re-put: the unparsed event made of it goes instead,
    as a slice, so it comes back holding the data and recordId as they came.
    """
    attempts = record.attempts + 1
    if record.raw is None:
        again = reingest.tag_events(payload, attempts)
    elif record.events:  # a slice is re-put as the same slice
        again = reingest.tag_events(record.raw, attempts)
    else:
        again = reingest.tag(record.raw, attempts)
    return _Deferred(record, [again], "response full")


def _slice_bytes(settings: Settings) -> int:
    """The largest slice of events that is one Firehose record and, as base64, fits a response
    on its own when it comes back."""
    alone = settings.response_limit_bytes - _RESPONSE_SHELL - _ENTRY_SHELL - _RECORD_ID_ROOM
    return min(SLICE_BYTES, alone * 3 // 4)


def _sliced(record: _Record, payload: bytes, limit: int) -> _Deferred:
    """A record whose output can never fit a response: its events in slices that each do."""
    why = f"output of {len(payload)} bytes can never fit in a Lambda response"
    slices = list(_slices(payload, limit))
    if not slices:
        longest = max(map(len, payload.split(b"\n")))
        why += f", and one event of {longest} bytes is over the {limit}-byte limit of a slice"
        return _Deferred(record, [], why)
    tagged = [reingest.tag_events(lines, record.attempts + 1) for lines in slices]
    return _Deferred(record, tagged, why, split=True)


def _slices(payload: bytes, limit: int) -> Iterator[bytes]:
    """Newline-terminated events grouped into slices of at most ``limit`` bytes; nothing if any
    one event alone is larger."""
    lines = payload.split(b"\n")[:-1]  # split on the framing newline only (not U+2028 & co)
    lines = [line + b"\n" for line in lines]
    if any(len(line) > limit for line in lines):
        return
    start, size = 0, 0
    for end, line in enumerate(lines):
        if size + len(line) > limit:
            yield b"".join(lines[start:end])
            start, size = end, 0
        size += len(line)
    yield b"".join(lines[start:])


def _reingest(
    deferred: list[_Deferred], report: BatchReport, settings: Settings, reput: Reput | None
) -> None:
    """Re-put what did not fit; whatever cannot be re-put fails (Firehose backs it up to S3)."""
    going: list[_Deferred] = []
    for item in deferred:
        record, outcome = item.record, report.outcomes[item.record.position]
        if not item.payloads:
            outcome.result, outcome.reason = FAILED, f"{item.why}; it cannot be split"
        elif reput is None:
            outcome.result, outcome.reason = FAILED, f"{item.why}; no stream to re-put into"
        elif record.attempts >= settings.max_reingest_attempts:
            outcome.result = FAILED
            outcome.reason = f"{item.why} after {record.attempts} re-ingest attempts"
        else:
            going.append(item)
    if not going or reput is None:
        return
    payloads = [payload for item in going for payload in item.payloads]
    try:
        failed = set(reput(payloads))
        problem = "re-put failed"
    except Exception as error:  # no client, no region, a malformed answer: these records only
        failed = set(range(len(payloads)))
        problem = f"re-put failed: {type(error).__name__}: {error}"
    first = 0
    for item in going:
        outcome = report.outcomes[item.record.position]
        indices = range(first, first + len(item.payloads))
        first += len(item.payloads)
        if failed.intersection(indices):
            # Slices already put are sent twice when the record is replayed from S3: a
            # duplicate is better than a loss.
            outcome.result, outcome.reason = FAILED, f"{item.why}; {problem}"
        elif item.split:
            outcome.result = DROPPED
            outcome.reason = f"{item.why}: re-ingested as {len(item.payloads)} slices of events"
            report.split += 1
            report.reingested += len(item.payloads)
        else:
            outcome.result, outcome.reason = DROPPED, "re-ingested: response size limit"
            report.reingested += 1


def _alone_budget(settings: Settings, record_id: object) -> int:
    """The most data one record could ever return: the response holding it alone."""
    entry = _ENTRY_SHELL + _json_length(record_id)
    return settings.response_limit_bytes - _RESPONSE_SHELL - entry


def _json_length(value: object) -> int:
    """Length of ``value`` as the Lambda runtime will encode it in the JSON response."""
    if (
        isinstance(value, str)
        and value.isascii()
        and value.isprintable()
        and '"' not in value
        and "\\" not in value
    ):
        return len(value) + 2
    return len(json.dumps(value))
