"""Records the stack's IoT rules forward: the rule, not the message, decides what they become.

A rule runs for every message on its topic, and any client allowed to publish there (or to the
rule's ``$aws/rules/<name>`` Basic Ingest topic) controls that message completely. So each rule
wraps what it matched: ``SELECT '<route>' AS route, encode(*, 'base64') AS payload ...``. Every
key of the record is then the rule's own; the message is only ever decoded as the one kind its
route exists for. A message on the Detect export topic can become metric datapoints and nothing
else: never a violation, a finding, a thing record or a response, never a chosen ``source``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from transform.context import RecordContext
from transform.decoders import device_report, lifecycle, metrics_export
from transform.decoders.common import check_document, json_object

KIND = "rule_envelope"


@dataclass(frozen=True)
class Route:
    """One rule's route: the only input kind its messages may become."""

    kind: str
    decode: Callable[[dict[str, Any], dict[str, Any], RecordContext], None]


def _detect_export(message: dict[str, Any], _envelope: dict[str, Any], ctx: RecordContext) -> None:
    metrics_export.decode(message, ctx)


def _device_report(message: dict[str, Any], envelope: dict[str, Any], ctx: RecordContext) -> None:
    device_report.decode_report(
        message, ctx, thing=envelope["thing_name"], received_at=envelope["received_at"]
    )


def _lifecycle(message: dict[str, Any], _envelope: dict[str, Any], ctx: RecordContext) -> None:
    lifecycle.decode(message, ctx)


# Route name -> what its messages may become; the rules' SQL in sam/template.yaml names these
# (tests/test_template.py pins the two equal).
ROUTES: Final[dict[str, Route]] = {
    "detect-export": Route(metrics_export.KIND, _detect_export),
    "device-report": Route(device_report.KIND, _device_report),
    "lifecycle": Route(lifecycle.KIND, _lifecycle),
}


def is_envelope(doc: dict[str, Any]) -> bool:
    return "route" in doc and "payload" in doc


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    """Unwrap the rule's record and decode its message as its route's kind, and only that."""
    if not check_document(ctx, doc, KIND):
        return
    route = ROUTES[doc["route"]]
    try:
        payload = base64.b64decode(doc["payload"], validate=True)
    except (binascii.Error, ValueError):
        reason = f"{route.kind}: the rule's payload is not valid base64"
        ctx.unparsed("invalid_base64", reason, doc["payload"], kind=route.kind)
        return
    ctx.raw = payload  # an unparsed event shows the message itself, not the rule's wrapping
    message = json_object(payload, ctx, kind=route.kind)
    if message is not None:
        route.decode(message, doc, ctx)
