"""Per-record context: turns decoded messages into HEC event envelopes with trusted metadata.

Decoders never build envelopes themselves. They hand an event body plus its own timestamp to
``emit``; index, sourcetype and (unless an AWS-controlled value is passed) source come from
configuration here, so nothing a device sends can choose them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from transform.config import Settings
from transform.sourcetypes import ALL_SOURCETYPES, UNPARSED
from transform.timestamps import EARLIEST_PLAUSIBLE, epoch_seconds

Event = dict[str, Any]


class Emit(Protocol):
    def __call__(
        self,
        event: Event,
        *,
        when: object,
        seconds: float | None = None,
        host: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> None: ...


class Build(Protocol):
    """Makes one envelope: body, its own timestamp (any spelling), that timestamp already in
    epoch seconds when the caller has it, host, and index-time fields."""

    def __call__(
        self,
        event: Event,
        when: object,
        seconds: float | None,
        host: str | None,
        fields: dict[str, str] | None,
        /,
    ) -> Event: ...


MetricKey = tuple[str, str, float, str]


@dataclass
class Invocation:
    """State shared by all records of one Lambda invocation."""

    settings: Settings
    now: float
    stream_source: str
    # Highest Detect metric version emitted so far, for duplicate suppression across records.
    metric_versions: dict[MetricKey, int] = field(default_factory=dict)
    duplicates_removed: int = 0
    time_fallbacks: int = 0

    def __post_init__(self) -> None:
        self.latest_plausible = self.now + self.settings.max_future_skew_seconds
        self.index_by_sourcetype = {
            sourcetype: index
            for sourcetype in ALL_SOURCETYPES
            if (index := self.settings.index_for(sourcetype))
        }


class RecordContext:
    """Collects the HEC events one Firehose record turns into."""

    __slots__ = ("arrival", "events", "invocation", "raw", "record_id")

    def __init__(
        self, invocation: Invocation, record_id: object, arrival: float, raw: bytes
    ) -> None:
        self.invocation = invocation
        self.record_id = record_id
        self.arrival = arrival
        self.raw = raw
        self.events: list[Event] = []

    def builder(self, sourcetype: str, source: str | None = None) -> Build:
        """A function making HEC envelopes of one sourcetype and source for this record.

        The constant envelope parts are built once, so per-event work stays small for the
        inputs that fan out into thousands of events.
        """
        invocation = self.invocation
        template: Event = {"source": source or invocation.stream_source, "sourcetype": sourcetype}
        index = invocation.index_by_sourcetype.get(sourcetype)
        if index:
            template["index"] = index
        latest = invocation.latest_plausible

        def build(
            event: Event,
            when: object,
            seconds: float | None,
            host: str | None,
            fields: dict[str, str] | None,
            /,
        ) -> Event:
            time = seconds if seconds is not None else epoch_seconds(when)
            if time is None or not EARLIEST_PLAUSIBLE <= time <= latest:
                time, event = self._fallback_time(event, when, time)
            envelope = {"time": time, **template, "event": event}
            if host:
                envelope["host"] = host
            if fields:
                envelope["fields"] = fields
            return envelope

        return build

    def emitter(self, sourcetype: str, source: str | None = None) -> Emit:
        """A function appending events of one sourcetype and source to this record."""
        build = self.builder(sourcetype, source)
        append = self.events.append

        def emit(
            event: Event,
            *,
            when: object,
            seconds: float | None = None,
            host: str | None = None,
            fields: dict[str, str] | None = None,
        ) -> None:
            append(build(event, when, seconds, host, fields))

        return emit

    def emit(
        self,
        sourcetype: str,
        event: Event,
        *,
        when: object,
        host: str | None = None,
        source: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        """Append one HEC event; ``when`` is the message's own timestamp in any AWS spelling."""
        body = scalars_first(event)
        self.events.append(self.builder(sourcetype, source)(body, when, None, host, fields))

    def _fallback_time(self, event: Event, when: object, time: float | None) -> tuple[float, Event]:
        """Arrival time for a missing or implausible timestamp, and the body saying so."""
        event["time_fallback"] = _fallback_reason(when, time)
        self.invocation.time_fallbacks += 1
        return self.arrival, scalars_first(event)

    def unparsed(
        self, code: str, reason: str, payload: object = None, *, kind: str | None = None
    ) -> None:
        """Emit what could not be decoded, verbatim, with a reason. ``None`` means the record."""
        body: Event = {
            "reason_code": code,
            "reason": reason,
            "record_id": record_id_text(self.record_id),
        }
        if kind:
            body["input_kind"] = kind
        body.update(_payload_fields(self.raw if payload is None else payload))
        fields = {"reason_code": code, "input_kind": kind} if kind else {"reason_code": code}
        self.emit(UNPARSED, body, when=self.arrival, fields=fields)


# An unparsed payload is kept as text unless escaping it for JSON would grow it by more than
# this factor and slack (a record of control characters grows 6x as \u00XX escapes); base64
# grows it by 4/3 whatever it holds.
_MAX_ESCAPED_GROWTH = 1.5
_ESCAPE_SLACK = 64


def record_id_text(record_id: object) -> str:
    """A Firehose recordId as text any JSON encoder writes: lone surrogates as \\u escapes,
    anything but a string as its JSON text."""
    if isinstance(record_id, str):
        try:
            record_id.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(record_id)[1:-1]
        return record_id
    return json.dumps(record_id, default=repr)


def _base64_fields(payload: bytes) -> Event:
    return {"payload": base64.b64encode(payload).decode("ascii"), "payload_encoding": "base64"}


def _payload_fields(payload: object) -> Event:
    """The raw payload as text when it is UTF-8 and stays compact in JSON, else base64 (so an
    unparsed event is never much larger than what it holds); objects as their JSON text."""
    if isinstance(payload, bytes | bytearray):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return _base64_fields(bytes(payload))
        if len(orjson.dumps(text)) > _MAX_ESCAPED_GROWTH * len(payload) + _ESCAPE_SLACK:
            return _base64_fields(bytes(payload))
        return {"payload": text, "payload_encoding": "utf-8"}
    if isinstance(payload, str):
        try:
            encoded = payload.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: keep the exact code units, as base64
            return _base64_fields(payload.encode("utf-8", "surrogatepass"))
        return _payload_fields(encoded)
    return {"payload": _dumps_deep(payload).decode("utf-8"), "payload_encoding": "utf-8"}


def scalars_first(body: Event) -> Event:
    """The body with its scalar fields ahead of its lists and objects, each group in order.

    Splunk's JSON field extraction (KV_MODE=json, and spath) reads only the first
    ``[spath] extraction_cutoff`` bytes of an event, 5,000 by default: a long list of
    destinations or audit details must not push the fields searches filter on past it.
    """
    bulky = [key for key, value in body.items() if isinstance(value, dict | list)]
    if not bulky:
        return body
    ordered = {key: value for key, value in body.items() if not isinstance(value, dict | list)}
    ordered.update((key, body[key]) for key in bulky)
    return ordered


def _fallback_reason(when: object, time: float | None) -> str:
    if when is None:
        return "message has no timestamp; arrival time used"
    if time is None:
        return f"unreadable timestamp {str(when)[:64]!r}; arrival time used"
    if time < EARLIEST_PLAUSIBLE:
        return f"timestamp {time} is before 2015; arrival time used"
    return f"timestamp {time} is too far in the future; arrival time used"


def serialize(events: list[Event]) -> bytes:
    """HEC events as newline-terminated JSON objects, the form Firehose concatenates."""
    try:
        return b"\n".join(map(orjson.dumps, events)) + b"\n"
    except orjson.JSONEncodeError:
        return b"".join(_dumps_deep(event) + b"\n" for event in events)


def _dumps_deep(value: object) -> bytes:
    """orjson reads 1024 levels of nesting but writes only 254; the stdlib writes deeper."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
