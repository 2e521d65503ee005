"""IoT Core logs v2 via a CloudWatch Logs subscription: gzip in, one ``aws:iot:log`` per entry.

CONTROL_MESSAGE payloads are CloudWatch's reachability probes and yield no events (Dropped).
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from shared.names import thing_name
from transform.context import RecordContext, scalars_first
from transform.decoders.common import check_document
from transform.sourcetypes import IOT_LOG
from transform.validation import checker

KIND = "cloudwatch_logs"
ENTRY_KIND = "iot_log"
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WINDOW = 16 + zlib.MAX_WBITS


class _InflateError(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def decode_gzip(data: bytes, ctx: RecordContext) -> None:
    limit = ctx.invocation.settings.max_decompressed_bytes
    try:
        payload = _gunzip(data, limit)
    except _InflateError as error:
        ctx.unparsed(error.code, f"{KIND}: {error}", kind=KIND)
        return
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        ctx.unparsed("invalid_json", f"{KIND}: gunzipped payload: {error}", payload, kind=KIND)
        return
    if not isinstance(doc, dict):
        ctx.unparsed("unknown_shape", f"{KIND}: payload is not an object", payload, kind=KIND)
        return
    decode(doc, ctx)


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    if doc.get("messageType") == "CONTROL_MESSAGE" or not check_document(ctx, doc, KIND):
        return
    emit = ctx.emitter(IOT_LOG, doc["logGroup"])
    check_entry = checker(ENTRY_KIND)
    for log_event in doc["logEvents"]:
        entry = _entry(log_event["message"])
        error = None if entry is None else check_entry(entry)
        if entry is None or error is not None:
            code = "invalid_json" if entry is None else "schema_violation"
            detail = "message is not a JSON object" if entry is None else error
            reason = f"{ENTRY_KIND}: log event {log_event.get('id', '?')}: {detail}"
            ctx.unparsed(code, reason, log_event["message"], kind=ENTRY_KIND)
            continue
        fields = {"event_type": entry["eventType"]}
        if status := entry.get("status"):
            fields["status"] = status
        thing = thing_name(entry.get("clientId"))
        if thing:
            entry["thing"] = thing
            fields["thing"] = thing
        if "id" in log_event:
            entry["log_event_id"] = log_event["id"]
        emit(scalars_first(entry), when=log_event["timestamp"], host=thing, fields=fields)


def _entry(message: str) -> dict[str, Any] | None:
    try:
        entry = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) else None


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate every gzip member, refusing to grow beyond ``limit`` bytes (gzip bombs)."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(_GZIP_WINDOW)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as error:
            raise _InflateError("invalid_gzip", f"not valid gzip: {error}") from None
        if len(out) > limit:
            raise _InflateError("decompressed_too_large", f"inflates beyond {limit} bytes")
        if not inflater.eof:
            raise _InflateError("invalid_gzip", "gzip stream is truncated")
        rest = inflater.unused_data
    return bytes(out)
