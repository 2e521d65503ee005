"""Input routing: which decoder a Firehose record's payload goes to.

Trust comes from how a record arrived, never from what it says. Whatever a device can write
reaches the stream only through one of the stack's IoT rules, and each rule wraps the message
it matched in a record naming its route (``rule_envelope``): that record can only become the
kind its rule exists for. Every other input is written by an AWS service (SNS, CloudWatch Logs,
metric streams) or by this project's own collectors, and is routed by its shape. A bare
Detect export, device report or lifecycle event, which only a rule should deliver, is refused
as ``unrouted`` rather than trusted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from transform.context import RecordContext
from transform.decoders import (
    cloudwatch_logs,
    metric_stream,
    response,
    rule_envelope,
    sns,
    thing,
)
from transform.decoders.common import Decoder, json_object

_Predicate = Callable[[dict[str, Any]], bool]

# First match wins. The rule envelope comes first: its keys are all written by a rule.
_ROUTES: tuple[tuple[_Predicate, Decoder], ...] = (
    (rule_envelope.is_envelope, rule_envelope.decode),
    (lambda doc: "TopicArn" in doc and "Message" in doc, sns.decode),
    (lambda doc: "metric_stream_name" in doc, metric_stream.decode),
    (lambda doc: "messageType" in doc and "logEvents" in doc, cloudwatch_logs.decode),
    (lambda doc: doc.get("recordType") == "aws:iot:thing", thing.decode),
    (lambda doc: doc.get("recordType") == "aws:iot:response", response.decode),
)

# Shapes only an IoT rule delivers, told apart only to say so when one arrives bare.
_RULE_ONLY: tuple[tuple[_Predicate, str], ...] = (
    (lambda doc: "header" in doc or "hed" in doc, "a device metrics report"),
    (lambda doc: "metrics" in doc, "a Detect metrics export"),
    (lambda doc: "clientId" in doc and "eventType" in doc, "a lifecycle event"),
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
    except orjson.JSONDecodeError:
        if metric_stream.looks_like_lines(data):
            metric_stream.decode_lines(data, ctx)
        else:
            json_object(data, ctx)  # says why it is not JSON
        return
    if not isinstance(doc, dict):
        json_object(data, ctx)  # says what it is instead
        return
    decoder = classify(doc)
    if decoder is not None:
        decoder(doc, ctx)
        return
    for matches, what in _RULE_ONLY:
        if matches(doc):
            reason = (
                f"record looks like {what} but did not come through the stack's IoT rule "
                "(no route envelope), so it is not trusted"
            )
            ctx.unparsed("unrouted", reason)
            return
    ctx.unparsed("unknown_shape", "record matches no known input: " + _keys_hint(doc))


def _keys_hint(doc: dict[str, Any]) -> str:
    keys = sorted(str(key)[:40] for key in doc)[:12]
    return "top-level keys " + ", ".join(keys) if keys else "empty object"
