"""SNS notifications (subscription without raw delivery): unwrap, then decode the message.

Only Device Defender's SNS messages are expected here: Detect alarms, audit notifications and
findings. The topic ARN becomes the HEC source, after the envelope schema checked its form.
"""

from __future__ import annotations

from typing import Any

import orjson

from transform.context import RecordContext
from transform.decoders import audit_finding, audit_notification, violation
from transform.decoders.common import Decoder, check_document

KIND = "sns"


def classify_message(doc: dict[str, Any]) -> Decoder | None:
    """The decoder for a Device Defender message body, whether SNS-wrapped or raw."""
    if "violationId" in doc:
        return violation.decode
    if "auditDetails" in doc:
        return audit_notification.decode
    if "findingId" in doc:
        return audit_finding.decode
    if "findings" in doc:
        return audit_finding.decode_page
    return None


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    if not check_document(ctx, doc, KIND):
        return
    topic = doc["TopicArn"]
    try:
        message = orjson.loads(doc["Message"])
    except orjson.JSONDecodeError as error:
        ctx.unparsed(
            "invalid_json", f"{KIND}: Message from {topic} is not JSON: {error}", kind=KIND
        )
        return
    decoder = classify_message(message) if isinstance(message, dict) else None
    if decoder is None:
        ctx.unparsed(
            "unknown_message",
            f"{KIND}: message from {topic} is not a Detect alarm, audit notification or finding",
            kind=KIND,
        )
        return
    decoder(message, ctx, source=topic)
