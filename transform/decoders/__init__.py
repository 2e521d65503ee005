"""Input routing: which decoder a Firehose record's payload goes to.

Order matters for trust. Records forwarded by the device-report IoT rule always carry the
rule-added ``thing_name`` key, so a device that publishes something shaped like an SNS
envelope or a Detect export is still decoded as the device report it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from transform.context import RecordContext
from transform.decoders import (
    cloudwatch_logs,
    device_report,
    lifecycle,
    metric_stream,
    metrics_export,
    response,
    sns,
    thing,
)
from transform.decoders.common import Decoder

_Predicate = Callable[[dict[str, Any]], bool]

# First match wins. The device-report test comes first: its rule-added key cannot be forged.
_ROUTES: tuple[tuple[_Predicate, Decoder], ...] = (
    (lambda doc: "thing_name" in doc or "header" in doc or "hed" in doc, device_report.decode),
    (lambda doc: "TopicArn" in doc and "Message" in doc, sns.decode),
    (lambda doc: isinstance(doc.get("metrics"), list), metrics_export.decode),
    (lambda doc: "metric_stream_name" in doc, metric_stream.decode),
    (lambda doc: "messageType" in doc and "logEvents" in doc, cloudwatch_logs.decode),
    (lambda doc: doc.get("recordType") == "aws:iot:thing", thing.decode),
    (lambda doc: doc.get("recordType") == "aws:iot:response", response.decode),
    (lambda doc: "clientId" in doc and "eventType" in doc, lifecycle.decode),
)


def classify(doc: dict[str, Any]) -> Decoder | None:
    """The decoder for a JSON object record, or None when it is no known input."""
    for matches, decoder in _ROUTES:
        if matches(doc):
            return decoder
    return sns.classify_message(doc)


def decode_record(data: bytes, ctx: RecordContext) -> None:
    """Decode one record's bytes into events (or unparsed events) on ``ctx``."""
    if data.startswith(cloudwatch_logs.GZIP_MAGIC):
        cloudwatch_logs.decode_gzip(data, ctx)
        return
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        if metric_stream.looks_like_lines(data):
            metric_stream.decode_lines(data, ctx)
        elif not data.strip():
            ctx.unparsed("empty", "record is empty")
        elif not _is_utf8(data):
            ctx.unparsed("not_utf8", "record is neither gzip nor UTF-8 text (binary or CBOR?)")
        else:
            ctx.unparsed("invalid_json", f"record is not JSON: {error}")
        return
    if not isinstance(doc, dict):
        what = "a JSON array" if isinstance(doc, list) else f"a JSON {type(doc).__name__}"
        ctx.unparsed("unknown_shape", f"record is {what}, not an object")
        return
    decoder = classify(doc)
    if decoder is None:
        ctx.unparsed("unknown_shape", "record matches no known input: " + _keys_hint(doc))
        return
    decoder(doc, ctx)


def _keys_hint(doc: dict[str, Any]) -> str:
    keys = sorted(str(key)[:40] for key in doc)[:12]
    return "top-level keys " + ", ".join(keys) if keys else "empty object"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
